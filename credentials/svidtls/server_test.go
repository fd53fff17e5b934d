package svidtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
)

// TestMTLSAcrossTrustDomains connects a client of trust domain a.test to a
// server of trust domain b.test; each side holds both bundles.
func TestMTLSAcrossTrustDomains(t *testing.T) {
	d := newCrossDomain(t)
	clock, caA, set, srv := d.clock, d.caA, d.set, d.srv

	tr, err := svidtls.NewTransport(issue(t, caA, "spiffe://a.test/agent/alpha"), svidtls.TransportConfig{
		Bundles: set,
		Origins: map[string]svidtls.Authorizer{srv.URL: svidtls.AuthorizeID(mustID(t, "spiffe://b.test/api"))},
		Base:    refuseBase(t),
		Now:     clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := get(t, &http.Client{Transport: tr}, srv.URL+"/whoami")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	if body != "spiffe://a.test/agent/alpha" {
		t.Errorf("server saw client %q, want spiffe://a.test/agent/alpha", body)
	}
	if id, ok := svidtls.PeerIDFromState(resp.TLS); !ok || id.String() != "spiffe://b.test/api" {
		t.Errorf("client saw server %v (%v), want spiffe://b.test/api", id, ok)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want TLS 1.3", resp.TLS.Version)
	}
}

// TestServerRefusesClient presents bad client certificates to a server of
// b.test that trusts a.test (federated) and b.test, and authorizes
// members of a.test. Each must fail the handshake in both client
// certificate modes: a bad certificate never degrades to "no certificate".
func TestServerRefusesClient(t *testing.T) {
	clock := newFakeClock()
	caA, caB, caC := newCA(t, "a.test", clock), newCA(t, "b.test", clock), newCA(t, "c.test", clock)
	rogueA := newRogueCA(t, "a.test") // claims a.test, not in any bundle
	rogueD := newRogueCA(t, "d.test") // trusted for d.test only
	serverSVID := issue(t, caB, "spiffe://b.test/api")
	trusted := x509bundle.NewSet(caA.Bundle().X509Bundle(), caB.Bundle().X509Bundle(), rogueD.bundle())
	trustedWithC := x509bundle.NewSet(caA.Bundle().X509Bundle(), caB.Bundle().X509Bundle(), caC.Bundle().X509Bundle(), rogueD.bundle())
	alpha := tlsCert(issue(t, caA, "spiffe://a.test/agent/alpha"))

	tests := []struct {
		name    string
		bundles x509bundle.Source
		authz   svidtls.Authorizer
		cert    func(t *testing.T) *tls.Certificate
		at      func() // sets the clock before the handshake
		want    []error
	}{{
		name: "unfederated trust domain",
		cert: func(t *testing.T) *tls.Certificate { return tlsCert(issue(t, caC, "spiffe://c.test/agent/x")) },
		want: []error{svidtls.ErrInvalidSVID, credentials.ErrUntrustedDomain},
	}, {
		name:    "federated trust domain not authorized",
		bundles: trustedWithC,
		cert:    func(t *testing.T) *tls.Certificate { return tlsCert(issue(t, caC, "spiffe://c.test/agent/x")) },
		want:    []error{svidtls.ErrPeerNotAuthorized},
	}, {
		name:  "valid SVID, other ID than authorized",
		authz: svidtls.AuthorizeID(mustID(t, "spiffe://a.test/agent/beta")),
		cert:  func(*testing.T) *tls.Certificate { return alpha },
		want:  []error{svidtls.ErrPeerNotAuthorized},
	}, {
		name: "impostor authority for a trusted domain",
		cert: func(t *testing.T) *tls.Certificate { return rogueA.leaf(t, "spiffe://a.test/agent/alpha", nil) },
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "authority of one domain signing for another",
		authz: svidtls.AuthorizeAny(),
		cert:  func(t *testing.T) *tls.Certificate { return rogueD.leaf(t, "spiffe://a.test/agent/alpha", nil) },
		want:  []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "leaf without digitalSignature",
		authz: svidtls.AuthorizeAny(),
		cert: func(t *testing.T) *tls.Certificate {
			return rogueD.leaf(t, "spiffe://d.test/x", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyAgreement })
		},
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "leaf is a CA",
		authz: svidtls.AuthorizeAny(),
		cert: func(t *testing.T) *tls.Certificate {
			return rogueD.leaf(t, "spiffe://d.test/x", func(c *x509.Certificate) {
				c.IsCA = true
				c.KeyUsage |= x509.KeyUsageCertSign
			})
		},
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "two URI SANs",
		authz: svidtls.AuthorizeAny(),
		cert: func(t *testing.T) *tls.Certificate {
			return rogueD.leaf(t, "spiffe://d.test/x", func(c *x509.Certificate) {
				c.URIs = append(c.URIs, &url.URL{Scheme: "spiffe", Host: "a.test", Path: "/agent/alpha"})
			})
		},
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name:  "web certificate without SPIFFE ID",
		authz: svidtls.AuthorizeAny(),
		cert: func(t *testing.T) *tls.Certificate {
			return rogueD.leaf(t, "spiffe://d.test/x", func(c *x509.Certificate) {
				c.URIs = nil
				c.DNSNames = []string{"a.test"}
			})
		},
		want: []error{svidtls.ErrInvalidSVID},
	}, {
		name: "expired SVID",
		cert: func(*testing.T) *tls.Certificate { return alpha },
		at:   func() { clock.Set(alpha.Leaf.NotAfter.Add(time.Second)) },
		want: []error{svidtls.ErrInvalidSVID},
	}}
	for _, mode := range []svidtls.ClientCertMode{svidtls.RequireClientSVID, svidtls.OptionalClientSVID} {
		for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
			for _, tt := range tests {
				name := mode.String() + "/" + tls.VersionName(version) + "/" + tt.name
				t.Run(name, func(t *testing.T) {
					clock.Set(t0)
					if tt.at != nil {
						tt.at()
					}
					b := tt.bundles
					if b == nil {
						b = trusted
					}
					authz := tt.authz
					if authz == nil {
						authz = svidtls.AuthorizeMemberOf(mustTD(t, "a.test"))
					}
					var refused []error
					cfg, err := svidtls.ServerConfig(serverSVID, b, svidtls.ServerOptions{
						ClientCerts: mode,
						Authorizer:  authz,
						Now:         clock.Now,
						OnRefuse:    func(_ string, err error) { refused = append(refused, err) },
					})
					if err != nil {
						t.Fatal(err)
					}
					srvErr, cliErr := handshake(t, cfg, clientWith(tt.cert(t), version))
					if cliErr == nil {
						t.Error("client completed the handshake and read data")
					}
					if len(refused) != 1 || !errors.Is(refused[0], tt.want[0]) {
						t.Errorf("OnRefuse got %v, want one %v", refused, tt.want[0])
					}
					for _, want := range tt.want {
						if !errors.Is(srvErr, want) {
							t.Errorf("server error %v, want %v", srvErr, want)
						}
					}
				})
			}
		}
	}

	// The same server accepts the good client, so the refusals above are
	// about the certificates.
	for _, mode := range []svidtls.ClientCertMode{svidtls.RequireClientSVID, svidtls.OptionalClientSVID} {
		clock.Set(t0)
		refused := 0
		cfg, err := svidtls.ServerConfig(serverSVID, trusted, svidtls.ServerOptions{
			ClientCerts: mode,
			Authorizer:  svidtls.AuthorizeMemberOf(mustTD(t, "a.test")),
			Now:         clock.Now,
			OnRefuse:    func(string, error) { refused++ },
		})
		if err != nil {
			t.Fatal(err)
		}
		if srvErr, cliErr := handshake(t, cfg, clientWith(alpha, tls.VersionTLS13)); srvErr != nil || cliErr != nil || refused != 0 {
			t.Errorf("%s: good client refused: server %v, client %v, OnRefuse %d", mode, srvErr, cliErr, refused)
		}
	}
}

