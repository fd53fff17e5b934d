package svidtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// t0 starts every fake clock. It lies years after any real clock a test
// runs on, so a certificate checked against the real time instead of the
// configured clock fails as not yet valid.
var t0 = time.Date(2031, 1, 1, 10, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newCA returns the CA of trust domain td, with an in-memory journal.
func newCA(t testing.TB, td string, clock *fakeClock) *ca.CA {
	t.Helper()
	c, err := ca.New(context.Background(), ca.Config{
		TrustDomain: td,
		Journal:     &ca.MemoryJournal{},
		Now:         clock.Now,
	})
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

func mustTD(t testing.TB, s string) spiffeid.TrustDomain {
	t.Helper()
	td, err := spiffeid.TrustDomainFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// issue returns an X509-SVID for id from c.
func issue(t testing.TB, c *ca.CA, id string) *x509svid.SVID {
	t.Helper()
	svid, err := c.NewX509SVID(context.Background(), mustID(t, id))
	if err != nil {
		t.Fatalf("NewX509SVID(%s): %v", id, err)
	}
	return svid
}

// issuer returns an issue function for id from c that counts its calls
// and fails while fail is set.
type issuer struct {
	t     testing.TB
	ca    *ca.CA
	id    string
	calls atomic.Int32
	fail  atomic.Bool
}

var errIssuerDown = errors.New("issuer down")

func (i *issuer) Issue(ctx context.Context) (*x509svid.SVID, error) {
	i.calls.Add(1)
	if i.fail.Load() {
		return nil, errIssuerDown
	}
	return i.ca.NewX509SVID(ctx, mustID(i.t, i.id))
}

// bundles returns a bundle set holding the X.509 bundle of each CA.
func bundles(cas ...*ca.CA) *x509bundle.Set {
	set := x509bundle.NewSet()
	for _, c := range cas {
		set.Add(c.Bundle().X509Bundle())
	}
	return set
}

// rogueCA is an authority made by hand, to build certificates credentials/ca
// would never issue. Put its bundle in a bundle source to make it trusted.
type rogueCA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newRogueCA(t testing.TB, td string) *rogueCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tdID := mustTD(t, td)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{tdID.ID().URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &rogueCA{td: tdID, cert: cert, key: key}
}

func (r *rogueCA) bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(r.td, []*x509.Certificate{r.cert})
}

// leaf signs a leaf certificate for uris (a well-formed X509-SVID unless
// mutate changes it) and returns it as a TLS certificate.
func (r *rogueCA) leaf(t testing.TB, uri string, mutate func(*x509.Certificate)) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		NotBefore:             t0.Add(-time.Minute),
		NotAfter:              t0.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	if mutate != nil {
		mutate(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.cert, &key.PublicKey, r.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsCert returns svid as a TLS certificate.
func tlsCert(svid *x509svid.SVID) *tls.Certificate {
	cert := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, c := range svid.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert
}

// server is an HTTPS server on the loopback interface.
type server struct {
	URL   string
	conns atomic.Int32 // connections accepted
}

// serve serves h with cfg on a loopback port until the test ends.
func serve(t testing.TB, cfg *tls.Config, h http.Handler) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{URL: "https://" + ln.Addr().String()}
	srv := &http.Server{
		Handler:   h,
		TLSConfig: cfg,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ServeTLS(ln, "", "")
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// whoami answers with the client's SPIFFE ID, or "none".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := svidtls.PeerID(r)
	if !ok {
		_, _ = io.WriteString(w, "none")
		return
	}
	_, _ = io.WriteString(w, id.String())
})

// get sends GET url with c and returns the response body.
func get(t testing.TB, c *http.Client, url string) (*http.Response, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	return resp, string(b), nil
}

// handshake runs a TLS handshake between a server with srvCfg and a client
// with cliCfg over a loopback TCP connection (whose buffers, unlike
// net.Pipe's, let both sides write a whole flight). On success the server
// sends one byte, which the client reads, so a client refused after it
// finished its side of a TLS 1.3 handshake sees the server's alert.
func handshake(t testing.TB, srvCfg, cliCfg *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	srvErr, cliErr, _ = handshakeState(t, srvCfg, cliCfg)
	return srvErr, cliErr
}

// handshakeState is handshake, also returning the client's connection
// state.
func handshakeState(t testing.TB, srvCfg, cliCfg *tls.Config) (srvErr, cliErr error, cs tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		s := tls.Server(conn, srvCfg)
		err = s.HandshakeContext(context.Background())
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		_ = s.Close()
		srvDone <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(conn, cliCfg)
	cliErr = c.HandshakeContext(context.Background())
	if cliErr == nil {
		var b [1]byte
		_, cliErr = io.ReadFull(c, b[:])
	}
	cs = c.ConnectionState()
	_ = c.Close()
	return <-srvDone, cliErr, cs
}

// clientWith returns a client TLS configuration that presents cert (none
// when nil) and accepts any server certificate.
func clientWith(cert *tls.Certificate, version uint16) *tls.Config {
	return &tls.Config{
		MinVersion:         version,
		MaxVersion:         version,
		InsecureSkipVerify: true, //nolint:gosec // test client; the server is under test
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}
}

// logRecorder is a slog handler that keeps the messages it receives.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) has(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// crossDomain is a server of trust domain b.test (spiffe://b.test/api,
// answering whoami) that admits clients of a.test, each side holding both
// domains' bundles.
type crossDomain struct {
	clock *fakeClock
	caA   *ca.CA // the clients' CA
	set   *x509bundle.Set
	srv   *server
}

func newCrossDomain(t testing.TB) *crossDomain {
	t.Helper()
	clock := newFakeClock()
	caA, caB := newCA(t, "a.test", clock), newCA(t, "b.test", clock)
	set := bundles(caA, caB)
	cfg, err := svidtls.ServerConfig(issue(t, caB, "spiffe://b.test/api"), set, svidtls.ServerOptions{
		Authorizer: svidtls.AuthorizeMemberOf(mustTD(t, "a.test")),
		Now:        clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &crossDomain{clock: clock, caA: caA, set: set, srv: serve(t, cfg, whoami)}
}
