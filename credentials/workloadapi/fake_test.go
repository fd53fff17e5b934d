package workloadapi

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeAuthority is a small working CA: a self-signed ECDSA root that signs
// X.509-SVIDs, and ES256 keys that sign JWT-SVIDs and WIT-SVIDs. It keeps
// the JWT-SVIDs it issued and validates only those.
type fakeAuthority struct {
	td  spiffeid.TrustDomain
	now func() time.Time
	ttl time.Duration

	mu       sync.Mutex
	caKey    *ecdsa.PrivateKey
	caCert   *x509.Certificate
	oldCerts []*x509.Certificate
	jwtKey   *ecdsa.PrivateKey
	witKey   *ecdsa.PrivateKey
	serial   int64
	issueErr error
	issued   map[string]fakeJWT
	subs     map[int]chan struct{}
	nextSub  int
}

type fakeJWT struct {
	id  spiffeid.ID
	aud []string
	exp time.Time
}

var _ Authority = (*fakeAuthority)(nil)

func newFakeAuthority(t testing.TB, td string, now func() time.Time, ttl time.Duration) *fakeAuthority {
	t.Helper()
	a := &fakeAuthority{
		td:     spiffeid.RequireTrustDomainFromString(td),
		now:    now,
		ttl:    ttl,
		issued: make(map[string]fakeJWT),
		subs:   make(map[int]chan struct{}),
	}
	if err := a.newCA(); err != nil {
		t.Fatal(err)
	}
	var err error
	if a.jwtKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if a.witKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *fakeAuthority) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := a.now()
	a.serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(a.serial),
		Subject:               pkix.Name{CommonName: "fake root " + fmt.Sprint(a.serial)},
		URIs:                  []*url.URL{a.td.ID().URL()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(100 * a.ttl),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if a.caCert != nil {
		a.oldCerts = append(a.oldCerts, a.caCert)
	}
	a.caKey, a.caCert = key, cert
	return nil
}

// rotate replaces the CA key; the old root stays in the bundle.
func (a *fakeAuthority) rotate(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	err := a.newCA()
	a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	a.notify()
}

func (a *fakeAuthority) setIssueErr(err error) {
	a.mu.Lock()
	a.issueErr = err
	a.mu.Unlock()
}

func (a *fakeAuthority) root() *x509.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.caCert
}

func (a *fakeAuthority) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (a *fakeAuthority) TrustDomain() spiffeid.TrustDomain { return a.td }

func (a *fakeAuthority) NewX509SVID(_ context.Context, id spiffeid.ID) (*x509svid.SVID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issueErr != nil {
		return nil, a.issueErr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := a.now()
	a.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(a.serial),
		URIs:         []*url.URL{id.URL()},
		NotBefore:    now,
		NotAfter:     now.Add(a.ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.caCert, key.Public(), a.caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, nil
}

func (a *fakeAuthority) NewJWTSVID(_ context.Context, id spiffeid.ID, audience []string) (string, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issueErr != nil {
		return "", time.Time{}, a.issueErr
	}
	now := a.now()
	exp := now.Add(a.ttl)
	tok, err := signES256(a.jwtKey, map[string]any{"alg": "ES256", "kid": "jwt-1", "typ": "JWT"}, map[string]any{
		"sub": id.String(), "aud": audience, "exp": exp.Unix(),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	a.issued[tok] = fakeJWT{id: id, aud: slices.Clone(audience), exp: exp}
	return tok, exp, nil
}

func (a *fakeAuthority) NewWITSVID(_ context.Context, id spiffeid.ID) (string, crypto.Signer, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.issueErr != nil {
		return "", nil, time.Time{}, a.issueErr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, time.Time{}, err
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), Algorithm: "ES256"})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	now := a.now()
	exp := now.Add(a.ttl)
	tok, err := signES256(a.witKey, map[string]any{"alg": "ES256", "kid": "wit-1", "typ": "wit+jwt"}, map[string]any{
		"sub": id.String(), "exp": exp.Unix(), "cnf": map[string]any{"jwk": json.RawMessage(pub)},
	})
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return tok, key, exp, nil
}

func (a *fakeAuthority) ValidateJWTSVID(_ context.Context, token, audience string) (spiffeid.ID, map[string]any, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec, ok := a.issued[token]
	if !ok {
		return spiffeid.ID{}, nil, errors.New("token was not issued by this authority")
	}
	if !slices.Contains(rec.aud, audience) {
		return spiffeid.ID{}, nil, fmt.Errorf("audience %q is not in %q", audience, rec.aud)
	}
	if !a.now().Before(rec.exp) {
		return spiffeid.ID{}, nil, errors.New("token expired")
	}
	return rec.id, map[string]any{"sub": rec.id.String(), "aud": rec.aud, "exp": rec.exp.Unix()}, nil
}

func (a *fakeAuthority) Bundle() *spiffebundle.Bundle {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := spiffebundle.New(a.td)
	for _, c := range a.oldCerts {
		b.AddX509Authority(c)
	}
	b.AddX509Authority(a.caCert)
	_ = b.AddJWTAuthority("jwt-1", a.jwtKey.Public())
	_ = b.AddWITAuthority("wit-1", a.witKey.Public())
	return b
}

func (a *fakeAuthority) Subscribe() (<-chan struct{}, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{}, 1)
	n := a.nextSub
	a.nextSub++
	a.subs[n] = ch
	return ch, func() {
		a.mu.Lock()
		delete(a.subs, n)
		a.mu.Unlock()
	}
}

// The tokens carry no iat, so that a clock ahead of the real one does not
// make go-spiffe's parsers, which check against the real time, reject them.

// signES256 builds a compact JWS with an ES256 signature (RFC 7518 §3.4).
func signES256(key *ecdsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return strings.Join([]string{input, base64.RawURLEncoding.EncodeToString(sig)}, "."), nil
}
