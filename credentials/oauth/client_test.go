package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

const notes = "https://notes.example/mcp"

type asEnv struct {
	srv      *authserver.Server
	md       *oauth.ServerMetadata
	requests atomic.Int32
	ca       *ca.CA
}

func newAS(t *testing.T, requireNonce bool) *asEnv {
	t.Helper()
	ctx := context.Background()
	authority, err := ca.New(ctx, ca.Config{TrustDomain: "spiffe://example.org", Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	e := &asEnv{ca: authority}
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == authserver.PathToken {
			e.requests.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e.srv, err = authserver.New(ctx, authserver.Config{
		Issuer: ts.URL, Store: authserver.NewMemoryStore(nil), TrustDomain: "example.org", SVIDs: authority,
		Agents: []authserver.AgentClient{
			{ID: credentials.MustParseIdentity("spiffe://example.org/agent/research"), Scopes: []string{"notes:read"}},
		},
		Resources:        []authserver.Resource{{URI: notes, Scopes: []string{"notes:read", "notes:write"}}},
		RequireDPoPNonce: requireNonce,
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = e.srv.Handler()
	e.md, err = oauth.DiscoverServer(ctx, fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true}), ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *asEnv) client(t *testing.T, dpopKey *ecdsa.PrivateKey) *oauth.Client {
	id := spiffeid.RequireFromString("spiffe://example.org/agent/research")
	cfg := oauth.ClientConfig{
		ClientID: id.String(),
		Assertion: func(ctx context.Context, aud string) (string, error) {
			tok, _, err := e.ca.NewJWTSVID(ctx, id, []string{aud})
			return tok, err
		},
	}
	if dpopKey != nil {
		cfg.DPoPKey = dpopKey
	}
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCredentialsCachedAndSingleFlight(t *testing.T) {
	e := newAS(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	req := oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}}
	var wg sync.WaitGroup
	toks := make([]*oauth.Token, 10)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token(ctx, req)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("%d token requests for 10 concurrent callers", n)
	}
	claims, err := e.srv.VerifyAccessToken(ctx, toks[0].AccessToken, notes)
	if err != nil || claims.Subject != "spiffe://example.org/agent/research" || claims.Scope != "notes:read" {
		t.Fatalf("token %+v %v", claims, err)
	}
	if _, err := c.Token(ctx, req); err != nil || e.requests.Load() != 1 {
		t.Fatalf("cached token not reused: %v, %d requests", err, e.requests.Load())
	}
	c.Forget(req)
	if _, err := c.Token(ctx, req); err != nil || e.requests.Load() != 2 {
		t.Fatalf("after Forget: %v, %d requests", err, e.requests.Load())
	}
	// The server's refusal comes back as its OAuth error.
	_, err = c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: "https://unknown.example/"})
	if !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidTarget}) {
		t.Fatalf("unknown resource: %v", err)
	}
}

func TestClientTokenExchange(t *testing.T) {
	e := newAS(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	// A token for the agent itself stands in for a user's token.
	subject, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: "spiffe://example.org/agent/research"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}, SubjectToken: subject.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := e.srv.VerifyAccessToken(ctx, tok.AccessToken, notes)
	if err != nil || claims.Actor == nil || claims.Actor.Subject != "spiffe://example.org/agent/research" {
		t.Fatalf("exchanged %+v %v", claims, err)
	}
}

func TestClientDPoPWithNonce(t *testing.T) {
	e := newAS(t, true)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := e.client(t, key)
	tok, err := c.Token(context.Background(), oauth.TokenRequest{Server: e.md, Resource: notes})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != oauth.TokenTypeDPoP || e.requests.Load() != 2 {
		t.Fatalf("token type %s after %d requests (want DPoP after a nonce retry)", tok.TokenType, e.requests.Load())
	}
}

