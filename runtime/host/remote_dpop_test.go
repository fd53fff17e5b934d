package host

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

// TestRemoteTokensAreDPoPBoundPerWorkload: a remote MCP server whose
// authorization server advertises DPoP and which takes DPoP-bound tokens
// itself, both requiring their own nonces. Each agent's token (and the
// host's own, for a gateway) is bound to that workload's key, which the
// host holds: the remote sees three different cnf.jkt, each the
// thumbprint of the workload's key, and the nonce challenges are
// answered.
func TestRemoteTokensAreDPoPBoundPerWorkload(t *testing.T) {
	var late http.Handler = http.NotFoundHandler()
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { late.ServeHTTP(w, r) }))
	defer remote.Close()
	endpoint := remote.URL + "/mcp"

	cfg := testConfig(t)
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: endpoint, Tools: []string{"binding"}, ActingAs: config.ActingAsAgent}}
	ctx := context.Background()
	h, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()

	alpha := credentials.MustParseIdentity("spiffe://test.local/agent/alpha")
	beta := credentials.MustParseIdentity("spiffe://test.local/agent/beta")
	var clients []authserver.AgentClient
	for _, id := range []credentials.Identity{alpha, beta, h.hostID} {
		clients = append(clients, authserver.AgentClient{ID: id, Scopes: []string{"docs:read"}})
	}
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: remote.URL, Store: authserver.NewMemoryStore(nil), TrustDomain: "test.local", SVIDs: h.CA(),
		Agents: clients, Resources: []authserver.Resource{{URI: endpoint, Scopes: []string{"docs:read"}}},
		RequireDPoPNonce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	nonceKey := make([]byte, dpop.MinNonceKeySize)
	_, _ = rand.Read(nonceKey)
	nonces, err := dpop.NewHMACNonces(nonceKey, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(nil), Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	prm := remote.URL + "/.well-known/oauth-protected-resource/mcp"
	v, err := resource.New(resource.Config{Resource: endpoint, MetadataURL: prm, Issuer: remote.URL, Keys: as.Keys(),
		Revoked: as.Revoked, ScopesSupported: []string{"docs:read"}, DPoP: dv})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mcpserver.New(mcpserver.Config{Name: "docs", Verifier: v, Tools: []mcpserver.Tool{{
		Name: "binding", Scope: "docs:read", ReadOnly: true,
		Handler: func(_ context.Context, c *resource.Caller, _ json.RawMessage) (mcpserver.Result, error) {
			return mcpserver.Result{Text: c.Subject + " " + c.JKT}, nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var bearerSeen atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/", as.Handler())
	mux.Handle("/.well-known/oauth-protected-resource/mcp", resource.MetadataHandler(oauth.ResourceMetadata{
		Resource: endpoint, AuthorizationServers: []string{remote.URL}, ScopesSupported: []string{"docs:read"},
		DPoPSigningAlgValuesSupported: []string{"ES256"}}))
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			bearerSeen.Store(true)
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	late = mux

	r := h.remotes.Server("docs")
	seen := map[string]bool{}
	for _, tt := range []struct {
		id     credentials.Identity
		caller func() (remotetools.Client, error)
	}{
		{alpha, func() (remotetools.Client, error) { return r.Client("alpha") }},
		{beta, func() (remotetools.Client, error) { return r.Client("beta") }},
		{h.hostID, func() (remotetools.Client, error) { return r.ClientFor(h.hostID) }},
	} {
		c, err := tt.caller()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			res, err := c.CallTool(ctx, mcpclient.Subject{}, "binding", nil)
			if err != nil {
				t.Fatalf("%s: %v", tt.id, err)
			}
			key, _, err := h.remotes.DPoPKeys(tt.id).Key([]string{"ES256"})
			if err != nil || key == nil {
				t.Fatalf("%s has no ES256 key: %v", tt.id, err)
			}
			jkt, _ := dpop.Thumbprint(key.Public())
			if res.Text != tt.id.String()+" "+jkt {
				t.Fatalf("remote saw %q, want %s bound to %s", res.Text, tt.id, jkt)
			}
			seen[jkt] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct keys for three workloads", len(seen))
	}
	if bearerSeen.Load() {
		t.Fatal("a bearer token reached the remote")
	}
}

// TestGatewayToOwnServerUsesDPoP: a gateway of the host in front of the
// host's own MCP server, as the quickstart's notes-gateway is. Both sides
// are the host's: its authorization server advertises DPoP and its
// servers take DPoP-bound tokens, so the gateway's token is bound to the
// host's key, and the host's server checks its proofs (replay cache in
// the store) and serves the call.
func TestGatewayToOwnServerUsesDPoP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cfg := testConfig(t)
	cfg.Listen.Address = config.Address(addr)
	hash, err := userauth.HashPassword("alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash, Email: "alice@example.com"}}
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "clock", Tools: []string{"clock/now"}},
		{Name: "gw", Upstream: "self", Scopes: []string{"clock:read"}}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "self", URL: "http://" + addr + "/mcp/clock", Tools: []string{"now"}}}
	var logs syncBuffer
	h := runHostWith(t, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	session := sdkSession(t, ctx, h.Issuer()+"/mcp/gw", "alice", "alice-pw", []string{"clock:read"})
	defer session.Close()
	for range 2 {
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "now", Arguments: map[string]any{}})
		if err != nil || res.IsError || len(res.Content) == 0 {
			t.Fatalf("gateway call: %v %+v", err, res)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "mcpclient: discovered") || !strings.Contains(out, "resource_dpop=true") {
		t.Fatalf("the gateway did not see its upstream take DPoP:\n%s", out)
	}
	if strings.Contains(out, "answered with a bearer token") {
		t.Fatalf("the host's authorization server issued a bearer token to a DPoP request:\n%s", out)
	}
}
