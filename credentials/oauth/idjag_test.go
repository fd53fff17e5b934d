package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestClientGrantAssertion: a request with a GrantAssertion is the JWT
// bearer grant with the client's own authentication; the grant is minted
// once per acquisition (a use_dpop_nonce retry presents it again, with a
// fresh client assertion), for the server's issuer and the request's DPoP
// key, and the token is cached by the subject key.
func TestClientGrantAssertion(t *testing.T) {
	var (
		mu    sync.Mutex
		forms []url.Values
	)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		forms = append(forms, r.PostForm)
		first := len(forms) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if first {
			w.Header().Set("DPoP-Nonce", "n1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"use_dpop_nonce"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 300,
			"refresh_token": "never used"})
	}))
	t.Cleanup(as.Close)
	md := &oauth.ServerMetadata{Issuer: "https://as.b.test", TokenEndpoint: as.URL + "/token", DPoPSigningAlgValuesSupported: []string{"ES256"},
		TokenEndpointAuthMethodsSupported: []string{oauth.AuthSPIFFEJWT}}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	c, err := oauth.NewClient(oauth.ClientConfig{ClientID: "spiffe://a.test/agent/x", DPoPKey: key,
		Assertion: func(_ context.Context, aud string) (string, error) {
			n++
			return "svid-" + aud + "-" + string(rune('0'+n)), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	var grants []string
	req := oauth.TokenRequest{Server: md, Resource: "https://files.b.test/api", Scopes: []string{"files:read"}, SubjectKey: "s",
		GrantAssertion: func(_ context.Context, aud string, k crypto.Signer) (string, error) {
			if k != key {
				t.Errorf("the source was given key %v, not the request's", k)
			}
			grants = append(grants, aud)
			return "grant", nil
		}}
	tok, err := c.Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != oauth.TokenTypeDPoP || tok.DPoPKey != key {
		t.Fatalf("token %+v", tok)
	}
	if _, err := c.Token(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 || grants[0] != md.Issuer || len(forms) != 2 {
		t.Fatalf("grants minted for %v, %d requests; want one for %s, two requests", grants, len(forms), md.Issuer)
	}
	for i, f := range forms {
		if f.Get("grant_type") != oauth.GrantJWTBearer || f.Get("assertion") != "grant" || f.Get("client_assertion_type") != oauth.AssertionJWTSPIFFE ||
			f.Has("subject_token") || f.Has("actor_token") || f.Has("refresh_token") || f.Get("scope") != "files:read" {
			t.Fatalf("request %d: %v", i, f)
		}
	}
	if forms[0].Get("client_assertion") == forms[1].Get("client_assertion") {
		t.Fatal("the retry reused a client assertion")
	}
}

// TestIDJAGClaimsJSON: the wire names of the ID-JAG claims, and a single
// aud or resource written as a string.
func TestIDJAGClaimsJSON(t *testing.T) {
	b, err := json.Marshal(oauth.IDJAGClaims{Issuer: "https://idp", Subject: "alice", Audience: oauth.Audience{"https://as"},
		ClientID: "c", ID: "j", IssuedAt: 1, ExpiresAt: 2, Resource: oauth.Audience{"https://rs"}, Scope: "a",
		Actor: &oauth.Actor{Subject: "agent"}, Email: "a@x", AuthTime: 1, Confirmation: &oauth.Confirmation{JKT: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"https://idp","sub":"alice","aud":"https://as","client_id":"c","jti":"j","iat":1,"exp":2,"resource":"https://rs",` +
		`"scope":"a","act":{"sub":"agent"},"email":"a@x","auth_time":1,"cnf":{"jkt":"k"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if jose.TypIDJAG != "oauth-id-jag+jwt" || oauth.TokenTypeIDJAG != "urn:ietf:params:oauth:token-type:id-jag" ||
		oauth.GrantProfileIDJAG != "urn:ietf:params:oauth:grant-profile:id-jag" {
		t.Fatal("an ID-JAG identifier changed")
	}
}
