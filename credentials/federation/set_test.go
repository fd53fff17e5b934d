package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// world is an own trust domain federated with foreignTD over e; strangerTD
// is neither.
type world struct {
	own, foreign, stranger *ca.CA
	e                      *endpoint
	s                      *federation.Set
}

const strangerTD = "stranger.test"

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		own:      newCA(t, ownTD, 0),
		foreign:  newCA(t, foreignTD, 0),
		stranger: newCA(t, strangerTD, 0),
	}
	w.e = newWebEndpoint(t, serve(200, bundleJSON(t, w.foreign, 1)))
	w.s = newSet(t, newFakeClock(), nil, nil, w.own, webPeer(w.e))
	if err := w.s.Refresh(context.Background(), foreignTD); err != nil {
		t.Fatal(err)
	}
	return w
}

// revokeForeign makes the foreign endpoint serve an empty bundle and
// fetches it.
func (w *world) revokeForeign(t *testing.T) {
	t.Helper()
	w.e.set(serve(200, emptyBundle(t, 2)))
	if err := w.s.Refresh(context.Background(), foreignTD); err != nil {
		t.Fatalf("Refresh of the empty bundle: %v", err)
	}
}

func TestValidateJWTSVID(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	const aud = "https://rs.own.test"
	jwt := func(c *ca.CA, id string) string {
		tok, _, err := c.NewJWTSVID(ctx, mustID(t, id), []string{aud})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	foreignTok := jwt(w.foreign, "spiffe://"+foreignTD+"/agent/a")
	ownTok := jwt(w.own, "spiffe://"+ownTD+"/agent/b")
	strangerTok := jwt(w.stranger, "spiffe://"+strangerTD+"/agent/c")

	tests := []struct {
		name   string
		token  string
		aud    string
		revoke bool
		wantID string
		want   []error
	}{
		{"federated domain", foreignTok, aud, false, "spiffe://" + foreignTD + "/agent/a", nil},
		{"own domain", ownTok, aud, false, "spiffe://" + ownTD + "/agent/b", nil},
		{"unfederated domain", strangerTok, aud, false, "", []error{ca.ErrInvalidToken, credentials.ErrUntrustedDomain}},
		{"wrong audience", foreignTok, "https://elsewhere.test", false, "", []error{ca.ErrInvalidToken, jose.ErrAudience}},
		{"garbage", "x.y.z", aud, false, "", []error{ca.ErrInvalidToken, jose.ErrMalformed}},
		{"no audience", foreignTok, "", false, "", []error{ca.ErrInvalidArgument}},
		{"federated domain after its keys went empty", foreignTok, aud, true, "", []error{ca.ErrInvalidToken, jose.ErrUnknownKey}},
		{"own domain after a federated domain's keys went empty", ownTok, aud, true, "spiffe://" + ownTD + "/agent/b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.revoke {
				w.revokeForeign(t)
			}
			id, claims, err := w.s.ValidateJWTSVID(ctx, tt.token, tt.aud)
			if tt.want == nil {
				if err != nil || id.String() != tt.wantID || claims["sub"] != tt.wantID {
					t.Fatalf("ValidateJWTSVID = %v, %v, %v; want %s", id, claims, err, tt.wantID)
				}
				return
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestVerifyX509SVID(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	chain := func(c *ca.CA, id string) []*x509.Certificate {
		svid, err := c.NewX509SVID(ctx, mustID(t, id))
		if err != nil {
			t.Fatal(err)
		}
		return svid.Certificates
	}
	foreignSVID := chain(w.foreign, "spiffe://"+foreignTD+"/agent/a")
	ownSVID := chain(w.own, "spiffe://"+ownTD+"/agent/b")
	strangerSVID := chain(w.stranger, "spiffe://"+strangerTD+"/agent/c")
	// A CA certificate of the foreign domain is no SVID.
	foreignRoot := w.foreign.Bundle().X509Authorities()[:1]

	tests := []struct {
		name   string
		chain  []*x509.Certificate
		revoke bool
		wantID string
		want   error
	}{
		{"federated domain", foreignSVID, false, "spiffe://" + foreignTD + "/agent/a", nil},
		{"own domain", ownSVID, false, "spiffe://" + ownTD + "/agent/b", nil},
		{"unfederated domain", strangerSVID, false, "", credentials.ErrUntrustedDomain},
		{"CA certificate", foreignRoot, false, "", federation.ErrInvalidSVID},
		{"empty chain", nil, false, "", federation.ErrInvalidSVID},
		{"nil certificate", []*x509.Certificate{nil}, false, "", federation.ErrInvalidSVID},
		{"federated domain after its keys went empty", foreignSVID, true, "", federation.ErrInvalidSVID},
		{"own domain after a federated domain's keys went empty", ownSVID, true, "spiffe://" + ownTD + "/agent/b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.revoke {
				w.revokeForeign(t)
			}
			id, err := w.s.VerifyX509SVID(tt.chain)
			if tt.want == nil {
				if err != nil || id.String() != tt.wantID {
					t.Fatalf("VerifyX509SVID = %v, %v; want %s", id, err, tt.wantID)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, federation.ErrInvalidSVID) {
				t.Fatalf("err = %v, want ErrInvalidSVID and %v", err, tt.want)
			}
		})
	}
}

// TestVerifyX509SVIDKeyUsage: a leaf signed by a trusted authority but
// without the digitalSignature key usage is no X.509-SVID (SPECS.md
// §10.2).
func TestVerifyX509SVIDKeyUsage(t *testing.T) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs: []*url.URL{{Scheme: "spiffe", Host: foreignTD}},
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	b := spiffebundle.New(spiffeid.RequireTrustDomainFromString(foreignTD))
	b.AddX509Authority(root)
	b.SetSequenceNumber(1)
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := newSet(t, newFakeClock(), nil, nil, nil, federation.Peer{TrustDomain: foreignTD, EndpointURL: "https://bundle.foreign.test/", Bundle: data})

	leaf := func(ku x509.KeyUsage) []*x509.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
			BasicConstraintsValid: true, KeyUsage: ku,
			URIs: []*url.URL{{Scheme: "spiffe", Host: foreignTD, Path: "/agent/a"}},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &key.PublicKey, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{c}
	}
	if _, err := s.VerifyX509SVID(leaf(x509.KeyUsageDigitalSignature)); err != nil {
		t.Fatalf("a leaf with digitalSignature: %v", err)
	}
	if _, err := s.VerifyX509SVID(leaf(x509.KeyUsageKeyEncipherment)); !errors.Is(err, federation.ErrInvalidSVID) {
		t.Fatalf("a leaf without digitalSignature: err = %v", err)
	}
}

// TestSources: the set answers for the own and the federated trust
// domains only.
func TestSources(t *testing.T) {
	w := newWorld(t)
	td := spiffeid.RequireTrustDomainFromString
	for _, name := range []string{ownTD, foreignTD} {
		if _, err := w.s.GetX509BundleForTrustDomain(td(name)); err != nil {
			t.Errorf("X.509 bundle of %s: %v", name, err)
		}
		if _, err := w.s.GetJWTBundleForTrustDomain(td(name)); err != nil {
			t.Errorf("JWT bundle of %s: %v", name, err)
		}
		b, err := w.s.GetBundleForTrustDomain(td(name))
		if err != nil || b.TrustDomain() != td(name) {
			t.Errorf("bundle of %s: %v, %v", name, b, err)
		}
	}
	// The own bundle is the CA's current one.
	if b, _ := w.s.GetBundleForTrustDomain(td(ownTD)); !b.Equal(w.own.Bundle()) {
		t.Error("own bundle differs from the CA's")
	}
	// A returned bundle is a copy.
	b, _ := w.s.GetBundleForTrustDomain(td(foreignTD))
	b.SetX509Authorities(nil)
	if x, _ := w.s.GetX509BundleForTrustDomain(td(foreignTD)); len(x.X509Authorities()) == 0 {
		t.Error("modifying a returned bundle changed the set")
	}

	errs := []error{}
	_, err := w.s.GetX509BundleForTrustDomain(td(strangerTD))
	errs = append(errs, err)
	_, err = w.s.GetJWTBundleForTrustDomain(td(strangerTD))
	errs = append(errs, err)
	_, err = w.s.GetBundleForTrustDomain(td(strangerTD))
	errs = append(errs, err)
	errs = append(errs, w.s.Refresh(context.Background(), strangerTD))
	for i, err := range errs {
		if !errors.Is(err, credentials.ErrUntrustedDomain) || !strings.Contains(err.Error(), "trust domain stranger.test is not federated") {
			t.Errorf("lookup %d of an unfederated domain: err = %v", i, err)
		}
	}
	if err := w.s.Refresh(context.Background(), "Not A Domain"); err == nil {
		t.Error("Refresh of a malformed trust domain name succeeded")
	}
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	var m federation.MemoryStore
	if _, err := m.Load(ctx, foreignTD); !errors.Is(err, federation.ErrNotFound) {
		t.Fatalf("Load of nothing: err = %v", err)
	}
	data := []byte(`{"keys":[]}`)
	if err := m.Save(ctx, foreignTD, data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'x'
	got, err := m.Load(ctx, foreignTD)
	if err != nil || string(got) != `{"keys":[]}` {
		t.Fatalf("Load = %q, %v", got, err)
	}
	got[0] = 'y'
	if again, _ := m.Load(ctx, foreignTD); string(again) != `{"keys":[]}` {
		t.Errorf("the stored bundle changed with the returned slice: %q", again)
	}
	if _, err := m.Load(ctx, otherTD); !errors.Is(err, federation.ErrNotFound) {
		t.Errorf("Load of another domain: err = %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Save(cancelled, foreignTD, data); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a cancelled context: err = %v", err)
	}
}

// TestWITKeys: a federated domain's WITs verify with the WIT authorities
// of its bundle as the set holds it, the own domain's with the own; a
// domain not federated, or whose bundle no longer holds the key, is
// refused.
func TestWITKeys(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	wit := func(c *ca.CA, id string) string {
		tok, _, _, err := c.NewWITSVID(ctx, mustID(t, id))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verifier := func(td string) *wimse.Verifier {
		keys, err := w.s.WITKeys(td)
		if err != nil {
			t.Fatal(err)
		}
		v, err := wimse.NewVerifier(wimse.Config{TrustDomains: map[string]wimse.Authority{td: {Keys: keys}}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	foreignID := "spiffe://" + foreignTD + "/agent/a"
	if got, err := verifier(foreignTD).VerifyWIT(ctx, wit(w.foreign, foreignID)); err != nil || got.Subject.String() != foreignID {
		t.Fatalf("a federated domain's WIT: %v, %v", got, err)
	}
	ownID := "spiffe://" + ownTD + "/agent/b"
	if got, err := verifier(ownTD).VerifyWIT(ctx, wit(w.own, ownID)); err != nil || got.Subject.String() != ownID {
		t.Fatalf("the own domain's WIT: %v, %v", got, err)
	}
	// Keys of the stranger's domain are looked up in no bundle, and a
	// WIT the stranger signs for the federated domain's ID is not by
	// one of that domain's authorities.
	strangerKeys, err := w.s.WITKeys(strangerTD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strangerKeys(ctx, "any"); !errors.Is(err, credentials.ErrUntrustedDomain) {
		t.Errorf("a key of an unfederated domain: %v, want ErrUntrustedDomain", err)
	}
	if _, err := verifier(foreignTD).VerifyWIT(ctx, wit(w.stranger, "spiffe://"+strangerTD+"/agent/c")); err == nil {
		t.Error("a WIT of an unfederated domain verified")
	}
	forged := newCA(t, foreignTD, 0)
	if _, err := verifier(foreignTD).VerifyWIT(ctx, wit(forged, foreignID)); !errors.Is(err, jose.ErrUnknownKey) {
		t.Errorf("a WIT by another CA of the federated domain's name: %v, want ErrUnknownKey", err)
	}
	if _, err := w.s.WITKeys("Not A Domain"); err == nil {
		t.Error("WITKeys took an invalid trust domain name")
	}
	// The domain's keys went away: its WITs are refused at once.
	v := verifier(foreignTD)
	w.revokeForeign(t)
	if _, err := v.VerifyWIT(ctx, wit(w.foreign, foreignID)); !errors.Is(err, jose.ErrUnknownKey) {
		t.Errorf("a WIT after the federated bundle went empty: %v, want ErrUnknownKey", err)
	}
}