// TestClientCertModes checks what each mode does with a client that
// presents no certificate, over HTTP, and what PeerID reports.
func TestClientCertModes(t *testing.T) {
	clock := newFakeClock()
	caA, caB, caC := newCA(t, "a.test", clock), newCA(t, "b.test", clock), newCA(t, "c.test", clock)
	set := bundles(caA, caB)
	serverSVID := issue(t, caB, "spiffe://b.test/api")
	agentSVID := issue(t, caA, "spiffe://a.test/agent/alpha")
	strangerSVID := issue(t, caC, "spiffe://c.test/agent/x")

	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // a client without SVID; the server is under test
	}}}
	withCert := func(svid *tlsCertHolder) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify:   true, //nolint:gosec // test client
			GetClientCertificate: svid.get,
		}}}
	}

	for _, tt := range []struct {
		mode                 svidtls.ClientCertMode
		plainOK              bool
		wantPlain, wantAgent string
	}{
		{mode: svidtls.OptionalClientSVID, plainOK: true, wantPlain: "none", wantAgent: "spiffe://a.test/agent/alpha"},
		{mode: svidtls.RequireClientSVID, plainOK: false, wantAgent: "spiffe://a.test/agent/alpha"},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			cfg, err := svidtls.ServerConfig(serverSVID, set, svidtls.ServerOptions{
				ClientCerts: tt.mode,
				Authorizer:  svidtls.AuthorizeMemberOf(mustTD(t, "a.test")),
				Now:         clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			srv := serve(t, cfg, whoami)

			_, body, err := get(t, plain, srv.URL)
			switch {
			case tt.plainOK && err != nil:
				t.Errorf("client without certificate refused: %v", err)
			case tt.plainOK && body != tt.wantPlain:
				t.Errorf("PeerID of a client without certificate = %q, want %q", body, tt.wantPlain)
			case !tt.plainOK && err == nil:
				t.Errorf("client without certificate accepted, PeerID %q", body)
			}

			_, body, err = get(t, withCert(&tlsCertHolder{tlsCert(agentSVID)}), srv.URL)
			if err != nil || body != tt.wantAgent {
				t.Errorf("agent: PeerID %q, err %v; want %q", body, err, tt.wantAgent)
			}

			_, body, err = get(t, withCert(&tlsCertHolder{tlsCert(strangerSVID)}), srv.URL)
			if err == nil {
				t.Errorf("client of an unfederated domain accepted, PeerID %q", body)
			}
		})
	}
}

