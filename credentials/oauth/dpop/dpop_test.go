package dpop

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
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newVerifier(t testing.TB, c *clock, nonces NonceSource) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Replay: NewMemoryReplayCache(c.Now), Nonces: nonces, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

const endpoint = "https://as.example/oauth2/token"

func TestRoundTrip(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"P-256": ec, "Ed25519": ed} {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Unix(1_800_000_000, 0)}
			v := newVerifier(t, c, nil)
			proof, err := NewProof(context.Background(), key, ProofParams{Method: "POST", URL: endpoint + "?x=1", AccessToken: "at", Now: c.now})
			if err != nil {
				t.Fatal(err)
			}
			jkt, _ := Thumbprint(key.Public())
			p, err := v.Verify(context.Background(), proof, Request{Method: "POST", URL: mustURL("HTTPS://AS.example:443/oauth2/token?y=2"), AccessToken: "at", JKT: jkt})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != jkt || p.JTI == "" || !p.IssuedAt.Equal(c.now) {
				t.Fatalf("proof %+v", p)
			}
			if _, err := v.Verify(context.Background(), proof, Request{Method: "POST", URL: mustURL(endpoint), AccessToken: "at"}); !errors.Is(err, ErrReplay) || ErrorCode(err) != "invalid_dpop_proof" {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// sign builds a proof with arbitrary header and claims.
func sign(t testing.TB, key crypto.Signer, h jose.Header, claims map[string]any) string {
	tok, err := jose.SignWithHeader(context.Background(), key, h, claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func rawToken(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

// es256 signs a token with an arbitrary header.
func es256(key *ecdsa.PrivateKey, header, claims map[string]any) string {
	input := strings.TrimSuffix(rawToken(header, claims), ".")
	sum := sha256.Sum256([]byte(input))
	r, sv, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyNegative(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	base := func(c *clock) map[string]any {
		return map[string]any{"jti": "j1", "htm": "POST", "htu": endpoint, "iat": c.now.Unix()}
	}
	with := func(c *clock, k string, v any) map[string]any {
		m := base(c)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	dpopHdr := jose.Header{Typ: jose.TypDPoP, EmbedJWK: true}
	otherJKT, _ := Thumbprint(other.Public())
	nonceKey := make([]byte, 32)
	tests := []struct {
		name  string
		proof func(c *clock) string
		req   func() Request
		nonce bool
		want  error
	}{
		{"garbage", func(c *clock) string { return "garbage" }, nil, false, ErrInvalidProof},
		{"two parts", func(c *clock) string { return "a.b" }, nil, false, ErrInvalidProof},
		{"empty", func(c *clock) string { return "" }, nil, false, ErrInvalidProof},
		{"oversized", func(c *clock) string { return strings.Repeat("a", 9000) + ".b.c" }, nil, false, ErrInvalidProof},
		{"alg none", func(c *clock) string {
			return rawToken(map[string]any{"alg": "none", "typ": "dpop+jwt"}, base(c))
		}, nil, false, ErrInvalidProof},
		{"HS256", func(c *clock) string {
			return rawToken(map[string]any{"alg": "HS256", "typ": "dpop+jwt"}, base(c)) + "c2ln"
		}, nil, false, ErrInvalidProof},
		{"typ at+jwt", func(c *clock) string {
			return sign(t, key, jose.Header{Typ: jose.TypAccessToken, EmbedJWK: true}, base(c))
		}, nil, false, ErrInvalidProof},
		{"typ JWT", func(c *clock) string { return sign(t, key, jose.Header{Typ: jose.TypJWT, EmbedJWK: true}, base(c)) }, nil, false, ErrInvalidProof},
		{"no typ", func(c *clock) string {
			pub, _ := jose.PublicJWK(key.Public(), "", "", "")
			return rawToken(map[string]any{"alg": "ES256", "jwk": pub}, base(c)) + "c2ln"
		}, nil, false, ErrInvalidProof},
		{"no jwk", func(c *clock) string { return sign(t, key, jose.Header{Typ: jose.TypDPoP, KID: "k"}, base(c)) }, nil, false, ErrInvalidProof},
		{"private key in jwk", func(c *clock) string {
			priv, _ := jose.PublicJWK(key.Public(), "", "", "")
			priv["d"] = base64.RawURLEncoding.EncodeToString(key.D.Bytes())
			return es256(key, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": priv}, base(c))
		}, nil, false, ErrInvalidProof},
		{"jwk of another key", func(c *clock) string {
			pub, _ := jose.PublicJWK(other.Public(), "", "", "")
			return es256(key, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": pub}, base(c))
		}, nil, false, ErrInvalidProof},
		{"missing jti", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "jti", nil)) }, nil, false, ErrInvalidProof},
		{"missing htm", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htm", nil)) }, nil, false, ErrInvalidProof},
		{"missing htu", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htu", nil)) }, nil, false, ErrInvalidProof},
		{"missing iat", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "iat", nil)) }, nil, false, ErrInvalidProof},
		{"htm as number", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htm", 5)) }, nil, false, ErrInvalidProof},
		{"wrong htm", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htm", "GET")) }, nil, false, ErrInvalidProof},
		{"lowercase htm", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htm", "post")) }, nil, false, ErrInvalidProof},
		{"other host", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "htu", "https://evil.example/oauth2/token"))
		}, nil, false, ErrInvalidProof},
		{"other path", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "htu", "https://as.example/oauth2/revoke"))
		}, nil, false, ErrInvalidProof},
		{"other scheme", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "htu", "http://as.example/oauth2/token"))
		}, nil, false, ErrInvalidProof},
		{"other port", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "htu", "https://as.example:8443/oauth2/token"))
		}, nil, false, ErrInvalidProof},
		{"relative htu", func(c *clock) string { return sign(t, key, dpopHdr, with(c, "htu", "/oauth2/token")) }, nil, false, ErrInvalidProof},
		{"iat too old", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "iat", c.now.Add(-6*time.Minute).Unix()))
		}, nil, false, ErrInvalidProof},
		{"iat in the future", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "iat", c.now.Add(2*time.Minute).Unix()))
		}, nil, false, ErrInvalidProof},
		{"ath missing", func(c *clock) string { return sign(t, key, dpopHdr, base(c)) }, func() Request {
			return Request{Method: "POST", URL: mustURL(endpoint), AccessToken: "at"}
		}, false, ErrInvalidProof},
		{"ath of another token", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "ath", AccessTokenHash("other")))
		}, func() Request { return Request{Method: "POST", URL: mustURL(endpoint), AccessToken: "at"} }, false, ErrInvalidProof},
		{"jkt mismatch", func(c *clock) string { return sign(t, key, dpopHdr, base(c)) }, func() Request {
			return Request{Method: "POST", URL: mustURL(endpoint), JKT: otherJKT}
		}, false, ErrInvalidProof},
		{"nonce missing", func(c *clock) string { return sign(t, key, dpopHdr, base(c)) }, nil, true, ErrUseNonce},
		{"nonce forged", func(c *clock) string {
			return sign(t, key, dpopHdr, with(c, "nonce", base64.RawURLEncoding.EncodeToString(make([]byte, 24))))
		}, nil, true, ErrUseNonce},
		{"nonce stale", func(c *clock) string {
			n, _ := NewHMACNonces(nonceKey, time.Minute, func() time.Time { return c.now.Add(-3 * time.Minute) })
			old, _ := n.Nonce(context.Background())
			return sign(t, key, dpopHdr, with(c, "nonce", old))
		}, nil, true, ErrUseNonce},
	}
	if len(tests) < 20 {
		t.Fatalf("%d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: time.Unix(1_800_000_000, 0)}
			var nonces NonceSource
			if tt.nonce {
				nonces, _ = NewHMACNonces(nonceKey, time.Minute, c.Now)
			}
			cache := NewMemoryReplayCache(c.Now)
			v, _ := NewVerifier(VerifierConfig{Replay: cache, Nonces: nonces, Now: c.Now})
			req := Request{Method: "POST", URL: mustURL(endpoint)}
			if tt.req != nil {
				req = tt.req()
			}
			_, err := v.Verify(context.Background(), tt.proof(c), req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(cache.entries) != 0 {
				t.Fatal("a refused proof consumed its jti")
			}
		})
	}
}

