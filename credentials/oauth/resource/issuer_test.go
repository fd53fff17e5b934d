package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

const (
	remoteIssuer = "https://idp.example/realms/agents"
	quirkIssuer  = "https://login.example/tenant/v2.0"
	extraAud     = "api://agenthost"
)

// jwksServer is an external authorization server's jwks_uri.
type jwksServer struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	status  int
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{t: t, keys: map[string]*ecdsa.PrivateKey{}, status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != http.StatusOK {
			w.WriteHeader(s.status)
			return
		}
		var set []jose.SetKey
		for kid, k := range s.keys {
			set = append(set, jose.SetKey{KID: kid, Key: k.Public(), Alg: "ES256", Use: "sig"})
		}
		body, err := jose.MarshalKeySet(set)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=600")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// rotate replaces the served keys by one new key named kid.
func (s *jwksServer) rotate(kid string) *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.mu.Lock()
	s.keys = map[string]*ecdsa.PrivateKey{kid: k}
	s.mu.Unlock()
	return k
}

func (s *jwksServer) setStatus(code int) {
	s.mu.Lock()
	s.status = code
	s.mu.Unlock()
}

// issuers is the fixture's embedded issuer (in-process keys) with two
// external ones: remote (keys at a jwks_uri over HTTP) and quirk (Entra- or
// Okta-like: typ JWT, scp, an api:// audience; in-process keys).
type issuers struct {
	*fixture
	remote    *jwksServer
	remoteKey *ecdsa.PrivateKey
	keys      *oauth.RemoteKeys
	quirkKey  *ecdsa.PrivateKey
}

