package a2aremote

import (
	"context"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
)

// TestBundle: a SPIFFE bundle gives the card checks its X.509 and JWT
// authorities; a malformed one is an error; a card's signing leaf must be
// one SPIFFE ID of the trust domain; the bundle is read again once its
// refresh hint has passed.
func TestBundle(t *testing.T) {
	const td = "remote.test"
	authority, err := ca.New(context.Background(), ca.Config{TrustDomain: td, Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(file, authority.BundleJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, err := NewBundle(BundleConfig{TrustDomain: td, File: file, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := b.VerifyOptions(context.Background(), "")
	if err != nil || opts.Roots == nil || opts.Keys == nil || opts.CheckLeaf == nil {
		t.Fatalf("VerifyOptions: %+v, %v", opts, err)
	}
	// Within the refresh bound the file is not read again.
	if err := os.WriteFile(file, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyOptions(context.Background(), ""); err != nil {
		t.Fatalf("cached: %v", err)
	}
	now = now.Add(MaxBundleRefresh + time.Second)
	if _, err := b.VerifyOptions(context.Background(), ""); err == nil {
		t.Fatal("a bundle with every authority revoked still verifies cards")
	}
	for name, doc := range map[string]string{
		"not a JWK Set":            `{"keys":null}`,
		"not JSON":                 `keys`,
		"X.509 authority, no x5c":  `{"keys":[{"use":"x509-svid","kty":"EC"}]}`,
		"X.509 authority, bad x5c": `{"keys":[{"use":"x509-svid","kty":"EC","x5c":["!!"]}]}`,
		"JWT authority, no kid":    `{"keys":[{"use":"jwt-svid","kty":"EC","crv":"P-256","x":"a","y":"b"}]}`,
		"JWT authority, bad key":   `{"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256","x":"a","y":"b"}]}`,
	} {
		if _, err := ParseBundle(td, []byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	for _, cfg := range []BundleConfig{{File: file}, {TrustDomain: td}, {TrustDomain: td, File: file, URL: "https://x/"}} {
		if _, err := NewBundle(cfg); err == nil {
			t.Errorf("NewBundle(%+v) accepted", cfg)
		}
	}
	leaf := func(uris ...string) *x509.Certificate {
		c := &x509.Certificate{}
		for _, u := range uris {
			p, _ := url.Parse(u)
			c.URIs = append(c.URIs, p)
		}
		return c
	}
	if err := LeafOfTrustDomain(leaf("spiffe://remote.test/agent/research"), td); err != nil {
		t.Errorf("a leaf of the trust domain: %v", err)
	}
	for name, l := range map[string]*x509.Certificate{
		"another trust domain": leaf("spiffe://other.test/agent/research"),
		"a sub-domain":         leaf("spiffe://x.remote.test/agent/research"),
		"no SPIFFE ID":         leaf("https://remote.test/agent/research"),
		"two IDs":              leaf("spiffe://remote.test/a", "spiffe://remote.test/b"),
		"none":                 leaf(),
	} {
		if err := LeafOfTrustDomain(l, td); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
