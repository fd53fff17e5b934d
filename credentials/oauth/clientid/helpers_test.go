package clientid_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hostEnv is the host side: a TLS server that serves the Manager's
// documents and JWK Sets.
type hostEnv struct {
	srv     *httptest.Server
	m       *clientid.Manager
	clock   *clock
	keys    clientid.KeyStore
	regs    clientid.RegistrationStore
	handler atomic.Pointer[http.Handler]
}

func (h *hostEnv) docURL(name string) string  { return h.srv.URL + "/clients/" + name + ".json" }
func (h *hostEnv) jwksURL(name string) string { return h.srv.URL + "/clients/" + name + "/jwks.json" }

func (h *hostEnv) workload(name string) clientid.Workload {
	return clientid.Workload{
		Name:        name,
		SPIFFEID:    credentials.MustParseIdentity("spiffe://host.example/agent/" + name),
		ClientName:  "Agent " + name,
		MetadataURL: h.docURL(name),
		JWKSURI:     h.jwksURL(name),
	}
}

// newHost starts the host's server and a Manager for cfg with workload
// research (CIMD URL and JWK Set URL on the host's server) unless
// cfg.Workloads is set. Nil stores in cfg are made in memory and kept in
// the env, so a second Manager can share them.
func newHost(t *testing.T, cfg clientid.Config) *hostEnv {
	t.Helper()
	h := &hostEnv{clock: newClock()}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.handler.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(h.srv.Close)
	if cfg.Keys == nil {
		cfg.Keys = clientid.NewMemoryKeyStore()
	}
	if cfg.Registrations == nil {
		cfg.Registrations = clientid.NewMemoryRegistrationStore()
	}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.Workloads == nil {
		cfg.Workloads = []clientid.Workload{h.workload("research")}
	}
	h.keys, h.regs = cfg.Keys, cfg.Registrations
	h.m = h.manager(t, cfg)
	return h
}

// manager makes a Manager for cfg and serves its handler on the host.
func (h *hostEnv) manager(t *testing.T, cfg clientid.Config) *clientid.Manager {
	t.Helper()
	m, err := clientid.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler := m.Handler()
	h.handler.Store(&handler)
	return m
}

// fakeAS is an authorization server with a token endpoint that
// authenticates private_key_jwt clients (CIMD clients by fetching their
// document and its jwks_uri; registered clients by the JWK Set they
// registered) and a registration endpoint.
type fakeAS struct {
	t   *testing.T
	srv *httptest.Server
	// fetch fetches documents and JWK Sets (the host's server).
	fetch *http.Client

	mu       sync.Mutex
	clients  map[string]registered // registered client_id → client
	refused  map[string]bool       // registered client_ids answered invalid_client
	seenJTI  map[string]bool
	regBody  []map[string]any
	regAuth  []string
	verified []*jose.Token
	// register answers a registration request; nil means 201 with a new
	// client_id.
	register func(w http.ResponseWriter, r *http.Request, body []byte) bool

	// now is the clock assertions are checked against; nil means t0.
	now func() time.Time

	registrations atomic.Int32
	tokenRequests atomic.Int32
}

type registered struct {
	jwksURI string
	jwks    json.RawMessage
}

func newAS(t *testing.T, fetch *http.Client) *fakeAS {
	t.Helper()
	as := &fakeAS{t: t, fetch: fetch, clients: map[string]registered{}, refused: map[string]bool{}, seenJTI: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", as.token)
	mux.HandleFunc("POST /register", as.registration)
	as.srv = httptest.NewTLSServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) clock() time.Time {
	if as.now != nil {
		return as.now()
	}
	return t0
}

// metadata is the server's metadata, as discovery would give it.
func (as *fakeAS) metadata(cimd, registration bool, methods ...string) *oauth.ServerMetadata {
	md := &oauth.ServerMetadata{
		Issuer:                            as.srv.URL,
		TokenEndpoint:                     as.srv.URL + "/token",
		TokenEndpointAuthMethodsSupported: methods,
		ClientIDMetadataDocumentSupported: cimd,
	}
	if registration {
		md.RegistrationEndpoint = as.srv.URL + "/register"
	}
	return md
}

func (as *fakeAS) refuse(clientID string) {
	as.mu.Lock()
	as.refused[clientID] = true
	as.mu.Unlock()
}

func (as *fakeAS) registration(w http.ResponseWriter, r *http.Request) {
	as.registrations.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidClientMetadata, "not JSON"))
		return
	}
	as.mu.Lock()
	as.regBody = append(as.regBody, m)
	as.regAuth = append(as.regAuth, r.Header.Get("Authorization"))
	as.mu.Unlock()
	if as.register != nil && as.register(w, r, body) {
		return
	}
	md, err := clientmeta.Parse(body, 0)
	if err == nil {
		err = clientmeta.Policy{AllowedGrantTypes: clientid.GrantTypes}.ValidateRegistration(md)
	}
	if err != nil {
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidClientMetadata, "%v", err))
		return
	}
	id := fmt.Sprintf("client-%d", as.registrations.Load())
	as.mu.Lock()
	as.clients[id] = registered{jwksURI: md.JWKSURI, jwks: md.JWKS}
	as.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id": id, "client_id_issued_at": t0.Unix(), "token_endpoint_auth_method": md.TokenEndpointAuthMethod,
		"registration_access_token": "rat-" + id, "registration_client_uri": as.srv.URL + "/register/" + id,
		"grant_types": md.GrantTypes,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// token authenticates the client and issues a token: RFC 7523 §3 and
