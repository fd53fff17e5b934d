package authserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

func TestMetadataAdvertisesWhatIsImplemented(t *testing.T) {
	e := newTestEnv(t)
	for _, path := range []string{PathOAuthMetadata, PathOIDCMetadata} {
		resp, err := http.Get(e.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		var md oauth.ServerMetadata
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if md.Issuer != e.issuer || md.TokenEndpoint != e.issuer+PathToken || md.JWKSURI != e.issuer+PathJWKS {
			t.Errorf("%s: %+v", path, md)
		}
		for _, g := range []string{oauth.GrantClientCredentials, oauth.GrantTokenExchange, oauth.GrantJWTBearer, oauth.GrantRefreshToken} {
			if !slices.Contains(md.GrantTypesSupported, g) {
				t.Errorf("%s: grant %s not advertised", path, g)
			}
		}
		// No users configured: no authorization endpoint, no code grant,
		// no registration.
		if md.AuthorizationEndpoint != "" || slices.Contains(md.GrantTypesSupported, oauth.GrantAuthorizationCode) || md.RegistrationEndpoint != "" {
			t.Errorf("%s advertises flows that are off: %+v", path, md)
		}
	}
	resp, err := http.Get(e.issuer + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want current and next", len(set.Keys))
	}
	for _, k := range set.Keys {
		if k["alg"] != "ES256" || k["use"] != "sig" || k["d"] != nil {
			t.Errorf("bad JWK %v", k)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.KeyPeriod = time.Hour })
	tok := e.userToken(notesURI, "notes:read")
	first := e.srv.keys.ring.Load().current.KID
	e.clock.Advance(61 * time.Minute)
	if err := e.srv.keys.refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	ring := e.srv.keys.ring.Load()
	if ring.current.KID == first {
		t.Fatal("the next key did not take over")
	}
	if len(ring.keys) != 3 {
		t.Fatalf("ring has %d keys, want retired, current and next", len(ring.keys))
	}
	// The retired key still verifies what it signed (within its grace).
	e.clock.Advance(-61 * time.Minute)
	e.verify(tok, notesURI)
	// A second server on the same store sees the same keys.
	other, err := New(e.ctx, Config{Issuer: e.issuer, Store: e.store, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if other.keys.ring.Load().version != e.srv.keys.ring.Load().version {
		t.Fatal("servers sharing a store disagree on keys")
	}
}

func TestClientCredentialsWithJWTSVID(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.agentToken(researchID, url.Values{"resource": {notesURI}, "scope": {"notes:read"}})
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	if body["token_type"] != "Bearer" || body["scope"] != "notes:read" || body["expires_in"].(float64) != 300 {
		t.Fatalf("response %v", body)
	}
	c := e.verify(body["access_token"].(string), notesURI)
	if c.Subject != researchID.String() || c.ClientID != researchID.String() || c.Scope != "notes:read" || c.Actor != nil {
		t.Fatalf("claims %+v", c)
	}
	// Default scope: the agent's scopes cut to the resource's.
	_, body = e.agentToken(paymentsID, url.Values{"resource": {paymentsURI}})
	if body["scope"] != "payments:transfer" {
		t.Fatalf("default scope %v", body["scope"])
	}
}

func TestClientCredentialsWithPrivateKeyJWT(t *testing.T) {
	e := newTestEnv(t)
	// A static client with its own key.
	status, body, _ := e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTBearer},
		"client_assertion":      {e.clientAssertion(nil)},
		"resource":              {notesURI},
	}, nil)
	if status != 200 {
		t.Fatalf("status %d: %v", status, body)
	}
	c := e.verify(body["access_token"].(string), notesURI)
	if c.Subject != batchClientID || c.Scope != "notes:read" {
		t.Fatalf("claims %+v", c)
	}
	// An agent's private_key_jwt is a JWT-SVID checked against the bundle.
	status, body, _ = e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTBearer},
		"client_assertion":      {e.svid(researchID)},
		"client_id":             {researchID.String()},
	}, nil)
	if status != 200 {
		t.Fatalf("agent private_key_jwt: status %d: %v", status, body)
	}
}

