package authserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// negCase is one bad request and the error it must get.
type negCase struct {
	name   string
	build  func(e *testEnv) (path string, form url.Values, header http.Header)
	status int
	code   string
}

func ccAgent(e *testEnv, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(researchID)},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func ccStatic(e *testEnv, assertion string, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTBearer},
		"client_assertion":      {assertion},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func exchange(e *testEnv, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":            {oauth.GrantTokenExchange},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(researchID)},
		"subject_token":         {e.userToken(researchID.String(), "notes:read")},
		"subject_token_type":    {oauth.TokenTypeAccessToken},
	}
	for k, v := range extra {
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = v
	}
	return f
}

func tokenPath(f url.Values) (string, url.Values, http.Header) { return PathToken, f, nil }

// rawJWT builds a compact JWS with the given header and claims and a
// signature made by sign (or none).
func rawJWT(header, claims map[string]any, sign func(input string) []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign(input)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func staticClaims(e *testEnv) map[string]any {
	now := e.clock.Now()
	return map[string]any{"iss": batchClientID, "sub": batchClientID, "aud": e.issuer, "jti": "j-" + now.String(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

func foreignSVID(e *testEnv) string {
	other, err := ca.New(context.Background(), ca.Config{TrustDomain: "spiffe://other.org", Journal: &ca.MemoryJournal{}, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := other.NewJWTSVID(context.Background(), spiffeid.RequireFromString("spiffe://other.org/agent/research"), []string{e.issuer})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func negativeCases() []negCase {
	return []negCase{
		// Request shape.
		{"json body", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, nil, http.Header{"X-Body-Json": {"1"}}
		}, 400, oauth.CodeInvalidRequest},
		{"missing grant_type", func(e *testEnv) (string, url.Values, http.Header) {
			f := ccAgent(e, nil)
			f.Del("grant_type")
			return tokenPath(f)
		}, 400, oauth.CodeInvalidRequest},
		{"unknown grant_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {"password"}}))
		}, 400, oauth.CodeUnsupportedGrantType},
		{"implicit grant_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {"implicit"}}))
		}, 400, oauth.CodeUnsupportedGrantType},
		{"duplicate grant_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {oauth.GrantClientCredentials, oauth.GrantClientCredentials}}))
		}, 400, oauth.CodeInvalidRequest},
		{"duplicate client_assertion", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {e.svid(researchID), e.svid(researchID)}}))
		}, 400, oauth.CodeInvalidRequest},
		{"oversized parameter", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {strings.Repeat("a", oauth.MaxParamBytes+1)}}))
		}, 400, oauth.CodeInvalidRequest},
		{"NUL in parameter", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {"notes:read\x00"}}))
		}, 400, oauth.CodeInvalidRequest},

		// Client authentication.
		{"no client authentication", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(url.Values{"grant_type": {oauth.GrantClientCredentials}})
		}, 401, oauth.CodeInvalidClient},
		{"unknown client_id", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_id": {"nobody"}})
		}, 401, oauth.CodeInvalidClient},
		{"agent without credentials", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_id": {researchID.String()}})
		}, 401, oauth.CodeInvalidClient},
		{"assertion without type", func(e *testEnv) (string, url.Values, http.Header) {
			f := ccAgent(e, nil)
			f.Del("client_assertion_type")
			return tokenPath(f)
		}, 400, oauth.CodeInvalidRequest},
		{"unsupported assertion type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_assertion_type": {"urn:example:saml"}}))
		}, 401, oauth.CodeInvalidClient},
		{"garbage JWT-SVID", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {"a.b.c"}}))
		}, 401, oauth.CodeInvalidClient},
		{"garbage private_key_jwt", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, "not-a-jwt", nil))
		}, 401, oauth.CodeInvalidClient},
		{"JWT-SVID for the token endpoint", func(e *testEnv) (string, url.Values, http.Header) {
			tok, _, _ := e.ca.NewJWTSVID(e.ctx, researchID, []string{e.issuer + PathToken})
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {tok}}))
		}, 401, oauth.CodeInvalidClient},
		{"JWT-SVID with two audiences", func(e *testEnv) (string, url.Values, http.Header) {
			tok, _, _ := e.ca.NewJWTSVID(e.ctx, researchID, []string{e.issuer, "https://evil.example"})
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {tok}}))
		}, 401, oauth.CodeInvalidClient},
		{"replayed JWT-SVID", func(e *testEnv) (string, url.Values, http.Header) {
			tok := e.svid(researchID)
			if status, body := e.agentToken(researchID, url.Values{"client_assertion": {tok}}); status != 200 {
				e.t.Fatalf("first use: %d %v", status, body)
			}
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {tok}}))
		}, 401, oauth.CodeInvalidClient},
		{"expired JWT-SVID", func(e *testEnv) (string, url.Values, http.Header) {
			tok := e.svid(researchID)
			e.clock.Advance(2 * time.Hour)
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {tok}}))
		}, 401, oauth.CodeInvalidClient},
		{"JWT-SVID of an unknown agent", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {e.svid(spiffeid.RequireFromString("spiffe://example.org/agent/ghost"))}}))
		}, 401, oauth.CodeInvalidClient},
		{"JWT-SVID of another trust domain", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_assertion": {foreignSVID(e)}}))
		}, 401, oauth.CodeInvalidClient},
		{"client_id is not the JWT-SVID subject", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_id": {paymentsID.String()}}))
		}, 401, oauth.CodeInvalidClient},
		{"alg none", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, rawJWT(map[string]any{"alg": "none", "typ": "JWT"}, staticClaims(e), nil), nil))
		}, 401, oauth.CodeInvalidClient},
		{"HS256 with the public key as secret", func(e *testEnv) (string, url.Values, http.Header) {
			pub, _ := json.Marshal(e.clientKey.Public())
			tok := rawJWT(map[string]any{"alg": "HS256", "kid": "k1"}, staticClaims(e), func(in string) []byte {
				m := hmac.New(sha256.New, pub)
				m.Write([]byte(in))
				return m.Sum(nil)
			})
			return tokenPath(ccStatic(e, tok, nil))
		}, 401, oauth.CodeInvalidClient},
		{"signed by another key", func(e *testEnv) (string, url.Values, http.Header) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tok, _ := jose.Sign(e.ctx, k, "k1", jose.TypJWT, staticClaims(e))
			return tokenPath(ccStatic(e, tok, nil))
		}, 401, oauth.CodeInvalidClient},
		{"embedded jwk header", func(e *testEnv) (string, url.Values, http.Header) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			tok, _ := jose.SignWithHeader(e.ctx, k, jose.Header{Typ: jose.TypJWT, EmbedJWK: true}, staticClaims(e))
			return tokenPath(ccStatic(e, tok, nil))
		}, 401, oauth.CodeInvalidClient},
		{"expired assertion", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion expiring in two hours", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["exp"] = e.clock.Now().Add(2 * time.Hour).Unix() }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion issued in the future", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["iat"] = e.clock.Now().Add(10 * time.Minute).Unix() }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion not yet valid", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["nbf"] = e.clock.Now().Add(10 * time.Minute).Unix() }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion without jti", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { delete(c, "jti") }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"replayed assertion", func(e *testEnv) (string, url.Values, http.Header) {
			a := e.clientAssertion(nil)
			if status, _, _ := e.post(PathToken, ccStatic(e, a, nil), nil); status != 200 {
				e.t.Fatalf("first use: %d", status)
			}
			return tokenPath(ccStatic(e, a, nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion for the token endpoint", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["aud"] = e.issuer + PathToken }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion for two audiences", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["aud"] = []string{e.issuer, "https://x"} }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"assertion sub is not the client", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(func(c map[string]any) { c["sub"] = "alice" }), nil))
		}, 401, oauth.CodeInvalidClient},
		{"access token as client assertion", func(e *testEnv) (string, url.Values, http.Header) {
			tok, _ := jose.Sign(e.ctx, e.clientKey, "k1", jose.TypAccessToken, staticClaims(e))
			return tokenPath(ccStatic(e, tok, nil))
		}, 401, oauth.CodeInvalidClient},
		{"DPoP proof as client assertion", func(e *testEnv) (string, url.Values, http.Header) {
			tok, _ := jose.Sign(e.ctx, e.clientKey, "k1", jose.TypDPoP, staticClaims(e))
			return tokenPath(ccStatic(e, tok, nil))
		}, 401, oauth.CodeInvalidClient},
		{"two client authentication methods", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"client_secret": {"s"}, "client_id": {researchID.String()}}))
		}, 400, oauth.CodeInvalidRequest},
		{"agent with a secret", func(e *testEnv) (string, url.Values, http.Header) {
			basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(researchID.String()) + ":secret"))
			return PathToken, url.Values{"grant_type": {oauth.GrantClientCredentials}}, http.Header{"Authorization": {"Basic " + basic}}
		}, 401, oauth.CodeInvalidClient},
		{"malformed Basic", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, url.Values{"grant_type": {oauth.GrantClientCredentials}}, http.Header{"Authorization": {"Basic !!!"}}
		}, 401, oauth.CodeInvalidClient},
		{"Bearer on the token endpoint", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, url.Values{"grant_type": {oauth.GrantClientCredentials}}, http.Header{"Authorization": {"Bearer x"}}
		}, 401, oauth.CodeInvalidClient},

		// Grant, target and scope.
		{"grant not allowed for client", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccStatic(e, e.clientAssertion(nil), url.Values{"grant_type": {oauth.GrantTokenExchange}}))
		}, 400, oauth.CodeUnauthorizedClient},
		{"unknown resource", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"resource": {"https://unknown.example/"}}))
		}, 400, oauth.CodeInvalidTarget},
		{"resource with fragment", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"resource": {notesURI + "#x"}}))
		}, 400, oauth.CodeInvalidTarget},
		{"relative resource", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"resource": {"/mcp"}}))
		}, 400, oauth.CodeInvalidTarget},
		{"resource differing in case", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"resource": {strings.ToUpper(notesURI)}}))
		}, 400, oauth.CodeInvalidTarget},
		{"unknown scope", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {"admin"}}))
		}, 400, oauth.CodeInvalidScope},
		{"scope the client may not have", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {"payments:transfer"}}))
		}, 400, oauth.CodeInvalidScope},
		{"scope of another resource", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {"notes:read"}, "resource": {paymentsURI}}))
		}, 400, oauth.CodeInvalidScope},
		{"malformed scope", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"scope": {"notes:read  notes:write"}}))
		}, 400, oauth.CodeInvalidScope},
		{"authorization_details not an array", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"authorization_details": {`{"type":"x"}`}}))
		}, 400, oauth.CodeInvalidAuthDetails},
		{"authorization_details without type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"authorization_details": {`[{"actions":["x"]}]`}}))
		}, 400, oauth.CodeInvalidAuthDetails},

		// Token exchange.
		{"exchange without subject_token", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token": nil}))
		}, 400, oauth.CodeInvalidRequest},
		{"exchange without subject_token_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token_type": nil}))
		}, 400, oauth.CodeInvalidRequest},
		{"actor_token_type without actor_token", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"actor_token_type": {oauth.TokenTypeJWT}}))
		}, 400, oauth.CodeInvalidRequest},
		{"actor_token without actor_token_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"actor_token": {e.svid(researchID)}}))
		}, 400, oauth.CodeInvalidRequest},
		{"subject token for another audience", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token": {e.userToken(notesURI, "notes:read")}}))
		}, 400, oauth.CodeInvalidRequest},
		{"JWT-SVID presented as an access token", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token": {e.svid(researchID)}}))
		}, 400, oauth.CodeInvalidRequest},
		{"access token presented as a JWT-SVID", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token_type": {oauth.TokenTypeJWT}}))
		}, 400, oauth.CodeInvalidRequest},
		{"access token presented as an ID token", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token_type": {oauth.TokenTypeIDToken}}))
		}, 400, oauth.CodeInvalidRequest},
		{"unsupported subject_token_type", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}))
		}, 400, oauth.CodeInvalidRequest},
		{"expired subject token", func(e *testEnv) (string, url.Values, http.Header) {
			f := exchange(e, nil)
			e.clock.Advance(6 * time.Minute)
			f.Set("client_assertion", e.svid(researchID))
			return tokenPath(f)
		}, 400, oauth.CodeInvalidRequest},
		{"actor is not the client", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"actor_token": {e.svid(paymentsID)}, "actor_token_type": {oauth.TokenTypeJWT}}))
		}, 400, oauth.CodeInvalidRequest},
		{"replayed actor token", func(e *testEnv) (string, url.Values, http.Header) {
			a := e.svid(researchID)
			if status, _, _ := e.post(PathToken, exchange(e, url.Values{"actor_token": {a}, "actor_token_type": {oauth.TokenTypeJWT}}), nil); status != 200 {
				e.t.Fatalf("first use: %d", status)
			}
			return tokenPath(exchange(e, url.Values{"actor_token": {a}, "actor_token_type": {oauth.TokenTypeJWT}}))
		}, 400, oauth.CodeInvalidRequest},
		{"exchange widening scope", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"scope": {"notes:write"}}))
		}, 400, oauth.CodeInvalidScope},
		{"exchange to an unknown audience", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"audience": {"billing"}}))
		}, 400, oauth.CodeInvalidTarget},
		{"exchange for a refresh token", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(exchange(e, url.Values{"requested_token_type": {oauth.TokenTypeRefreshToken}}))
		}, 400, oauth.CodeInvalidRequest},
		{"may_act naming someone else", func(e *testEnv) (string, url.Values, http.Header) {
			it, err := e.srv.issueAccessToken(e.ctx, nil, accessGrant{Subject: "alice", ClientID: "webapp",
				Scopes: []string{"notes:read"}, Audience: []string{researchID.String()}, MayAct: &oauth.Actor{Subject: paymentsID.String()}})
			if err != nil {
				e.t.Fatal(err)
			}
			return tokenPath(exchange(e, url.Values{"subject_token": {it.Token}}))
		}, 400, oauth.CodeInvalidRequest},

		// JWT bearer and refresh grants.
		{"jwt-bearer without assertion", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {oauth.GrantJWTBearer}}))
		}, 400, oauth.CodeInvalidRequest},
		{"access token as jwt-bearer assertion", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {oauth.GrantJWTBearer}, "assertion": {e.userToken(e.issuer)}}))
		}, 400, oauth.CodeInvalidGrant},
		{"refresh grant not allowed for agents", func(e *testEnv) (string, url.Values, http.Header) {
			return tokenPath(ccAgent(e, url.Values{"grant_type": {oauth.GrantRefreshToken}, "refresh_token": {"x"}}))
		}, 400, oauth.CodeUnauthorizedClient},

		// DPoP.
		{"two DPoP headers", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, ccAgent(e, nil), http.Header{"Dpop": {"a.b.c", "a.b.c"}}
		}, 400, oauth.CodeInvalidDPoPProof},
		{"garbage DPoP proof", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, ccAgent(e, nil), http.Header{"Dpop": {"a.b.c"}}
		}, 400, oauth.CodeInvalidDPoPProof},
		{"access token as DPoP proof", func(e *testEnv) (string, url.Values, http.Header) {
			return PathToken, ccAgent(e, nil), http.Header{"Dpop": {e.userToken(e.issuer)}}
		}, 400, oauth.CodeInvalidDPoPProof},

		// Introspection and revocation.
		{"introspect without token", func(e *testEnv) (string, url.Values, http.Header) {
			f := ccAgent(e, nil)
			f.Del("grant_type")
			return PathIntrospect, f, nil
		}, 400, oauth.CodeInvalidRequest},
		{"revoke with unsupported hint", func(e *testEnv) (string, url.Values, http.Header) {
			f := ccAgent(e, url.Values{"token": {"x"}, "token_type_hint": {"saml"}})
			f.Del("grant_type")
			return PathRevoke, f, nil
		}, 400, oauth.CodeUnsupportedTokenType},
	}
}

