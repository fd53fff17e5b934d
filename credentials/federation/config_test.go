package federation_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
)

// roundTripperFunc is an http.RoundTripper that is not an *http.Transport.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNewRefusesConfig: New refuses what would weaken the fetch rules or
// cannot work.
func TestNewRefusesConfig(t *testing.T) {
	own := newCA(t, ownTD, 0)
	foreign := newCA(t, foreignTD, 0)
	other := newCA(t, otherTD, 0)
	web := func(url string) federation.Peer {
		return federation.Peer{TrustDomain: foreignTD, EndpointURL: url}
	}
	spiffe := func(id string, bundle []byte) federation.Peer {
		return federation.Peer{TrustDomain: foreignTD, EndpointURL: "https://bundle.foreign.test/", Profile: federation.ProfileHTTPSSPIFFE,
			EndpointSPIFFEID: id, Bundle: bundle}
	}
	tests := []struct {
		name   string
		modify func(*federation.Config)
	}{
		{"bad trust domain", func(c *federation.Config) {
			c.Peers = []federation.Peer{{TrustDomain: "Bad Domain", EndpointURL: "https://x.test/"}}
		}},
		{"own trust domain", func(c *federation.Config) {
			c.Own = func() *spiffebundle.Bundle { return own.Bundle() }
			c.Peers = []federation.Peer{{TrustDomain: ownTD, EndpointURL: "https://x.test/"}}
		}},
		{"Own returns nothing", func(c *federation.Config) { c.Own = func() *spiffebundle.Bundle { return nil } }},
		{"twice the same domain", func(c *federation.Config) {
			c.Peers = []federation.Peer{web("https://a.test/"), web("https://b.test/")}
		}},
		{"no endpoint", func(c *federation.Config) { c.Peers = []federation.Peer{web("")} }},
		{"http endpoint", func(c *federation.Config) { c.Peers = []federation.Peer{web("http://bundle.foreign.test/")} }},
		{"http on a public host even when allowed", func(c *federation.Config) {
			c.AllowHTTP = true
			c.Peers = []federation.Peer{web("http://bundle.foreign.test/")}
		}},
		{"http loopback with https_spiffe", func(c *federation.Config) {
			c.AllowHTTP = true
			p := spiffe(endpointID, foreign.BundleJSON())
			p.EndpointURL = "http://127.0.0.1:8443/"
			c.Peers = []federation.Peer{p}
		}},
		{"relative endpoint", func(c *federation.Config) { c.Peers = []federation.Peer{web("/bundle")} }},
		{"userinfo in endpoint", func(c *federation.Config) { c.Peers = []federation.Peer{web("https://u:p@bundle.foreign.test/")} }},
		{"unknown profile", func(c *federation.Config) {
			p := web("https://bundle.foreign.test/")
			p.Profile = "https_magic"
			c.Peers = []federation.Peer{p}
		}},
		{"endpoint ID with https_web", func(c *federation.Config) {
			p := web("https://bundle.foreign.test/")
			p.EndpointSPIFFEID = endpointID
			c.Peers = []federation.Peer{p}
		}},
		{"https_spiffe without endpoint ID", func(c *federation.Config) { c.Peers = []federation.Peer{spiffe("", foreign.BundleJSON())} }},
		{"https_spiffe endpoint ID of another domain", func(c *federation.Config) {
			c.Peers = []federation.Peer{spiffe("spiffe://"+otherTD+"/bundle-endpoint", foreign.BundleJSON())}
		}},
		{"https_spiffe without bundle", func(c *federation.Config) { c.Peers = []federation.Peer{spiffe(endpointID, nil)} }},
		{"configured bundle of another domain", func(c *federation.Config) {
			c.Peers = []federation.Peer{spiffe(endpointID, other.BundleJSON())}
		}},
		{"configured bundle malformed", func(c *federation.Config) {
			p := web("https://bundle.foreign.test/")
			p.Bundle = []byte(`{"keys":`)
			c.Peers = []federation.Peer{p}
		}},
		{"MinRefresh above MaxRefresh", func(c *federation.Config) { c.MinRefresh, c.MaxRefresh = time.Hour, time.Minute }},
		{"negative timeout", func(c *federation.Config) { c.Timeout = -time.Second }},
		{"negative size", func(c *federation.Config) { c.MaxBytes = -1 }},
		{"transport that cannot carry the TLS rules", func(c *federation.Config) {
			c.Client = &http.Client{Transport: roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("no") })}
			c.Peers = []federation.Peer{web("https://bundle.foreign.test/")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := federation.Config{}
			tt.modify(&cfg)
			_, err := federation.New(context.Background(), cfg)
			if !errors.Is(err, federation.ErrInvalidConfig) {
				t.Fatalf("New: err = %v, want ErrInvalidConfig", err)
			}
			t.Logf("refused: %v", err)
		})
	}

	// What is allowed: http on loopback for development, a custom
	// *http.Transport, no peers at all.
	ok := []federation.Config{
		{AllowHTTP: true, Peers: []federation.Peer{web("http://127.0.0.1:8080/bundle")}},
		{AllowHTTP: true, Peers: []federation.Peer{web("http://localhost:8080/bundle")}},
		{Client: &http.Client{Transport: &http.Transport{}}, Peers: []federation.Peer{web("https://bundle.foreign.test/")}},
		{Own: func() *spiffebundle.Bundle { return own.Bundle() }},
	}
	for i, cfg := range ok {
		if _, err := federation.New(context.Background(), cfg); err != nil {
			t.Errorf("config %d: %v", i, err)
		}
	}
}

// TestHTTPLoopback: with AllowHTTP, an http endpoint on loopback works
// (development).
func TestHTTPLoopback(t *testing.T) {
	foreign := newCA(t, foreignTD, 0)
	e := &endpoint{h: foreign.BundleHandler()}
	srv := newPlainServer(t, e)
	cfg := setConfig(newFakeClock(), nil, nil, nil, federation.Peer{TrustDomain: foreignTD, EndpointURL: srv + "/bundle"})
	cfg.AllowHTTP = true
	s, err := federation.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(context.Background(), foreignTD); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}
