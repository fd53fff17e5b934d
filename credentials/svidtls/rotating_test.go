package svidtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// fakeTimer stands in for time.After: Run's waits arrive on waits, and the
// test fires each by sending on its channel.
type fakeTimer struct {
	waits chan wait
}

type wait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeTimer() *fakeTimer { return &fakeTimer{waits: make(chan wait)} }

func (f *fakeTimer) After(d time.Duration) <-chan time.Time {
	w := wait{d: d, fire: make(chan time.Time, 1)}
	f.waits <- w
	return w.fire
}

// next returns Run's next wait.
func (f *fakeTimer) next(t *testing.T) wait {
	t.Helper()
	return <-f.waits
}

func newRotating(t *testing.T, clock *fakeClock, is *issuer, timer *fakeTimer, log *slog.Logger) *svidtls.Rotating {
	t.Helper()
	cfg := svidtls.RotatingConfig{
		Issue:    is.Issue,
		RetryMin: time.Second,
		RetryMax: 8 * time.Second,
		Now:      clock.Now,
		Logger:   log,
	}
	if timer != nil {
		cfg.After = timer.After
	}
	r, err := svidtls.NewRotating(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func current(t *testing.T, r *svidtls.Rotating) *x509svid.SVID {
	t.Helper()
	svid, err := r.GetX509SVID()
	if err != nil {
		t.Fatalf("GetX509SVID: %v", err)
	}
	return svid
}

// TestRotatingRun drives Run through a renewal at half life, failed
// renewals with backoff, recovery, and a clean stop.
func TestRotatingRun(t *testing.T) {
	clock := newFakeClock()
	is := &issuer{t: t, ca: newCA(t, "a.test", clock), id: "spiffe://a.test/agent/alpha"}
	timer := newFakeTimer()
	logs := &logRecorder{}
	r := newRotating(t, clock, is, timer, slog.New(logs))
	first := current(t, r)
	leaf := first.Certificates[0]
	half := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if got := r.NextRenewal(); !got.Equal(half) {
		t.Fatalf("NextRenewal %s, want half life %s", got, half)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	w := timer.next(t)
	if want := half.Sub(t0); w.d != want {
		t.Errorf("first wait %s, want %s", w.d, want)
	}
	if is.calls.Load() != 1 {
		t.Errorf("issued %d times before the renewal time, want 1", is.calls.Load())
	}
	clock.Set(half)
	w.fire <- half

	// Run renewed before it asked for its next wait.
	w = timer.next(t)
	second := current(t, r)
	if second == first || second.Certificates[0].SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("the SVID was not renewed")
	}
	if !logs.has("INFO X509-SVID renewed") {
		t.Error("renewal not logged")
	}
	leaf2 := second.Certificates[0]
	half2 := leaf2.NotBefore.Add(leaf2.NotAfter.Sub(leaf2.NotBefore) / 2)
	if want := half2.Sub(half); w.d != want {
		t.Errorf("wait after renewal %s, want %s", w.d, want)
	}

	// Failures keep the SVID and back off 1s, 2s, 4s, 8s, 8s.
	is.fail.Store(true)
	now := half2
	clock.Set(now)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		w.fire <- now
		w = timer.next(t)
		if w.d != want {
			t.Errorf("wait after failure %d: %s, want %s", i+1, w.d, want)
		}
		if current(t, r) != second {
			t.Fatalf("failure %d replaced the SVID", i+1)
		}
		now = now.Add(w.d)
		clock.Set(now)
	}
	if !logs.has("WARN X509-SVID renewal failed") {
		t.Error("failed renewal not logged")
	}

	// Recovery: the next renewal succeeds and the schedule is half life
	// again.
	is.fail.Store(false)
	w.fire <- now
	w = timer.next(t)
	third := current(t, r)
	if third == second {
		t.Fatal("the SVID was not renewed after recovery")
	}
	if want := renewalOf(third).Sub(now); w.d != want {
		t.Errorf("wait after recovery %s, want %s", w.d, want)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancellation, want nil", err)
	}
}

func renewalOf(svid *x509svid.SVID) time.Time {
	leaf := svid.Certificates[0]
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
}

// TestRotatingExpires checks that an SVID that could not be renewed is not
// presented after it expires, and that a renewal brings it back.
func TestRotatingExpires(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	is := &issuer{t: t, ca: c, id: "spiffe://a.test/host"}
	r := newRotating(t, clock, is, nil, nil)
	leaf := current(t, r).Certificates[0]

	is.fail.Store(true)
	clock.Set(leaf.NotAfter.Add(-time.Second))
	if err := r.Renew(context.Background()); !errors.Is(err, errIssuerDown) {
		t.Fatalf("Renew: %v, want the issuer's error", err)
	}
	current(t, r) // still valid for a second

	clock.Set(leaf.NotAfter)
	if _, err := r.GetX509SVID(); !errors.Is(err, svidtls.ErrExpired) {
		t.Fatalf("GetX509SVID after expiry: %v, want ErrExpired", err)
	}
	// A server with this source completes no handshake.
	cfg, err := svidtls.ServerConfig(r, bundles(c), svidtls.ServerOptions{
		ClientCerts: svidtls.OptionalClientSVID,
		Authorizer:  svidtls.AuthorizeAny(),
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if srvErr, _ := handshake(t, cfg, clientWith(nil, tls.VersionTLS13)); !errors.Is(srvErr, svidtls.ErrExpired) {
		t.Errorf("handshake with an expired SVID: server error %v, want ErrExpired", srvErr)
	}

	is.fail.Store(false)
	if err := r.Renew(context.Background()); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	current(t, r)
}

// TestRotatingRefusesBadSVID checks that an issue function returning an
// unusable SVID fails the renewal and leaves the current one.
func TestRotatingRefusesBadSVID(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	other := newCA(t, "b.test", clock)
	good := issue(t, c, "spiffe://a.test/agent/alpha")
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		svid func() *x509svid.SVID
		at   time.Time
	}{
		{name: "nil", svid: func() *x509svid.SVID { return nil }},
		{name: "no certificate", svid: func() *x509svid.SVID { return &x509svid.SVID{ID: good.ID, PrivateKey: good.PrivateKey} }},
		{name: "other workload", svid: func() *x509svid.SVID { return issue(t, c, "spiffe://a.test/agent/beta") }},
		{name: "other trust domain", svid: func() *x509svid.SVID { return issue(t, other, "spiffe://b.test/agent/alpha") }},
		{name: "ID differs from certificate", svid: func() *x509svid.SVID {
			s := issue(t, c, "spiffe://a.test/agent/beta")
			s.ID = good.ID
			return s
		}},
		{name: "key of another certificate", svid: func() *x509svid.SVID {
			s := issue(t, c, "spiffe://a.test/agent/alpha")
			s.PrivateKey = otherKey
			return s
		}},
		{name: "no key", svid: func() *x509svid.SVID {
			s := issue(t, c, "spiffe://a.test/agent/alpha")
			s.PrivateKey = nil
			return s
		}},
		{name: "already expired", svid: func() *x509svid.SVID { return issue(t, c, "spiffe://a.test/agent/alpha") }, at: t0.Add(2 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(t0)
			var (
				renewing bool
				next     *x509svid.SVID
			)
			r, err := svidtls.NewRotating(context.Background(), svidtls.RotatingConfig{
				Issue: func(context.Context) (*x509svid.SVID, error) {
					if renewing {
						return next, nil
					}
					return good, nil
				},
				Now: clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			next, renewing = tt.svid(), true
			if !tt.at.IsZero() {
				clock.Set(tt.at)
			}
			if err := r.Renew(context.Background()); !errors.Is(err, svidtls.ErrInvalidSVID) {
				t.Errorf("Renew: %v, want ErrInvalidSVID", err)
			}
			clock.Set(t0)
			if got := current(t, r); got != good {
				t.Error("a refused SVID replaced the current one")
			}
		})
	}
}

func TestNewRotatingErrors(t *testing.T) {
	if _, err := svidtls.NewRotating(context.Background(), svidtls.RotatingConfig{}); !errors.Is(err, svidtls.ErrConfig) {
		t.Errorf("no issue function: %v, want ErrConfig", err)
	}
	fail := func(context.Context) (*x509svid.SVID, error) { return nil, errIssuerDown }
	if _, err := svidtls.NewRotating(context.Background(), svidtls.RotatingConfig{Issue: fail}); !errors.Is(err, errIssuerDown) {
		t.Errorf("failing first issue: %v, want the issuer's error", err)
	}
	none := func(context.Context) (*x509svid.SVID, error) { return nil, nil }
	if _, err := svidtls.NewRotating(context.Background(), svidtls.RotatingConfig{Issue: none}); !errors.Is(err, svidtls.ErrInvalidSVID) {
		t.Errorf("first issue without SVID: %v, want ErrInvalidSVID", err)
	}
	ok := func(context.Context) (*x509svid.SVID, error) { return nil, errors.New("unused") }
	if _, err := svidtls.NewRotating(context.Background(), svidtls.RotatingConfig{Issue: ok, RetryMin: time.Minute, RetryMax: time.Second}); !errors.Is(err, svidtls.ErrConfig) {
		t.Errorf("RetryMax below RetryMin: %v, want ErrConfig", err)
	}
}

// TestServerRotation checks that after the server's SVID is renewed a new
// connection gets the new certificate while an open keep-alive connection
// keeps working with the old one; and the same for the client's SVID.
func TestServerRotation(t *testing.T) {
	clock := newFakeClock()
	caA, caB := newCA(t, "a.test", clock), newCA(t, "b.test", clock)
	set := bundles(caA, caB)
	srvSVID := newRotating(t, clock, &issuer{t: t, ca: caB, id: "spiffe://b.test/api"}, nil, nil)
	cliSVID := newRotating(t, clock, &issuer{t: t, ca: caA, id: "spiffe://a.test/agent/alpha"}, nil, nil)

	cfg, err := svidtls.ServerConfig(srvSVID, set, svidtls.ServerOptions{
		Authorizer: svidtls.AuthorizeMemberOf(mustTD(t, "a.test")),
		Now:        clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The handler answers with the serial number of the client's
	// certificate.
	srv := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.TLS.PeerCertificates[0].SerialNumber.String()))
	}))
	newClient := func() *http.Client {
		tr, err := svidtls.NewTransport(cliSVID, svidtls.TransportConfig{
			Bundles: set,
			Origins: map[string]svidtls.Authorizer{srv.URL: svidtls.AuthorizeMemberOf(mustTD(t, "b.test"))},
			Base:    refuseBase(t),
			Now:     clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr}
	}
	// call returns the serial numbers of the server's and the client's
	// certificates and whether the connection was reused.
	call := func(c *http.Client) (srvSerial, cliSerial string, reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body, err := doReq(c, req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), body, reused
	}
	serial := func(s *svidtls.Rotating) string { return current(t, s).Certificates[0].SerialNumber.String() }

	old := newClient()
	s1, c1, _ := call(old)
	if s1 != serial(srvSVID) || c1 != serial(cliSVID) {
		t.Fatal("the first connection does not carry the current SVIDs")
	}

	if err := srvSVID.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cliSVID.Renew(context.Background()); err != nil {
		t.Fatal(err)
	}
	if serial(srvSVID) == s1 || serial(cliSVID) == c1 {
		t.Fatal("Renew did not change the SVIDs")
	}

	s2, c2, reused := call(old)
	if !reused {
		t.Fatal("the keep-alive connection was not reused")
	}
	if s2 != s1 || c2 != c1 {
		t.Error("the open connection changed certificates")
	}

	s3, c3, reused := call(newClient())
	if reused {
		t.Fatal("a new Transport reused a connection")
	}
	if s3 != serial(srvSVID) {
		t.Error("a new connection did not get the server's new certificate")
	}
	if c3 != serial(cliSVID) {
		t.Error("a new connection did not present the client's new certificate")
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}

func doReq(c *http.Client, req *http.Request) (*http.Response, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}
