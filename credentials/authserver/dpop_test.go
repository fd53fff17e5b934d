package authserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// TestDPoPBoundClientCredentials: a proof at the token endpoint binds the
// token to the key (cnf.jkt, token_type DPoP); with nonces required the
// first request gets use_dpop_nonce and a DPoP-Nonce to retry with; a
// replayed proof is refused.
func TestDPoPBoundClientCredentials(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RequireDPoPNonce = true })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	proof := func(nonce string) string {
		p, err := dpop.NewProof(e.ctx, key, dpop.ProofParams{Method: http.MethodPost, URL: e.issuer + PathToken, Nonce: nonce, Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	request := func(p string) (int, map[string]any, http.Header) {
		return e.post(PathToken, ccAgent(e, url.Values{"resource": {notesURI}}), http.Header{"DPoP": {p}})
	}
	status, body, hdr := request(proof(""))
	nonce := hdr.Get("DPoP-Nonce")
	if status != 400 || body["error"] != oauth.CodeUseDPoPNonce || nonce == "" {
		t.Fatalf("without nonce: %d %v nonce %q", status, body, nonce)
	}
	p := proof(nonce)
	status, body, _ = request(p)
	if status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("with nonce: %d %v", status, body)
	}
	claims := e.verify(body["access_token"].(string), notesURI)
	jkt, _ := dpop.Thumbprint(key.Public())
	if claims.Confirmation == nil || claims.Confirmation.JKT != jkt {
		t.Fatalf("cnf %+v, want jkt %s", claims.Confirmation, jkt)
	}
	if status, body, _ = request(p); status != 400 || body["error"] != oauth.CodeInvalidDPoPProof {
		t.Fatalf("replayed proof: %d %v", status, body)
	}
	// A proof for another endpoint is refused.
	other, _ := dpop.NewProof(e.ctx, key, dpop.ProofParams{Method: http.MethodPost, URL: e.issuer + PathRevoke, Nonce: nonce, Now: e.clock.Now()})
	if status, body, _ = request(other); status != 400 || body["error"] != oauth.CodeInvalidDPoPProof {
		t.Fatalf("proof for another URL: %d %v", status, body)
	}
	// A DPoP-bound token cannot be exchanged (the binding would be shed).
	status, body, _ = e.post(PathToken, exchange(e, url.Values{"subject_token": {claimsToken(t, e, key)}}), nil)
	if status != 400 || body["error"] != oauth.CodeInvalidRequest {
		t.Fatalf("exchange of a DPoP-bound token: %d %v", status, body)
	}
}

// claimsToken issues a DPoP-bound user token for research.
func claimsToken(t *testing.T, e *testEnv, key *ecdsa.PrivateKey) string {
	jkt, _ := dpop.Thumbprint(key.Public())
	it, err := e.srv.issueAccessToken(e.ctx, &tokenRequest{jkt: jkt, client: &authenticated{client: &client{}}},
		accessGrant{Subject: "alice", ClientID: "webapp", Scopes: []string{"notes:read"}, Audience: []string{researchID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	return it.Token
}

// TestJWTBearerGrant: an agent's JWT-SVID as an authorization grant gives
// a token whose sub is that agent, with at most its scopes.
func TestJWTBearerGrant(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.agentToken(researchID, url.Values{
		"grant_type": {oauth.GrantJWTBearer},
		"assertion":  {e.svid(researchID)},
		"resource":   {notesURI},
	})
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	c := e.verify(body["access_token"].(string), notesURI)
	if c.Subject != researchID.String() || c.Scope != "notes:read notes:write" || c.Actor != nil {
		t.Fatalf("claims %+v", c)
	}
	// payments asserting research's identity acts for it and cannot get
	// scopes research does not have.
	status, body = e.agentToken(paymentsID, url.Values{
		"grant_type": {oauth.GrantJWTBearer},
		"assertion":  {e.svid(researchID)},
		"resource":   {notesURI},
		"scope":      {"notes:read"},
	})
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	c = e.verify(body["access_token"].(string), notesURI)
	if c.Subject != researchID.String() || c.ClientID != paymentsID.String() || c.Actor == nil || c.Actor.Subject != paymentsID.String() {
		t.Fatalf("claims %+v", c)
	}
}

// TestExchangeIDTokenSubject: an ID token issued to the client is
// accepted as subject_token; one issued to another client is not.
func TestExchangeIDTokenSubject(t *testing.T) {
	e := newTestEnv(t)
	now := e.clock.Now()
	idToken := func(aud string) string {
		tok, err := e.srv.keys.sign(e.ctx, "JWT", map[string]any{"iss": e.issuer, "sub": "alice", "aud": aud,
			"iat": now.Unix(), "exp": now.Add(5 * 60e9).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	status, body, _ := e.post(PathToken, exchange(e, url.Values{
		"subject_token": {idToken(researchID.String())}, "subject_token_type": {oauth.TokenTypeIDToken}, "resource": {notesURI},
	}), nil)
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	c := e.verify(body["access_token"].(string), notesURI)
	if c.Subject != "alice" || c.Actor == nil || c.Actor.Subject != researchID.String() {
		t.Fatalf("claims %+v", c)
	}
	status, body, _ = e.post(PathToken, exchange(e, url.Values{
		"subject_token": {idToken("someone-else")}, "subject_token_type": {oauth.TokenTypeIDToken},
	}), nil)
	if status != 400 || body["error"] != oauth.CodeInvalidRequest {
		t.Fatalf("ID token of another client: %d %v", status, body)
	}
}