func newIssuers(t *testing.T) *issuers {
	f := newFixture(t)
	m := &issuers{fixture: f, remote: newJWKSServer(t)}
	// The remote issuer's key has the same kid as the embedded one's: a
	// kid never crosses issuers.
	m.remoteKey = m.remote.rotate("k1")
	var err error
	m.keys, err = oauth.NewRemoteKeys(oauth.RemoteKeysConfig{URL: m.remote.srv.URL + "/jwks",
		Fetcher: fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	m.quirkKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cfg := f.v.cfg
	cfg.Issuers = []Issuer{
		{Issuer: remoteIssuer, Keys: m.keys.Key},
		{Issuer: quirkIssuer, Keys: jose.StaticKeys(map[string]crypto.PublicKey{"q1": m.quirkKey.Public()}),
			AcceptJWTTyp: true, ScopeClaim: ScopeClaimSCP, Audiences: []string{extraAud}},
	}
	if f.v, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return m
}

// claims are an RFC 9068 token's claims for iss.
func (m *issuers) claims(iss string) map[string]any {
	return map[string]any{"iss": iss, "sub": "bob", "aud": resURI, "client_id": "ext-cli", "iat": m.now.Unix(),
		"exp": m.now.Add(5 * time.Minute).Unix(), "jti": "ext-jti", "scope": "notes:read"}
}

func (m *issuers) sign(key crypto.Signer, kid string, typ jose.Typ, claims map[string]any) string {
	tok, err := jose.Sign(context.Background(), key, kid, typ, claims)
	if err != nil {
		m.t.Fatal(err)
	}
	return tok
}

// authenticate presents tok and returns the caller or the challenge.
func (m *issuers) authenticate(tok string) (*Caller, *Challenge) {
	c, err := m.v.Authenticate(m.request("Bearer " + tok))
	if err == nil {
		return c, nil
	}
	ch, ok := errors.AsType[*Challenge](err)
	if !ok {
		m.t.Fatalf("error %v is not a challenge", err)
	}
	return nil, ch
}

func (m *issuers) mustRefuse(name, tok string) *Challenge {
	m.t.Helper()
	c, ch := m.authenticate(tok)
	if ch == nil {
		m.t.Fatalf("%s: accepted as %+v", name, c)
	}
	if ch.Status != http.StatusUnauthorized || ch.Code != oauth.CodeInvalidToken {
		m.t.Fatalf("%s: %d %s %q, want 401 invalid_token", name, ch.Status, ch.Code, ch.Description)
	}
	return ch
}

// TestIssuersEachVerifiesItsOwn: the embedded issuer, an issuer whose
// keys come from its jwks_uri and a quirky one each verify their own
// tokens, and the caller says which issuer verified it.
func TestIssuersEachVerifiesItsOwn(t *testing.T) {
	m := newIssuers(t)
	quirk := m.claims(quirkIssuer)
	delete(quirk, "scope")
	quirk["scp"] = []string{"notes:read", "notes:write"}
	tests := []struct {
		name   string
		tok    string
		issuer string
		sub    string
		scopes []string
	}{
		{"embedded", m.token(nil, jose.TypAccessToken, nil), issuer, "alice", []string{"notes:read"}},
		{"remote", m.sign(m.remoteKey, "k1", jose.TypAccessToken, m.claims(remoteIssuer)), remoteIssuer, "bob", []string{"notes:read"}},
		{"quirk, typ JWT", m.sign(m.quirkKey, "q1", jose.TypJWT, quirk), quirkIssuer, "bob", []string{"notes:read", "notes:write"}},
		{"quirk, at+jwt", m.sign(m.quirkKey, "q1", "application/at+jwt", quirk), quirkIssuer, "bob", []string{"notes:read", "notes:write"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second time from the verified-token cache.
			for range 2 {
				c, ch := m.authenticate(tt.tok)
				if ch != nil {
					t.Fatalf("refused: %v", ch)
				}
				if c.Issuer != tt.issuer || c.Subject != tt.sub || strings.Join(c.Scopes, " ") != strings.Join(tt.scopes, " ") {
					t.Fatalf("caller %+v", c)
				}
				// What a handler does to the caller is not remembered.
				c.Scopes[0] = "notes:admin"
			}
		})
	}
	if n := m.remote.fetches.Load(); n != 1 {
		t.Errorf("the remote key set was fetched %d times, want 1", n)
	}
}

// TestIssuersNeverCrossKeys: a token is verified with the keys of the
// issuer its iss names only, so a key of one issuer never vouches for a
// token claiming another, even under the same kid; an unknown iss is
// refused without naming any issuer.
func TestIssuersNeverCrossKeys(t *testing.T) {
	m := newIssuers(t)
	tests := []struct {
		name string
		key  crypto.Signer
		kid  string
		iss  string
	}{
		{"embedded key, remote iss", m.key, "k1", remoteIssuer},
		{"remote key, embedded iss", m.remoteKey, "k1", issuer},
		{"quirk key, embedded iss", m.quirkKey, "k1", issuer},
		{"quirk key under its kid, remote iss", m.quirkKey, "q1", remoteIssuer},
		{"remote key, quirk iss", m.remoteKey, "q1", quirkIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.mustRefuse(tt.name, m.sign(tt.key, tt.kid, jose.TypAccessToken, m.claims(tt.iss)))
		})
	}

	for _, iss := range []string{"https://evil.example", issuer + "/", "HTTPS://as.example", ""} {
		ch := m.mustRefuse("iss "+iss, m.sign(m.key, "k1", jose.TypAccessToken, m.claims(iss)))
		for _, s := range []string{issuer, remoteIssuer, quirkIssuer, "evil"} {
			if strings.Contains(ch.Description, s) {
				t.Errorf("iss %q: the refusal names %q: %s", iss, s, ch.Description)
			}
		}
	}
}

// TestRemoteIssuerKeyRefresh: a kid the cached set lacks fetches the set
// again once; a burst of made-up kids fetches at most once per
// MinRefetch; a rotation at the server is picked up.
func TestRemoteIssuerKeyRefresh(t *testing.T) {
	m := newIssuers(t)
	tok := func(key crypto.Signer, kid string) string {
		return m.sign(key, kid, jose.TypAccessToken, m.claims(remoteIssuer))
	}
	if _, ch := m.authenticate(tok(m.remoteKey, "k1")); ch != nil {
		t.Fatal(ch)
	}
	if n := m.remote.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}

	// The server rotates to k2 a little later: the first token under k2
	// makes one fetch, and is accepted.
	m.now = m.now.Add(oauth.DefaultKeysMinRefetch)
	k2 := m.remote.rotate("k2")
	if c, ch := m.authenticate(tok(k2, "k2")); ch != nil || c.Issuer != remoteIssuer {
		t.Fatalf("rotated key: %v", ch)
	}
	if n := m.remote.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// k1 is gone from the set.
	m.v.cfg.CacheSize = -1
	m.mustRefuse("retired key", tok(m.remoteKey, "k1"))

	// An attacker's burst of made-up kids within MinRefetch fetches
	// nothing more.
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 50 {
		m.mustRefuse("made-up kid", tok(forger, "bogus-"+string(rune('a'+i%26))))
	}
	if n := m.remote.fetches.Load(); n != 2 {
		t.Fatalf("a burst of unknown kids made %d fetches in all, want 2", n)
	}
	// After MinRefetch one more fetch is allowed, and only one.
	m.now = m.now.Add(oauth.DefaultKeysMinRefetch)
	for range 10 {
		m.mustRefuse("made-up kid", tok(forger, "bogus"))
	}
	if n := m.remote.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after MinRefetch, want 3", n)
	}
	// The known key works throughout, without a fetch.
	if _, ch := m.authenticate(tok(k2, "k2")); ch != nil {
		t.Fatal(ch)
	}
	if n := m.remote.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
}

