package host

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/agenthost/agenthost/credentials/authserver/astest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
)

// TestHostMCPWithOfficialSDK: the official MCP Go SDK's client connects
// to a hosted MCP server of a running host and does the whole MCP
// authorization flow on its own: 401 → RFC 9728 metadata → RFC 8414
// metadata → dynamic registration → authorization code with PKCE and
// resource (the login and consent pages driven by a test browser) →
// token → tools/list → tools/call. The tools it sees are the ones its
// scopes allow; the call is audited.
func TestHostMCPWithOfficialSDK(t *testing.T) {
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

	for _, tc := range []struct {
		name    string
		scopes  []string
		tools   []string
		version string
	}{
		{"read only, 2025-11-25", []string{"notes:read"}, []string{"search"}, "2025-11-25"},
		// Registered for both, but the 401 names notes:read, and that is
		// what the SDK asks for: write comes by step-up (TestHostMCPStepUp).
		{"registered read and write, 2025-11-25", []string{"notes:read", "notes:write"}, []string{"search"}, "2025-11-25"},
		{"read only, 2026-07-28", []string{"notes:read"}, []string{"search"}, "2026-07-28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			session := sdkSessionVersion(t, ctx, endpoint, "alice", "alice-test-password", tc.scopes, tc.version)
			if got := session.InitializeResult().ProtocolVersion; got != tc.version {
				t.Fatalf("negotiated %s, want %s", got, tc.version)
			}
			defer session.Close()
			list, err := session.ListTools(ctx, nil)
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			var names []string
			for _, tool := range list.Tools {
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.tools) {
				t.Fatalf("tools %v, want %v (scopes %v)", names, tc.tools, tc.scopes)
			}
			res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"query": "anything"}})
			if err != nil || res.IsError {
				t.Fatalf("tools/call: %v %+v", err, res)
			}
		})
	}
	// Without a token: 401 naming the metadata.
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatalf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Each call was audited with the user as subject, as a decision and
	// then an outcome in a transaction of its own, and the refused request
	// as denied.
	entries, err := h.Store().Read(ctx, "audit", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	records, err := audit.Read(ctx, syncedStore(t, h), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var calls []mcpCallRecords
	for _, c := range pairMCPRecords(t, records) {
		if c.decision.Agent == "mcp:alice" {
			calls = append(calls, c)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("%d audited MCP calls, want 3", len(calls))
	}
	for _, c := range calls {
		if c.outcome == nil || c.outcome.Outcome != audit.OutcomeOK || c.decision.Resource != "notes/search" || c.decision.Subject != "alice" {
			t.Fatalf("MCP call %s: decision %+v, outcome %+v", c.decision.Txn, c.decision, c.outcome)
		}
	}
	denied := 0
	for _, e := range entries {
		if strings.Contains(string(e.Data), `"action":"mcp.request"`) && strings.Contains(string(e.Data), `"decision":"deny"`) {
			denied++
		}
	}
	if denied == 0 {
		t.Fatal("the request without a token was not audited as denied")
	}
	// Every token issued to alice's client is in the log by jti, never
	// the token itself.
	issued := 0
	for _, e := range entries {
		if strings.Contains(string(e.Data), `"action":"token.issue"`) && strings.Contains(string(e.Data), `"sub":"alice"`) &&
			strings.Contains(string(e.Data), `"token_jti":"`) && strings.Contains(string(e.Data), `"resource":"`+endpoint+`"`) {
			issued++
		}
		if strings.Contains(string(e.Data), "eyJ") {
			t.Fatalf("audit record %d holds a JWT", e.Index)
		}
	}
	if issued < 3 {
		t.Fatalf("%d token issuances to alice audited, want at least 3", issued)
	}
}

// TestCORS: browser clients may call discovery, token and MCP endpoints
// from any origin, without credentials; the sign-in pages get no CORS.
func TestCORS(t *testing.T) {
	cfg := testConfig(t)
	hash, _ := userauth.HashPassword("pw")
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "clock", Tools: []string{"clock/now"}}}
	base, _ := startHostWith(t, cfg)
	preflight := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, base+path, nil)
		req.Header.Set("Origin", "http://localhost:6274")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, p := range []string{"/oauth2/token", "/oauth2/register", "/.well-known/oauth-authorization-server", "/mcp/clock", "/.well-known/oauth-protected-resource/mcp/clock"} {
		resp := preflight(p)
		// An MCP server checks the origin and names the one it allows.
		allow := "*"
		if p == "/mcp/clock" {
			allow = "http://localhost:6274"
		}
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != allow ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp/clock", strings.NewReader("{}"))
	req.Header.Set("Origin", "http://localhost:6274")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("401 from a browser origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := preflight("/oauth2/login"); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the sign-in page allows cross-origin calls")
	}
}

// sdkSession connects the official MCP Go SDK's client to endpoint; the
// SDK does discovery, registration and the code flow, and a test browser
// signs in as user and consents.
func sdkSession(t *testing.T, ctx context.Context, endpoint, user, password string, scopes []string) *mcp.ClientSession {
	t.Helper()
	return sdkSessionVersion(t, ctx, endpoint, user, password, scopes, "")
}

// sdkSessionVersion is sdkSession asking for an MCP protocol version ("" =
// the SDK's default).
func sdkSessionVersion(t *testing.T, ctx context.Context, endpoint, user, password string, scopes []string, version string) *mcp.ClientSession {
	t.Helper()
	return sdkSessionOptions(t, ctx, endpoint, user, password, scopes, version, nil)
}

// sdkSessionOptions is sdkSessionVersion with the client's options.
func sdkSessionOptions(t *testing.T, ctx context.Context, endpoint, user, password string, scopes []string, version string,
	clientOpts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	redirect := "http://127.0.0.1:9/callback"
	b := astest.NewBrowser(redirect, user, password, "allow")
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				ClientName: "sdk test", RedirectURIs: []string{redirect},
				GrantTypes: []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
				Scope:      strings.Join(scopes, " "),
			},
		},
		RedirectURL: redirect,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
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
	client := mcp.NewClient(&mcp.Implementation{Name: "sdk-test", Version: "v0.0.1"}, clientOpts)
	var opts *mcp.ClientSessionOptions
	if version != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: handler, DisableStandaloneSSE: true}, opts)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return session
}
