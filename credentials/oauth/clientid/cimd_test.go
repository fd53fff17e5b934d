package clientid_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

// policy accepts what a workload's document and registration ask for.
var policy = clientmeta.Policy{AllowedGrantTypes: clientid.GrantTypes}

func documentMetadata(t *testing.T, m *clientid.Manager, name string) *clientmeta.Metadata {
	t.Helper()
	d, err := m.Document(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > clientmeta.MaxDocumentSize {
		t.Fatalf("the document has %d bytes, more than the %d an authorization server fetches", len(body), clientmeta.MaxDocumentSize)
	}
	md, err := clientmeta.Parse(body, clientmeta.MaxDocumentSize)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestDocumentValidates(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(w *clientid.Workload)
	}{
		{"jwks_uri", func(*clientid.Workload) {}},
		{"inline jwks", func(w *clientid.Workload) { w.JWKSURI = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, clientid.Config{})
			w := h.workload("research")
			tt.adjust(&w)
			w.RedirectURIs = []string{h.srv.URL + "/never-used"}
			if err := h.m.Put(w); err != nil {
				t.Fatal(err)
			}
			md := documentMetadata(t, h.m, "research")
			if err := policy.ValidateDocument(w.MetadataURL, md); err != nil {
				t.Fatalf("ValidateDocument: %v", err)
			}
			if md.ClientID != w.MetadataURL || md.ClientName != "Agent research" ||
				md.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT || md.ClientSecret != "" {
				t.Fatalf("document %+v", md)
			}
			if (md.JWKSURI == "") == (len(md.JWKS) == 0) {
				t.Fatalf("want exactly one of jwks_uri and jwks: %q, %s", md.JWKSURI, md.JWKS)
			}
			if md.JWKSURI != w.JWKSURI {
				t.Fatalf("jwks_uri %q, want %q", md.JWKSURI, w.JWKSURI)
			}
			if strings.Join(md.GrantTypes, " ") != strings.Join(clientid.GrantTypes, " ") {
				t.Fatalf("grant_types %v", md.GrantTypes)
			}
			// The same document for another URL (an attacker's copy) is
			// not valid there.
			if err := policy.ValidateDocument(w.MetadataURL+"x", md); err == nil {
				t.Fatal("the document validated for another URL")
			}
		})
	}
}

// Without redirect URIs the document is what a non-interactive client
// publishes; the one rule it leaves unmet is MCP's redirect_uris
// requirement.
func TestDocumentWithoutRedirectURIs(t *testing.T) {
	h := newHost(t, clientid.Config{})
	md := documentMetadata(t, h.m, "research")
	if len(md.RedirectURIs) != 0 {
		t.Fatalf("redirect_uris %v", md.RedirectURIs)
	}
	err := policy.ValidateDocument(h.docURL("research"), md.Clone())
	if err != nil && !errors.Is(err, clientmeta.ErrInvalidRedirectURI) {
		t.Fatalf("ValidateDocument: %v, want nothing but the redirect_uris rule", err)
	}
	md.RedirectURIs = []string{"https://host.example/unused"}
	if err := policy.ValidateDocument(h.docURL("research"), md); err != nil {
		t.Fatalf("ValidateDocument with a redirect URI: %v", err)
	}
}