// TestRemoteIssuerKeysUnavailable: with the jwks_uri failing and no key
// set fetched before, the remote issuer's tokens get 503 (the token may be
// good: a client should retry, not discard it), while the embedded
// issuer's tokens still pass.
func TestRemoteIssuerKeysUnavailable(t *testing.T) {
	m := newIssuers(t)
	m.remote.setStatus(http.StatusInternalServerError)
	_, ch := m.authenticate(m.sign(m.remoteKey, "k1", jose.TypAccessToken, m.claims(remoteIssuer)))
	if ch == nil || ch.Status != http.StatusServiceUnavailable || ch.Code != oauth.CodeTemporarilyUnavailable {
		t.Fatalf("keys unavailable: %+v", ch)
	}
	if _, ch := m.authenticate(m.token(nil, jose.TypAccessToken, nil)); ch != nil {
		t.Fatalf("embedded issuer: %v", ch)
	}
}

// TestAcceptJWTTyp: typ JWT, or no typ, is refused unless the issuer
// opted in, and then only for that issuer's tokens that carry every claim
// RFC 9068 requires (client_id as cid, jti as uti) and nothing of an ID
// token.
func TestAcceptJWTTyp(t *testing.T) {
	m := newIssuers(t)
	quirk := func(mutate func(c map[string]any)) map[string]any {
		c := m.claims(quirkIssuer)
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	tests := []struct {
		name string
		tok  func() string
		ok   bool
	}{
		{"embedded issuer, typ JWT", func() string { return m.token(nil, jose.TypJWT, nil) }, false},
		{"remote issuer without opt-in, typ JWT", func() string {
			return m.sign(m.remoteKey, "k1", jose.TypJWT, m.claims(remoteIssuer))
		}, false},
		{"remote issuer without opt-in, no typ", func() string {
			return m.signWithoutTyp(m.remoteKey, "k1", m.claims(remoteIssuer))
		}, false},
		{"opted-in issuer, typ JWT", func() string { return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(nil)) }, true},
		{"opted-in issuer, typ jwt", func() string { return m.sign(m.quirkKey, "q1", "jwt", quirk(nil)) }, true},
		{"opted-in issuer, no typ (Okta)", func() string { return m.signWithoutTyp(m.quirkKey, "q1", quirk(nil)) }, true},
		{"no typ, an ID token", func() string {
			return m.signWithoutTyp(m.quirkKey, "q1", quirk(func(c map[string]any) { c["nonce"] = "n" }))
		}, false},
		{"no typ, cid instead of client_id (Okta)", func() string {
			return m.signWithoutTyp(m.quirkKey, "q1", quirk(func(c map[string]any) { c["cid"] = c["client_id"]; delete(c, "client_id") }))
		}, true},
		{"typ JWT, uti instead of jti (Entra ID)", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { c["uti"] = c["jti"]; delete(c, "jti") }))
		}, true},
		{"at+jwt does not take cid for client_id", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypAccessToken, quirk(func(c map[string]any) { c["cid"] = c["client_id"]; delete(c, "client_id") }))
		}, false},
		{"at+jwt does not take uti for jti", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypAccessToken, quirk(func(c map[string]any) { c["uti"] = c["jti"]; delete(c, "jti") }))
		}, false},
		{"opted-in issuer, typ txntoken+jwt", func() string { return m.sign(m.quirkKey, "q1", jose.TypTxnToken, quirk(nil)) }, false},
		{"opted-in issuer, typ JOSE", func() string { return m.sign(m.quirkKey, "q1", jose.TypJOSE, quirk(nil)) }, false},
		{"typ JWT without jti", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { delete(c, "jti") }))
		}, false},
		{"typ JWT without iat", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { delete(c, "iat") }))
		}, false},
		{"typ JWT without client_id or azp", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { delete(c, "client_id") }))
		}, false},
		{"typ JWT without sub", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { delete(c, "sub") }))
		}, false},
		{"typ JWT without aud", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { delete(c, "aud") }))
		}, false},
		{"an ID token: nonce", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { c["nonce"] = "n" }))
		}, false},
		{"an ID token: at_hash", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { c["at_hash"] = "h" }))
		}, false},
		{"an ID token: typ claim ID", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { c["typ"] = "ID" }))
		}, false},
		{"typ claim Bearer", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypJWT, quirk(func(c map[string]any) { c["typ"] = "Bearer" }))
		}, true},
		{"an ID token as at+jwt still needs the resource as aud", func() string {
			return m.sign(m.quirkKey, "q1", jose.TypAccessToken, quirk(func(c map[string]any) { c["aud"] = "ext-cli" }))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ch := m.authenticate(tt.tok())
			if tt.ok != (ch == nil) {
				t.Fatalf("accepted %v (caller %+v, challenge %v), want %v", ch == nil, c, ch, tt.ok)
			}
			if ch != nil && (ch.Status != http.StatusUnauthorized || ch.Code != oauth.CodeInvalidToken) {
				t.Fatalf("%d %s, want 401 invalid_token", ch.Status, ch.Code)
			}
		})
	}
}