func TestTokenEndpointNegative(t *testing.T) {
	cases := negativeCases()
	if len(cases) < 60 {
		t.Fatalf("only %d negative cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			path, form, header := tc.build(e)
			before := e.store.snapshot()
			var status int
			var body map[string]any
			var hdr http.Header
			if header.Get("X-Body-Json") != "" {
				resp, err := http.Post(e.issuer+path, "application/json", strings.NewReader(`{"grant_type":"client_credentials"}`))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, hdr = resp.StatusCode, resp.Header
				_ = json.Unmarshal(raw, &body)
			} else {
				status, body, hdr = e.post(path, form, header)
			}
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, "authserver:") || strings.Contains(d, "eyJ") {
				t.Errorf("description leaks internals or tokens: %q", d)
			}
			if strings.HasPrefix(strings.ToLower(header.Get("Authorization")), "basic ") && hdr.Get("WWW-Authenticate") == "" {
				t.Error("invalid_client after Basic has no WWW-Authenticate")
			}
			// A refused request leaves no tokens, refresh families or
			// revocations behind.
			for _, ns := range []string{nsRefresh, nsFamilies, nsRevoked, nsCodes} {
				if e.store.count(ns) != before[ns] {
					t.Errorf("namespace %s changed", ns)
				}
			}
		})
	}
}
