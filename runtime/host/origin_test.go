package host

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

func TestOriginGuardAllows(t *testing.T) {
	g := newOriginGuard("https://agents.example:8443", []string{"https://app.example", "HTTP://Tools.Example:8080"})
	tests := []struct {
		origin string
		want   bool
	}{
		{"https://agents.example:8443", true}, // the host itself
		{"https://app.example", true},
		{"http://tools.example:8080", true},
		{"http://localhost:6274", true}, // a local MCP client in a browser
		{"http://127.0.0.1:3000", true},
		{"http://[::1]:3000", true},
		{"https://evil.example", false}, // a page rebinding its name to this host
		{"https://app.example:444", false},
		{"http://app.example", false},
		{"null", false},
		{"https://app.example/path", false},
		{"file://", false},
	}
	for _, tt := range tests {
		if got := g.allows(tt.origin); got != tt.want {
			t.Errorf("allows(%q) = %v, want %v", tt.origin, got, tt.want)
		}
	}
	if !newOriginGuard("http://127.0.0.1:8420", []string{"*"}).allows("https://anywhere.example") {
		t.Error(`"*" does not allow every origin`)
	}
}

// TestMCPOriginChecked: a browser request to a hosted MCP server from an
// origin that is not allowed gets 403 before anything else; an allowed
// origin gets CORS headers naming it; a request without Origin is as
// before.
func TestMCPOriginChecked(t *testing.T) {
	cfg := testConfig(t)
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "clock", Tools: []string{"clock/now"}}}
	cfg.MCP.AllowedOrigins = []string{"https://app.example"}
	base, stop := startHostWith(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	tests := []struct {
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{"https://evil.example", http.StatusForbidden, ""},
		{"https://app.example", http.StatusUnauthorized, "https://app.example"},
		{"http://localhost:6274", http.StatusUnauthorized, "http://localhost:6274"},
		{"", http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, base+PathMCP+"clock", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || resp.Header.Get("Access-Control-Allow-Origin") != tt.wantACAO {
			t.Errorf("Origin %q: %d, ACAO %q; want %d, %q", tt.origin, resp.StatusCode,
				resp.Header.Get("Access-Control-Allow-Origin"), tt.wantStatus, tt.wantACAO)
		}
	}
}