// signWithoutTyp signs claims with ES256 under a header of alg and kid
// only.
func (m *issuers) signWithoutTyp(key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		m.t.Fatal(err)
	}
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		m.t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

// TestClaimConventions: scp (string or array) only where the issuer names
// it, further audiences only for their issuer, azp in place of client_id.
func TestClaimConventions(t *testing.T) {
	m := newIssuers(t)
	with := func(iss string, mutate func(c map[string]any)) map[string]any {
		c := m.claims(iss)
		mutate(c)
		return c
	}
	quirk := func(mutate func(c map[string]any)) string {
		return m.sign(m.quirkKey, "q1", jose.TypJWT, with(quirkIssuer, mutate))
	}
	remote := func(mutate func(c map[string]any)) string {
		return m.sign(m.remoteKey, "k1", jose.TypAccessToken, with(remoteIssuer, mutate))
	}
	tests := []struct {
		name     string
		tok      string
		ok       bool
		scopes   string
		clientID string
	}{
		{"scp string", quirk(func(c map[string]any) { delete(c, "scope"); c["scp"] = "notes:read notes:write" }), true, "notes:read notes:write", "ext-cli"},
		{"scp array", quirk(func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{"notes:write"} }), true, "notes:write", "ext-cli"},
		{"scp issuer ignores scope", quirk(func(c map[string]any) { c["scope"] = "notes:write" }), true, "", "ext-cli"},
		{"scp array smuggling two scopes in one", quirk(func(c map[string]any) { c["scp"] = []string{"notes:read notes:write"} }), false, "", ""},
		{"scp array of numbers", quirk(func(c map[string]any) { c["scp"] = []int{1} }), false, "", ""},
		{"scp object", quirk(func(c map[string]any) { c["scp"] = map[string]string{"a": "b"} }), false, "", ""},
		{"scope issuer ignores scp", remote(func(c map[string]any) { delete(c, "scope"); c["scp"] = "notes:write" }), true, "", "ext-cli"},
		{"scope as an array", remote(func(c map[string]any) { c["scope"] = []string{"notes:write"} }), false, "", ""},
		{"further audience of its issuer", quirk(func(c map[string]any) { c["aud"] = extraAud }), true, "", "ext-cli"},
		{"further audience among others", quirk(func(c map[string]any) { c["aud"] = []string{"https://other.example", extraAud} }), true, "", "ext-cli"},
		{"another issuer's further audience", remote(func(c map[string]any) { c["aud"] = extraAud }), false, "", ""},
		{"further audience is exact", quirk(func(c map[string]any) { c["aud"] = extraAud + "/" }), false, "", ""},
		{"azp for client_id", remote(func(c map[string]any) { delete(c, "client_id"); c["azp"] = "kc-client" }), true, "notes:read", "kc-client"},
		{"client_id over azp", remote(func(c map[string]any) { c["azp"] = "kc-client" }), true, "notes:read", "ext-cli"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ch := m.authenticate(tt.tok)
			if tt.ok != (ch == nil) {
				t.Fatalf("accepted %v (%v), want %v", ch == nil, ch, tt.ok)
			}
			if !tt.ok {
				if ch.Status != http.StatusUnauthorized || ch.Code != oauth.CodeInvalidToken {
					t.Fatalf("%d %s, want 401 invalid_token", ch.Status, ch.Code)
				}
				return
			}
			if strings.Join(c.Scopes, " ") != tt.scopes || c.ClientID != tt.clientID {
				t.Fatalf("scopes %q client %q, want %q %q", c.Scopes, c.ClientID, tt.scopes, tt.clientID)
			}
		})
	}
}

