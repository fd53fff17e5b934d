package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/runtime/host"
)

// writeClientKey writes a new P-256 key as a PKCS #8 PEM file at path and
// returns the JWK Set of its public key.
func writeClientKey(t *testing.T, path string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	kid, err := jose.Thumbprint(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: kid, Key: k.Public(), Alg: "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	return jwks
}

// TestToken: token gets a client_credentials token for the audience as
// the client whose key the host generated, authenticated by
// private_key_jwt; the server verifies it as that client's token for that
// audience. Bad input gets a message naming the problem.
func TestToken(t *testing.T) {
	const agentURL = "https://agents.example/a2a/research"
	var mu sync.Mutex
	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hh := h
		mu.Unlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL})
	jwks := writeClientKey(t, host.ClientKeyPath(dir, "a2a-caller"))
	as, err := authserver.New(t.Context(), authserver.Config{
		Issuer: srv.URL, Store: authserver.NewMemoryStore(nil),
		Clients: []authserver.StaticClient{{ID: "a2a-caller", AuthMethod: "private_key_jwt", JWKS: jwks,
			GrantTypes: []string{"client_credentials"}}},
		Resources: []authserver.Resource{{URI: agentURL, Scopes: []string{"agents:call"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	h = as.Handler()
	mu.Unlock()

	code, stdout, stderr := runCLI(t, nil, nil, "--data-dir", dir, "token", "--audience", agentURL, "--scope", "agents:call")
	if code != 0 {
		t.Fatalf("token: exit %d, %s", code, stderr)
	}
	tok := strings.TrimSpace(stdout)
	c, err := as.VerifyAccessToken(context.Background(), tok, agentURL)
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if c.ClientID != "a2a-caller" || c.Subject != "a2a-caller" || c.Scope != "agents:call" {
		t.Fatalf("token claims: %+v", c)
	}
	if !strings.Contains(stderr, "as client a2a-caller") || strings.Contains(stderr, tok) {
		t.Fatalf("stderr: %q", stderr)
	}

	code, stdout, _ = runCLI(t, nil, nil, "--data-dir", dir, "token", "--audience", agentURL, "--client", "a2a-caller", "--json")
	var out map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || out["token_type"] != "Bearer" || out["access_token"] == "" {
		t.Fatalf("token --json: exit %d, %s", code, stdout)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	writeClientKey(t, other)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no audience", nil, 2, "--audience is required"},
		{"unknown resource", []string{"--audience", "https://elsewhere.example/"}, 1, "invalid_target"},
		{"unknown scope", []string{"--audience", agentURL, "--scope", "admin"}, 1, "invalid_scope"},
		{"another key", []string{"--audience", agentURL, "--key", other}, 1, "invalid_client"},
		{"no such key", []string{"--audience", agentURL, "--client", "nobody"}, 1, "no key for client nobody"},
		{"not a key", []string{"--audience", agentURL, "--key", filepath.Join(dir, "host.json")}, 1, "not a PEM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, nil, append([]string{"--data-dir", dir, "token"}, tt.args...)...)
			if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
}
