package mcphost

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

const testIssuer = "https://host.example"

// fakeAS is an authorization server that knows no key and revokes
// nothing.
type fakeAS struct{}

func (fakeAS) Issuer() string { return testIssuer }
func (fakeAS) Keys() jose.KeyFunc {
	return func(context.Context, string) (crypto.PublicKey, error) { return nil, errors.New("no such key") }
}
func (fakeAS) Revoked(context.Context, string) (bool, error) { return false, nil }
func (fakeAS) SubjectRevoked(context.Context, string, time.Time) (bool, error) {
	return false, nil
}
func (fakeAS) IssueTxnToken(context.Context, authserver.TxnTokenRequest) (string, *txntoken.Claims, error) {
	return "", nil, errors.New("no Txn-Tokens here")
}

// passWorkload checks no workload proof.
type passWorkload struct{}

func (passWorkload) Middleware(next http.Handler) http.Handler { return next }

// memReplay is a DPoP replay cache in memory.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *memReplay) Remember(_ context.Context, key string, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[key] {
		return dpop.ErrReplay
	}
	c.seen[key] = true
	return nil
}

// recordingAuditor keeps every record.
type recordingAuditor struct {
	mu      sync.Mutex
	records []mediator.Record
}

func (a *recordingAuditor) Record(_ context.Context, r mediator.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return nil
}

// echoTool is a host tool that answers its arguments.
type echoTool struct{ name string }