// TestRevocationHooksPerIssuer: the embedded issuer's revocation hooks
// are not asked about another issuer's tokens (its subjects are another
// namespace), and an issuer's own hooks are.
func TestRevocationHooksPerIssuer(t *testing.T) {
	m := newIssuers(t)
	m.subjectsRevokedAt["bob"] = m.now
	m.revoked["ext-jti"] = true
	remoteTok := m.sign(m.remoteKey, "k1", jose.TypAccessToken, m.claims(remoteIssuer))
	if _, ch := m.authenticate(remoteTok); ch != nil {
		t.Fatalf("the embedded issuer's revocations applied to another issuer's token: %v", ch)
	}
	cfg := m.v.cfg
	cfg.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: m.keys.Key,
		SubjectRevoked: func(_ context.Context, sub string, _ time.Time) (bool, error) { return sub == "bob", nil }}}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.v = v
	m.mustRefuse("its own revocation", remoteTok)
}

// fakeIntrospection answers introspection for one issuer.
type fakeIntrospection struct {
	answers map[string]*oauth.IntrospectionResponse
	err     error
	asked   int
}

func (f *fakeIntrospection) introspect(_ context.Context, tok string) (*oauth.IntrospectionResponse, error) {
	f.asked++
	if f.err != nil {
		return nil, f.err
	}
	if r, ok := f.answers[tok]; ok {
		return r, nil
	}
	return &oauth.IntrospectionResponse{}, nil
}

// TestIntrospectionAcrossIssuers: an opaque token is introspected at each
// issuer that can, in order, and the first active answer decides; it must
// name that issuer if it names one.
func TestIntrospectionAcrossIssuers(t *testing.T) {
	active := func(iss string) *oauth.IntrospectionResponse {
		return &oauth.IntrospectionResponse{Active: true, Subject: "bob", ClientID: "ext-cli", Audience: oauth.Audience{resURI},
			Issuer: iss, Scope: "notes:read", ExpiresAt: time.Unix(1_800_000_000, 0).Add(time.Minute).Unix()}
	}
	tests := []struct {
		name         string
		a, b         fakeIntrospection
		status       int
		issuer       string
		askedB       int
		wantNotAsked bool
	}{
		{name: "second issuer knows it", b: fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(remoteIssuer)}},
			status: 200, issuer: remoteIssuer, askedB: 1},
		{name: "second issuer's answer names no iss", b: fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active("")}},
			status: 200, issuer: remoteIssuer, askedB: 1},
		{name: "first issuer knows it", a: fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(issuer)}},
			status: 200, issuer: issuer, askedB: 0},
		{name: "active at the second, naming the first", b: fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(issuer)}},
			status: 401, askedB: 1},
		{name: "active at the first, naming the second: the first decides",
			a:      fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(remoteIssuer)}},
			b:      fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(remoteIssuer)}},
			status: 401, askedB: 0},
		{name: "nobody knows it", status: 401, askedB: 1},
		{name: "first fails, second knows it", a: fakeIntrospection{err: errors.New("down")},
			b: fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{"opaque": active(remoteIssuer)}}, status: 200, issuer: remoteIssuer, askedB: 1},
		{name: "first fails, second does not know it", a: fakeIntrospection{err: errors.New("down")}, status: 503, askedB: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.v.cfg
			cfg.Introspect = tt.a.introspect
			cfg.Issuers = []Issuer{{Issuer: remoteIssuer, Introspect: tt.b.introspect}}
			v, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Authenticate(f.request("Bearer opaque"))
			status := http.StatusOK
			if ch, ok := errors.AsType[*Challenge](err); ok {
				status = ch.Status
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status {
				t.Fatalf("status %d (%v), want %d", status, err, tt.status)
			}
			if tt.status == http.StatusOK && c.Issuer != tt.issuer {
				t.Fatalf("caller issuer %q, want %q", c.Issuer, tt.issuer)
			}
			if tt.b.asked != tt.askedB {
				t.Fatalf("the second issuer was asked %d times, want %d", tt.b.asked, tt.askedB)
			}
		})
	}
}

