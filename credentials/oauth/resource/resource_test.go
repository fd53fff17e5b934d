package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

const (
	issuer   = "https://as.example"
	resURI   = "https://rs.example/mcp/notes"
	mdURL    = "https://rs.example/.well-known/oauth-protected-resource/mcp/notes"
	testHost = "rs.example"
)

type fixture struct {
	t       *testing.T
	now     time.Time
	key     *ecdsa.PrivateKey
	v       *Verifier
	revoked map[string]bool
	// subjectsRevokedAt maps a subject to the time up to which its tokens
	// are revoked.
	subjectsRevokedAt map[string]time.Time
	dpopKey           *ecdsa.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, now: time.Unix(1_800_000_000, 0), revoked: map[string]bool{}, subjectsRevokedAt: map[string]time.Time{}}
	f.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.dpopKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(f.clock), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.v, err = New(Config{
		Resource: resURI, MetadataURL: mdURL, Issuer: issuer,
		Keys:    jose.StaticKeys(map[string]crypto.PublicKey{"k1": f.key.Public()}),
		Revoked: func(_ context.Context, jti string) (bool, error) { return f.revoked[jti], nil },
		SubjectRevoked: func(_ context.Context, sub string, iat time.Time) (bool, error) {
			at, ok := f.subjectsRevokedAt[sub]
			return ok && !iat.After(at), nil
		},
		ScopesSupported: []string{"notes:read", "notes:write"},
		DPoP:            dv,
		Now:             f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time { return f.now }

func (f *fixture) token(mutate func(c *oauth.AccessTokenClaims), typ jose.Typ, key crypto.Signer) string {
	c := oauth.AccessTokenClaims{Issuer: issuer, Subject: "alice", Audience: oauth.Audience{resURI}, ClientID: "cli",
		IssuedAt: f.now.Unix(), ExpiresAt: f.now.Add(5 * time.Minute).Unix(), ID: "jti-1", Scope: "notes:read",
		Actor: &oauth.Actor{Subject: "spiffe://td/agent/a"}}
	if mutate != nil {
		mutate(&c)
	}
	if key == nil {
		key = f.key
	}
	tok, err := jose.Sign(context.Background(), key, "k1", typ, c)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) request(auth ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://"+testHost+"/mcp/notes", strings.NewReader("{}"))
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

func (f *fixture) proof(tok string) string {
	p, err := dpop.NewProof(context.Background(), f.dpopKey, dpop.ProofParams{Method: http.MethodPost, URL: "http://" + testHost + "/mcp/notes", AccessToken: tok, Now: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	c, err := f.v.Authenticate(f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.ClientID != "cli" || !c.HasScope("notes:read") || c.HasScope("notes:write") || c.Actor.Subject != "spiffe://td/agent/a" {
		t.Fatalf("caller %+v", c)
	}

	jkt, _ := dpop.Thumbprint(f.dpopKey.Public())
	bound := f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: jkt} }, jose.TypAccessToken, nil)
	r := f.request("DPoP " + bound)
	r.Header.Set("DPoP", f.proof(bound))
	if c, err := f.v.Authenticate(r); err != nil || c.JKT != jkt {
		t.Fatalf("DPoP-bound with proof: %+v %v", c, err)
	}
}

func TestAuthenticateNegative(t *testing.T) {
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name   string
		req    func(f *fixture) *http.Request
		status int
		code   string
		scheme string
	}{
		{"no token", func(f *fixture) *http.Request { return f.request() }, 401, "", "Bearer"},
		{"token in query", func(f *fixture) *http.Request {
			r := f.request()
			r.URL.RawQuery = "access_token=x"
			return r
		}, 400, oauth.CodeInvalidRequest, "Bearer"},
		{"two Authorization headers", func(f *fixture) *http.Request { return f.request("Bearer a", "Bearer b") }, 400, oauth.CodeInvalidRequest, "Bearer"},
		{"Basic", func(f *fixture) *http.Request { return f.request("Basic YTpi") }, 401, oauth.CodeInvalidRequest, "Bearer"},
		{"empty bearer", func(f *fixture) *http.Request { return f.request("Bearer ") }, 401, oauth.CodeInvalidToken, "Bearer"},
		{"garbage", func(f *fixture) *http.Request { return f.request("Bearer a.b.c") }, 401, oauth.CodeInvalidToken, "Bearer"},
		{"expired", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.ExpiresAt = f.now.Add(-time.Second).Unix() }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"another resource", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.Audience = oauth.Audience{"https://rs.example/mcp/other"} }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"another issuer", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.Issuer = "https://evil.example" }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"typ JWT (an ID token or JWT-SVID)", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(nil, jose.TypJWT, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"typ txntoken+jwt", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(nil, jose.TypTxnToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"signed by another key", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(nil, jose.TypAccessToken, otherKey))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"no client_id", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.ClientID = "" }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"revoked", func(f *fixture) *http.Request {
			f.revoked["jti-1"] = true
			return f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"subject revoked", func(f *fixture) *http.Request {
			f.subjectsRevokedAt["alice"] = f.now
			return f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"actor revoked", func(f *fixture) *http.Request {
			f.subjectsRevokedAt["spiffe://td/agent/a"] = f.now
			return f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"nested actor revoked", func(f *fixture) *http.Request {
			f.subjectsRevokedAt["spiffe://td/agent/b"] = f.now
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) {
				c.Actor = &oauth.Actor{Subject: "spiffe://td/agent/a", Actor: &oauth.Actor{Subject: "spiffe://td/agent/b"}}
			}, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"client revoked", func(f *fixture) *http.Request {
			f.subjectsRevokedAt["cli"] = f.now
			return f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
		{"DPoP-bound sent as Bearer", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: "x"} }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "DPoP"},
		{"DPoP-bound without proof", func(f *fixture) *http.Request {
			jkt, _ := dpop.Thumbprint(f.dpopKey.Public())
			return f.request("DPoP " + f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: jkt} }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidDPoPProof, "DPoP"},
		{"DPoP proof for another token", func(f *fixture) *http.Request {
			jkt, _ := dpop.Thumbprint(f.dpopKey.Public())
			tok := f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: jkt} }, jose.TypAccessToken, nil)
			r := f.request("DPoP " + tok)
			r.Header.Set("DPoP", f.proof("another token"))
			return r
		}, 401, oauth.CodeInvalidDPoPProof, "DPoP"},
		{"DPoP proof by another key", func(f *fixture) *http.Request {
			tok := f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: "someone-else"} }, jose.TypAccessToken, nil)
			r := f.request("DPoP " + tok)
			r.Header.Set("DPoP", f.proof(tok))
			return r
		}, 401, oauth.CodeInvalidDPoPProof, "DPoP"},
		{"unbound token with DPoP scheme", func(f *fixture) *http.Request {
			tok := f.token(nil, jose.TypAccessToken, nil)
			r := f.request("DPoP " + tok)
			r.Header.Set("DPoP", f.proof(tok))
			return r
		}, 401, oauth.CodeInvalidToken, "DPoP"},
		{"certificate-bound without TLS", func(f *fixture) *http.Request {
			return f.request("Bearer " + f.token(func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{X5TS256: "x"} }, jose.TypAccessToken, nil))
		}, 401, oauth.CodeInvalidToken, "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			reached := false
			h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req(f))
			if reached || w.Code != tt.status {
				t.Fatalf("status %d (reached %v), want %d", w.Code, reached, tt.status)
			}
			challenges := strings.Join(w.Header().Values("WWW-Authenticate"), " | ")
			if !strings.Contains(challenges, `resource_metadata="`+mdURL+`"`) {
				t.Errorf("challenge without resource_metadata: %s", challenges)
			}
			if tt.code == "" {
				if strings.Contains(challenges, "error=") {
					t.Errorf("a request without credentials got an error code: %s", challenges)
				}
				return
			}
			if !strings.Contains(challenges, tt.scheme+` error="`+tt.code+`"`) {
				t.Errorf("challenge %s, want %s error=%q", challenges, tt.scheme, tt.code)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != tt.code {
				t.Errorf("body %q", w.Body.String())
			}
		})
	}
}

