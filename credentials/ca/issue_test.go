package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func TestNewCreatesAuthorities(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	if got := c.TrustDomain().Name(); got != testTD {
		t.Errorf("TrustDomain = %q", got)
	}
	b := c.Bundle()
	if n := len(b.X509Authorities()); n != 1 {
		t.Fatalf("%d X.509 authorities, want 1", n)
	}
	if n := len(b.JWTAuthorities()); n != 1 {
		t.Errorf("%d JWT authorities, want 1", n)
	}
	if n := len(b.WITAuthorities()); n != 1 {
		t.Errorf("%d WIT authorities, want 1", n)
	}
	seq, ok := b.SequenceNumber()
	if !ok || seq != 1 {
		t.Errorf("sequence = %d, %v; want 1", seq, ok)
	}
	if hint, ok := b.RefreshHint(); !ok || hint != DefaultRefreshHint {
		t.Errorf("refresh hint = %s, %v", hint, ok)
	}
	root := b.X509Authorities()[0]
	if !root.IsCA || !root.BasicConstraintsValid {
		t.Error("root is not a CA")
	}
	if root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root key usage = %v", root.KeyUsage)
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://example.org" {
		t.Errorf("root URIs = %v", root.URIs)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is %T", root.PublicKey)
	}
	if !root.NotAfter.Equal(t0.Add(testCATTL)) {
		t.Errorf("root NotAfter = %s, want %s", root.NotAfter, t0.Add(testCATTL))
	}
	// The returned bundle is a clone.
	b.SetX509Authorities(nil)
	if len(c.Bundle().X509Authorities()) != 1 {
		t.Error("modifying the returned bundle changed the CA's bundle")
	}
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no trust domain", Config{Journal: &MemoryJournal{}}},
		{"bad trust domain", Config{TrustDomain: "Not Valid", Journal: &MemoryJournal{}}},
		{"no journal", Config{TrustDomain: testTD}},
		{"svid ttl not below ca ttl", Config{TrustDomain: testTD, Journal: &MemoryJournal{}, SVIDTTL: time.Hour, CATTL: time.Hour}},
		{"negative ttl", Config{TrustDomain: testTD, Journal: &MemoryJournal{}, SVIDTTL: -time.Second}},
		{"spiffe id with path", Config{TrustDomain: "spiffe://example.org/host", Journal: &MemoryJournal{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(context.Background(), tt.cfg); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestNewX509SVID(t *testing.T) {
	clock := newFakeClock(t0.Add(time.Minute))
	c := newTestCA(t, clock.Now, nil)
	id := mustID(t, "spiffe://example.org/agent/a")
	svid, err := c.NewX509SVID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id || len(svid.Certificates) != 1 {
		t.Fatalf("svid = %v with %d certificates", svid.ID, len(svid.Certificates))
	}
	gotID, chains, err := x509svid.Verify(svid.Certificates, c.Bundle(), x509svid.WithTime(clock.Now()))
	if err != nil {
		t.Fatalf("x509svid.Verify: %v", err)
	}
	if gotID != id || len(chains) != 1 {
		t.Errorf("Verify = %v, %d chains", gotID, len(chains))
	}
	leaf := svid.Certificates[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String() {
		t.Errorf("URI SANs = %v", leaf.URIs)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("leaf is a CA or lacks basic constraints")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage = %v", leaf.KeyUsage)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage); diff != "" {
		t.Errorf("EKU (-want +got):\n%s", diff)
	}
	if !leaf.NotBefore.Equal(clock.Now().Add(-backdate)) || !leaf.NotAfter.Equal(clock.Now().Add(testSVIDTTL)) {
		t.Errorf("validity %s .. %s", leaf.NotBefore, leaf.NotAfter)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || !pub.Equal(svid.PrivateKey.Public()) {
		t.Error("leaf key is not the returned P-256 private key")
	}
	if leaf.SerialNumber.Sign() <= 0 {
		t.Error("serial not positive")
	}
	other, err := c.NewX509SVID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if other.Certificates[0].SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two SVIDs share a serial number")
	}
	// The SAN extension is critical because the subject is empty
	// (SPECS.md §10.2).
	for _, ext := range leaf.Extensions {
		if ext.Id.String() == "2.5.29.17" && len(leaf.Subject.Names) == 0 && !ext.Critical {
			t.Error("SAN not critical with an empty subject")
		}
	}
}

func TestX509SVIDClampedToAuthority(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	// 30 minutes before the authority expires, without rotating.
	clock.Set(t0.Add(testCATTL - 30*time.Minute))
	svid, err := c.NewX509SVID(context.Background(), mustID(t, "spiffe://example.org/a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := svid.Certificates[0].NotAfter, t0.Add(testCATTL); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s (authority expiry)", got, want)
	}
	_, exp, err := c.NewJWTSVID(context.Background(), mustID(t, "spiffe://example.org/a"), []string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(testCATTL); !exp.Equal(want) {
		t.Errorf("JWT-SVID exp = %s, want %s", exp, want)
	}
	// Once the authority has expired, issuance fails until Rotate runs.
	clock.Set(t0.Add(testCATTL))
	if _, err := c.NewX509SVID(context.Background(), mustID(t, "spiffe://example.org/a")); !errors.Is(err, ErrNoAuthority) {
		t.Errorf("expired authority: err = %v, want ErrNoAuthority", err)
	}
	if err := c.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewX509SVID(context.Background(), mustID(t, "spiffe://example.org/a")); err != nil {
		t.Errorf("after Rotate: %v", err)
	}
}

func TestIssuanceRefusals(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	ctx := context.Background()
	foreign := mustID(t, "spiffe://other.org/agent/a")
	own := mustID(t, "spiffe://example.org/agent/a")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"x509 foreign", func() error { _, err := c.NewX509SVID(ctx, foreign); return err }, credentials.ErrUntrustedDomain},
		{"x509 zero", func() error { _, err := c.NewX509SVID(ctx, mustZero()); return err }, ErrInvalidArgument},
		{"jwt foreign", func() error { _, _, err := c.NewJWTSVID(ctx, foreign, []string{"a"}); return err }, credentials.ErrUntrustedDomain},
		{"jwt no audience", func() error { _, _, err := c.NewJWTSVID(ctx, own, nil); return err }, ErrInvalidArgument},
		{"jwt empty audience", func() error { _, _, err := c.NewJWTSVID(ctx, own, []string{""}); return err }, ErrInvalidArgument},
		{"wit foreign", func() error { _, _, _, err := c.NewWITSVID(ctx, foreign); return err }, credentials.ErrUntrustedDomain},
		{"wit ed25519 key", func() error { _, _, err := c.NewWITSVIDForKey(ctx, own, edPub); return err }, ErrInvalidArgument},
		{"wit private key", func() error { _, _, err := c.NewWITSVIDForKey(ctx, own, rsaKey); return err }, ErrInvalidArgument},
		{"wit nil key", func() error { _, _, err := c.NewWITSVIDForKey(ctx, own, nil); return err }, ErrInvalidArgument},
		{"wit empty ecdsa key", func() error { _, _, err := c.NewWITSVIDForKey(ctx, own, &ecdsa.PublicKey{}); return err }, ErrInvalidArgument},
		{"validate no audience", func() error { _, _, err := c.ValidateJWTSVID(ctx, "a.b.c", ""); return err }, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustZero() (id spiffeid.ID) { return id }

// fetchBundle GETs the bundle from the CA's handler and parses it.
func fetchBundle(t *testing.T, c *CA) (*spiffebundle.Bundle, []byte) {
	t.Helper()
	srv := httptest.NewServer(c.BundleHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, err := spiffebundle.Parse(c.TrustDomain(), body)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v", err)
	}
	return b, body
}

func TestJWTSVIDValidatesWithGoSPIFFE(t *testing.T) {
	// go-spiffe validates against the wall clock.
	c := newTestCA(t, time.Now, nil)
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/agent/a")
	tests := []struct {
		name string
		aud  []string
	}{
		{"one audience", []string{"https://rs.example"}},
		{"two audiences", []string{"https://rs.example", "spiffe://example.org/host"}},
	}
	served, _ := fetchBundle(t, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, exp, err := c.NewJWTSVID(ctx, id, tt.aud)
			if err != nil {
				t.Fatal(err)
			}
			svid, err := jwtsvid.ParseAndValidate(tok, served, []string{tt.aud[0]})
			if err != nil {
				t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
			}
			if svid.ID != id || !svid.Expiry.Equal(exp) {
				t.Errorf("svid = %v exp %s, want %v exp %s", svid.ID, svid.Expiry, id, exp)
			}
			if diff := cmp.Diff(tt.aud, svid.Audience); diff != "" {
				t.Errorf("aud (-want +got):\n%s", diff)
			}
			hdr := tokenHeader(t, tok)
			if diff := cmp.Diff(map[string]any{"alg": "ES256", "typ": "JWT", "kid": hdr["kid"]}, hdr); diff != "" || hdr["kid"] == "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			gotID, claims, err := c.ValidateJWTSVID(ctx, tok, tt.aud[len(tt.aud)-1])
			if err != nil {
				t.Fatalf("ValidateJWTSVID: %v", err)
			}
			if gotID != id || claims["sub"] != id.String() {
				t.Errorf("ValidateJWTSVID = %v, %v", gotID, claims)
			}
			if _, _, err := c.ValidateJWTSVID(ctx, tok, "https://other.example"); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jose.ErrAudience) {
				t.Errorf("wrong audience: err = %v", err)
			}
		})
	}
}

func TestValidateJWTSVIDRejects(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	other, err := New(context.Background(), Config{TrustDomain: "other.org", Journal: &MemoryJournal{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/agent/a")
	wit, _, _, err := c.NewWITSVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	foreignTok, _, err := other.NewJWTSVID(ctx, mustID(t, "spiffe://other.org/a"), []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := c.NewJWTSVID(ctx, id, []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	k := c.current().state.kinds[kindJWT].current
	extraHeader, err := jose.SignWithHeader(ctx, k.key, jose.Header{Typ: jose.TypJWT, KID: k.kid, Extra: map[string]any{"x5u": "https://x"}},
		map[string]any{"sub": id.String(), "aud": "aud", "exp": t0.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	foreignSub, err := jose.Sign(ctx, k.key, k.kid, jose.TypJWT, map[string]any{"sub": "spiffe://other.org/a", "aud": "aud", "exp": t0.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"WIT presented as JWT-SVID", wit, t0, jose.ErrWrongType},
		{"other trust domain's key", foreignTok, t0, jose.ErrUnknownKey},
		{"extra header", extraHeader, t0, jose.ErrHeader},
		{"sub in other trust domain", foreignSub, t0, credentials.ErrUntrustedDomain},
		{"expired", good, t0.Add(testSVIDTTL), jose.ErrExpired},
		{"garbage", "not-a-token", t0, jose.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(tt.at)
			_, _, err := c.ValidateJWTSVID(ctx, tt.token, "aud")
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want ErrInvalidToken and %v", err, tt.want)
			}
		})
	}
}

func tokenHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	return decodePart(t, h)
}

func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	return decodePart(t, parts[1])
}

func decodePart(t *testing.T, s string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWITSVID(t *testing.T) {
	c := newTestCA(t, time.Now, nil)
	ctx := context.Background()
	id := mustID(t, "spiffe://example.org/agent/a")
	tok, key, exp, err := c.NewWITSVID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	hdr := tokenHeader(t, tok)
	if hdr["typ"] != "wit+jwt" || hdr["alg"] != "ES256" || hdr["kid"] == "" || len(hdr) != 3 {
		t.Errorf("header = %v", hdr)
	}
	claims := tokenClaims(t, tok)
	if _, ok := claims["aud"]; ok {
		t.Error("WIT-SVID has an aud claim")
	}
	if claims["iss"] != "spiffe://example.org" || claims["sub"] != id.String() || claims["jti"] == "" {
		t.Errorf("claims = %v", claims)
	}
	cnf, _ := claims["cnf"].(map[string]any)
	jwk, _ := cnf["jwk"].(map[string]any)
	if jwk["alg"] != "ES256" || jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
		t.Errorf("cnf.jwk = %v", jwk)
	}
	if _, ok := jwk["d"]; ok {
		t.Error("cnf.jwk holds the private key")
	}

	served, _ := fetchBundle(t, c)
	got, err := jose.Verify(ctx, tok, witOptions(served, time.Now))
	if err != nil {
		t.Fatalf("jose.Verify: %v", err)
	}
	if !got.ExpiresAt.Equal(exp) || got.Subject != id.String() {
		t.Errorf("verified = %s %s", got.Subject, got.ExpiresAt)
	}
	// Presented where a JWT-SVID is expected, it is refused.
	if _, err := jose.Verify(ctx, tok, jwtOptions(served, "x", time.Now)); !errors.Is(err, jose.ErrWrongType) {
		t.Errorf("WIT as JWT-SVID: err = %v", err)
	}
	svid, err := witsvid.ParseAndValidate(tok, served)
	if err != nil {
		t.Fatalf("witsvid.ParseAndValidate: %v", err)
	}
	if svid.ID != id {
		t.Errorf("witsvid ID = %v", svid.ID)
	}
	pub, ok := svid.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		t.Error("cnf.jwk is not the returned key")
	}

	// A caller-supplied RSA key is bound with alg RS256.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, err := c.NewWITSVIDForKey(ctx, id, &rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	jwk2 := tokenClaims(t, tok2)["cnf"].(map[string]any)["jwk"].(map[string]any)
	if jwk2["alg"] != "RS256" || jwk2["kty"] != "RSA" {
		t.Errorf("cnf.jwk = %v", jwk2)
	}
}

func TestBundleHandler(t *testing.T) {
	clock := newFakeClock(t0)
	c := newTestCA(t, clock.Now, nil)
	parsed, body := fetchBundle(t, c)
	if !parsed.Equal(c.Bundle()) {
		t.Error("served bundle differs from Bundle()")
	}
	if !bytes.Equal(body, c.BundleJSON()) {
		t.Error("served body differs from BundleJSON()")
	}
	var doc struct {
		Keys []struct {
			Use string   `json:"use"`
			KID string   `json:"kid"`
			X5C []string `json:"x5c"`
		} `json:"keys"`
		Sequence uint64 `json:"spiffe_sequence"`
		Hint     int64  `json:"spiffe_refresh_hint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	uses := map[string]int{}
	for _, k := range doc.Keys {
		uses[k.Use]++
		switch k.Use {
		case "x509-svid":
			if k.KID != "" || len(k.X5C) != 1 {
				t.Errorf("x509-svid key: kid %q, %d x5c", k.KID, len(k.X5C))
			}
		case "jwt-svid", "wit-svid":
			if k.KID == "" {
				t.Errorf("%s key without kid", k.Use)
			}
		}
	}
	if diff := cmp.Diff(map[string]int{"x509-svid": 1, "jwt-svid": 1, "wit-svid": 1}, uses); diff != "" {
		t.Errorf("key uses (-want +got):\n%s", diff)
	}
	if doc.Sequence != 1 || doc.Hint != int64(DefaultRefreshHint/time.Second) {
		t.Errorf("sequence %d, hint %d", doc.Sequence, doc.Hint)
	}

	tests := []struct {
		method     string
		wantStatus int
		wantBody   bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, false},
		{http.MethodPut, http.StatusMethodNotAllowed, false},
		{http.MethodDelete, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			c.BundleHandler().ServeHTTP(rec, httptest.NewRequest(tt.method, "/bundle", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed {
				if rec.Header().Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", rec.Header().Get("Allow"))
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "max-age=300" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if got := rec.Body.Len() > 0; got != tt.wantBody {
				t.Errorf("body present = %v", got)
			}
		})
	}
}