// TestJWTOfIntrospectingIssuer: a JWT naming an issuer that has no keys,
// only introspection, is introspected there, and nowhere else.
func TestJWTOfIntrospectingIssuer(t *testing.T) {
	m := newIssuers(t)
	var other fakeIntrospection
	m.v.cfg.Introspect = other.introspect
	jwtKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok := m.sign(jwtKey, "x", jose.TypAccessToken, m.claims("https://opaque.example"))
	mine := fakeIntrospection{answers: map[string]*oauth.IntrospectionResponse{tok: {Active: true, Subject: "bob", ClientID: "ext-cli",
		Audience: oauth.Audience{resURI}, Issuer: "https://opaque.example", ExpiresAt: m.now.Add(time.Minute).Unix()}}}
	m.v.cfg.Issuers = append(m.v.cfg.Issuers, Issuer{Issuer: "https://opaque.example", Introspect: mine.introspect})
	c, ch := m.authenticate(tok)
	if ch != nil || c.Issuer != "https://opaque.example" || mine.asked != 1 || other.asked != 0 {
		t.Fatalf("caller %+v challenge %v; asked %d, other %d", c, ch, mine.asked, other.asked)
	}
}

func TestIssuersConfig(t *testing.T) {
	keys := jose.StaticKeys(map[string]crypto.PublicKey{})
	base := Config{Resource: resURI, MetadataURL: mdURL}
	tests := []struct {
		name string
		cfg  func(c *Config)
		ok   bool
	}{
		{"no issuer", func(*Config) {}, false},
		{"Issuers only", func(c *Config) { c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys}} }, true},
		{"Issuer without keys", func(c *Config) { c.Issuer = issuer }, false},
		{"keys without Issuer", func(c *Config) { c.Keys = keys; c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys}} }, false},
		{"revocation without Issuer", func(c *Config) {
			c.Revoked = func(context.Context, string) (bool, error) { return false, nil }
			c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys}}
		}, false},
		{"an issuer twice", func(c *Config) {
			c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys}, {Issuer: remoteIssuer, Keys: keys}}
		}, false},
		{"Issuer again in Issuers", func(c *Config) {
			c.Issuer, c.Keys = issuer, keys
			c.Issuers = []Issuer{{Issuer: issuer, Keys: keys}}
		}, false},
		{"an entry without identifier", func(c *Config) { c.Issuers = []Issuer{{Keys: keys}} }, false},
		{"an entry without keys or introspection", func(c *Config) { c.Issuers = []Issuer{{Issuer: remoteIssuer}} }, false},
		{"an unknown scope claim", func(c *Config) { c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys, ScopeClaim: "scopes"}} }, false},
		{"an empty audience", func(c *Config) { c.Issuers = []Issuer{{Issuer: remoteIssuer, Keys: keys, Audiences: []string{""}}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.cfg(&cfg)
			if _, err := New(cfg); (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestMetadataListsEveryIssuer: the RFC 9728 metadata names every
// accepted issuer in authorization_servers, in order.
func TestMetadataListsEveryIssuer(t *testing.T) {
	m := newIssuers(t)
	want := []string{issuer, remoteIssuer, quirkIssuer}
	if got := m.v.AuthorizationServers(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("AuthorizationServers %v", got)
	}
	w := httptest.NewRecorder()
	m.v.MetadataHandler(oauth.ResourceMetadata{AuthorizationServers: []string{"https://stale.example"}, BearerMethodsSupported: []string{"header"}}).
		ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp/notes", nil))
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
		t.Fatal(err)
	}
	servers, _ := json.Marshal(md["authorization_servers"])
	if md["resource"] != resURI || string(servers) != `["`+strings.Join(want, `","`)+`"]` {
		t.Fatalf("metadata %s", w.Body.String())
	}
}
