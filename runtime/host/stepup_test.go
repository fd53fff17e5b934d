package host

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/config"
)

// challengeRecorder is an HTTP transport that remembers the status and
// WWW-Authenticate of every 401 and 403 the MCP server answers.
type challengeRecorder struct {
	mu  sync.Mutex
	got []recordedChallenge
}

type recordedChallenge struct {
	status    int
	challenge oauth.AuthChallenge
}

func (c *challengeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	rc := recordedChallenge{status: resp.StatusCode}
	if cs, perr := oauth.ParseChallenges(resp.Header.Values("WWW-Authenticate")); perr == nil && len(cs) > 0 {
		rc.challenge = cs[0]
	}
	c.mu.Lock()
	c.got = append(c.got, rc)
	c.mu.Unlock()
	return resp, nil
}

func (c *challengeRecorder) all() []recordedChallenge {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// TestHostMCPStepUp: least privilege with the official MCP Go SDK client.
// Its first token comes from the 401 challenge, which names the read
// scope only, so it can read and not write. Calling the write tool gets
// 403 insufficient_scope naming notes:write (with the read scope it
// holds); the SDK authorizes again with the challenged scope, the user
// consents to the wider scope on the consent page, and the call goes
// through. The client registered (RFC 7591) with scope notes:read: the
// registration does not stop the step-up.
func TestHostMCPStepUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hash, err := userauth.HashPassword("alice-test-password")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/search", "notes/add"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	endpoint := h.Issuer() + "/mcp/notes"

	// The metadata lists every scope; the 401 names the read scope.
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, h.Issuer()+"/.well-known/oauth-protected-resource/mcp/notes", endpoint, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prm.ScopesSupported, []string{"notes:read", "notes:write"}) {
		t.Fatalf("metadata scopes_supported %v, want notes:read notes:write", prm.ScopesSupported)
	}

	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run(version, func(t *testing.T) {
			redirect := "http://127.0.0.1:9/callback"
			b := astest.NewBrowser(redirect, "alice", "alice-test-password", "allow")
			var (
				mu        sync.Mutex
				requested []string // the scope of each authorization request
			)
			handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
				DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
					Metadata: &oauthex.ClientRegistrationMetadata{
						ClientName: "step-up test", RedirectURIs: []string{redirect},
						GrantTypes: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
						Scope:      "notes:read",
					},
				},
				RedirectURL: redirect,
				AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
					u, err := url.Parse(args.URL)
					if err != nil {
						return nil, err
					}
					mu.Lock()
					requested = append(requested, u.Query().Get("scope"))
					mu.Unlock()
					back, err := b.Authorize(ctx, args.URL)
					if err != nil {
						return nil, err
					}
					q := back.Query()
					if e := q.Get("error"); e != "" {
						return nil, fmt.Errorf("authorization failed: %s", e)
					}
					return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			rec := &challengeRecorder{}
			client := mcp.NewClient(&mcp.Implementation{Name: "sdk-step-up", Version: "v0.0.1"}, nil)
			session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: handler,
				HTTPClient: &http.Client{Transport: rec}, DisableStandaloneSSE: true}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer session.Close()
			scopeOf := func() string {
				t.Helper()
				ts, err := handler.TokenSource(ctx)
				if err != nil || ts == nil {
					t.Fatalf("token source: %v", err)
				}
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				claims, err := h.as.VerifyAccessToken(ctx, tok.AccessToken, endpoint)
				if err != nil {
					t.Fatal(err)
				}
				return claims.Scope
			}
			tools := func() []string {
				t.Helper()
				list, err := session.ListTools(ctx, nil)
				if err != nil {
					t.Fatalf("tools/list: %v", err)
				}
				var names []string
				for _, tool := range list.Tools {
					names = append(names, tool.Name)
				}
				slices.Sort(names)
				return names
			}

			// Connected with the 401's scope: read only.
			got := rec.all()
			if len(got) != 1 || got[0].status != http.StatusUnauthorized || got[0].challenge.Param("scope") != "notes:read" {
				t.Fatalf("challenges before the first token %+v, want one 401 naming notes:read", got)
			}
			if s := scopeOf(); s != "notes:read" {
				t.Fatalf("first token scope %q, want notes:read only", s)
			}
			if names := tools(); !slices.Equal(names, []string{"search"}) {
				t.Fatalf("tools with the first token %v, want [search]", names)
			}
			if res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "x"}}); err != nil || res.IsError {
				t.Fatalf("search: %v %+v", err, res)
			}

			// The write tool: 403, step-up, the call succeeds.
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"text": "stepped up"}})
			if err != nil || res.IsError {
				t.Fatalf("add after step-up: %v %+v", err, res)
			}
			got = rec.all()[1:]
			if len(got) != 1 || got[0].status != http.StatusForbidden || got[0].challenge.Param("error") != oauth.CodeInsufficientScope {
				t.Fatalf("challenges of the write call %+v, want one 403 insufficient_scope", got)
			}
			challenged := strings.Fields(got[0].challenge.Param("scope"))
			slices.Sort(challenged)
			if !slices.Equal(challenged, []string{"notes:read", "notes:write"}) {
				t.Fatalf("403 scope %q, want notes:write with the held notes:read", got[0].challenge.Param("scope"))
			}
			if d := got[0].challenge.Param("error_description"); !strings.HasSuffix(d, "notes:write") {
				t.Errorf("403 description %q does not name notes:write", d)
			}
			mu.Lock()
			asked := slices.Clone(requested)
			mu.Unlock()
			if len(asked) != 2 || asked[0] != "notes:read" {
				t.Fatalf("authorization requests asked for %q, want notes:read, then the step-up", asked)
			}
			second := strings.Fields(asked[1])
			slices.Sort(second)
			if !slices.Equal(second, challenged) {
				t.Fatalf("step-up asked for %q, want the 403's scope %q", asked[1], got[0].challenge.Param("scope"))
			}
			stepped := strings.Fields(scopeOf())
			slices.Sort(stepped)
			if !slices.Equal(stepped, []string{"notes:read", "notes:write"}) {
				t.Fatalf("token after step-up has scope %q, want notes:read notes:write", stepped)
			}
			// Nothing was lost: both tools are listed, search still works.
			if names := tools(); !slices.Equal(names, []string{"add", "search"}) {
				t.Fatalf("tools after step-up %v, want [add search]", names)
			}
			if res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "stepped"}}); err != nil || res.IsError {
				t.Fatalf("search after step-up: %v %+v", err, res)
			}
			if n := len(rec.all()); n != 2 {
				t.Errorf("%d challenges in all, want 2 (the 401 and the 403)", n)
			}
		})
	}
}

