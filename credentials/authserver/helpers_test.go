package authserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const (
	testTD        = "example.org"
	notesURI      = "https://notes.example.org/mcp"
	paymentsURI   = "https://pay.example.org/api"
	batchClientID = "batch-job"
)

var (
	researchID = spiffeid.RequireFromString("spiffe://example.org/agent/research")
	paymentsID = spiffeid.RequireFromString("spiffe://example.org/agent/payments")
)

// testEnv is a server on an httptest listener with a CA for the agents
// and a static private_key_jwt client.
type testEnv struct {
	t         testing.TB
	ctx       context.Context
	clock     *fakeClock
	ca        *ca.CA
	store     *MemoryStore
	srv       *Server
	http      *httptest.Server
	issuer    string
	clientKey *ecdsa.PrivateKey
}

type envOption func(*Config)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnvOn(t, newLateServer(t), opts...)
}

// lateServer is an httptest server whose handler is set once the server
// it fronts exists, so that its URL (an issuer) is known before.
type lateServer struct {
	*httptest.Server
	handler http.Handler
}

func newLateServer(t testing.TB) *lateServer {
	l := &lateServer{handler: http.NotFoundHandler()}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { l.handler.ServeHTTP(w, r) }))
	t.Cleanup(l.Close)
	return l
}

// newTestEnvOn is newTestEnv with the server behind l.
func newTestEnvOn(t testing.TB, l *lateServer, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	clock := newFakeClock()
	authority, err := ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + testTD, Journal: &ca.MemoryJournal{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := jose.MarshalKeySet([]jose.SetKey{{KID: "k1", Key: key.Public(), Alg: "ES256", Use: "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, ctx: ctx, clock: clock, ca: authority, store: NewMemoryStore(clock.Now), clientKey: key}
	env.http = l.Server
	env.issuer = env.http.URL
	cfg := Config{
		Issuer:      env.issuer,
		Store:       env.store,
		TrustDomain: testTD,
		SVIDs:       authority,
		Agents: []AgentClient{
			{ID: credentials.MustParseIdentity(researchID.String()), Scopes: []string{"notes:read", "notes:write"}},
			{ID: credentials.MustParseIdentity(paymentsID.String()), Scopes: []string{"notes:read", "payments:transfer"}},
		},
		Clients: []StaticClient{{
			ID: batchClientID, AuthMethod: oauth.AuthPrivateKeyJWT, JWKS: jwks,
			GrantTypes: []string{oauth.GrantClientCredentials}, Scopes: []string{"notes:read"},
		}},
		Resources: []Resource{
			{URI: notesURI, Scopes: []string{"notes:read", "notes:write"}},
			{URI: paymentsURI, Scopes: []string{"payments:transfer"}},
		},
		Now: clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	env.srv = srv
	l.handler = srv.Handler()
	return env
}

// svid mints a JWT-SVID for id addressed to the issuer.
func (e *testEnv) svid(id spiffeid.ID) string {
	e.t.Helper()
	tok, _, err := e.ca.NewJWTSVID(e.ctx, id, []string{e.issuer})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// clientAssertion signs a private_key_jwt assertion for the static client;
// mutate may change the claims.
func (e *testEnv) clientAssertion(mutate func(map[string]any)) string {
	e.t.Helper()
	now := e.clock.Now()
	jti, _ := randomToken(12)
	claims := map[string]any{"iss": batchClientID, "sub": batchClientID, "aud": e.issuer, "jti": jti,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()}
	if mutate != nil {
		mutate(claims)
	}
	tok, err := jose.Sign(e.ctx, e.clientKey, "k1", jose.TypJWT, claims)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// post sends a form to path and decodes a JSON response.
func (e *testEnv) post(path string, form url.Values, header http.Header) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			e.t.Fatalf("%s: response is not JSON: %q", path, body)
		}
	}
	return resp.StatusCode, out, resp.Header
}

// agentToken runs client_credentials for an agent authenticated by a
// JWT-SVID.
func (e *testEnv) agentToken(id spiffeid.ID, extra url.Values) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{
		"grant_type":            {oauth.GrantClientCredentials},
		"client_assertion_type": {oauth.AssertionJWTSPIFFE},
		"client_assertion":      {e.svid(id)},
	}
	for k, v := range extra {
		form[k] = v
	}
	status, body, _ := e.post(PathToken, form, nil)
	return status, body
}

// verify checks an access token and returns its claims.
func (e *testEnv) verify(token, aud string) *oauth.AccessTokenClaims {
	e.t.Helper()
	c, err := e.srv.VerifyAccessToken(e.ctx, token, aud)
	if err != nil {
		e.t.Fatalf("VerifyAccessToken: %v", err)
	}
	return c
}

// userToken issues a token for user alice as the code flow would, with
// audience aud and the given scope.
func (e *testEnv) userToken(aud string, scopes ...string) string {
	e.t.Helper()
	it, err := e.srv.issueAccessToken(e.ctx, nil, accessGrant{
		Subject: "alice", ClientID: "webapp", Scopes: scopes, Audience: []string{aud}, AuthTime: e.clock.Now(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return it.Token
}

var _ crypto.Signer = (*ecdsa.PrivateKey)(nil)
