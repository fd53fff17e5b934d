package mcpclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcptest"
)

// proofClaims decodes the claims of a DPoP proof (already verified by
// the server that took it).
func proofClaims(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof %q is not a compact JWS", proof)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// es256Key is the ES256 key of keys (the one a server listing ES256
// gets).
func es256Key(t *testing.T, keys *dpop.Keys) crypto.Signer {
	t.Helper()
	key, _, err := keys.Key([]string{"ES256"})
	if err != nil || key == nil {
		t.Fatalf("ES256 key: %v", err)
	}
	return key
}

func thumbprint(t *testing.T, key crypto.Signer) string {
	t.Helper()
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// TestDPoPBoundTokens: the authorization server advertises DPoP and the
// MCP server takes DPoP-bound tokens, so the agent's token is bound to
// the agent's ES256 key (cnf.jkt = its thumbprint), every token request
// carries a proof, and every MCP request carries Authorization: DPoP and
// a fresh proof of its own (jti) for its method, the endpoint (htu) and
// the token (ath).
func TestDPoPBoundTokens(t *testing.T) {
	e := newEnv(t, envOpts{dpop: true})
	ctx := context.Background()
	keys := dpop.NewKeys()
	c := e.clientWith(e.tokensWithKeys(agentID, keys))

	got, err := c.CallTool(ctx, mcpclient.Subject{}, "binding", nil)
	if err != nil {
		t.Fatal(err)
	}
	jkt := thumbprint(t, es256Key(t, keys))
	if got.Text != "sub="+agentID+" jkt="+jkt {
		t.Fatalf("got %q, want the agent's key thumbprint %s", got.Text, jkt)
	}
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", json.RawMessage(`{"msg":"bound"}`)); err != nil {
		t.Fatal(err)
	}
	if n, p := e.tokenRequests.Load(), e.tokenProofs.Load(); n != 1 || p != 1 {
		t.Fatalf("%d token requests, %d with a proof; want 1 and 1", n, p)
	}
	seen := e.takeSeen()
	if len(seen) < 4 {
		t.Fatalf("only %d requests with a token", len(seen))
	}
	jtis := map[string]bool{}
	for _, r := range seen {
		token, ok := strings.CutPrefix(r.authorization, "DPoP ")
		if !ok || len(r.proofs) != 1 {
			t.Fatalf("%s request with %q and %d proofs", r.method, r.authorization, len(r.proofs))
		}
		cl := proofClaims(t, r.proofs[0])
		if cl["htm"] != r.method || cl["htu"] != e.mcpURL || cl["ath"] != dpop.AccessTokenHash(token) {
			t.Fatalf("proof claims %v for %s %s", cl, r.method, e.mcpURL)
		}
		jti, _ := cl["jti"].(string)
		if jti == "" || jtis[jti] {
			t.Fatalf("proof jti %q missing or reused", jti)
		}
		jtis[jti] = true
	}
}

// TestDPoPNonces: an authorization server and an MCP server that both
// require their own nonces. Each use_dpop_nonce refusal is answered once,
// with the nonce the server sent; later proofs carry the nonce kept for
// that origin, so neither server refuses again.
func TestDPoPNonces(t *testing.T) {
	e := newEnv(t, envOpts{dpop: true, rsNonce: true, asNonce: true})
	ctx := context.Background()
	tokens := e.tokensWithKeys(agentID, dpop.NewKeys())
	c := e.clientWith(tokens)

	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", json.RawMessage(`{"msg":"nonce"}`)); err != nil {
		t.Fatal(err)
	}
	// The token endpoint: refused for want of a nonce, then granted.
	if n := e.tokenRequests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2 (one use_dpop_nonce retry)", n)
	}
	// The MCP endpoint: 401 without a token, 401 use_dpop_nonce, then
	// everything else goes through.
	if n := e.unauthorized.Load(); n != 2 {
		t.Fatalf("%d 401s, want 2", n)
	}
	if _, err := c.ListTools(ctx, mcpclient.Subject{}); err != nil {
		t.Fatal(err)
	}
	if n := e.unauthorized.Load(); n != 2 {
		t.Fatalf("%d 401s after a second call: the nonce was not kept", n)
	}
	seen := e.takeSeen()
	for i, r := range seen[1:] {
		if cl := proofClaims(t, r.proofs[0]); cl["nonce"] == nil {
			t.Fatalf("request %d after the nonce challenge has a proof without a nonce", i+1)
		}
	}
	// Another token from the same client: the authorization server's
	// nonce was kept too.
	md := e.asMD
	if _, err := tokens.Token(ctx, oauth.TokenRequest{Server: md, Resource: e.mcpURL, Scopes: []string{"tools:read"}}); err != nil {
		t.Fatal(err)
	}
	if n := e.tokenRequests.Load(); n != 3 {
		t.Fatalf("%d token requests, want 3: the second token without a nonce retry", n)
	}
}