// TestMCPChallengeScopes: per hosted server, a 401 names the read scopes
// of its tools (every scope when it has no read tool), a gateway the
// configured scopes ending in :read (all of them when none does), while
// the RFC 9728 metadata lists every scope.
func TestMCPChallengeScopes(t *testing.T) {
	h, _ := newGatewayHost(t, func(cfg *config.Config) {
		cfg.MCP.Servers = append(cfg.MCP.Servers,
			config.MCPServerConfig{Name: "notes", Tools: []string{"notes/add", "notes/search", "clock/now"}},
			config.MCPServerConfig{Name: "writer", Tools: []string{"notes/add"}},
			config.MCPServerConfig{Name: "gw-rw", Upstream: "docs", Scopes: []string{"docs:write", "docs:read"}},
			config.MCPServerConfig{Name: "gw-admin", Upstream: "docs", Scopes: []string{"docs:admin", "docs:audit"}},
		)
	})
	for _, tc := range []struct {
		server, challenge string
		supported         []string
	}{
		{"notes", "notes:read clock:read", []string{"notes:write", "notes:read", "clock:read"}},
		{"writer", "notes:write", []string{"notes:write"}},
		{"gw", "docs:read", []string{"docs:read"}},
		{"gw-rw", "docs:read", []string{"docs:write", "docs:read"}},
		{"gw-admin", "docs:admin docs:audit", []string{"docs:admin", "docs:audit"}},
	} {
		t.Run(tc.server, func(t *testing.T) {
			endpoint := h.Issuer() + "/mcp/" + tc.server
			resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cs, err := oauth.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
			if resp.StatusCode != http.StatusUnauthorized || err != nil || len(cs) == 0 {
				t.Fatalf("%d %q %v", resp.StatusCode, resp.Header.Values("WWW-Authenticate"), err)
			}
			if got := cs[0].Param("scope"); got != tc.challenge {
				t.Errorf("401 scope %q, want %q", got, tc.challenge)
			}
			prm, err := oauthex.GetProtectedResourceMetadata(t.Context(), cs[0].Param("resource_metadata"), endpoint, http.DefaultClient)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(prm.ScopesSupported, tc.supported) {
				t.Errorf("scopes_supported %v, want %v", prm.ScopesSupported, tc.supported)
			}
		})
	}
}