// rfc7523bis (aud the issuer, alone), CIMD §4 (client_id = document URL,
// document fetched without redirects).
func (as *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	as.tokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "form"))
		return
	}
	tok, err := as.authenticate(r.Context(), r.PostForm)
	if err != nil {
		as.t.Logf("fake AS refused the client: %v", err)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidClient, "client authentication failed"))
		return
	}
	as.mu.Lock()
	as.verified = append(as.verified, tok)
	as.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "at-" + tok.ID, "token_type": "Bearer", "expires_in": 300})
}

func (as *fakeAS) authenticate(ctx context.Context, form url.Values) (*jose.Token, error) {
	if form.Get("client_assertion_type") != oauth.AssertionJWTBearer {
		return nil, fmt.Errorf("client_assertion_type %q", form.Get("client_assertion_type"))
	}
	clientID := form.Get("client_id")
	keys, err := as.clientKeys(ctx, clientID)
	if err != nil {
		return nil, err
	}
	tok, err := jose.Verify(ctx, form.Get("client_assertion"), jose.VerifyOptions{
		Types: []jose.Typ{jose.TypJWT}, Algorithms: []jose.Alg{jose.ES256}, Keys: jose.StaticKeys(keys), RequireKID: true,
		Issuer: clientID, Audience: as.srv.URL, RequireSubject: true, Now: as.clock,
	})
	if err != nil {
		return nil, err
	}
	if tok.Subject != clientID {
		return nil, fmt.Errorf("sub %q", tok.Subject)
	}
	if aud, ok := tok.Claims["aud"].(string); !ok || aud != as.srv.URL {
		return nil, fmt.Errorf("aud %v is not the issuer alone", tok.Claims["aud"])
	}
	if tok.ID == "" || tok.IssuedAt.IsZero() || tok.ExpiresAt.Sub(tok.IssuedAt) > time.Minute {
		return nil, fmt.Errorf("jti %q, iat %v, exp %v", tok.ID, tok.IssuedAt, tok.ExpiresAt)
	}
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.seenJTI[tok.ID] {
		return nil, errors.New("jti replayed")
	}
	as.seenJTI[tok.ID] = true
	return tok, nil
}

// clientKeys are the keys of clientID: a metadata document's jwks_uri
// or jwks, or a registered client's.
func (as *fakeAS) clientKeys(ctx context.Context, clientID string) (map[string]crypto.PublicKey, error) {
	var reg registered
	if clientmeta.IsClientIDURL(clientID) {
		body, err := as.get(ctx, clientID)
		if err != nil {
			return nil, err
		}
		md, err := clientmeta.Parse(body, clientmeta.MaxDocumentSize)
		if err != nil {
			return nil, err
		}
		if md.ClientID != clientID || md.TokenEndpointAuthMethod != oauth.AuthPrivateKeyJWT {
			return nil, fmt.Errorf("document client_id %q, method %q", md.ClientID, md.TokenEndpointAuthMethod)
		}
		reg = registered{jwksURI: md.JWKSURI, jwks: md.JWKS}
	} else {
		as.mu.Lock()
		r, ok := as.clients[clientID]
		refused := as.refused[clientID]
		as.mu.Unlock()
		if !ok || refused {
			return nil, fmt.Errorf("unknown client %q", clientID)
		}
		reg = r
	}
	set := []byte(reg.jwks)
	if reg.jwksURI != "" {
		var err error
		if set, err = as.get(ctx, reg.jwksURI); err != nil {
			return nil, err
		}
	}
	return jose.ParseKeySet(set, 0)
}

// get fetches a document without following redirects.
func (as *fakeAS) get(ctx context.Context, u string) ([]byte, error) {
	c := *as.fetch
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d", u, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

// tokenWith gets a client_credentials token at as with id, through the
// real token client.
func tokenWith(t *testing.T, as *fakeAS, md *oauth.ServerMetadata, id *clientid.Identity) (*oauth.Token, error) {
	t.Helper()
	cfg := id.ClientConfig(oauth.ClientConfig{
		HTTPClient: as.srv.Client(),
		Now:        func() time.Time { return t0 },
		Assertion: func(context.Context, string) (string, error) {
			return "", errors.New("the JWT-SVID source must not be used for a private_key_jwt identity")
		},
	})
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Token(context.Background(), oauth.TokenRequest{Server: md})
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	return httptest.NewRequest(method, u, nil)
}