func TestHMACNonces(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	key := make([]byte, 32)
	n, err := NewHMACNonces(key, time.Minute, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewHMACNonces(key[:16], 0, nil); err == nil {
		t.Fatal("short key accepted")
	}
	nonce, _ := n.Nonce(context.Background())
	if err := n.Check(context.Background(), nonce); err != nil {
		t.Fatal(err)
	}
	c.now = c.now.Add(time.Minute)
	if err := n.Check(context.Background(), nonce); err != nil {
		t.Fatalf("previous bucket refused: %v", err)
	}
	c.now = c.now.Add(time.Minute)
	if err := n.Check(context.Background(), nonce); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("stale nonce: %v", err)
	}
	otherKey := make([]byte, 32)
	otherKey[0] = 1
	m, _ := NewHMACNonces(otherKey, time.Minute, c.Now)
	foreign, _ := m.Nonce(context.Background())
	if err := n.Check(context.Background(), foreign); !errors.Is(err, ErrUseNonce) {
		t.Fatalf("foreign nonce: %v", err)
	}
	// A good nonce passes Verify.
	v := newVerifier(t, c, n)
	cur, _ := n.Nonce(context.Background())
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	proof, _ := NewProof(context.Background(), key2, ProofParams{Method: "GET", URL: "https://rs.example/x", Nonce: cur, Now: c.now})
	if _, err := v.Verify(context.Background(), proof, Request{Method: "GET", URL: mustURL("https://rs.example/x")}); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryReplayCacheExpiry(t *testing.T) {
	c := &clock{now: time.Unix(0, 0)}
	r := NewMemoryReplayCache(c.Now)
	ctx := context.Background()
	if err := r.Remember(ctx, "k", c.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Remember(ctx, "k", c.now.Add(time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	c.now = c.now.Add(time.Minute)
	if err := r.Remember(ctx, "k", c.now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	r.MaxEntries = 1
	if err := r.Remember(ctx, "other", c.now.Add(time.Minute)); err == nil {
		t.Fatal("full cache forgot a live key")
	}
}

func FuzzVerify(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := NewProof(context.Background(), key, ProofParams{Method: "POST", URL: endpoint, Now: time.Unix(1_800_000_000, 0)})
	for _, s := range []string{good, "a.b.c", "", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat(".", 10)} {
		f.Add(s)
	}
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	f.Fuzz(func(t *testing.T, proof string) {
		v := newVerifier(t, c, nil)
		p, err := v.Verify(context.Background(), proof, Request{Method: "POST", URL: mustURL(endpoint)})
		if err == nil && p.JKT == "" {
			t.Fatal("accepted proof without a key")
		}
		if err != nil && ErrorCode(err) == "" {
			t.Fatalf("error without an OAuth code: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	v := newVerifier(b, c, nil)
	proofs := make([]string, 0, 1024)
	for range 1024 {
		p, _ := NewProof(context.Background(), key, ProofParams{Method: "POST", URL: endpoint, Now: c.now})
		proofs = append(proofs, p)
	}
	i := 0
	for b.Loop() {
		if i == len(proofs) {
			b.StopTimer()
			v = newVerifier(b, c, nil)
			i = 0
			b.StartTimer()
		}
		if _, err := v.Verify(context.Background(), proofs[i], Request{Method: "POST", URL: mustURL(endpoint)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