func (t echoTool) Definition() llm.Tool {
	return llm.Tool{Name: t.name, Description: "echo", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (echoTool) Call(_ context.Context, _ mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	return mediator.ToolResult{Text: string(args)}, nil
}

// remoteEcho is a remote server's tool (Resolve must refuse it).
type remoteEcho struct{ echoTool }

// fakeUpstream is a remote server a gateway fronts.
type fakeUpstream struct{ cfg config.MCPRemoteConfig }

func (u fakeUpstream) Remote() config.MCPRemoteConfig { return u.cfg }
func (fakeUpstream) ClientFor(credentials.Identity, ...string) (UpstreamClient, error) {
	return nil, errors.New("not reachable")
}

func testTools() map[string]mediator.Tool {
	return map[string]mediator.Tool{
		"notes/search": echoTool{"notes/search"},
		"notes/add":    echoTool{"notes/add"},
		"clock/now":    echoTool{"clock/now"},
		"docs/whoami":  remoteEcho{echoTool{"docs/whoami"}},
	}
}

var testReadOnly = map[string]bool{"notes/search": true, "clock/now": true}

func TestToolScope(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readOnly bool
		want     string
	}{
		{"notes/add", false, "notes:write"},
		{"notes/search", true, "notes:read"},
		{"kit/text/stats", true, "kit:read"},
	} {
		if got := ToolScope(tc.name, tc.readOnly); got != tc.want {
			t.Errorf("ToolScope(%q, %v) = %q, want %q", tc.name, tc.readOnly, got, tc.want)
		}
	}
}

// TestResolve: each server's resource, scopes and challenge scopes come
// from its tools (or, for a gateway, its configured scopes); a server
// naming a tool that is not a host tool, or an unknown upstream, is an
// error.
func TestResolve(t *testing.T) {
	upstreams := map[string]Upstream{"docs": fakeUpstream{config.MCPRemoteConfig{Name: "docs", URL: "https://docs.example/mcp",
		Tools: []string{"whoami", "search"}}}}
	isRemote := func(t mediator.Tool) bool { _, ok := t.(remoteEcho); return ok }
	for _, tc := range []struct {
		name    string
		issuer  string
		servers []config.MCPServerConfig
		want    []Server
		wantErr string
	}{
		{name: "read and write", issuer: testIssuer,
			servers: []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/search", "notes/add", "clock/now"}}},
			want: []Server{{Name: "notes", Resource: testIssuer + "/mcp/notes", Tools: []string{"notes/search", "notes/add", "clock/now"},
				Scopes: []string{"notes:read", "notes:write", "clock:read"}, Challenge: []string{"notes:read", "clock:read"}}}},
		{name: "write only", issuer: testIssuer,
			servers: []config.MCPServerConfig{{Name: "w", Tools: []string{"notes/add"}}},
			want:    []Server{{Name: "w", Resource: testIssuer + "/mcp/w", Tools: []string{"notes/add"}, Scopes: []string{"notes:write"}}}},
		{name: "gateway", issuer: testIssuer,
			servers: []config.MCPServerConfig{{Name: "gw", Upstream: "docs", Scopes: []string{"docs:read", "docs:write"}}},
			want: []Server{{Name: "gw", Resource: testIssuer + "/mcp/gw", Tools: []string{"whoami", "search"},
				Scopes: []string{"docs:read", "docs:write"}, Challenge: []string{"docs:read"}, Upstream: upstreams["docs"]}}},
		{name: "none"},
		{name: "unknown tool", issuer: testIssuer, servers: []config.MCPServerConfig{{Name: "n", Tools: []string{"notes/nope"}}},
			wantErr: `mcphost: mcp server n: no host tool "notes/nope"`},
		{name: "remote tool", issuer: testIssuer, servers: []config.MCPServerConfig{{Name: "n", Tools: []string{"docs/whoami"}}},
			wantErr: `"docs/whoami" is a remote tool; hosted servers offer host tools only`},
		{name: "unknown upstream", issuer: testIssuer, servers: []config.MCPServerConfig{{Name: "gw", Upstream: "nope", Scopes: []string{"a"}}},
			wantErr: `mcphost: mcp server gw: no remote "nope"`},
		{name: "no issuer", servers: []config.MCPServerConfig{{Name: "w", Tools: []string{"notes/add"}}},
			wantErr: "mcphost: Issuer is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(ResolveConfig{Issuer: tc.issuer, Servers: tc.servers, Tools: testTools(), ReadOnly: testReadOnly,
				Remote: isRemote, Upstreams: upstreams})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("servers\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// validConfig is a Config New takes, serving the notes server.
func validConfig(t testing.TB, a mediator.Auditor) Config {
	t.Helper()
	servers, err := Resolve(ResolveConfig{Issuer: testIssuer, Tools: testTools(), ReadOnly: testReadOnly,
		Servers: []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/search", "notes/add"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Servers:    servers,
		Tools:      testTools(),
		ReadOnly:   testReadOnly,
		AuthServer: fakeAS{},
		Workload:   passWorkload{},
		Replay:     &memReplay{},
		Auditor:    a,
		HostID:     credentials.MustParseIdentity("spiffe://example.org/host"),
	}
}

// TestNewConfig: New refuses a Config that lacks what it cannot serve
// without, naming the field.
func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{name: "valid", change: func(*Config) {}},
		{name: "no servers", change: func(c *Config) { c.Servers = nil }},
		{name: "no AuthServer", change: func(c *Config) { c.AuthServer = nil }, wantErr: "mcphost: AuthServer is required"},
		{name: "no Workload", change: func(c *Config) { c.Workload = nil }, wantErr: "mcphost: Workload is required"},
		{name: "no Replay", change: func(c *Config) { c.Replay = nil }, wantErr: "mcphost: Replay is required"},
		{name: "no Auditor", change: func(c *Config) { c.Auditor = nil }, wantErr: "mcphost: Auditor is required"},
		{name: "no HostID", change: func(c *Config) { c.HostID = credentials.Identity{} }, wantErr: "mcphost: HostID is required"},
		{name: "tool missing", change: func(c *Config) { c.Tools = map[string]mediator.Tool{"notes/add": echoTool{"notes/add"}} },
			wantErr: `mcphost: mcp server notes: no host tool "notes/search"`},
		{name: "bad server name", change: func(c *Config) { c.Servers[0].Name = "no/slash" }, wantErr: "mcphost: mcp server no/slash:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig(t, &recordingAuditor{})
			tc.change(&cfg)
			_, err := New(cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New: %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMount: a server is served at PathPrefix + name behind WrapServer,
// with its RFC 9728 metadata (every scope) behind WrapMetadata; a request
// without a token gets a 401 naming the read scopes only, and is audited
// as a denied mcp.request.
func TestMount(t *testing.T) {
	a := &recordingAuditor{}
	cfg := validConfig(t, a)
	var wrapped, wrappedMD int
	cfg.WrapServer = func(h http.Handler) http.Handler {
		wrapped++
		return h
	}
	cfg.WrapMetadata = func(h http.Handler) http.Handler {
		wrappedMD++
		return h
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	b.Mount(mux)
	if wrapped != 1 || wrappedMD != 1 {
		t.Fatalf("wrapped %d servers and %d metadata endpoints, want 1 each", wrapped, wrappedMD)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource/mcp/notes")
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || md.Resource != testIssuer+"/mcp/notes" ||
		fmt.Sprint(md.AuthorizationServers) != "["+testIssuer+"]" || fmt.Sprint(md.ScopesSupported) != "[notes:read notes:write]" {
		t.Fatalf("metadata: %d %+v %v", resp.StatusCode, md, err)
	}

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp/notes",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `scope="notes:read"`) ||
		!strings.Contains(ch, "/.well-known/oauth-protected-resource/mcp/notes") {
		t.Fatalf("no token: %d %q", resp.StatusCode, ch)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.records) != 1 {
		t.Fatalf("records %+v, want one", a.records)
	}
	r := a.records[0]
	if r.Action != ActionRequest || r.Resource != "notes" || r.Decision != "deny" || r.Outcome != "denied" ||
		r.Policy != "oauth" || !strings.HasPrefix(r.Reason, "401 ") || r.Time.IsZero() {
		t.Fatalf("record %+v", r)
	}
}