func TestDocumentSPIFFEID(t *testing.T) {
	h := newHost(t, clientid.Config{})
	resp, err := h.srv.Client().Get(h.docURL("research"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["spiffe_id"] != "spiffe://host.example/agent/research" {
		t.Fatalf("spiffe_id = %v", doc["spiffe_id"])
	}
	for _, member := range []string{"client_secret", "client_secret_expires_at", "redirect_uris", "jwks", "response_types"} {
		if _, ok := doc[member]; ok {
			t.Errorf("the document has %s", member)
		}
	}
}

func TestHandler(t *testing.T) {
	h := newHost(t, clientid.Config{})
	c := h.srv.Client()
	tests := []struct {
		name, method, url string
		status            int
		check             func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"document", http.MethodGet, h.docURL("research"), http.StatusOK, func(t *testing.T, resp *http.Response, body []byte) {
			var d clientid.Document
			if err := json.Unmarshal(body, &d); err != nil || d.ClientID != h.docURL("research") {
				t.Fatalf("document %s: %v", body, err)
			}
		}},
		{"jwks", http.MethodGet, h.jwksURL("research"), http.StatusOK, func(t *testing.T, resp *http.Response, body []byte) {
			keys, err := jose.ParseKeySet(body, 0)
			if err != nil || len(keys) != 1 {
				t.Fatalf("JWK Set %s: %v", body, err)
			}
			for kid, pub := range keys {
				if tp, _ := jose.Thumbprint(pub); tp != kid {
					t.Fatalf("kid %q is not the key's thumbprint %q", kid, tp)
				}
			}
			// Public members only.
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := set.Keys[0][private]; ok {
					t.Fatalf("the JWK Set holds private member %q", private)
				}
			}
			if set.Keys[0]["alg"] != "ES256" || set.Keys[0]["use"] != "sig" || set.Keys[0]["crv"] != "P-256" {
				t.Fatalf("key %v", set.Keys[0])
			}
		}},
		{"head", http.MethodHead, h.docURL("research"), http.StatusOK, func(t *testing.T, resp *http.Response, body []byte) {
			if len(body) != 0 {
				t.Fatalf("HEAD body %q", body)
			}
		}},
		{"unknown workload", http.MethodGet, h.docURL("other"), http.StatusNotFound, nil},
		{"unknown path", http.MethodGet, h.srv.URL + "/clients/", http.StatusNotFound, nil},
		{"dot segments", http.MethodGet, h.srv.URL + "/clients/x/%2e%2e/research.json", http.StatusNotFound, nil},
		{"trailing slash", http.MethodGet, h.docURL("research") + "/", http.StatusNotFound, nil},
		{"post", http.MethodPost, h.docURL("research"), http.StatusMethodNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status != http.StatusOK {
				if strings.Contains(string(body), "research") {
					t.Fatalf("a refusal shows workload data: %s", body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
				t.Fatalf("Cache-Control %q", cc)
			}
			tt.check(t, resp, body)
		})
	}
}

func TestJWKSHandler(t *testing.T) {
	h := newHost(t, clientid.Config{})
	want, err := h.m.JWKS(context.Background(), "research")
	if err != nil {
		t.Fatal(err)
	}
	for name, status := range map[string]int{"research": http.StatusOK, "other": http.StatusNotFound} {
		rec := newRecorder()
		h.m.JWKSHandler(name).ServeHTTP(rec, mustRequest(t, http.MethodGet, "https://host.example/anywhere"))
		if rec.Code != status {
			t.Fatalf("%s: status %d, want %d", name, rec.Code, status)
		}
		if status == http.StatusOK && rec.Body.String() != string(want) {
			t.Fatalf("%s: %s, want %s", name, rec.Body, want)
		}
	}
	h.m.Remove("research")
	rec := newRecorder()
	h.m.JWKSHandler("research").ServeHTTP(rec, mustRequest(t, http.MethodGet, "https://host.example/anywhere"))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("after Remove: status %d", rec.Code)
	}
}

// An authorization server that takes CIMD clients fetches the document
// at client_id, then the key at its jwks_uri, and verifies the
// private_key_jwt assertion with it.
func TestCIMDClientAuthentication(t *testing.T) {
	h := newHost(t, clientid.Config{})
	as := newAS(t, h.srv.Client())
	md := as.metadata(true, true, oauth.AuthPrivateKeyJWT)
	id, err := h.m.Resolve(context.Background(), md, "research")
	if err != nil {
		t.Fatal(err)
	}
	if id.Mode != clientid.ModeCIMD || id.ClientID != h.docURL("research") || id.AssertionType != oauth.AssertionJWTBearer || id.UsesSVID() {
		t.Fatalf("identity %+v", id)
	}
	tok, err := tokenWith(t, as, md, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "at-") {
		t.Fatalf("token %+v", tok)
	}
	as.mu.Lock()
	v := as.verified[0]
	as.mu.Unlock()
	if v.Issuer != id.ClientID || v.Subject != id.ClientID || v.Alg != jose.ES256 || v.KID == "" {
		t.Fatalf("assertion %+v", v)
	}
	if !v.IssuedAt.Equal(t0) || v.ExpiresAt.Sub(v.IssuedAt) > 60e9 {
		t.Fatalf("iat %v, exp %v", v.IssuedAt, v.ExpiresAt)
	}
	if as.registrations.Load() != 0 {
		t.Fatal("a CIMD client was registered")
	}
}

// Another party that names the workload's document as its client_id
// cannot authenticate: it does not hold the key the document points at.
func TestCIMDImpostor(t *testing.T) {
	h := newHost(t, clientid.Config{})
	as := newAS(t, h.srv.Client())
	md := as.metadata(true, false, oauth.AuthPrivateKeyJWT)

	// The impostor's own host and manager, claiming the same client_id.
	other := newHost(t, clientid.Config{})
	w := other.workload("research")
	w.MetadataURL = h.docURL("research")
	if err := other.m.Put(w); err != nil {
		t.Fatal(err)
	}
	id, err := other.m.Resolve(context.Background(), md, "research")
	if err != nil {
		t.Fatal(err)
	}
	if id.ClientID != h.docURL("research") {
		t.Fatalf("client_id %q", id.ClientID)
	}
	_, err = tokenWith(t, as, md, id)
	if !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClient}) {
		t.Fatalf("impostor: %v, want invalid_client", err)
	}
}