// TestBearerWithoutDPoP: with an authorization server that does not
// advertise DPoP, or a resource that does not say it takes DPoP-bound
// tokens, the agent's token is a bearer token and no proof is sent,
// though the client has keys.
func TestBearerWithoutDPoP(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts envOpts
	}{
		{"authorization server without DPoP", envOpts{dpop: true, asWithoutDPoP: true}},
		{"resource without DPoP", envOpts{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			c := e.clientWith(e.tokensWithKeys(agentID, dpop.NewKeys()))
			got, err := c.CallTool(context.Background(), mcpclient.Subject{}, "binding", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Text != "sub="+agentID+" jkt=" {
				t.Fatalf("got %q, want an unbound token", got.Text)
			}
			if n := e.tokenProofs.Load(); n != 0 {
				t.Fatalf("%d token requests with a proof", n)
			}
			for _, r := range e.takeSeen() {
				if !strings.HasPrefix(r.authorization, "Bearer ") || len(r.proofs) != 0 {
					t.Fatalf("request with %q and %d proofs", strings.SplitN(r.authorization, " ", 2)[0], len(r.proofs))
				}
			}
		})
	}
}

// TestAgentsHaveTheirOwnKeys: two agents' tokens are bound to two
// different keys, and one agent's token cannot be used with the other's
// proofs (nor as a bearer token): the server refuses.
func TestAgentsHaveTheirOwnKeys(t *testing.T) {
	e := newEnv(t, envOpts{dpop: true})
	ctx := context.Background()
	keysA, keysB := dpop.NewKeys(), dpop.NewKeys()
	a := e.clientWith(e.tokensWithKeys(agentID, keysA))
	b := e.clientWith(e.tokensWithKeys(userID, keysB))

	gotA, err := a.CallTool(ctx, mcpclient.Subject{}, "binding", nil)
	if err != nil {
		t.Fatal(err)
	}
	seenA := e.takeSeen()
	gotB, err := b.CallTool(ctx, mcpclient.Subject{}, "binding", nil)
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := es256Key(t, keysA), es256Key(t, keysB)
	jktA, jktB := thumbprint(t, keyA), thumbprint(t, keyB)
	if jktA == jktB || gotA.Text != "sub="+agentID+" jkt="+jktA || gotB.Text != "sub="+userID+" jkt="+jktB {
		t.Fatalf("A: %q, B: %q; thumbprints %s, %s", gotA.Text, gotB.Text, jktA, jktB)
	}

	tokenA, _ := strings.CutPrefix(seenA[len(seenA)-1].authorization, "DPoP ")
	for _, tt := range []struct {
		name   string
		scheme string
		key    crypto.Signer
		want   int
		code   string
	}{
		{"A's token, A's proof", "DPoP", keyA, http.StatusOK, ""},
		{"A's token, B's proof", "DPoP", keyB, http.StatusUnauthorized, oauth.CodeInvalidDPoPProof},
		{"A's token as a bearer token", "Bearer", nil, http.StatusUnauthorized, oauth.CodeInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, challenge := rawInitialize(t, e.mcpURL, tt.scheme, tokenA, tt.key)
			if status != tt.want || !strings.Contains(challenge, tt.code) {
				t.Fatalf("status %d, WWW-Authenticate %q; want %d %s", status, challenge, tt.want, tt.code)
			}
		})
	}
}

// rawInitialize sends an MCP initialize to endpoint with the token in
// scheme and, with key, a proof; it returns the status and the
// challenges.
func rawInitialize(t *testing.T, endpoint, scheme, token string, key crypto.Signer) (int, string) {
	t.Helper()
	status, challenges, err := mcptest.Initialize(context.Background(), endpoint, scheme, token, key)
	if err != nil {
		t.Fatal(err)
	}
	return status, challenges
}

// TestFixedDPoPKey: an oauth.Client given one key (ClientConfig.DPoPKey)
// binds to it, and the MCP client signs with the key the token names.
func TestFixedDPoPKey(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{dpopKey: key})
	got, err := e.client().CallTool(context.Background(), mcpclient.Subject{}, "binding", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "sub="+agentID+" jkt="+thumbprint(t, key) {
		t.Fatalf("got %q", got.Text)
	}
}

// BenchmarkCallToolDPoP compares a tools/call with a cached DPoP-bound
// token (a proof signed per request, verified by the server with its
// replay cache) to the same call with a cached bearer token.
func BenchmarkCallToolDPoP(b *testing.B) {
	for _, bb := range []struct {
		name string
		opts envOpts
	}{
		{"bearer", envOpts{}},
		{"dpop", envOpts{dpop: true}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			e := newEnv(b, bb.opts)
			c := e.clientWith(e.tokensWithKeys(agentID, dpop.NewKeys()))
			ctx := context.Background()
			got, err := c.CallTool(ctx, mcpclient.Subject{}, "binding", nil)
			if err != nil {
				b.Fatal(err)
			}
			if bound := !strings.HasSuffix(got.Text, "jkt="); bound != (bb.name == "dpop") {
				b.Fatalf("%s: %q", bb.name, got.Text)
			}
			args := json.RawMessage(`{"msg":"bench"}`)
			for b.Loop() {
				if _, err := c.CallTool(ctx, mcpclient.Subject{}, "whoami", args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
