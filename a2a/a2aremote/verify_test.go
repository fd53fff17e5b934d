package a2aremote_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/credentials/jose"
)

// authority is a test CA that issues one leaf naming a SPIFFE ID.
type authority struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
}

func newAuthority(t *testing.T) *authority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{key: key, cert: cert, pool: pool}
}

func (a *authority) leaf(t *testing.T, id string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(id)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return key, c
}

// TestCardVerify: CardVerify's options verify a card signed with an x5c
// chain against the authorities it gives (and its leaf check), and a card
// signed by kid against its keys; a chain to other authorities or a leaf
// it refuses is refused, and its error is the fetch's.
func TestCardVerify(t *testing.T) {
	const id = "spiffe://remote.test/agent/x"
	auth := newAuthority(t)
	chainKey, leaf := auth.leaf(t, id)
	kidKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signWith := func(key a2acard.Key) func(base string) []byte {
		return func(base string) []byte {
			c, err := a2acard.New(a2acard.AgentInfo{Name: "x", Description: "X"}, a2acard.Options{URL: base + "/a2a/x", TokenURL: issuer + "/token"})
			if err != nil {
				t.Fatal(err)
			}
			if err := a2acard.Sign(context.Background(), c, key); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(c)
			return b
		}
	}
	inDomain := func(l *x509.Certificate) error {
		if len(l.URIs) != 1 || !strings.HasPrefix(l.URIs[0].String(), "spiffe://remote.test/") {
			return errors.New("not of remote.test")
		}
		return nil
	}
	options := func(roots *x509.CertPool, check func(*x509.Certificate) error) func(context.Context, string) (a2acard.VerifyOptions, error) {
		return func(context.Context, string) (a2acard.VerifyOptions, error) {
			return a2acard.VerifyOptions{Roots: roots, CheckLeaf: check,
				Keys: jose.StaticKeys(map[string]crypto.PublicKey{"jwt-1": kidKey.Public()})}, nil
		}
	}
	chained := a2acard.Key{Signer: chainKey, KID: "x509", Chain: []*x509.Certificate{leaf}}
	byKID := a2acard.Key{Signer: kidKey, KID: "jwt-1"}
	tests := []struct {
		name   string
		key    a2acard.Key
		verify func(context.Context, string) (a2acard.VerifyOptions, error)
		want   error
	}{
		{"x5c chain to the roots", chained, options(auth.pool, inDomain), nil},
		{"signed by kid", byKID, options(auth.pool, inDomain), nil},
		{"x5c chain to other roots", chained, options(newAuthority(t).pool, inDomain), a2acard.ErrUnknownKey},
		{"leaf refused", chained, options(auth.pool, func(*x509.Certificate) error { return errors.New("no") }), a2acard.ErrUnknownKey},
		{"unknown kid", a2acard.Key{Signer: kidKey, KID: "jwt-2"}, options(auth.pool, inDomain), a2acard.ErrUnknownKey},
		{"no bundle", chained, func(context.Context, string) (a2acard.VerifyOptions, error) {
			return a2acard.VerifyOptions{}, errors.New("bundle unavailable")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cardServer(t, signWith(tt.key), "")
			c, err := a2aremote.New(a2aremote.Config{HTTPClient: srv.Client(), AllowHTTP: true, AllowPrivate: true,
				CardVerify: tt.verify, RequireSignedCards: true})
			if err != nil {
				t.Fatal(err)
			}
			card, err := c.FetchCard(context.Background(), srv.URL+"/a2a/x")
			switch {
			case tt.name == "no bundle":
				if err == nil || !strings.Contains(err.Error(), "bundle unavailable") {
					t.Fatalf("err = %v", err)
				}
			case tt.want == nil && (err != nil || card.Verified == nil || card.Verified.KeyID != tt.key.KID):
				t.Fatalf("card %+v, %v", card, err)
			case tt.want != nil && (!errors.Is(err, tt.want) || !errors.Is(err, a2aremote.ErrCard)):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := a2aremote.New(a2aremote.Config{CardVerify: options(auth.pool, nil), CardKeys: func(context.Context, string) (jose.KeyFunc, error) {
		return nil, nil
	}}); !errors.Is(err, a2aremote.ErrInvalidConfig) {
		t.Fatalf("CardVerify and CardKeys: %v", err)
	}
	if _, err := a2aremote.New(a2aremote.Config{CardVerify: options(auth.pool, nil), RequireSignedCards: true}); err != nil {
		t.Fatalf("RequireSignedCards with CardVerify: %v", err)
	}
}

// TestUnauthorized: a call the agent refuses with 401 is an
// *UnauthorizedError naming the agent's metadata from its challenge.
func TestUnauthorized(t *testing.T) {
	r := newRemote(t)
	c := r.client()
	ctx := context.Background()
	card, err := c.FetchCard(ctx, r.agentURL())
	if err != nil {
		t.Fatal(err)
	}
	other := func(ctx context.Context, _ string) (string, error) { return r.tokens(ctx, r.http.URL+"/a2a/other") }
	want := r.http.URL + "/.well-known/oauth-protected-resource/a2a/research"
	for name, call := range map[string]func() error{
		"send": func() error {
			_, err := c.Send(ctx, card, other, a2aremote.NewTextMessage("x"))
			return err
		},
		"stream": func() error {
			_, err := c.Stream(ctx, card, other, a2aremote.NewTextMessage("x"), func(a2aremote.Update) error { return nil })
			return err
		},
		"get": func() error {
			_, err := c.GetTask(ctx, card, other, "x")
			return err
		},
	} {
		err := call()
		var ue *a2aremote.UnauthorizedError
		if !errors.As(err, &ue) || !errors.Is(err, a2aremote.ErrUnauthorized) || ue.Status != 401 ||
			ue.ResourceMetadata != want || ue.Code != "invalid_token" || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: %v (%+v)", name, err, ue)
		}
	}
	// A call that was not refused is no UnauthorizedError.
	if _, err := c.Send(ctx, card, r.tokens, a2aremote.NewTextMessage("denied")); errors.Is(err, a2aremote.ErrUnauthorized) {
		t.Errorf("a failed task: %v", err)
	}
}
