package wimse_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

const (
	testTD      = "example.org"
	testIssuer  = "spiffe://example.org"
	testSubject = "spiffe://example.org/agent/caller"
	testKID     = "wit-1"
	testBase    = "https://api.example.org"
	testTarget  = "https://api.example.org/tools/call"
)

// t0 is the fixed time of every test clock.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	keysOnce     sync.Once
	authorityKey *ecdsa.PrivateKey  // the trust domain's WIT authority, kid wit-1
	rogueKey     *ecdsa.PrivateKey  // an authority nobody trusts
	workloadKey  *ecdsa.PrivateKey  // the caller's WIT key (cnf.jwk)
	otherKey     *ecdsa.PrivateKey  // another workload's key
	edKey        ed25519.PrivateKey // an Ed25519 workload key
)

func testKeys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		for _, k := range []**ecdsa.PrivateKey{&authorityKey, &rogueKey, &workloadKey, &otherKey} {
			var err error
			if *k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				panic(err)
			}
		}
		var err error
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// cnf returns the cnf claim binding pub with alg.
func cnf(tb testing.TB, pub crypto.PublicKey, alg jose.Alg) map[string]any {
	tb.Helper()
	jwk, err := jose.PublicJWK(pub, "", string(alg), "")
	if err != nil {
		tb.Fatalf("PublicJWK: %v", err)
	}
	return map[string]any{"jwk": jwk}
}

// witClaims are the claims of a valid WIT-SVID for the workload key,
// shaped as credentials/ca mints them.
func witClaims(tb testing.TB) map[string]any {
	tb.Helper()
	testKeys(tb)
	return map[string]any{
		"iss": testIssuer,
		"sub": testSubject,
		"exp": t0.Add(time.Hour).Unix(),
		"iat": t0.Add(-time.Minute).Unix(),
		"jti": "wit-jti-1",
		"cnf": cnf(tb, workloadKey.Public(), jose.ES256),
	}
}

// sign signs claims through credentials/jose.
func sign(tb testing.TB, key crypto.Signer, kid string, typ jose.Typ, claims any) string {
	tb.Helper()
	tok, err := jose.Sign(context.Background(), key, kid, typ, claims)
	if err != nil {
		tb.Fatalf("jose.Sign: %v", err)
	}
	return tok
}

// mintWIT returns a WIT signed by the authority, with claims changed by
// mod.
func mintWIT(tb testing.TB, mod func(map[string]any)) string {
	tb.Helper()
	c := witClaims(tb)
	if mod != nil {
		mod(c)
	}
	return sign(tb, authorityKey, testKID, jose.TypWIT, c)
}

// craft builds an ES256 JWS from raw header and payload JSON, for shapes
// jose.Sign refuses to produce (no typ, alg none, odd members).
func craft(tb testing.TB, k *ecdsa.PrivateKey, header, payload string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// authorities is the trust configuration of the test trust domain.
func authorities(tb testing.TB) map[string]wimse.Authority {
	tb.Helper()
	testKeys(tb)
	return map[string]wimse.Authority{
		testTD: {Keys: jose.StaticKeys(map[string]crypto.PublicKey{testKID: authorityKey.Public()})},
	}
}

// newVerifier returns a Verifier of the test trust domain at t0 (plus 10
// s), with a fresh replay cache; mod may change the Config.
func newVerifier(tb testing.TB, mod func(*wimse.Config)) *wimse.Verifier {
	tb.Helper()
	cfg := wimse.Config{
		TrustDomains: authorities(tb),
		BaseURL:      testBase,
		Clock:        fixed(t0.Add(10 * time.Second)),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := wimse.NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// verifiedWIT verifies wit with v, failing the test on error.
func verifiedWIT(tb testing.TB, v *wimse.Verifier, wit string) *wimse.WIT {
	tb.Helper()
	w, err := v.VerifyWIT(context.Background(), wit)
	if err != nil {
		tb.Fatalf("VerifyWIT: %v", err)
	}
	return w
}

// flip changes one base64url character in part (0 header, 1 payload, 2
// signature) of a compact token.
func flip(token string, part int) string {
	b := []byte(token)
	start := 0
	for i := 0; i < part; i++ {
		for b[start] != '.' {
			start++
		}
		start++
	}
	i := start + 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// nopCache accepts every proof: for benchmarks that mint many proofs on a
// fixed clock.
type nopCache struct{}

func (nopCache) CheckAndStore(context.Context, string, time.Time) error { return nil }
