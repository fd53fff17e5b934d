package authserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDynamicRegistration(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AllowDynamicRegistration = true })
	post := func(ctype, body string) (int, map[string]any) {
		resp, err := http.Post(e.issuer+PathRegister, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("not JSON: %q", raw)
		}
		return resp.StatusCode, out
	}
	status, out := post("application/json", `{"client_name":"MCP Inspector","redirect_uris":["http://127.0.0.1:6274/oauth/callback"]}`)
	if status != 201 || !strings.HasPrefix(out["client_id"].(string), "dyn-") || out["client_secret"] != nil ||
		out["token_endpoint_auth_method"] != "none" {
		t.Fatalf("register: %d %v", status, out)
	}
	c, err := e.srv.clients.lookup(e.ctx, out["client_id"].(string))
	if err != nil || !c.public() || c.RedirectURIs[0] != "http://127.0.0.1:6274/oauth/callback" {
		t.Fatalf("stored client %+v %v", c, err)
	}

	bad := []struct {
		name, ctype, body, code string
	}{
		{"form body", "application/x-www-form-urlencoded", "client_name=x", "invalid_client_metadata"},
		{"not JSON", "application/json", "{", "invalid_client_metadata"},
		{"array", "application/json", "[]", "invalid_client_metadata"},
		{"duplicate key", "application/json", `{"redirect_uris":["https://a.example/cb"],"redirect_uris":["https://b.example/cb"]}`, "invalid_client_metadata"},
		{"no redirect_uris", "application/json", `{"client_name":"x"}`, "invalid_redirect_uri"},
		{"fragment", "application/json", `{"redirect_uris":["https://a.example/cb#x"]}`, "invalid_redirect_uri"},
		{"http non-loopback", "application/json", `{"redirect_uris":["http://a.example/cb"]}`, "invalid_redirect_uri"},
		{"javascript", "application/json", `{"redirect_uris":["javascript:alert(1)"]}`, "invalid_redirect_uri"},
		{"secret method", "application/json", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, "invalid_client_metadata"},
		{"client chooses its id", "application/json", `{"client_id":"admin","redirect_uris":["https://a.example/cb"]}`, "invalid_client_metadata"},
		{"client_credentials", "application/json", `{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, "invalid_client_metadata"},
		{"unknown scope", "application/json", `{"redirect_uris":["https://a.example/cb"],"scope":"admin"}`, "invalid_client_metadata"},
		{"redirect_uris wrong type", "application/json", `{"redirect_uris":"https://a.example/cb"}`, "invalid_client_metadata"},
		{"oversized", "application/json", `{"client_name":"` + strings.Repeat("a", 40<<10) + `"}`, "invalid_client_metadata"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(tc.ctype, tc.body)
			if status != 400 || out["error"] != tc.code {
				t.Fatalf("got %d %v, want 400 %s", status, out, tc.code)
			}
		})
	}
}