func TestMiddlewareHidesTheToken(t *testing.T) {
	f := newFixture(t)
	tok := f.token(nil, jose.TypAccessToken, nil)
	var seen *http.Request
	h := f.v.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r }))
	r := f.request("Bearer " + tok)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen == nil {
		t.Fatal("handler not reached")
	}
	if seen.Header.Get("Authorization") != "" || seen.Header.Get("DPoP") != "" {
		t.Fatal("the token reached the handler")
	}
	c, ok := CallerFrom(seen.Context())
	if !ok || c.Subject != "alice" {
		t.Fatalf("caller %+v", c)
	}
}

func TestInsufficientScope(t *testing.T) {
	f := newFixture(t)
	w := httptest.NewRecorder()
	f.v.InsufficientScope("notes:write").Write(w)
	got := w.Header().Get("WWW-Authenticate")
	if w.Code != 403 || !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, `scope="notes:write"`) {
		t.Fatalf("%d %s", w.Code, got)
	}
}

// bearerScope returns the scope parameter of the response's Bearer
// challenge and whether it has one.
func bearerScope(t *testing.T, w *httptest.ResponseRecorder) (string, bool) {
	t.Helper()
	cs, err := oauth.ParseChallenges(w.Header().Values("WWW-Authenticate"))
	if err != nil || len(cs) == 0 || !strings.EqualFold(cs[0].Scheme, "Bearer") {
		t.Fatalf("WWW-Authenticate %q: %v", w.Header().Values("WWW-Authenticate"), err)
	}
	sc, ok := cs[0].Params["scope"]
	return sc, ok
}

