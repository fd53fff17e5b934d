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

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store"
)

// TestHostAuthorizationServer: the running host serves its authorization
// server at the issuer it announces, and its token endpoint judges a
// JWT-SVID client assertion of the trust domain (audience = the issuer)
// against the clients in the host's SQLite store.
func TestHostAuthorizationServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.Auth.Resources = []config.ResourceConfig{{URI: "https://tools.test/mcp", Scopes: []string{"tools:call"}}}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	issuer := h.Issuer()
	if strings.HasSuffix(issuer, ":0") {
		t.Fatalf("issuer %q names port 0", issuer)
	}
	status, body := get(t, issuer+"/.well-known/oauth-authorization-server")
	var md oauth.ServerMetadata
	if status != 200 || json.Unmarshal(body, &md) != nil || md.Issuer != issuer || md.TokenEndpoint != issuer+"/oauth2/token" {
		t.Fatalf("metadata %d %s", status, body)
	}

	// The host's own identity is not a registered agent: its JWT-SVID
	// (minted in process; the host serves its identity on no socket) is
	// valid but names no client.
	hostID, err := workloadapi.IDFromIdentity(h.hostID)
	if err != nil {
		t.Fatal(err)
	}
	assertion, _, err := h.CA().NewJWTSVID(ctx, hostID, []string{issuer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(assertion, h.CA().Bundle(), []string{issuer}); err != nil {
		t.Fatalf("the host's JWT-SVID does not validate: %v", err)
	}
	form := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {assertion},
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

// TestPurgeReclaimsExpiredRecords: the host's purge removes records whose
// TTL has passed (the replay cache would otherwise grow with every token
// request).
func TestPurgeReclaimsExpiredRecords(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	h, err := New(context.Background(), Options{Config: testConfig(t), DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	ctx := context.Background()
	if _, err := h.store.Put(ctx, "as.jti", "k", []byte{1}, store.PutOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	// Baseline: an expired record is there to reclaim.
	if n, _ := h.store.Purge(ctx); n != 1 {
		t.Fatalf("purged %d records, want 1", n)
	}
	if _, err := h.store.Put(ctx, "as.jti", "k2", []byte{1}, store.PutOptions{TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	h.purgeOnce(ctx)
	if n, _ := h.store.Purge(ctx); n != 0 {
		t.Fatalf("purgeOnce left %d expired records", n)
	}
}