func TestTokenExchangeNestsAct(t *testing.T) {
	e := newTestEnv(t)
	user := e.userToken(researchID.String(), "notes:read", "payments:transfer")

	// research acts for alice towards payments.
	status, body, _ := e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(researchID)},
		"subject_token":         {user},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"actor_token":           {e.svid(researchID)},
		"actor_token_type":      {oauth.TokenTypeJWT},
		"resource":              {paymentsID.String()},
	}, nil)
	if status != 200 {
		t.Fatalf("first exchange: %d %v", status, body)
	}
	if body["issued_token_type"] != oauth.TokenTypeAccessToken {
		t.Fatalf("issued_token_type %v", body["issued_token_type"])
	}
	first := e.verify(body["access_token"].(string), paymentsID.String())
	if first.Subject != "alice" || first.ClientID != researchID.String() || first.Actor == nil ||
		first.Actor.Subject != researchID.String() || first.Actor.Actor != nil {
		t.Fatalf("first exchange claims %+v act %+v", first, first.Actor)
	}
	// research's own scopes exclude payments:transfer, so it cannot pass it on.
	if first.Scope != "notes:read" {
		t.Fatalf("scope widened or lost: %q", first.Scope)
	}

	// payments acts for alice (through research) towards notes.
	status, body, _ = e.post(PathToken, url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(paymentsID)},
		"subject_token":         {body["access_token"].(string)},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
		"actor_token":           {e.svid(paymentsID)},
		"actor_token_type":      {oauth.TokenTypeJWT},
		"resource":              {notesURI},
	}, nil)
	if status != 200 {
		t.Fatalf("second exchange: %d %v", status, body)
	}
	second := e.verify(body["access_token"].(string), notesURI)
	if second.Subject != "alice" || second.ClientID != paymentsID.String() || second.Actor.Subject != paymentsID.String() ||
		second.Actor.Actor == nil || second.Actor.Actor.Subject != researchID.String() || second.Actor.Depth() != 2 {
		t.Fatalf("second exchange claims %+v", second)
	}
	if second.Scope != "notes:read" {
		t.Fatalf("second scope %q", second.Scope)
	}
}

func TestRevocationAndIntrospection(t *testing.T) {
	e := newTestEnv(t)
	_, body := e.agentToken(researchID, url.Values{"resource": {notesURI}})
	at := body["access_token"].(string)
	auth := func() url.Values {
		return url.Values{"client_assertion_type": {oauth.AssertionJWTSPIFFE}, "client_assertion": {e.svid(researchID)}}
	}
	form := auth()
	form.Set("token", at)
	status, out, _ := e.post(PathIntrospect, form, nil)
	if status != 200 || out["active"] != true || out["sub"] != researchID.String() || out["aud"] != notesURI {
		t.Fatalf("introspect: %d %v", status, out)
	}
	form = auth()
	form.Set("token", at)
	if status, out, _ = e.post(PathRevoke, form, nil); status != 200 {
		t.Fatalf("revoke: %d %v", status, out)
	}
	form = auth()
	form.Set("token", at)
	status, out, _ = e.post(PathIntrospect, form, nil)
	if status != 200 || out["active"] != false || len(out) != 1 {
		t.Fatalf("introspect after revoke: %d %v", status, out)
	}
	if _, err := e.srv.VerifyAccessToken(e.ctx, at, notesURI); err == nil {
		t.Fatal("revoked token still verifies")
	}
	// Unknown token: inactive, not an error.
	form = auth()
	form.Set("token", "garbage")
	if status, out, _ = e.post(PathIntrospect, form, nil); status != 200 || out["active"] != false {
		t.Fatalf("introspect garbage: %d %v", status, out)
	}
	// Without client authentication: 401.
	if status, out, _ = e.post(PathIntrospect, url.Values{"token": {at}}, nil); status != 401 || out["error"] != "invalid_client" {
		t.Fatalf("unauthenticated introspect: %d %v", status, out)
	}
}

func TestAccessTokenTypeIsEnforced(t *testing.T) {
	e := newTestEnv(t)
	// A JWT-SVID signed by the CA is not an access token.
	if _, err := e.srv.VerifyAccessToken(e.ctx, e.svid(researchID), e.issuer); err == nil {
		t.Fatal("JWT-SVID accepted as an access token")
	}
	// A token signed with the server key but typ JWT (an ID token) is not
	// an access token either.
	tok, err := e.srv.keys.sign(e.ctx, jose.TypJWT, oauth.AccessTokenClaims{Issuer: e.issuer, Subject: "alice",
		Audience: oauth.Audience{notesURI}, ClientID: "x", ID: "j", IssuedAt: e.clock.Now().Unix(), ExpiresAt: e.clock.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.VerifyAccessToken(e.ctx, tok, notesURI); err == nil || !strings.Contains(err.Error(), "typ") {
		t.Fatalf("typ JWT accepted as at+jwt: %v", err)
	}
}

// TestBasicWithEmptySecretNamesPublicClient: Basic with an empty password
// identifies a public client (what x/oauth2's auto-detection sends first);
// with a password, or for a confidential client, it fails.
func TestBasicWithEmptySecretNamesPublicClient(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.Clients = append(c.Clients, StaticClient{ID: "pub:cli", AuthMethod: oauth.AuthNone, RedirectURIs: []string{"http://127.0.0.1/cb"}})
	})
	basic := func(id, secret string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, e.issuer+PathToken, nil)
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		return r
	}
	c, err := e.srv.authenticateClient(e.ctx, basic("pub:cli", ""), oauth.NewForm(url.Values{}))
	if err != nil || c.ID != "pub:cli" || c.Method != oauth.AuthNone {
		t.Fatalf("public client by Basic: %+v %v", c, err)
	}
	if _, err := e.srv.authenticateClient(e.ctx, basic("pub:cli", "x"), oauth.NewForm(url.Values{})); err == nil {
		t.Fatal("public client with a secret accepted")
	}
	if _, err := e.srv.authenticateClient(e.ctx, basic(batchClientID, ""), oauth.NewForm(url.Values{})); err == nil {
		t.Fatal("confidential client without a secret accepted")
	}
}
