package mcpclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/agenthost/agenthost/mcp/mcpclient"
)

func TestDPoPBoundTokens(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{dpopKey: key})
	ctx := context.Background()

	c := e.client()
	got, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", json.RawMessage(`{"msg":"bound"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "sub="+agentID+" act= msg=bound" {
		t.Fatalf("got %q", got.Text)
	}
	// Every request carries a fresh proof: a second call passes the
	// verifier's replay check.
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests", n)
	}

	// Without the key the DPoP token cannot be used.
	noKey, err := mcpclient.New(mcpclient.Config{URL: e.mcpURL, Tokens: e.tokens(agentID), Fetcher: e.fetcher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = noKey.Close() })
	if _, err := noKey.ListTools(ctx, mcpclient.Subject{}); !errors.Is(err, mcpclient.ErrToken) {
		t.Fatalf("DPoP token without a key: %v", err)
	}
}
