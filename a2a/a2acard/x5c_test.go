package a2acard_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
)

// testAuthority is a CA and a leaf certificate naming a SPIFFE ID, as a
// trust domain's X.509 authority and an agent's X.509-SVID.
type testAuthority struct {
	pool *x509.CertPool
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newAuthority(t *testing.T) *testAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testAuthority{pool: pool, ca: ca, key: key}
}

func (a *testAuthority) leaf(t *testing.T, id string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(30 * time.Minute), URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}

func namesID(id string) func(*x509.Certificate) error {
	return func(c *x509.Certificate) error {
		if len(c.URIs) != 1 || c.URIs[0].String() != id {
			return errors.New("the certificate names another workload")
		}
		return nil
	}
}

// TestX5C: a card signed with an agent's certificate key, the chain in
// x5c, verifies against the trust domain's authorities when the leaf
// names the agent; another domain's authorities, another agent's leaf, an
// expired chain, a tampered card, and x5c where only a key set is trusted
// are refused.
func TestX5C(t *testing.T) {
	ctx := context.Background()
	const agentID = "spiffe://example.org/agent/research"
	auth := newAuthority(t)
	key, leaf := auth.leaf(t, agentID)
	card := newCard(t, nil)
	if err := a2acard.Sign(ctx, card, a2acard.Key{Signer: key, KID: "research-svid", Chain: []*x509.Certificate{leaf}}); err != nil {
		t.Fatal(err)
	}
	ok := a2acard.VerifyOptions{Roots: auth.pool, CheckLeaf: namesID(agentID)}
	if v, err := a2acard.Verify(ctx, card, ok); err != nil || v.KeyID != "research-svid" {
		t.Fatalf("Verify: %+v, %v", v, err)
	}

	other := newAuthority(t)
	for name, opts := range map[string]a2acard.VerifyOptions{
		"another domain": {Roots: other.pool},
		"another agent":  {Roots: auth.pool, CheckLeaf: namesID("spiffe://example.org/agent/payments")},
		"expired chain":  {Roots: auth.pool, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }},
		"only a key set": {Keys: keySet("research-svid", key.Public())},
	} {
		if _, err := a2acard.Verify(ctx, card, opts); !errors.Is(err, a2acard.ErrUnknownKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
	tampered := *card
	tampered.Description = "transfers money"
	if _, err := a2acard.Verify(ctx, &tampered, ok); !errors.Is(err, a2acard.ErrSignature) {
		t.Errorf("tampered card: %v", err)
	}
}
