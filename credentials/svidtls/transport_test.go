package svidtls_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// stubBase is a base RoundTripper that records the requests it gets and
// answers 204.
type stubBase struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *stubBase) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, req)
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

func (s *stubBase) got() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

// refuseBase is a base RoundTripper that fails the test if it is used.
func refuseBase(t testing.TB) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		t.Errorf("request to %s reached the base transport", req.URL)
		return nil, errors.New("base transport used")
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestTransportRefusesServer points the Transport of an a.test agent at
// servers presenting the wrong certificate for the origin, which expects
// spiffe://b.test/api (or, for the last case, any member of b.test).
func TestTransportRefusesServer(t *testing.T) {
	clock := newFakeClock()
	caA, caB, caC := newCA(t, "a.test", clock), newCA(t, "b.test", clock), newCA(t, "c.test", clock)
	rogueB := newRogueCA(t, "b.test")
	clientBundles := bundles(caA, caB)
	agent := issue(t, caA, "spiffe://a.test/agent/alpha")
	api := mustID(t, "spiffe://b.test/api")

	tests := []struct {
		name  string
		authz svidtls.Authorizer
		cert  func(t *testing.T) *tls.Certificate
		want  []error
	}{{
		name: "other ID of the right trust domain",
		cert: func(t *testing.T) *tls.Certificate { return tlsCert(issue(t, caB, "spiffe://b.test/other")) },
		want: []error{svidtls.ErrPeerNotAuthorized},
	}, {
		name: "valid SVID of another trusted domain",
		cert: func(t *testing.T) *tls.Certificate { return tlsCert(issue(t, caA, "spiffe://a.test/api")) },
		want: []error{svidtls.ErrPeerNotAuthorized},
	}, {
		name: "the right ID from an impostor authority",
		cert: func(t *testing.T) *tls.Certificate { return rogueB.leaf(t, "spiffe://b.test/api", nil) },
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "untrusted trust domain",
		authz: svidtls.AuthorizeAny(),
		cert:  func(t *testing.T) *tls.Certificate { return tlsCert(issue(t, caC, "spiffe://c.test/api")) },
		want:  []error{svidtls.ErrInvalidSVID, credentials.ErrUntrustedDomain},
	}, {
		name:  "Web PKI certificate",
		authz: svidtls.AuthorizeMemberOf(mustTD(t, "b.test")),
		cert: func(*testing.T) *tls.Certificate {
			srv := httptest.NewUnstartedServer(nil)
			srv.StartTLS()
			defer srv.Close()
			return &srv.TLS.Certificates[0]
		},
		want: []error{svidtls.ErrInvalidSVID},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := tt.cert(t)
			srv := serve(t, &tls.Config{
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequestClientCert,
			}, whoami)
			authz := tt.authz
			if authz == nil {
				authz = svidtls.AuthorizeID(api)
			}
			tr, err := svidtls.NewTransport(agent, svidtls.TransportConfig{
				Bundles: clientBundles,
				Origins: map[string]svidtls.Authorizer{srv.URL: authz},
				Base:    refuseBase(t),
				Now:     clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, body, err := get(t, &http.Client{Transport: tr}, srv.URL)
			if err == nil {
				t.Fatalf("request succeeded; the server saw %q", body)
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("error %v, want %v", err, want)
				}
			}
			if srv.conns.Load() == 0 {
				t.Error("no connection reached the server: the refusal is not the handshake's")
			}
		})
	}
}

// TestTransportDelegatesOtherOrigins checks that only the configured
// origin, in any spelling, uses SPIFFE TLS, and that every other request
// reaches the base transport as it was.
func TestTransportDelegatesOtherOrigins(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	base := &stubBase{}
	var (
		mu    sync.Mutex
		dials []string
	)
	errNoNetwork := errors.New("no network in this test")
	tr, err := svidtls.NewTransport(issue(t, c, "spiffe://a.test/agent/alpha"), svidtls.TransportConfig{
		Bundles: bundles(c),
		Origins: map[string]svidtls.Authorizer{"https://b.test:8443": svidtls.AuthorizeAny(), "https://c.test": svidtls.AuthorizeAny()},
		Base:    base,
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			dials = append(dials, addr)
			return nil, errNoNetwork
		},
		Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, u := range []string{
		"https://other.test/x",
		"http://other.test/x",
		"https://b.test/x",       // port 443, not 8443
		"https://b.test:8444/x",  // another port
		"http://b.test:8443/x",   // plain HTTP to the same host and port
		"https://c.test:8443/x",  // c.test is configured on 443 only
		"https://bb.test:8443/x", // another host
	} {
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer opaque")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		_ = resp.Body.Close()
		got := base.got()
		if len(got) == 0 || got[len(got)-1] != req {
			t.Errorf("%s: the base transport did not get the request itself", u)
		}
	}

	for _, u := range []string{
		"https://b.test:8443/x",
		"https://B.TEST:8443/x",
		"https://b.test.:8443/x",
		"HTTPS://b.test:08443/x",
		"https://c.test/x",
		"https://c.test:443/x",
	} {
		before := len(base.got())
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tr.RoundTrip(req)
		if !errors.Is(err, errNoNetwork) {
			t.Errorf("%s: error %v, want the dial's", u, err)
		}
		if len(base.got()) != before {
			t.Errorf("%s: a SPIFFE origin reached the base transport", u)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dials) != 6 {
		t.Errorf("dialed %v, want 6 dials", dials)
	}
}

// TestTransportIdentityIsolation gives two agents their own Transports to
// the same server: each request carries its own agent's SVID, and no
// connection is shared.
func TestTransportIdentityIsolation(t *testing.T) {
	d := newCrossDomain(t)
	clock, caA, set, srv := d.clock, d.caA, d.set, d.srv

	tcfg := svidtls.TransportConfig{
		Bundles: set,
		Origins: map[string]svidtls.Authorizer{srv.URL: svidtls.AuthorizeMemberOf(mustTD(t, "b.test"))},
		Base:    refuseBase(t),
		Now:     clock.Now,
	}
	agents := []string{"spiffe://a.test/agent/alpha", "spiffe://a.test/agent/beta"}
	var clients []*http.Client
	for _, id := range agents {
		tr, err := svidtls.NewTransport(issue(t, caA, id), tcfg)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, &http.Client{Transport: tr})
	}
	for round := range 3 {
		for i, c := range clients {
			_, body, err := get(t, c, srv.URL)
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, agents[i], err)
			}
			if body != agents[i] {
				t.Errorf("round %d: request of %s arrived as %q", round, agents[i], body)
			}
		}
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want one per agent (2)", n)
	}
}