func TestIntrospector(t *testing.T) {
	e := newAS(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	tok, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: notes})
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://example.org/agent/research")
	in, err := oauth.NewIntrospector(oauth.IntrospectorConfig{
		Endpoint: e.md.IntrospectionEndpoint, ClientID: id.String(), Issuer: e.md.Issuer,
		Assertion: func(ctx context.Context, aud string) (string, error) {
			s, _, err := e.ca.NewJWTSVID(ctx, id, []string{aud})
			return s, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ir, err := in.Introspect(ctx, tok.AccessToken)
	if err != nil || !ir.Active || ir.Subject != id.String() || ir.Audience[0] != notes {
		t.Fatalf("active token: %+v %v", ir, err)
	}
	if ir, err := in.Introspect(ctx, "opaque-garbage"); err != nil || ir.Active {
		t.Fatalf("garbage: %+v %v", ir, err)
	}
	bad, _ := oauth.NewIntrospector(oauth.IntrospectorConfig{Endpoint: "http://127.0.0.1:1/introspect", ClientID: "x", Issuer: "y",
		Assertion: func(context.Context, string) (string, error) { return "a", nil }})
	if _, err := bad.Introspect(ctx, "t"); err == nil {
		t.Fatal("unreachable endpoint did not fail closed")
	}
}

func TestClientForgetSubject(t *testing.T) {
	e := newAS(t, false)
	c := e.client(t, nil)
	ctx := context.Background()
	subject, err := c.Token(ctx, oauth.TokenRequest{Server: e.md, Resource: "spiffe://example.org/agent/research"})
	if err != nil {
		t.Fatal(err)
	}
	forAlice := oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}, SubjectToken: subject.AccessToken, Subject: "alice"}
	own := oauth.TokenRequest{Server: e.md, Resource: notes, Scopes: []string{"notes:read"}}
	for _, req := range []oauth.TokenRequest{forAlice, own} {
		if _, err := c.Token(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	before := e.requests.Load()
	if n := c.ForgetSubject("bob"); n != 0 {
		t.Fatalf("ForgetSubject(bob) dropped %d", n)
	}
	if n := c.ForgetSubject("alice"); n != 1 {
		t.Fatalf("ForgetSubject(alice) dropped %d, want 1", n)
	}
	// The client's own token is still cached; alice's is acquired again.
	if _, err := c.Token(ctx, own); err != nil || e.requests.Load() != before {
		t.Fatalf("own token: %v, %d requests (want %d)", err, e.requests.Load(), before)
	}
	if _, err := c.Token(ctx, forAlice); err != nil || e.requests.Load() != before+1 {
		t.Fatalf("alice's token after ForgetSubject: %v, %d requests (want %d)", err, e.requests.Load(), before+1)
	}
}

// TestAssertionTypeByMetadata: without a configured client_assertion_type
// the client sends jwt-spiffe, unless the server lists private_key_jwt and
// not spiffe_jwt (then jwt-bearer, RFC 7523); a configured one is always
// sent.
func TestAssertionTypeByMetadata(t *testing.T) {
	var got atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got.Store(r.PostForm.Get("client_assertion_type"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":60}`))
	}))
	defer ts.Close()
	for _, tt := range []struct {
		name       string
		configured string
		methods    []string
		want       string
	}{
		{"SPIFFE server", "", []string{oauth.AuthPrivateKeyJWT, oauth.AuthSPIFFEJWT}, oauth.AssertionJWTSPIFFE},
		{"no methods listed", "", nil, oauth.AssertionJWTSPIFFE},
		{"private_key_jwt only", "", []string{oauth.AuthClientSecretBasic, oauth.AuthPrivateKeyJWT}, oauth.AssertionJWTBearer},
		{"configured", oauth.AssertionJWTSPIFFE, []string{oauth.AuthPrivateKeyJWT}, oauth.AssertionJWTSPIFFE},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := oauth.NewClient(oauth.ClientConfig{ClientID: "spiffe://example.org/agent/research", AssertionType: tt.configured,
				Assertion: func(context.Context, string) (string, error) { return "assertion", nil }})
			if err != nil {
				t.Fatal(err)
			}
			md := &oauth.ServerMetadata{Issuer: ts.URL, TokenEndpoint: ts.URL, TokenEndpointAuthMethodsSupported: tt.methods}
			if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: md, Resource: notes}); err != nil {
				t.Fatal(err)
			}
			if got.Load() != tt.want {
				t.Fatalf("client_assertion_type %v, want %s", got.Load(), tt.want)
			}
		})
	}
}
