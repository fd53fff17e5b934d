package host

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/config"
)

// TestHostAuthorizationServer: the running host serves its authorization
// server at the issuer it announces, and a workload of the trust domain
// gets a token with a JWT-SVID fetched by a stock go-spiffe client from
// its Workload API socket (audience = the issuer), through the AS state
// in the host's SQLite store.
func TestHostAuthorizationServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.Auth.Resources = []config.ResourceConfig{{URI: "https://tools.test/mcp", Scopes: []string{"tools:call"}}}
	dir := filepath.Join(t.TempDir(), "data")
	runCtx, stop := context.WithCancel(context.Background())
	h, err := New(runCtx, Options{Config: cfg, DataDir: dir, Stderr: io.Discard})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	issuer := h.Issuer()
	if strings.HasSuffix(issuer, ":0") {
		t.Fatalf("issuer %q names port 0", issuer)
	}
	status, body := get(t, issuer+"/.well-known/oauth-authorization-server")
	var md oauth.ServerMetadata
	if status != 200 || json.Unmarshal(body, &md) != nil || md.Issuer != issuer || md.TokenEndpoint != issuer+"/oauth2/token" {
		t.Fatalf("metadata %d %s", status, body)
	}

	// The host's own identity is not a registered agent: the JWT-SVID is
	// valid but names no client.
	client, err := spiffewl.New(ctx, spiffewl.WithAddr("unix://"+h.HostSocket()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: issuer})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {svid.Marshal()},
		"resource":              {"https://tools.test/mcp"},
	}
	resp, err := http.PostForm(md.TokenEndpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 401 || out["error"] != "invalid_client" {
		t.Fatalf("host identity as client: %d %v", resp.StatusCode, out)
	}
}