func TestNewTransportRefusesBadConfig(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	svid := issue(t, c, "spiffe://a.test/agent/alpha")
	any := svidtls.AuthorizeAny()
	set := bundles(c)
	for _, tt := range []struct {
		name    string
		svid    x509svid.Source
		bundles x509bundle.Source
		origins map[string]svidtls.Authorizer
	}{
		{name: "no source", bundles: set},
		{name: "no bundles", svid: svid},
		{name: "http origin", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"http://b.test": any}},
		{name: "no scheme", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"b.test:443": any}},
		{name: "path", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://b.test/api": any}},
		{name: "query", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://b.test?x=1": any}},
		{name: "userinfo", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://u@b.test": any}},
		{name: "bad port", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://b.test:70000": any}},
		{name: "no host", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://:443": any}},
		{name: "no authorizer", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://b.test": nil}},
		{name: "same origin twice", svid: svid, bundles: set, origins: map[string]svidtls.Authorizer{"https://b.test": any, "https://B.test:443": any}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svidtls.NewTransport(tt.svid, svidtls.TransportConfig{Bundles: tt.bundles, Origins: tt.origins})
			if !errors.Is(err, svidtls.ErrConfig) {
				t.Errorf("error %v, want ErrConfig", err)
			}
		})
	}
	if _, err := svidtls.NewTransport(svid, svidtls.TransportConfig{Bundles: set, Origins: map[string]svidtls.Authorizer{"https://b.test/": any}}); err != nil {
		t.Errorf("origin with a root path refused: %v", err)
	}
}

// TestCloseIdleConnections checks that closing idle connections reaches
// the base transport too.
func TestCloseIdleConnections(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	base := &closeRecorder{}
	tr, err := svidtls.NewTransport(issue(t, c, "spiffe://a.test/x"), svidtls.TransportConfig{Bundles: bundles(c), Base: base})
	if err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	if !base.closed {
		t.Error("base transport's idle connections not closed")
	}
}

type closeRecorder struct {
	stubBase
	closed bool
}

func (c *closeRecorder) CloseIdleConnections() { c.closed = true }

// TestTransports: a workload's transport is made once and presents that
// workload's SVID; without origins every workload gets the base
// transport; after Close no transport is made.
func TestTransports(t *testing.T) {
	d := newCrossDomain(t)
	clock, caA, set, srv := d.clock, d.caA, d.set, d.srv
	base := &stubBase{}
	ts := svidtls.NewTransports(svidtls.TransportsConfig{Issuer: caA, Bundles: set, Base: base, Now: clock.Now,
		Origins: map[string]svidtls.Authorizer{srv.URL: svidtls.AuthorizeMemberOf(mustTD(t, "b.test"))}})
	alpha := credentials.MustParseIdentity("spiffe://a.test/agent/alpha")
	tr, err := ts.For(alpha)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ts.For(alpha); again != tr {
		t.Error("a second For made another transport")
	}
	if _, body, err := get(t, &http.Client{Transport: tr}, srv.URL); err != nil || body != alpha.String() {
		t.Fatalf("request as alpha arrived as %q: %v", body, err)
	}
	if len(base.got()) != 0 {
		t.Error("a request to the configured origin reached the base transport")
	}
	ts.Close()
	if _, err := ts.For(credentials.MustParseIdentity("spiffe://a.test/agent/beta")); err == nil {
		t.Error("For after Close made a transport")
	}

	none := svidtls.NewTransports(svidtls.TransportsConfig{Issuer: caA, Bundles: set, Base: base})
	if tr, err := none.For(alpha); err != nil || tr != http.RoundTripper(base) {
		t.Errorf("without origins: %v %v, want the base transport", tr, err)
	}
}
