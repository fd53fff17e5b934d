package mcpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/mcp/mcpclient"
)

// countingSource is a subject token source that counts its calls.
func countingSource(token string, calls *atomic.Int32) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		calls.Add(1)
		return token, nil
	}
}

// TestDelegatedSubjectSource: a subject whose token comes from a source
// (the host mints it for the delegation chain) is exchanged once and
// cached by its key: the source is asked only when a token is acquired,
// and a later call with the same key but another source reuses the
// session and its token.
func TestDelegatedSubjectSource(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()
	user := e.userToken()
	base := e.tokenRequests.Load()

	var calls atomic.Int32
	sub := mcpclient.Subject{Source: countingSource(user, &calls), Key: "alice|assistant>research", Name: "alice"}
	for i := range 3 {
		got, err := c.CallTool(ctx, sub, "whoami", json.RawMessage(`{"msg":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := "sub=" + userID + " act=" + agentID + " msg=x"; got.Text != want {
			t.Fatalf("call %d: %q, want %q", i, got.Text, want)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the source was asked %d times, want once", n)
	}
	if n := e.tokenRequests.Load() - base; n != 1 {
		t.Fatalf("%d token requests, want one exchange", n)
	}

	// The same key with another source: the cached token serves it.
	var later atomic.Int32
	if _, err := c.CallTool(ctx, mcpclient.Subject{Source: countingSource(user, &later), Key: sub.Key, Name: "alice"}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if later.Load() != 0 || e.tokenRequests.Load()-base != 1 {
		t.Fatalf("a cached subject acquired again (source %d, token requests %d)", later.Load(), e.tokenRequests.Load()-base)
	}
	// The server refuses the token once: the client acquires another
	// with the latest source.
	e.rejectNext.Store(1)
	if _, err := c.CallTool(ctx, mcpclient.Subject{Source: countingSource(user, &later), Key: sub.Key, Name: "alice"}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if later.Load() != 1 || calls.Load() != 1 {
		t.Fatalf("re-acquired with source calls %d (earlier source %d), want the latest source once", later.Load(), calls.Load())
	}

	// Another key is another subject.
	if _, err := c.CallTool(ctx, mcpclient.Subject{Source: countingSource(user, &calls), Key: "alice|research", Name: "alice"}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("another key did not acquire its own token")
	}

	if _, err := c.CallTool(ctx, mcpclient.Subject{Source: countingSource(user, &calls)}, "whoami", nil); err == nil {
		t.Fatal("a Source without a Key was accepted")
	}

	// The task that needed them ended: its sessions end, its tokens stay.
	if n := c.EndSessions("alice|"); n != 2 {
		t.Fatalf("EndSessions ended %d sessions, want 2", n)
	}
	before := e.tokenRequests.Load()
	if _, err := c.CallTool(ctx, sub, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if e.tokenRequests.Load() != before || calls.Load() != 2 {
		t.Fatal("a new session acquired a new token")
	}
}

// TestDelegatedRefusalNeverFallsBack: when the authorization server
// refuses the exchange, or the subject token cannot be had, the call fails
// with an error naming the server, the authorization server and the OAuth
// error code, and the client never asks for a token on its own authority.
func TestDelegatedRefusalNeverFallsBack(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()
	// Discovery first, on the agent's own authority (one token request).
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
		t.Fatal(err)
	}
	base := e.tokenRequests.Load()

	tests := []struct {
		name      string
		sub       mcpclient.Subject
		exchanges bool // whether the call reaches the token endpoint
		want      []string
	}{
		{"refused subject token", mcpclient.Subject{Token: "not-a-token", Name: "alice"}, true,
			[]string{"token exchange (RFC 8693)", e.mcpURL, e.asMD.Issuer, "invalid_request"}},
		{"refused source token", mcpclient.Subject{Key: "k1", Name: "alice", Source: func(context.Context) (string, error) { return "not-a-token", nil }}, true,
			[]string{"token exchange (RFC 8693)", e.mcpURL, e.asMD.Issuer, "invalid_request"}},
		{"source fails", mcpclient.Subject{Key: "k2", Name: "alice", Source: func(context.Context) (string, error) { return "", errors.New("no delegation") }}, false,
			[]string{"token exchange (RFC 8693)", e.asMD.Issuer, "no delegation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, own := e.tokenRequests.Load(), e.ownAuthority.Load()
			_, err := c.CallTool(ctx, tt.sub, "whoami", nil)
			if !errors.Is(err, mcpclient.ErrToken) {
				t.Fatalf("CallTool = %v, want ErrToken", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			// Starting the session sends up to two MCP requests (the
			// 2026-07-28 discovery, then initialize), each trying the
			// exchange once; none falls back.
			if n := e.tokenRequests.Load() - before; (n > 0) != tt.exchanges || n > 2 {
				t.Fatalf("%d token requests", n)
			}
			if n := e.ownAuthority.Load() - own; n != 0 {
				t.Fatalf("%d client_credentials requests after the refusal", n)
			}
		})
	}
	var oe *oauth.Error
	_, err := c.CallTool(ctx, mcpclient.Subject{Token: "not-a-token"}, "whoami", nil)
	if !errors.As(err, &oe) || oe.Code != oauth.CodeInvalidRequest {
		t.Fatalf("the OAuth error is not in the chain: %v", err)
	}
	if e.ownAuthority.Load() != 1 || e.tokenRequests.Load()-base == 0 {
		t.Fatalf("client_credentials requests %d (only the first, own-authority ListTools), token requests %d",
			e.ownAuthority.Load(), e.tokenRequests.Load()-base)
	}
}

// BenchmarkDelegatedCall: one tools/call for a delegated subject whose
// subject token comes from a source, with the exchanged token cached (the
// steady state) and with a token exchange at the authorization server
// before each call (the cache dropped each time; the MCP session stays).
func BenchmarkDelegatedCall(b *testing.B) {
	e := newEnv(b, envOpts{})
	ctx := context.Background()
	user := e.userToken()
	tokens := e.tokens(agentID)
	c, err := mcpclient.New(mcpclient.Config{URL: e.mcpURL, Tokens: tokens, Fetcher: e.fetcher})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	src := func(context.Context) (string, error) { return user, nil }
	sub := mcpclient.Subject{Source: src, Key: "alice|assistant>research", Name: "alice"}
	if _, err := c.CallTool(ctx, sub, "whoami", nil); err != nil {
		b.Fatal(err)
	}
	treq := oauth.TokenRequest{Server: e.asMD, Resource: e.mcpURL, Scopes: allScopes, SubjectTokenSource: src, SubjectKey: sub.Key}
	for _, bc := range []struct {
		name   string
		forget bool
	}{{"cached", false}, {"exchanged", true}} {
		b.Run(bc.name, func(b *testing.B) {
			before := e.tokenRequests.Load()
			b.ReportAllocs()
			for b.Loop() {
				if bc.forget {
					tokens.Forget(treq)
				}
				if _, err := c.CallTool(ctx, sub, "whoami", nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(e.tokenRequests.Load()-before)/float64(b.N), "exchanges/op")
		})
	}
}
