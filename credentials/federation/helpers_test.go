package federation_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const (
	ownTD     = "own.test"
	foreignTD = "foreign.test"
	otherTD   = "other.test"
	// endpointID is the SPIFFE ID the foreign https_spiffe endpoint
	// presents.
	endpointID = "spiffe://" + foreignTD + "/bundle-endpoint"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// newFakeClock starts a minute ahead of the real time: the CAs run on the
// real clock (TLS verifies with it), and what they issue must not look
// issued in the future to the set.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Add(time.Minute).Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newCA returns a CA of td on the real clock with the given refresh hint
// (zero: the CA's default).
func newCA(t testing.TB, td string, hint time.Duration) *ca.CA {
	t.Helper()
	c, err := ca.New(context.Background(), ca.Config{TrustDomain: td, Journal: &ca.MemoryJournal{}, RefreshHint: hint})
	if err != nil {
		t.Fatalf("ca.New(%s): %v", td, err)
	}
	return c
}

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// endpoint is a bundle endpoint whose behaviour a test can switch; it
// records the request paths.
type endpoint struct {
	*httptest.Server
	mu    sync.Mutex
	h     http.Handler
	paths []string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.paths = append(e.paths, r.URL.Path)
	h := e.h
	e.mu.Unlock()
	h.ServeHTTP(w, r)
}

// set switches what the endpoint serves.
func (e *endpoint) set(h http.Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.h = h
}

// requests returns the paths requested so far.
func (e *endpoint) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.paths...)
}

// url is the bundle URL of the endpoint.
func (e *endpoint) url() string { return e.URL + "/bundle" }

// roots trusts the endpoint's Web PKI certificate.
func (e *endpoint) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(e.Certificate())
	return p
}

// newWebEndpoint serves h over TLS with httptest's certificate.
func newWebEndpoint(t testing.TB, h http.Handler) *endpoint {
	t.Helper()
	e := &endpoint{h: h}
	e.Server = httptest.NewUnstartedServer(e)
	e.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	e.StartTLS()
	t.Cleanup(e.Close)
	return e
}

// newSPIFFEEndpoint serves h over TLS with an X.509-SVID of c for id.
func newSPIFFEEndpoint(t testing.TB, c *ca.CA, id string, h http.Handler) *endpoint {
	t.Helper()
	svid, err := c.NewX509SVID(context.Background(), mustID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{PrivateKey: svid.PrivateKey}
	for _, crt := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, crt.Raw)
	}
	e := &endpoint{h: h}
	e.Server = httptest.NewUnstartedServer(e)
	e.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	e.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.StartTLS()
	t.Cleanup(e.Close)
	return e
}

// serve answers every request with status and body as JSON.
func serve(status int, body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

// bundleJSON is c's bundle with its sequence number replaced by seq
// (seq < 0 removes it).
func bundleJSON(t testing.TB, c *ca.CA, seq int) []byte {
	t.Helper()
	b := c.Bundle()
	if seq < 0 {
		b.ClearSequenceNumber()
	} else {
		b.SetSequenceNumber(uint64(seq))
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// emptyBundle is a bundle with no keys: every SVID of its domain is
// revoked (SPECS.md §10.5).
func emptyBundle(t testing.TB, seq int) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": []any{}, "spiffe_sequence": seq})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// refusal is one OnRefuse call.
type refusal struct {
	td, endpoint string
	err          error
}

// recorder records the callbacks of a Set.
type recorder struct {
	mu       sync.Mutex
	updates  []uint64
	refusals []refusal
}

func (r *recorder) onUpdate(_ string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, seq)
}

func (r *recorder) onRefuse(td, endpoint string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refusals = append(r.refusals, refusal{td, endpoint, err})
}

func (r *recorder) gotUpdates() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.updates...)
}

func (r *recorder) gotRefusals() []refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]refusal(nil), r.refusals...)
}

// newSet builds a set for peers on clock with rec's callbacks, loopback
// endpoints allowed, and own as the own trust domain (nil: none).
func newSet(t testing.TB, clock *fakeClock, rec *recorder, store federation.Store, own *ca.CA, peers ...federation.Peer) *federation.Set {
	t.Helper()
	s, err := federation.New(context.Background(), setConfig(clock, rec, store, own, peers...))
	if err != nil {
		t.Fatalf("federation.New: %v", err)
	}
	return s
}

func setConfig(clock *fakeClock, rec *recorder, store federation.Store, own *ca.CA, peers ...federation.Peer) federation.Config {
	cfg := federation.Config{
		Peers:        peers,
		Store:        store,
		AllowPrivate: true,
		Now:          clock.Now,
	}
	if rec != nil {
		cfg.OnUpdate = rec.onUpdate
		cfg.OnRefuse = rec.onRefuse
	}
	if own != nil {
		cfg.Own = func() *spiffebundle.Bundle { return own.Bundle() }
	}
	return cfg
}

// webPeer is the https_web peer of foreignTD at e.
func webPeer(e *endpoint) federation.Peer {
	return federation.Peer{TrustDomain: foreignTD, EndpointURL: e.url(), Profile: federation.ProfileHTTPSWeb, Roots: e.roots()}
}

// spiffePeer is the https_spiffe peer of foreignTD at e, bootstrapped
// with initial.
func spiffePeer(e *endpoint, id string, initial []byte) federation.Peer {
	return federation.Peer{TrustDomain: foreignTD, EndpointURL: e.url(), Profile: federation.ProfileHTTPSSPIFFE,
		EndpointSPIFFEID: id, Bundle: initial}
}

// newPlainServer serves h over plain HTTP and returns its URL.
func newPlainServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
