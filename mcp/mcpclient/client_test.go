package mcpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpclient"
)

func TestListAndCallAfterDiscovery(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()

	tools, err := c.ListTools(ctx, mcpclient.Subject{})
	if err != nil {
		t.Fatal(err)
	}
	if got := toolNames(tools); !slices.Equal(got, []string{"binding", "fail", "whoami"}) {
		t.Fatalf("tools %v", got)
	}
	for _, tool := range tools {
		var schema struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(tool.InputSchema, &schema); err != nil || schema.Type != "object" {
			t.Fatalf("tool %s schema %s: %v", tool.Name, tool.InputSchema, err)
		}
		if tool.Name == "whoami" && (tool.Description != "Says who called." || schema.Properties["msg"] == nil) {
			t.Fatalf("whoami: %+v", tool)
		}
	}
	if n := e.unauthorized.Load(); n != 1 {
		t.Fatalf("%d 401s, want exactly the first unauthenticated request", n)
	}

	tests := []struct {
		name string
		tool string
		args string
		want mcpclient.Result
	}{
		{"text", "whoami", `{"msg":"hi"}`, mcpclient.Result{Text: "sub=" + agentID + " act= msg=hi"}},
		{"no arguments", "whoami", ``, mcpclient.Result{Text: "sub=" + agentID + " act= msg="}},
		{"tool error", "fail", `{}`, mcpclient.Result{Text: "boom", IsError: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.CallTool(ctx, mcpclient.Subject{}, tt.tool, json.RawMessage(tt.args))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// One discovery, one token, one 401 for everything above.
	if n := e.tokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1 (the token is reused)", n)
	}
	if n := e.unauthorized.Load(); n != 1 {
		t.Fatalf("%d 401s after reuse", n)
	}

	// A second client discovers again but the server sees the same flow.
	c2 := e.client()
	if _, err := c2.CallTool(ctx, mcpclient.Subject{}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load(); n != 2 {
		t.Fatalf("%d token requests after a second client, want 2", n)
	}
}

func TestTokenExchangeForSubject(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()
	user := e.userToken()
	base := e.tokenRequests.Load()

	got, err := c.CallTool(ctx, mcpclient.Subject{Token: user, Name: "alice"}, "whoami", json.RawMessage(`{"msg":"for alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "sub=" + userID + " act=" + agentID + " msg=for alice"; got.Text != want {
		t.Fatalf("got %q, want %q", got.Text, want)
	}
	// The agent's own session is separate and carries no act.
	own, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	if own.Text != "sub="+agentID+" act= msg=" {
		t.Fatalf("own authority: %q", own.Text)
	}
	if _, err := c.ListTools(ctx, mcpclient.Subject{Token: user, Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load() - base; n != 2 {
		t.Fatalf("%d token requests, want one exchange and one client_credentials", n)
	}

	// Once the user's access is revoked, their session and token are
	// dropped: the next call for them acquires a new token, while the
	// agent's own stays cached.
	if n := c.ForgetSubject("alice"); n != 1 {
		t.Fatalf("ForgetSubject ended %d sessions, want 1", n)
	}
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load() - base; n != 2 {
		t.Fatalf("the agent's own token was dropped too (%d token requests)", n)
	}
	if _, err := c.CallTool(ctx, mcpclient.Subject{Token: user, Name: "alice"}, "whoami", nil); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load() - base; n != 3 {
		t.Fatalf("%d token requests after ForgetSubject, want a new exchange (3)", n)
	}

	// A subject token the AS does not accept fails at the token step.
	_, err = c.CallTool(ctx, mcpclient.Subject{Token: "not-a-token"}, "whoami", nil)
	if !errors.Is(err, mcpclient.ErrToken) || !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidRequest}) {
		t.Fatalf("bad subject: %v", err)
	}
	if strings.Contains(err.Error(), user) {
		t.Fatal("error carries a token")
	}
}

func TestStepUp(t *testing.T) {
	tests := []struct {
		name   string
		opts   envOpts
		want   error // nil: success
		tokens int32 // token requests for ListTools then CallTool
		status int32 // 403s seen
	}{
		{"granted", envOpts{challengeScopes: []string{"tools:read"}}, nil, 2, 1},
		{"AS refuses the scope", envOpts{challengeScopes: []string{"tools:read"}, agentScopes: []string{"tools:read"}},
			mcpclient.ErrToken, 2, 1},
		{"server still refuses", envOpts{challengeScopes: []string{"tools:read"}, needScope: "tools:admin", stepUpScope: "tools:call"},
			mcpclient.ErrInsufficientScope, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			c := e.client()
			ctx := context.Background()
			if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
				t.Fatal(err)
			}
			got, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", json.RawMessage(`{"msg":"x"}`))
			if n := e.tokenRequests.Load(); n != tt.tokens {
				t.Errorf("%d token requests, want %d", n, tt.tokens)
			}
			if n := e.forbidden.Load(); n != tt.status {
				t.Errorf("%d 403s, want %d", n, tt.status)
			}
			if tt.want == nil {
				if err != nil || got.Text != "sub="+agentID+" act= msg=x" {
					t.Fatalf("%+v %v", got, err)
				}
				// The stepped-up token is kept for the next call.
				if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil); err != nil {
					t.Fatal(err)
				}
				if n := e.tokenRequests.Load(); n != tt.tokens || e.forbidden.Load() != tt.status {
					t.Fatalf("next call: %d token requests, %d 403s", n, e.forbidden.Load())
				}
				return
			}
			if !errors.Is(err, mcpclient.ErrInsufficientScope) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v and %v", err, mcpclient.ErrInsufficientScope, tt.want)
			}
			if !strings.Contains(err.Error(), "tools:call") {
				t.Fatalf("error does not name the scope: %v", err)
			}
			// Listing still works with the original token.
			if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
				t.Fatalf("after a failed step-up: %v", err)
			}
		})
	}
}

func TestRefusedTokenIsRenewedOnce(t *testing.T) {
	tests := []struct {
		name    string
		reject  int32
		wantErr error
		tokens  int32
	}{
		{"renewed", 1, nil, 2},
		{"refused again", 2, mcpclient.ErrUnauthorized, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			c := e.client()
			ctx := context.Background()
			if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
				t.Fatal(err)
			}
			e.rejectNext.Store(tt.reject)
			_, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if n := e.tokenRequests.Load(); n != tt.tokens {
				t.Fatalf("%d token requests, want %d", n, tt.tokens)
			}
			if err != nil && (strings.Contains(err.Error(), "eyJ") || !strings.Contains(err.Error(), "revoked")) {
				t.Fatalf("error must name the refusal and carry no token: %v", err)
			}
		})
	}
}

func TestDiscoveryFailures(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(other.Close)
	tests := []struct {
		name  string
		setup func(e *env)
		want  error
	}{
		{"resource differs", func(e *env) { e.prm.Resource = "https://other.example/mcp" }, oauth.ErrMetadata},
		{"resource with trailing slash", func(e *env) { e.prm.Resource = e.mcpURL + "/" }, oauth.ErrMetadata},
		{"no authorization server", func(e *env) { e.prm.AuthorizationServers = nil }, oauth.ErrMetadata},
		{"metadata redirects to another origin", func(e *env) {
			e.prmHandler = http.RedirectHandler(other.URL+prmPath, http.StatusFound)
		}, fetch.ErrRedirect},
		{"metadata missing", func(e *env) { e.prmHandler = http.NotFoundHandler() }, fetch.ErrStatus},
		{"authorization server without metadata", func(e *env) {
			e.prm.AuthorizationServers = []string{other.URL + "/issuer"}
		}, oauth.ErrMetadata},
		{"metadata not JSON", func(e *env) {
			e.prmHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) })
		}, fetch.ErrBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			tt.setup(e)
			c := e.client()
			_, err := c.ListTools(context.Background(), mcpclient.Subject{})
			if !errors.Is(err, mcpclient.ErrDiscovery) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v and %v", err, mcpclient.ErrDiscovery, tt.want)
			}
			if n := e.tokenRequests.Load(); n != 0 {
				t.Fatalf("%d token requests after failed discovery", n)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t, envOpts{})
	tok := e.tokens(agentID)
	tests := []struct {
		name string
		cfg  mcpclient.Config
	}{
		{"no URL", mcpclient.Config{Tokens: tok}},
		{"relative URL", mcpclient.Config{URL: "/mcp", Tokens: tok}},
		{"fragment", mcpclient.Config{URL: "https://mcp.example/mcp#x", Tokens: tok}},
		{"empty fragment", mcpclient.Config{URL: "https://mcp.example/mcp#", Tokens: tok}},
		{"userinfo", mcpclient.Config{URL: "https://u:p@mcp.example/mcp", Tokens: tok}},
		{"scheme", mcpclient.Config{URL: "ftp://mcp.example/mcp", Tokens: tok}},
		{"no host", mcpclient.Config{URL: "https:///mcp", Tokens: tok}},
		{"unparsable", mcpclient.Config{URL: "https://mcp.example/%zz", Tokens: tok}},
		{"no tokens", mcpclient.Config{URL: "https://mcp.example/mcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := mcpclient.New(tt.cfg); err == nil || c != nil {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
}

func TestCallToolRejectsBadInput(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	tests := []struct {
		name, tool, args string
	}{
		{"empty name", "", `{}`},
		{"array", "whoami", `[1]`},
		{"null", "whoami", `null`},
		{"string", "whoami", `"x"`},
		{"truncated", "whoami", `{"msg":`},
		{"trailing data", "whoami", `{} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CallTool(context.Background(), mcpclient.Subject{}, tt.tool, json.RawMessage(tt.args))
			if !errors.Is(err, mcpclient.ErrProtocol) {
				t.Fatalf("got %v", err)
			}
		})
	}
	if n := e.mcpRequests.Load(); n != 0 {
		t.Fatalf("%d requests sent for bad input", n)
	}
}

func TestUnknownToolAndClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "nope", nil); !errors.Is(err, mcpclient.ErrProtocol) {
		t.Fatalf("unknown tool: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); !errors.Is(err, mcpclient.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(other.Close)
	e := newEnv(t, envOpts{})
	c := e.client()
	ctx := context.Background()
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
		t.Fatal(err)
	}
	e.redirectTo.Store(other.URL + "/mcp")
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil); !errors.Is(err, mcpclient.ErrProtocol) {
		t.Fatalf("redirected call: %v", err)
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("token sent to another server %d times", n)
	}
}

// The verifier's challenges parse into what the client needs.
func TestVerifierChallengeRoundTrip(t *testing.T) {
	e := newEnv(t, envOpts{})
	rec := httptest.NewRecorder()
	e.v.InsufficientScope("tools:call", "tools:admin").Write(rec)
	info, err := mcpclient.ParseChallengeInfoForTest(rec.Header().Values("WWW-Authenticate"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Code != oauth.CodeInsufficientScope || !slices.Equal(info.Scope, []string{"tools:call", "tools:admin"}) ||
		info.ResourceMetadata != e.prmURL {
		t.Fatalf("%+v", info)
	}
	rec = httptest.NewRecorder()
	(&resource.Challenge{Status: http.StatusUnauthorized, Scope: "a b", ResourceMetadata: e.prmURL, DPoPAlgs: []string{"ES256"}}).Write(rec)
	info, err = mcpclient.ParseChallengeInfoForTest(rec.Header().Values("WWW-Authenticate"))
	if err != nil || info.Code != "" || !slices.Equal(info.Scope, []string{"a", "b"}) || info.ResourceMetadata != e.prmURL {
		t.Fatalf("%+v %v", info, err)
	}
}

func BenchmarkCallTool(b *testing.B) {
	e := newEnv(b, envOpts{})
	c := e.client()
	ctx := context.Background()
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", nil); err != nil {
		b.Fatal(err)
	}
	args := json.RawMessage(`{"msg":"bench"}`)
	for b.Loop() {
		if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", args); err != nil {
			b.Fatal(err)
		}
	}
}