// TestChallengeScopes: a 401 challenge names Config.ChallengeScopes (the
// least a client needs to start), not every scope of the resource; nil
// means ScopesSupported, empty means no scope parameter.
func TestChallengeScopes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name      string
		challenge []string
		want      string
		wantNone  bool
	}{
		{name: "nil: every supported scope", challenge: nil, want: "notes:read notes:write"},
		{name: "read scope only", challenge: []string{"notes:read"}, want: "notes:read"},
		{name: "empty: no scope", challenge: []string{}, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(Config{
				Resource: resURI, MetadataURL: mdURL, Issuer: issuer,
				Keys:            jose.StaticKeys(map[string]crypto.PublicKey{"k1": f.key.Public()}),
				ScopesSupported: []string{"notes:read", "notes:write"},
				ChallengeScopes: tt.challenge,
				Now:             f.clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			expired := f.token(func(c *oauth.AccessTokenClaims) { c.ExpiresAt = f.now.Add(-time.Hour).Unix() }, jose.TypAccessToken, nil)
			for _, r := range []struct {
				name string
				req  *http.Request
				code string
			}{
				{"no token", f.request(), ""},
				{"expired token", f.request("Bearer " + expired), oauth.CodeInvalidToken},
			} {
				_, err := v.Authenticate(r.req)
				ch, ok := errors.AsType[*Challenge](err)
				if !ok || ch.Status != http.StatusUnauthorized || ch.Code != r.code {
					t.Fatalf("%s: %v, want a 401 challenge %q", r.name, err, r.code)
				}
				w := httptest.NewRecorder()
				ch.Write(w)
				got, has := bearerScope(t, w)
				if has == tt.wantNone || got != tt.want {
					t.Errorf("%s: scope %q (present %v), want %q", r.name, got, has, tt.want)
				}
			}
		})
	}
}

