package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// TestAgentCallsRemoteMCPServer: a hosted agent calls a tool of a remote
// MCP server that has its own authorization server. The host answers the
// 401, discovers the server's metadata and its AS, gets a token with the
// agent's JWT-SVID as client assertion, and calls the tool; the remote
// server sees the agent as the token's subject, and the plugin gets the
// result and never the token.
func TestAgentCallsRemoteMCPServer(t *testing.T) {
	t.Setenv("REMOTE_TEST_MODEL_KEY", "sk-remote-test")
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "c", "object": "chat.completion", "created": 1, "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": "done"}}},
		})
	}))
	defer provider.Close()

	var late http.Handler = http.NotFoundHandler()
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { late.ServeHTTP(w, r) }))
	defer remote.Close()
	endpoint := remote.URL + "/mcp"

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Models = map[string]config.ModelConfig{"gpt": {Provider: config.ProviderOpenAI, Model: "m", BaseURL: provider.URL, APIKeyEnv: "REMOTE_TEST_MODEL_KEY"}}
	cfg.Agents = []config.AgentConfig{{Name: "recorder", Path: exe, Model: "gpt", Tools: []string{"clock/now", "docs/search"},
		Env: map[string]string{testAgentEnv: "recorder", "REMOTE_TOOL": "docs/search"}}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: endpoint, Tools: []string{"search"}}}

	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		cancel()
		t.Fatal(err)
	}

	// The remote side: its own AS, which trusts this trust domain's
	// JWT-SVIDs and knows the agent as a client.
	agentID := credentials.MustParseIdentity("spiffe://test.local/agent/recorder")
	as, err := authserver.New(ctx, authserver.Config{
		Issuer: remote.URL, Store: authserver.NewMemoryStore(nil), TrustDomain: "test.local", SVIDs: h.CA(),
		Agents:    []authserver.AgentClient{{ID: agentID, Scopes: []string{"docs:read"}}},
		Resources: []authserver.Resource{{URI: endpoint, Scopes: []string{"docs:read"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{Resource: endpoint, MetadataURL: remote.URL + "/.well-known/oauth-protected-resource/mcp",
		Issuer: remote.URL, Keys: as.Keys(), Revoked: as.Revoked, ScopesSupported: []string{"docs:read"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seenTokens, seenSubjects []string
	srv, err := mcpserver.New(mcpserver.Config{Name: "docs", Verifier: v, Tools: []mcpserver.Tool{{
		Name: "search", Scope: "docs:read", ReadOnly: true,
		Handler: func(_ context.Context, c *resource.Caller, _ json.RawMessage) (mcpserver.Result, error) {
			mu.Lock()
			seenSubjects = append(seenSubjects, c.Subject)
			mu.Unlock()
			return mcpserver.Result{Text: "found: the plans"}, nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", as.Handler())
	mux.Handle("/.well-known/oauth-protected-resource/mcp", resource.MetadataHandler(oauthResource(endpoint, remote.URL)))
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			mu.Lock()
			seenTokens = append(seenTokens, strings.TrimPrefix(a, "Bearer "))
			mu.Unlock()
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	late = mux

	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	var failure, record string
	for {
		err = h.RunTask(wctx, localapi.TaskRequest{Agent: "recorder", Input: "find the plans"}, func(ev localapi.TaskEvent) error {
			if ev.Type == "error" {
				failure = ev.Text
			}
			if r, ok := strings.CutPrefix(ev.Text, recordPrefix); ok && ev.Type == "thought" {
				record = r
			}
			return nil
		})
		if err == nil || wctx.Err() != nil || !strings.Contains(err.Error(), "not running") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || failure != "" {
		t.Fatalf("task: %v %s", err, failure)
	}
	got := []byte(record)
	if !bytes.Contains(got, []byte("remote: found: the plans")) {
		t.Fatalf("the plugin did not get the remote result:\n%s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seenTokens) == 0 || len(seenSubjects) != 1 || seenSubjects[0] != agentID.String() {
		t.Fatalf("remote saw tokens %d, subjects %v", len(seenTokens), seenSubjects)
	}
	for _, tok := range seenTokens {
		if bytes.Contains(got, []byte(tok)) {
			t.Fatal("the plugin received the access token")
		}
	}
	if jwtPattern.Match(got) {
		t.Fatalf("the plugin received a JWT:\n%s", got)
	}
}

func oauthResource(res, issuer string) oauth.ResourceMetadata {
	return oauth.ResourceMetadata{Resource: res, AuthorizationServers: []string{issuer}, ScopesSupported: []string{"docs:read"}, BearerMethodsSupported: []string{"header"}}
}
