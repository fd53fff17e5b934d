package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/federation"
)

// TestFederationClientFetchesBundle checks that another trust domain can
// federate with ours using go-spiffe's stock federation client, under both
// endpoint profiles of the SPIFFE Trust Domain and Bundle spec (§5.2):
// https_web (a Web PKI server certificate) and https_spiffe (the endpoint
// authenticates with an X.509-SVID of our trust domain).
func TestFederationClientFetchesBundle(t *testing.T) {
	ctx := context.Background()
	// TLS verifies certificates against the real time, so this CA runs on
	// the real clock.
	c := newTestCA(t, time.Now, nil)
	want := c.Bundle()

	check := func(t *testing.T, got *spiffebundle.Bundle) {
		t.Helper()
		if !got.X509Bundle().Equal(want.X509Bundle()) || !got.JWTBundle().Equal(want.JWTBundle()) {
			t.Fatal("fetched bundle differs from the CA's")
		}
		if seq, ok := got.SequenceNumber(); !ok || seq == 0 {
			t.Fatalf("fetched bundle has no sequence number (%d, %v)", seq, ok)
		}
	}

	t.Run("https_web", func(t *testing.T) {
		srv := httptest.NewTLSServer(c.BundleHandler())
		defer srv.Close()
		roots := x509.NewCertPool()
		roots.AddCert(srv.Certificate())
		got, err := federation.FetchBundle(ctx, c.TrustDomain(), srv.URL, federation.WithWebPKIRoots(roots))
		if err != nil {
			t.Fatalf("FetchBundle: %v", err)
		}
		check(t, got)
	})

	t.Run("https_spiffe", func(t *testing.T) {
		hostID := mustID(t, "spiffe://"+testTD+"/host")
		svid, err := c.NewX509SVID(ctx, hostID)
		if err != nil {
			t.Fatal(err)
		}
		cert := tls.Certificate{PrivateKey: svid.PrivateKey}
		for _, crt := range svid.Certificates {
			cert.Certificate = append(cert.Certificate, crt.Raw)
		}
		srv := httptest.NewUnstartedServer(c.BundleHandler())
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
		srv.StartTLS()
		defer srv.Close()

		got, err := federation.FetchBundle(ctx, c.TrustDomain(), srv.URL, federation.WithSPIFFEAuth(want, hostID))
		if err != nil {
			t.Fatalf("FetchBundle: %v", err)
		}
		check(t, got)

		// An endpoint presenting another identity is refused.
		other := mustID(t, "spiffe://"+testTD+"/agent/impostor")
		if _, err := federation.FetchBundle(ctx, c.TrustDomain(), srv.URL, federation.WithSPIFFEAuth(want, other)); err == nil {
			t.Fatal("FetchBundle accepted an endpoint with an unexpected SPIFFE ID")
		}
	})
}

// TestParseBundle: a domain's bundle as served gives back its X.509 and
// JWT authorities and its refresh hint; what is not a bundle is refused.
func TestParseBundle(t *testing.T) {
	c := newTestCA(t, nil, &MemoryJournal{})
	a, err := ParseBundle(c.TrustDomain().Name(), c.BundleJSON())
	if err != nil {
		t.Fatal(err)
	}
	b := c.Bundle()
	if len(a.X509) != len(b.X509Authorities()) || len(a.X509) == 0 || len(a.JWT) != len(b.JWTAuthorities()) || len(a.JWT) == 0 {
		t.Fatalf("authorities %d X.509, %d JWT; want %d, %d", len(a.X509), len(a.JWT), len(b.X509Authorities()), len(b.JWTAuthorities()))
	}
	if hint, _ := b.RefreshHint(); a.RefreshHint != hint {
		t.Errorf("refresh hint %v, want %v", a.RefreshHint, hint)
	}
	for _, doc := range []string{`keys`, `{}`, `{"keys":[{"use":"x509-svid","kty":"EC"}]}`} {
		if _, err := ParseBundle(c.TrustDomain().Name(), []byte(doc)); err == nil {
			t.Errorf("%s: parsed", doc)
		}
	}
	if _, err := ParseBundle("Not A Domain", c.BundleJSON()); err == nil {
		t.Error("a bad trust domain name was taken")
	}
}