// TestStepUp: a 403 names the missing scope together with the caller's
// scopes of this resource (MCP 2025-11-25: keep what the client has), never
// scopes of other resources or offline_access; the description names only
// what is missing.
func TestStepUp(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		caller *Caller
		needed []string
		want   string
	}{
		{name: "read token needs write", caller: &Caller{Scopes: []string{"notes:read"}}, needed: []string{"notes:write"}, want: "notes:read notes:write"},
		{name: "token without scopes", caller: &Caller{}, needed: []string{"notes:write"}, want: "notes:write"},
		{name: "no caller", needed: []string{"notes:write"}, want: "notes:write"},
		{name: "foreign scopes dropped", caller: &Caller{Scopes: []string{"openid", "offline_access", "calendar:read", "notes:read"}},
			needed: []string{"notes:write"}, want: "notes:read notes:write"},
		{name: "needed scope the resource does not list", caller: &Caller{Scopes: []string{"notes:read"}}, needed: []string{"notes:admin"},
			want: "notes:read notes:admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			f.v.StepUp(tt.caller, tt.needed...).Write(w)
			got, _ := bearerScope(t, w)
			cs, _ := oauth.ParseChallenges(w.Header().Values("WWW-Authenticate"))
			if w.Code != http.StatusForbidden || cs[0].Param("error") != oauth.CodeInsufficientScope || got != tt.want {
				t.Fatalf("%d error %q scope %q, want 403 insufficient_scope %q", w.Code, cs[0].Param("error"), got, tt.want)
			}
			if d := cs[0].Param("error_description"); d != "the request needs scope "+strings.Join(tt.needed, " ") {
				t.Errorf("description %q", d)
			}
			if cs[0].Param("resource_metadata") != mdURL {
				t.Errorf("resource_metadata %q", cs[0].Param("resource_metadata"))
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	p, err := MetadataPath("https://h.example/mcp/notes")
	if err != nil || p != "/.well-known/oauth-protected-resource/mcp/notes" {
		t.Fatalf("%q %v", p, err)
	}
	if _, err := MetadataPath("/relative"); err == nil {
		t.Fatal("relative resource accepted")
	}
	w := httptest.NewRecorder()
	MetadataHandler(oauth.ResourceMetadata{Resource: resURI, AuthorizationServers: []string{issuer}, BearerMethodsSupported: []string{"header"}}).
		ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
	var md oauth.ResourceMetadata
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || md.Resource != resURI || md.AuthorizationServers[0] != issuer {
		t.Fatalf("%s", w.Body.String())
	}
}

func TestIntrospectedOpaqueTokens(t *testing.T) {
	f := newFixture(t)
	responses := map[string]*oauth.IntrospectionResponse{
		"good":      {Active: true, Subject: "alice", ClientID: "cli", Audience: oauth.Audience{resURI}, Issuer: issuer, Scope: "notes:read", ExpiresAt: f.now.Add(time.Minute).Unix()},
		"inactive":  {Active: false},
		"other-aud": {Active: true, Subject: "alice", ClientID: "cli", Audience: oauth.Audience{"https://other"}, ExpiresAt: f.now.Add(time.Minute).Unix()},
		"other-iss": {Active: true, Subject: "alice", ClientID: "cli", Audience: oauth.Audience{resURI}, Issuer: "https://evil", ExpiresAt: f.now.Add(time.Minute).Unix()},
		"expired":   {Active: true, Subject: "alice", ClientID: "cli", Audience: oauth.Audience{resURI}, ExpiresAt: f.now.Add(-time.Minute).Unix()},
		"bound":     {Active: true, Subject: "alice", ClientID: "cli", Audience: oauth.Audience{resURI}, Confirmation: &oauth.Confirmation{JKT: "x"}},
	}
	f.v.cfg.Introspect = func(_ context.Context, tok string) (*oauth.IntrospectionResponse, error) {
		if r, ok := responses[tok]; ok {
			return r, nil
		}
		return &oauth.IntrospectionResponse{}, nil
	}
	c, err := f.v.Authenticate(f.request("Bearer good"))
	if err != nil || c.Subject != "alice" || !c.HasScope("notes:read") {
		t.Fatalf("good: %+v %v", c, err)
	}
	for _, tok := range []string{"inactive", "other-aud", "other-iss", "expired", "bound", "unknown"} {
		if _, err := f.v.Authenticate(f.request("Bearer " + tok)); err == nil {
			t.Errorf("%s accepted", tok)
		}
	}
	// JWTs are still verified locally, never introspected.
	if _, err := f.v.Authenticate(f.request("Bearer " + f.token(nil, jose.TypAccessToken, nil))); err != nil {
		t.Fatal(err)
	}
}

// TestVerifiedTokenCache: a token seen before skips the signature check,
// but revocation is still checked on every request and a cached token is
// refused once it expires.
func TestVerifiedTokenCache(t *testing.T) {
	f := newFixture(t)
	tok := f.token(nil, jose.TypAccessToken, nil)
	for i := range 2 {
		if _, err := f.v.Authenticate(f.request("Bearer " + tok)); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	if len(f.v.cache) != 1 {
		t.Fatalf("%d cached tokens, want 1", len(f.v.cache))
	}
	f.revoked["jti-1"] = true
	if _, err := f.v.Authenticate(f.request("Bearer " + tok)); err == nil {
		t.Fatal("a cached token was accepted after its revocation")
	}
	f.revoked["jti-1"] = false
	f.now = f.now.Add(5*time.Minute + time.Second)
	if _, err := f.v.Authenticate(f.request("Bearer " + tok)); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("a cached token was accepted after it expired: %v", err)
	}
	// A token with a bad signature is never cached.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := f.token(func(c *oauth.AccessTokenClaims) { c.ID = "jti-2" }, jose.TypAccessToken, other)
	for range 2 {
		if _, err := f.v.Authenticate(f.request("Bearer " + bad)); err == nil {
			t.Fatal("a token signed by another key was accepted")
		}
	}
}

// TestCheckCaller: a request whose token verifies is refused when
// CheckCaller says so, with its challenge or a 401 naming the reason.
func TestCheckCaller(t *testing.T) {
	f := newFixture(t)
	var refuse error
	f.v.cfg.CheckCaller = func(r *http.Request, c *Caller) error {
		if c.Subject != "alice" {
			t.Errorf("CheckCaller got %+v", c)
		}
		return refuse
	}
	tok := f.token(nil, jose.TypAccessToken, nil)
	if _, err := f.v.Authenticate(f.request("Bearer " + tok)); err != nil {
		t.Fatalf("accepted by the check: %v", err)
	}
	refuse = errors.New("no workload proof")
	_, err := f.v.Authenticate(f.request("Bearer " + tok))
	var ch *Challenge
	if !errors.As(err, &ch) || ch.Status != http.StatusUnauthorized || ch.Code != oauth.CodeInvalidToken ||
		ch.Description != "no workload proof" || ch.ResourceMetadata != mdURL {
		t.Fatalf("refused by the check: %#v", err)
	}
	refuse = &Challenge{Status: http.StatusForbidden, Code: oauth.CodeInsufficientScope}
	if _, err := f.v.Authenticate(f.request("Bearer " + tok)); !errors.As(err, &ch) || ch.Status != http.StatusForbidden {
		t.Fatalf("a challenge from the check: %#v", err)
	}
}
