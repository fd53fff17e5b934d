package host

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
	"github.com/agenthost/agenthost/credentials/oauth/clientid/clientidtest"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store/memstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

func TestAgentClientKeyStore(t *testing.T) {
	clientidtest.KeyStore(t, func(t *testing.T) clientid.KeyStore {
		return &fileKeyStore{dir: filepath.Join(t.TempDir(), "data", clientKeysDirName, agentKeysDirName)}
	})
}

// TestAgentClientKeyFiles: keys are owner-only files in owner-only
// directories, PEM PKCS #8; a key readable by others is refused, as is a
// name that is not a plain file name.
func TestAgentClientKeyFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", clientKeysDirName, agentKeysDirName)
	s := &fileKeyStore{dir: dir}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := s.Save(ctx, "research", der); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v, want mode 0700", d, fi.Mode(), err)
		}
	}
	path := filepath.Join(dir, "research.key")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not PEM PKCS #8: %q", data)
	}
	if _, _, err := ReadClientKey(path); err != nil {
		t.Fatalf("the key file is not a client key file: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the directory holds %d entries, want the key alone", len(entries))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "research"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a key readable by others: %v, want refused", err)
	}
	for _, name := range []string{"../research", "a/b", "", ".hidden"} {
		if err := s.Save(ctx, name, der); err == nil {
			t.Fatalf("Save(%q) was accepted", name)
		}
	}
}

func TestCIMDRegistrationStore(t *testing.T) {
	t.Run("memstore", func(t *testing.T) {
		clientidtest.RegistrationStore(t, func(*testing.T) clientid.RegistrationStore {
			return &storeRegistrations{kv: memstore.New(nil)}
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		clientidtest.RegistrationStore(t, func(t *testing.T) clientid.RegistrationStore {
			st, err := sqlitestore.Open(context.Background(), sqlitestore.Config{Path: filepath.Join(t.TempDir(), "db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return &storeRegistrations{kv: st}
		})
	})
}

// TestCIMDNotPublishedWithHTTPIssuer: with an http issuer the documents
// are not served, and a remote forced to cimd fails the start with an
// error that says why.
func TestCIMDNotPublishedWithHTTPIssuer(t *testing.T) {
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: "/bin/true"}}
	h, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	for _, p := range []string{"research", "research/jwks.json"} {
		rec := httptest.NewRecorder()
		h.http.srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, h.Issuer()+PathOAuthClient+p, nil))
		if rec.Code != http.StatusNotFound {
			t.Fatalf("%s with an http issuer: %d, want 404", p, rec.Code)
		}
	}
	if w := h.agentClients.workloads; len(w) != 1 || w[0].MetadataURL != "" || w[0].JWKSURI != "" || h.agentClients.docs != nil {
		t.Fatalf("an http issuer published %+v", h.agentClients.workloads)
	}

	cfg = testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: "/bin/true"}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: "http://127.0.0.1:1/mcp", Tools: []string{"now"},
		Client: &config.RemoteClientConfig{Method: config.ClientMethodCIMD}}}
	_, err = New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "cimd") || !strings.Contains(err.Error(), "not https") {
		t.Fatalf("New with method cimd and an http issuer: %v", err)
	}
}

// TestCIMDStaticKeyFile: a static client's key_file must be owner-only
// PEM PKCS #8.
func TestCIMDStaticKeyFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(t.TempDir(), "client.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: "/bin/true"}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: "http://127.0.0.1:1/mcp", Tools: []string{"now"},
		Client: &config.RemoteClientConfig{Method: config.ClientMethodStatic, ID: "0oa-research", KeyFile: path}}}
	_, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "owner only") {
		t.Fatalf("New with a key file readable by others: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	h.close()
}

// TestCIMDStaticClientActorToken: an agent known at a remote's server as
// a static client authenticates with private_key_jwt as that client_id
// and the configured key, and in a token exchange still presents its
// JWT-SVID as actor_token. The host itself (a gateway) keeps its
// JWT-SVID.
func TestCIMDStaticClientActorToken(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "client.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var forms []url.Values
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		forms = append(forms, r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":600}`))
	}))
	defer as.Close()
	md := &oauth.ServerMetadata{Issuer: as.URL, TokenEndpoint: as.URL + "/token",
		TokenEndpointAuthMethodsSupported: []string{oauth.AuthPrivateKeyJWT}}

	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "research", Path: "/bin/true"}}
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "docs", URL: as.URL + "/mcp", Tools: []string{"now"},
		Client: &config.RemoteClientConfig{Method: config.ClientMethodStatic, ID: "0oa-research", KeyFile: keyFile}}}
	h, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	agent := h.agentIDs["research"]
	tokens, err := h.remotes.Server("docs").TokenClient(agent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Token(ctx, oauth.TokenRequest{Server: md, Resource: as.URL + "/mcp", SubjectToken: "user-token"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Token(ctx, oauth.TokenRequest{Server: md, Resource: as.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	if len(forms) != 2 {
		t.Fatalf("%d token requests, want 2", len(forms))
	}
	for i, f := range forms {
		if f.Get("client_id") != "0oa-research" || f.Get("client_assertion_type") != oauth.AssertionJWTBearer {
			t.Fatalf("request %d: client_id %q, type %q", i, f.Get("client_id"), f.Get("client_assertion_type"))
		}
		tok, err := jose.Verify(ctx, f.Get("client_assertion"), jose.VerifyOptions{Types: []jose.Typ{jose.TypJWT},
			Keys:   func(context.Context, string) (crypto.PublicKey, error) { return key.Public(), nil },
			Issuer: "0oa-research", Audience: as.URL, RequireSubject: true})
		if err != nil || tok.Subject != "0oa-research" || len(tok.Audience) != 1 {
			t.Fatalf("request %d: client assertion: %v, want signed by the key_file's key for 0oa-research", i, err)
		}
	}
	id, _, err := h.CA().ValidateJWTSVID(ctx, forms[0].Get("actor_token"), as.URL)
	if err != nil || id.String() != agent.String() || forms[0].Get("actor_token_type") != oauth.TokenTypeJWT {
		t.Fatalf("actor_token: %v %v, want the agent's JWT-SVID", id, err)
	}
	if forms[1].Has("actor_token") {
		t.Fatal("client_credentials carried an actor_token")
	}

	hostTokens, err := h.remotes.Server("docs").TokenClient(h.hostID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hostTokens.Token(ctx, oauth.TokenRequest{Server: md, Resource: as.URL + "/mcp"}); err != nil {
		t.Fatal(err)
	}
	last := forms[len(forms)-1]
	if id, _, err := h.CA().ValidateJWTSVID(ctx, last.Get("client_assertion"), as.URL); err != nil || id.String() != h.hostID.String() ||
		last.Get("client_id") != h.hostID.String() {
		t.Fatalf("the host's own client: %q %v %v, want its JWT-SVID", last.Get("client_id"), id, err)
	}
}
