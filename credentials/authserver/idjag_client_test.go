package authserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// chainClient is research's token client: its JWT-SVIDs (from home's CA)
// authenticate it at home and, as a federated client, at remote.
func (c *chain) chainClient(t *testing.T, dpopKey crypto.Signer) *oauth.Client {
	t.Helper()
	cl, err := oauth.NewClient(oauth.ClientConfig{
		ClientID: researchID.String(),
		Assertion: func(ctx context.Context, aud string) (string, error) {
			tok, _, err := c.home.ca.NewJWTSVID(ctx, researchID, []string{aud})
			return tok, err
		},
		DPoPKey: dpopKey,
		Now:     c.home.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestIDJAGClientChain runs both steps through oauth.Client: an ID-JAG
// from home for alice's token, then the jwt-bearer grant at remote; the
// token is cached by the subject key and renewed with a fresh ID-JAG.
func TestIDJAGClientChain(t *testing.T) {
	c := newChain(t)
	homeMD, remoteMD := c.home.srv.Metadata(), c.remote.srv.Metadata()
	u := c.agentToken(researchID)
	var sourced atomic.Int32
	cl := c.chainClient(t, nil)
	req := oauth.TokenRequest{
		Server:   &remoteMD,
		Resource: filesURI,
		Scopes:   []string{"files:read"},
		GrantAssertion: cl.IDJAGSource(oauth.IDJAGRequest{Server: &homeMD, Scopes: []string{"files:read"}, Resource: filesURI,
			SubjectTokenSource: func(context.Context) (string, error) { sourced.Add(1); return u, nil }}),
		SubjectKey: "alice's task",
		Subject:    "alice",
	}
	tok, err := cl.Token(c.home.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	at := c.remote.verify(tok.AccessToken, filesURI)
	if tok.TokenType != oauth.TokenTypeBearer || at.Subject != "alice" || at.ClientID != researchID.String() ||
		at.Actor == nil || at.Actor.Subject != researchID.String() || at.Scope != "files:read" {
		t.Fatalf("token %+v, claims %+v", tok, at)
	}
	again, err := cl.Token(c.home.ctx, req)
	if err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("the token was not cached: %v", err)
	}
	if n := len(c.homeIssued.ofType(oauth.TokenTypeIDJAG)); n != 1 || sourced.Load() != 1 {
		t.Fatalf("%d ID-JAGs, subject token read %d times, want 1 and 1", n, sourced.Load())
	}
	// Another subject key is another entry; a forgotten subject gets a
	// fresh ID-JAG (never a refresh token).
	other := req
	other.SubjectKey, other.Subject = "bob's task", "bob"
	if _, err := cl.Token(c.home.ctx, other); err != nil {
		t.Fatal(err)
	}
	if cl.ForgetSubject("alice") != 1 {
		t.Fatal("alice's token was not forgotten")
	}
	renewed, err := cl.Token(c.home.ctx, req)
	if err != nil || renewed.AccessToken == tok.AccessToken {
		t.Fatalf("renewal: %v", err)
	}
	if n := len(c.homeIssued.ofType(oauth.TokenTypeIDJAG)); n != 3 {
		t.Fatalf("%d ID-JAGs, want 3", n)
	}

	t.Run("refusals reach the caller", func(t *testing.T) {
		wider := req
		wider.SubjectKey = "wider"
		wider.GrantAssertion = cl.IDJAGSource(oauth.IDJAGRequest{Server: &homeMD, Scopes: []string{"files:delete"}, SubjectToken: u})
		_, err := cl.Token(c.home.ctx, wider)
		var oe *oauth.Error
		if !errors.As(err, &oe) || oe.Code != oauth.CodeInvalidScope {
			t.Fatalf("home's refusal: %v", err)
		}
		elsewhere := req
		elsewhere.SubjectKey = "elsewhere"
		elsewhere.GrantAssertion = cl.IDJAGSource(oauth.IDJAGRequest{Server: &homeMD, Audience: "https://other.example", SubjectToken: u})
		if _, err := cl.Token(c.home.ctx, elsewhere); err == nil || !strings.Contains(err.Error(), "the grant is for") {
			t.Fatalf("a grant for another server: %v", err)
		}
	})
	t.Run("request checks", func(t *testing.T) {
		noKey := req
		noKey.SubjectKey = ""
		if _, err := cl.Token(c.home.ctx, noKey); err == nil {
			t.Fatal("a grant assertion source without a SubjectKey was accepted")
		}
		both := req
		both.SubjectToken = u
		if _, err := cl.Token(c.home.ctx, both); err == nil {
			t.Fatal("a grant assertion source with a subject token was accepted")
		}
		if _, err := cl.IDJAG(c.home.ctx, oauth.IDJAGRequest{Server: &homeMD, Audience: homeMD.Issuer, SubjectToken: u}, nil); err == nil {
			t.Fatal("an ID-JAG for the IdP itself was asked for")
		}
	})
}

// TestIDJAGClientDPoP: with a DPoP key, the ID-JAG is bound to it at home
// and remote's token is DPoP-bound to the same key.
func TestIDJAGClientDPoP(t *testing.T) {
	c := newChain(t)
	homeMD, remoteMD := c.home.srv.Metadata(), c.remote.srv.Metadata()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := jose.Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	cl := c.chainClient(t, key)
	g, err := cl.IDJAG(c.home.ctx, oauth.IDJAGRequest{Server: &homeMD, Audience: remoteMD.Issuer, Scopes: []string{"files:read"},
		SubjectToken: c.agentToken(researchID)}, key)
	if err != nil {
		t.Fatal(err)
	}
	if g.JKT != jkt || len(g.Scopes) != 1 || !g.ExpiresAt.After(c.home.clock.Now()) || g.ExpiresAt.After(c.home.clock.Now().Add(IDJAGLifetime)) {
		t.Fatalf("grant %+v", g)
	}
	tok, err := cl.Token(c.home.ctx, oauth.TokenRequest{Server: &remoteMD, Resource: filesURI, Scopes: []string{"files:read"},
		GrantAssertion: cl.IDJAGSource(oauth.IDJAGRequest{Server: &homeMD, SubjectToken: c.agentToken(researchID)}), SubjectKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	at := c.remote.verify(tok.AccessToken, filesURI)
	if tok.TokenType != oauth.TokenTypeDPoP || tok.DPoPKey != key || at.Confirmation == nil || at.Confirmation.JKT != jkt {
		t.Fatalf("token %+v, cnf %+v", tok, at.Confirmation)
	}
	issued := c.homeIssued.ofType(oauth.TokenTypeIDJAG)
	if last := issued[len(issued)-1]; last.Claims.Confirmation == nil || last.Claims.Confirmation.JKT != jkt {
		t.Fatalf("home's ID-JAG was not bound: %+v", last.Claims.Confirmation)
	}
}

// TestIDJAGClientChecksResponse: the client refuses an IdP's answer that
// is not the ID-JAG it asked for.
func TestIDJAGClientChecksResponse(t *testing.T) {
	const remote = "https://as.b.test"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var answer func(issuer string) map[string]any
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer("http://" + r.Host))
	}))
	t.Cleanup(idp.Close)
	md := &oauth.ServerMetadata{Issuer: idp.URL, TokenEndpoint: idp.URL + "/token", DPoPSigningAlgValuesSupported: []string{"ES256"}}
	unsigned := func(typ string, claims map[string]any) string {
		enc := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		return enc(map[string]any{"alg": "ES256", "typ": typ}) + "." + enc(claims) + ".c2ln"
	}
	claims := func(iss string) map[string]any {
		return map[string]any{"iss": iss, "sub": "alice", "aud": remote, "client_id": "c", "jti": "j",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
	}
	cl, err := oauth.NewClient(oauth.ClientConfig{ClientID: "c", Assertion: func(context.Context, string) (string, error) { return "a.b.c", nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		answer func(issuer string) map[string]any
		key    crypto.Signer
		want   string
	}{
		{"unbound despite the proof", func(iss string) map[string]any {
			return map[string]any{"access_token": unsigned("oauth-id-jag+jwt", claims(iss)), "issued_token_type": oauth.TokenTypeIDJAG, "token_type": "N_A"}
		}, key, "did not bind"},
		{"bound without a proof", func(iss string) map[string]any {
			c := claims(iss)
			c["cnf"] = map[string]any{"jkt": "x"}
			return map[string]any{"access_token": unsigned("oauth-id-jag+jwt", c), "issued_token_type": oauth.TokenTypeIDJAG, "token_type": "N_A"}
		}, nil, "did not prove"},
		{"an access token", func(iss string) map[string]any {
			return map[string]any{"access_token": unsigned("at+jwt", claims(iss)), "issued_token_type": oauth.TokenTypeAccessToken, "token_type": "Bearer"}
		}, nil, "not an ID-JAG"},
		{"typ of an access token", func(iss string) map[string]any {
			return map[string]any{"access_token": unsigned("at+jwt", claims(iss)), "issued_token_type": oauth.TokenTypeIDJAG, "token_type": "N_A"}
		}, nil, "typ"},
		{"for another server", func(iss string) map[string]any {
			c := claims(iss)
			c["aud"] = []string{remote, "https://other.example"}
			return map[string]any{"access_token": unsigned("oauth-id-jag+jwt", c), "issued_token_type": oauth.TokenTypeIDJAG, "token_type": "N_A"}
		}, nil, "addressed to"},
		{"by another issuer", func(string) map[string]any {
			return map[string]any{"access_token": unsigned("oauth-id-jag+jwt", claims("https://idp.example")), "issued_token_type": oauth.TokenTypeIDJAG, "token_type": "N_A"}
		}, nil, "issued by"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer = tt.answer
			_, err := cl.IDJAG(context.Background(), oauth.IDJAGRequest{Server: md, Audience: remote, SubjectToken: "u"}, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
