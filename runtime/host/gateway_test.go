package host

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/config"
)

// TestGatewayDelegatesPerUser: two users reach the same upstream MCP
// server through the host's gateway, each with their own delegated token:
// the upstream sees alice or bob as the subject and the host as the actor,
// never a shared credential.
func TestGatewayDelegatesPerUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, _ := newGatewayHost(t, nil)

	seen := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		session := sdkSession(t, ctx, h.Issuer()+"/mcp/gw", user, user+"-pw", []string{"docs:read"})
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		session.Close()
		if err != nil || res.IsError || len(res.Content) == 0 {
			t.Fatalf("%s: %v %+v", user, err, res)
		}
		text := res.Content[0].(*mcp.TextContent).Text
		if !strings.HasPrefix(text, user+" via spiffe://test.local/host token ") {
			t.Fatalf("%s: upstream saw %q", user, text)
		}
		seen[user] = strings.TrimPrefix(text, user+" via spiffe://test.local/host token ")
	}
	if seen["alice"] == seen["bob"] {
		t.Fatal("both users reached the upstream with the same token")
	}
}

// newGatewayHost runs a host with users alice and bob (passwords
// "<name>-pw") and a gateway "gw" to an upstream MCP server "docs" that
// trusts the host's authorization server; its tool whoami answers with the
// subject, actor and token id it sees. edit may change the config before
// the host starts. The counter counts the upstream's tool calls.
func newGatewayHost(t *testing.T, edit func(*config.Config)) (*Host, *atomic.Int32) {
	t.Helper()
	var late http.Handler = http.NotFoundHandler()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { late.ServeHTTP(w, r) }))
	t.Cleanup(up.Close)
	upstream := up.URL + "/mcp"

	cfg := testConfig(t)
	var users []config.UserConfig
	for _, u := range []string{"alice", "bob"} {
		hash, err := userauth.HashPassword(u + "-pw")
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, config.UserConfig{Name: u, PasswordHash: hash, Email: u + "@example.com"})
	}
	cfg.Auth.Users = users
	cfg.Auth.DynamicRegistration = true
	cfg.Auth.Resources = []config.ResourceConfig{{URI: upstream, Scopes: []string{"docs:read"}}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: upstream, Tools: []string{"whoami"}}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "gw", Upstream: "docs", Scopes: []string{"docs:read"}}}
	if edit != nil {
		edit(cfg)
	}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))

	v, err := resource.New(resource.Config{Resource: upstream, MetadataURL: up.URL + "/.well-known/oauth-protected-resource/mcp",
		Issuer: h.Issuer(), Keys: h.as.Keys(), Revoked: h.as.Revoked, SubjectRevoked: h.as.SubjectRevoked,
		ScopesSupported: []string{"docs:read"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := new(atomic.Int32)
	srv, err := mcpserver.New(mcpserver.Config{Name: "docs", Verifier: v, Tools: []mcpserver.Tool{{
		Name: "whoami", Scope: "docs:read",
		Handler: func(_ context.Context, c *resource.Caller, _ json.RawMessage) (mcpserver.Result, error) {
			calls.Add(1)
			actor := ""
			if c.Actor != nil {
				actor = c.Actor.Subject
			}
			return mcpserver.Result{Text: c.Subject + " via " + actor + " token " + c.TokenID}, nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource/mcp", resource.MetadataHandler(oauthResource(upstream, h.Issuer())))
	mux.Handle("/mcp", srv.Handler())
	late = mux
	return h, calls
}