type tlsCertHolder struct{ cert *tls.Certificate }

func (h *tlsCertHolder) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return h.cert, nil
}

func TestPeerIDWithoutVerifiedPeer(t *testing.T) {
	if _, ok := svidtls.PeerID(&http.Request{}); ok {
		t.Error("PeerID of a plain HTTP request reported an ID")
	}
	clock := newFakeClock()
	leaf := tlsCert(issue(t, newCA(t, "a.test", clock), "spiffe://a.test/x")).Leaf
	if _, ok := svidtls.PeerIDFromState(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}); ok {
		t.Error("PeerIDFromState reported an ID for an incomplete handshake")
	}
	if id, ok := svidtls.PeerIDFromState(&tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}}); !ok || id.String() != "spiffe://a.test/x" {
		t.Errorf("PeerIDFromState = %v, %v", id, ok)
	}
}

func TestServerConfigRefusesBadOptions(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	svid := issue(t, c, "spiffe://a.test/host")
	set := bundles(c)
	authz := svidtls.AuthorizeAny()
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"no source", func() error {
			_, err := svidtls.ServerConfig(nil, set, svidtls.ServerOptions{Authorizer: authz})
			return err
		}},
		{"no bundles", func() error {
			_, err := svidtls.ServerConfig(svid, nil, svidtls.ServerOptions{Authorizer: authz})
			return err
		}},
		{"no authorizer", func() error {
			_, err := svidtls.ServerConfig(svid, set, svidtls.ServerOptions{ClientCerts: svidtls.OptionalClientSVID})
			return err
		}},
		{"unknown mode", func() error {
			_, err := svidtls.ServerConfig(svid, set, svidtls.ServerOptions{Authorizer: authz, ClientCerts: 7})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, svidtls.ErrConfig) {
				t.Errorf("error %v, want ErrConfig", err)
			}
		})
	}
}

func TestServerConfigSettings(t *testing.T) {
	clock := newFakeClock()
	c := newCA(t, "a.test", clock)
	cfg, err := svidtls.ServerConfig(issue(t, c, "spiffe://a.test/host"), bundles(c), svidtls.ServerOptions{Authorizer: svidtls.AuthorizeAny()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
	}
	if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
		t.Error("the server certificate is not fetched per handshake")
	}
	if cfg.ClientAuth != tls.RequireAnyClientCert {
		t.Errorf("default ClientAuth %v, want RequireAnyClientCert", cfg.ClientAuth)
	}
	// A TLS 1.0 client is refused.
	if _, cliErr := handshake(t, cfg, clientWith(nil, tls.VersionTLS10)); cliErr == nil {
		t.Error("TLS 1.0 handshake succeeded")
	}
}

// TestResumptionIsVerified checks that a resumed TLS session is verified
// again: once the client's trust domain leaves the server's bundle source,
// a client holding a session ticket is refused.
func TestResumptionIsVerified(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
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
			cli := clientWith(tlsCert(issue(t, caA, "spiffe://a.test/agent/alpha")), version)
			cli.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			cli.ServerName = "b.test" // the cache key; each handshake has a new port

			if srvErr, cliErr, _ := handshakeState(t, cfg, cli); srvErr != nil || cliErr != nil {
				t.Fatalf("first handshake: server %v, client %v", srvErr, cliErr)
			}
			srvErr, cliErr, cs := handshakeState(t, cfg, cli)
			if srvErr != nil || cliErr != nil {
				t.Fatalf("second handshake: server %v, client %v", srvErr, cliErr)
			}
			if !cs.DidResume {
				t.Fatal("second handshake did not resume the session; the test proves nothing")
			}

			set.Remove(mustTD(t, "a.test"))
			srvErr, _ = handshake(t, cfg, cli)
			if !errors.Is(srvErr, credentials.ErrUntrustedDomain) {
				t.Errorf("resumption after the bundle was removed: server error %v, want ErrUntrustedDomain", srvErr)
			}
		})
	}
}
