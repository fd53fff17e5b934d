package signals

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

const (
	testAudience = "https://receiver.example"
	tokenA       = "token-a"
	tokenB       = "token-b"
	clientB      = "client-b"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testFetcher may reach loopback test servers over http.
func testFetcher() *fetch.Fetcher {
	return fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true})
}

// lateHandler lets a server start before the handler it serves exists.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }
func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := l.h.Load()
	if p == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	(*p).ServeHTTP(w, r)
}

// bearerAuthorize maps bearer tokens to client ids.
func bearerAuthorize(r *http.Request) (string, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer " + tokenA:
		return testAudience, nil
	case "Bearer " + tokenB:
		return clientB, nil
	case "Bearer denied":
		return "", ErrAccessDenied
	}
	return "", ErrAuthenticationFailed
}

// transmitterEnv is a Transmitter served over httptest.
type transmitterEnv struct {
	tr  *Transmitter
	srv *httptest.Server
	key *ecdsa.PrivateKey
}

func newTransmitterEnv(t *testing.T, mod func(*TransmitterConfig)) *transmitterEnv {
	t.Helper()
	lh := &lateHandler{}
	srv := httptest.NewServer(lh)
	t.Cleanup(srv.Close)
	key := newKey(t)
	cfg := TransmitterConfig{
		Issuer:           srv.URL,
		Signer:           key,
		KeyID:            "tk1",
		Authorize:        bearerAuthorize,
		AllowHTTPPush:    true,
		AllowPrivatePush: true,
		PushBackoff:      10 * time.Millisecond,
		PushAttempts:     3,
		LongPollMax:      300 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTransmitter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	lh.set(tr.Handler())
	return &transmitterEnv{tr: tr, srv: srv, key: key}
}

func (e *transmitterEnv) streamClient(t *testing.T, token string) *StreamClient {
	t.Helper()
	c, err := NewStreamClient(StreamClientConfig{
		Issuer:    e.srv.URL,
		Fetcher:   testFetcher(),
		Token:     func(context.Context) (string, error) { return token, nil },
		AllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder is a Handler that records events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	fail   error
}

func (r *recorder) HandleEvent(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setClaims returns the claims of a valid session-revoked SET.
func validClaims(iss string) map[string]any {
	return map[string]any{
		"iss": iss,
		"aud": testAudience,
		"iat": time.Now().Unix(),
		"jti": randomID(),
		"sub_id": map[string]any{
			"format": "complex",
			"user":   map[string]any{"format": "email", "email": "alice@example.com"},
			"tenant": map[string]any{"format": "opaque", "id": "t-1"},
		},
		"events": map[string]any{
			EventSessionRevoked: map[string]any{
				"event_timestamp":   time.Now().Unix() - 10,
				"initiating_entity": "policy",
				"reason_admin":      map[string]any{"en": "Landspeed policy violation"},
			},
		},
	}
}

func mint(t testing.TB, key crypto.Signer, kid string, typ jose.Typ, claims map[string]any) string {
	t.Helper()
	s, err := jose.Sign(context.Background(), key, kid, typ, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves transmitter metadata and a JWK Set for iss, which
// tests can change.
type jwksServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.SetKey
	issuer  string // metadata issuer; "" means the server URL
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, keys ...jose.SetKey) *jwksServer {
	t.Helper()
	js := &jwksServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+WellKnownPath, func(w http.ResponseWriter, r *http.Request) {
		js.mu.Lock()
		iss := js.issuer
		js.mu.Unlock()
		if iss == "" {
			iss = js.srv.URL
		}
		writeJSON(w, http.StatusOK, TransmitterMetadata{SpecVersion: SpecVersion, Issuer: iss, JWKSURI: js.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		b, err := jose.MarshalKeySet(js.keys)
		js.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	js.srv = httptest.NewServer(mux)
	t.Cleanup(js.srv.Close)
	return js
}

func (js *jwksServer) setKeys(keys ...jose.SetKey) {
	js.mu.Lock()
	js.keys = keys
	js.mu.Unlock()
}

// receiverFor discovers js and returns a receiver trusting it.
func receiverFor(t *testing.T, js *jwksServer, h Handler, mod func(*ReceiverConfig)) *Receiver {
	t.Helper()
	md, err := DiscoverTransmitter(context.Background(), testFetcher(), js.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySet(KeySetConfig{Fetcher: testFetcher(), URL: md.JWKSURI})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ReceiverConfig{Issuer: md.Issuer, Audience: testAudience, Keys: ks.Key, Handler: h}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func postSET(t *testing.T, h http.Handler, method, contentType, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, "/events", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// strictFetcher returns a fetcher with the default address checks (http allowed so
// that the address check is what refuses).
func strictFetcher() *fetch.Fetcher { return fetch.New(fetch.Config{AllowHTTP: true}) }
