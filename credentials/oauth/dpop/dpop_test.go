package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

const endpoint = "https://as.example/oauth2/token"

var epoch = time.Unix(1_800_000_000, 0)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// countingCache is a ReplayCache that counts Remember calls.
type countingCache struct {
	calls atomic.Int64
	next  ReplayCache
}

func (c *countingCache) Remember(ctx context.Context, key string, until time.Time) error {
	c.calls.Add(1)
	return c.next.Remember(ctx, key, until)
}

// failingCache is a ReplayCache that cannot answer.
type failingCache struct{}

func (failingCache) Remember(context.Context, string, time.Time) error {
	return errors.New("store unavailable")
}

// acceptAll is a ReplayCache that never reports a replay.
type acceptAll struct{}

func (acceptAll) Remember(context.Context, string, time.Time) error { return nil }

func newVerifier(tb testing.TB, cfg VerifierConfig) *Verifier {
	tb.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func mustURL(tb testing.TB, s string) *url.URL {
	tb.Helper()
	u, err := url.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func ecKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func edKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// signed signs claims as a proof with the usual header (typ dpop+jwt,
// embedded jwk).
func signed(tb testing.TB, key crypto.Signer, claims any) string {
	tb.Helper()
	tok, err := jose.SignWithHeader(context.Background(), key, jose.Header{Typ: jose.TypDPoP, EmbedJWK: true}, claims)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// signedRaw signs header and payload JSON text with an Ed25519 key, so
// tests can write headers and claims jose.Sign would not.
func signedRaw(key ed25519.PrivateKey, header, payload string) string {
	input := b64(header) + "." + b64(payload)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func publicJWK(tb testing.TB, pub crypto.PublicKey) map[string]any {
	tb.Helper()
	m, err := jose.PublicJWK(pub, "", "", "")
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestNewProof(t *testing.T) {
	ctx := context.Background()
	key := ecKey(t)
	tok, err := NewProof(ctx, key, ProofParams{
		Method: "POST", URL: "https://as.example/oauth2/token?x=1#frag",
		AccessToken: "token-value", Nonce: "n-1", Now: epoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var hdr map[string]any
	var claims map[string]any
	for i, dst := range []any{&hdr, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	if hdr["typ"] != "dpop+jwt" || hdr["alg"] != "ES256" {
		t.Errorf("header %v", hdr)
	}
	jwk, _ := hdr["jwk"].(map[string]any)
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk["d"] != nil {
		t.Errorf("jwk %v", jwk)
	}
	jti, _ := claims["jti"].(string)
	raw, err := base64.RawURLEncoding.Strict().DecodeString(jti)
	if err != nil || len(raw) < 16 {
		t.Errorf("jti %q: %d bytes, %v", jti, len(raw), err)
	}
	want := map[string]any{
		"htm": "POST", "htu": "https://as.example/oauth2/token", "iat": float64(epoch.Unix()),
		"ath": "5sAqV0LqnU3liOubnee-1D3BcBFVIYa-0-mLLFlY_0o", "nonce": "n-1",
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	other, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, Now: epoch})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(other, parts[1]) {
		t.Error("two proofs share their claims")
	}
	if p := strings.Split(other, ".")[1]; strings.Contains(p, "YXRo") {
		t.Error("ath written without an access token")
	}
}

func TestAccessTokenHash(t *testing.T) {
	// RFC 9449 §7.1 example.
	if got := AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath %s", got)
	}
}

func TestThumbprint(t *testing.T) {
	key := edKey(t)
	got, err := Thumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := jose.Thumbprint(key.Public())
	if got != want || len(got) != 43 {
		t.Fatalf("thumbprint %q, want %q", got, want)
	}
	for name, k := range map[string]crypto.PublicKey{"nil": nil, "private key": key, "bytes": []byte("k")} {
		if _, err := Thumbprint(k); err == nil || !strings.HasPrefix(err.Error(), "dpop: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewProofErrors(t *testing.T) {
	ctx := context.Background()
	key := ecKey(t)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		key  crypto.Signer
		p    ProofParams
	}{
		{"nil key", ctx, nil, ProofParams{Method: "GET", URL: endpoint}},
		{"no method", ctx, key, ProofParams{URL: endpoint}},
		{"method with space", ctx, key, ProofParams{Method: "GET X", URL: endpoint}},
		{"relative URL", ctx, key, ProofParams{Method: "GET", URL: "/oauth2/token"}},
		{"ftp URL", ctx, key, ProofParams{Method: "GET", URL: "ftp://as.example/x"}},
		{"unparsable URL", ctx, key, ProofParams{Method: "GET", URL: "https://[::1"}},
		{"userinfo", ctx, key, ProofParams{Method: "GET", URL: "https://u:p@as.example/"}},
		{"canceled", canceled, key, ProofParams{Method: "GET", URL: endpoint}},
		{"unsupported key", ctx, p224Key(t), ProofParams{Method: "GET", URL: endpoint}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := NewProof(tt.ctx, tt.key, tt.p)
			if err == nil || tok != "" {
				t.Fatalf("proof %q, err %v", tok, err)
			}
			if !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// p224Key is a key of a curve no JOSE algorithm uses.
func p224Key(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, key := range map[string]crypto.Signer{"P-256": ecKey(t), "Ed25519": edKey(t)} {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: epoch}
			cache := &countingCache{next: NewMemoryReplayCache(c.Now)}
			v := newVerifier(t, VerifierConfig{Replay: cache, Now: c.Now})
			proof, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint + "?x=1", AccessToken: "at", Now: c.now})
			if err != nil {
				t.Fatal(err)
			}
			jkt, err := Thumbprint(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Method: "POST", URL: mustURL(t, "HTTPS://AS.example:443/oauth2/token?y=2"), AccessToken: "at", JKT: jkt}
			p, err := v.Verify(ctx, proof, req)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != jkt || len(p.JTI) < 22 || !p.IssuedAt.Equal(c.now) || p.Nonce != "" || p.Key == nil {
				t.Fatalf("proof %+v", p)
			}
			if again, _ := Thumbprint(p.Key); again != jkt {
				t.Fatalf("key thumbprint %q, want %q", again, jkt)
			}
			_, err = v.Verify(ctx, proof, req)
			if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) || ErrorCode(err) != CodeInvalidProof {
				t.Fatalf("replay: %v", err)
			}
			if cache.calls.Load() != 2 {
				t.Fatalf("%d Remember calls, want 2", cache.calls.Load())
			}
			// A proof becomes acceptable again once it has left the window,
			// but by then its iat is too old.
			c.now = c.now.Add(DefaultMaxAge + DefaultLeeway + time.Second)
			if _, err := v.Verify(ctx, proof, req); !errors.Is(err, ErrInvalidProof) || errors.Is(err, ErrReplay) {
				t.Fatalf("old proof: %v", err)
			}
		})
	}
}

// verifyCase is one row of TestVerifyNegative.
type verifyCase struct {
	name string
	// proof builds the proof; base holds valid claims for the default
	// request at the test's clock.
	proof func(tb testing.TB, e *env) string
	// req changes the default request (POST endpoint).
	req func(r *Request)
	// cfg changes the default verifier config.
	cfg func(c *VerifierConfig)
	// nonces makes the verifier require HMAC nonces.
	nonces bool
	// replay verifies the proof once, successfully, before the checked call.
	replay bool
	want   []error
	msg    string
}

type env struct {
	c      *clock
	key    ed25519.PrivateKey
	other  ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
	jwk    map[string]any
	nonces *HMACNonces
}

func (e *env) base() map[string]any {
	return map[string]any{"jti": "jti-1", "htm": "POST", "htu": endpoint, "iat": e.c.now.Unix()}
}

// with returns base claims with name set to v, or removed when v is nil.
func (e *env) with(kv ...any) map[string]any {
	m := e.base()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func (e *env) header(tb testing.TB, kv ...any) string {
	h := map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": e.jwk}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(h, kv[i].(string))
		} else {
			h[kv[i].(string)] = kv[i+1]
		}
	}
	return mustJSON(tb, h)
}

var nonceKey = []byte("0123456789abcdef0123456789abcdef")

func TestVerifyNegative(t *testing.T) {
	key, other := edKey(t), edKey(t)
	ec := ecKey(t)
	tests := []verifyCase{
		// Form.
		{name: "empty", proof: func(testing.TB, *env) string { return "" }, want: []error{jose.ErrMalformed}, msg: "empty token"},
		{name: "garbage", proof: func(testing.TB, *env) string { return "garbage" }, want: []error{jose.ErrMalformed}, msg: "1 parts"},
		{name: "two parts", proof: func(testing.TB, *env) string { return "a.b" }, want: []error{jose.ErrMalformed}, msg: "2 parts"},
		{name: "four parts", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) + ".x" }, want: []error{jose.ErrMalformed}, msg: "4 parts"},
		{name: "JWS JSON serialization", proof: func(tb testing.TB, e *env) string {
			return `{"payload":"e30","signatures":[]}`
		}, want: []error{jose.ErrMalformed}},
		{name: "header not base64url", proof: func(testing.TB, *env) string { return "a+b.c.d" }, want: []error{jose.ErrMalformed}, msg: "base64url"},
		{name: "header not an object", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, `["dpop+jwt"]`, mustJSON(tb, e.base()))
		}, want: []error{jose.ErrMalformed}},
		{name: "oversized", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("pad", strings.Repeat("x", 9000)))
		}, want: []error{ErrInvalidProof}, msg: "exceeds 8192"},
		{name: "over a configured size", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			cfg: func(c *VerifierConfig) { c.MaxProofSize = 100 }, want: []error{ErrInvalidProof}, msg: "exceeds 100"},
		// Header.
		{name: "alg none", proof: func(tb testing.TB, e *env) string {
			return b64(e.header(tb, "alg", "none")) + "." + b64(mustJSON(tb, e.base())) + "."
		}, want: []error{jose.ErrMalformed}, msg: "empty part"},
		{name: "alg none with a signature", proof: func(tb testing.TB, e *env) string {
			return b64(e.header(tb, "alg", "none")) + "." + b64(mustJSON(tb, e.base())) + ".c2ln"
		}, want: []error{jose.ErrAlgorithm}, msg: `"none"`},
		{name: "alg HS256", proof: func(tb testing.TB, e *env) string {
			return b64(e.header(tb, "alg", "HS256")) + "." + b64(mustJSON(tb, e.base())) + ".c2ln"
		}, want: []error{jose.ErrAlgorithm}, msg: `"HS256"`},
		{name: "alg missing", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "alg", nil), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrAlgorithm}, msg: "no alg"},
		{name: "alg not configured", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			cfg: func(c *VerifierConfig) { c.Algorithms = []jose.Alg{jose.ES256} }, want: []error{jose.ErrAlgorithm}, msg: `"EdDSA"`},
		{name: "alg does not fit the key", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "alg", "ES256"), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrAlgorithm}, msg: "ES256 needs an ecdsa key"},
		{name: "typ missing", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "typ", nil), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrWrongType}, msg: "no typ"},
		{name: "typ at+jwt", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "typ", "at+jwt"), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrWrongType}, msg: `typ "at+jwt", want "dpop+jwt"`},
		{name: "typ JWT", proof: func(tb testing.TB, e *env) string {
			tok, err := jose.SignWithHeader(context.Background(), e.key, jose.Header{Typ: jose.TypJWT, EmbedJWK: true}, e.base())
			if err != nil {
				tb.Fatal(err)
			}
			return tok
		}, want: []error{jose.ErrWrongType}, msg: `typ "JWT"`},
		{name: "typ not a string", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "typ", 1), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrMalformed}, msg: "typ is not a string"},
		{name: "jwk missing", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "jwk", nil, "kid", "k1"), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrUnknownKey}, msg: "no jwk header"},
		{name: "private key in jwk", proof: func(tb testing.TB, e *env) string {
			priv := publicJWK(tb, e.key.Public())
			priv["d"] = base64.RawURLEncoding.EncodeToString(e.key.Seed())
			return signedRaw(e.key, e.header(tb, "jwk", priv), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrUnsupportedKey}, msg: `member "d"`},
		{name: "symmetric jwk", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "jwk", map[string]any{"kty": "oct", "k": "c2VjcmV0"}), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrUnsupportedKey}},
		{name: "jwk not an object", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "jwk", "key"), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrUnknownKey}},
		{name: "jwk of another key", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "jwk", publicJWK(tb, e.other.Public())), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrInvalidSignature}},
		{name: "tampered claims", proof: func(tb testing.TB, e *env) string {
			p := strings.Split(signed(tb, e.key, e.base()), ".")
			return p[0] + "." + b64(mustJSON(tb, e.with("htm", "POST", "jti", "jti-2"))) + "." + p[2]
		}, want: []error{jose.ErrInvalidSignature}},
		{name: "duplicate header members", proof: func(tb testing.TB, e *env) string {
			h := e.header(tb)
			return signedRaw(e.key, strings.TrimSuffix(h, "}")+`,"typ":"JWT"}`, mustJSON(tb, e.base()))
		}, want: []error{jose.ErrMalformed}, msg: `duplicate member "typ"`},
		{name: "crit header", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb, "crit", []string{"exp"}), mustJSON(tb, e.base()))
		}, want: []error{jose.ErrHeader}, msg: `"crit"`},
		// Claims: presence and types.
		{name: "duplicate claims", proof: func(tb testing.TB, e *env) string {
			c := mustJSON(tb, e.base())
			return signedRaw(e.key, e.header(tb), strings.TrimSuffix(c, "}")+`,"htm":"GET"}`)
		}, want: []error{jose.ErrMalformed}, msg: `duplicate member "htm"`},
		{name: "claims not an object", proof: func(tb testing.TB, e *env) string {
			return signedRaw(e.key, e.header(tb), `["POST"]`)
		}, want: []error{jose.ErrMalformed}},
		{name: "missing jti", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("jti", nil)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim jti is missing"},
		{name: "missing htm", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htm", nil)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim htm is missing"},
		{name: "missing htu", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htu", nil)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim htu is missing"},
		{name: "missing iat", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("iat", nil)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim iat is missing"},
		{name: "empty jti", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("jti", "")) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim jti is empty"},
		{name: "jti as number", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("jti", 7)) },
			want: []error{jose.ErrMalformed}, msg: "jti is not a string"},
		{name: "jti too long", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("jti", strings.Repeat("j", 257)))
		}, want: []error{ErrInvalidProof}, msg: "dpop: jti of 257 bytes exceeds 256"},
		{name: "htm as number", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htm", 5)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim htm is not a string"},
		{name: "htu as array", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htu", []string{endpoint})) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim htu is not a string"},
		{name: "iat as string", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("iat", "1800000000")) },
			want: []error{jose.ErrMalformed}, msg: "iat: not a number"},
		{name: "ath as number", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("ath", 1)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim ath is not a string"},
		{name: "nonce as bool", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("nonce", true)) },
			want: []error{ErrInvalidProof}, msg: "dpop: claim nonce is not a string"},
		// htm and htu.
		{name: "wrong htm", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htm", "GET")) },
			want: []error{ErrInvalidProof}, msg: `dpop: htm "GET" does not match method "POST"`},
		{name: "lowercase htm", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htm", "post")) },
			want: []error{ErrInvalidProof}, msg: `htm "post" does not match`},
		{name: "htu other host", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "https://evil.example/oauth2/token"))
		}, want: []error{ErrInvalidProof}, msg: `dpop: htu "https://evil.example/oauth2/token" does not match the request URL "https://as.example/oauth2/token"`},
		{name: "htu other path", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "https://as.example/oauth2/revoke"))
		}, want: []error{ErrInvalidProof}, msg: `htu "https://as.example/oauth2/revoke" does not match`},
		{name: "htu other scheme", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "http://as.example/oauth2/token"))
		}, want: []error{ErrInvalidProof}, msg: `htu "http://as.example/oauth2/token" does not match`},
		{name: "htu other port", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "https://as.example:8443/oauth2/token"))
		}, want: []error{ErrInvalidProof}, msg: `htu "https://as.example:8443/oauth2/token" does not match`},
		{name: "htu trailing slash", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", endpoint+"/"))
		}, want: []error{ErrInvalidProof}, msg: "does not match the request URL"},
		{name: "htu path case", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "https://as.example/OAuth2/token"))
		}, want: []error{ErrInvalidProof}, msg: "does not match the request URL"},
		{name: "htu relative", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htu", "/oauth2/token")) },
			want: []error{ErrInvalidProof}, msg: `dpop: htu "/oauth2/token" is not an absolute http(s) URL`},
		{name: "htu with userinfo", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "https://user@as.example/oauth2/token"))
		}, want: []error{ErrInvalidProof}, msg: "is not an absolute http(s) URL"},
		{name: "htu other scheme kind", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("htu", "wss://as.example/oauth2/token"))
		}, want: []error{ErrInvalidProof}, msg: "is not an absolute http(s) URL"},
		{name: "htu not a URL", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.with("htu", "https://[::1")) },
			want: []error{ErrInvalidProof}, msg: "dpop: htu is not a URL"},
		// Time.
		{name: "iat too old", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("iat", e.c.now.Add(-5*time.Minute-time.Second).Unix()))
		}, want: []error{ErrInvalidProof}, msg: "is more than 5m0s old"},
		{name: "iat older than a configured MaxAge", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("iat", e.c.now.Add(-61*time.Second).Unix()))
		}, cfg: func(c *VerifierConfig) { c.MaxAge = time.Minute }, want: []error{ErrInvalidProof}, msg: "is more than 1m0s old"},
		{name: "iat too far in the future", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("iat", e.c.now.Add(31*time.Second).Unix()))
		}, want: []error{jose.ErrIssuedInFuture}},
		{name: "expired", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("exp", e.c.now.Add(-time.Minute).Unix()))
		}, want: []error{jose.ErrExpired}},
		// Access token and key binding.
		{name: "ath missing", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			req:  func(r *Request) { r.AccessToken = "at" },
			want: []error{ErrInvalidProof}, msg: "dpop: claim ath is missing and the request carries an access token"},
		{name: "ath of another token", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("ath", AccessTokenHash("other")))
		}, req: func(r *Request) { r.AccessToken = "at" }, want: []error{ErrInvalidProof}, msg: "dpop: ath does not match the access token"},
		{name: "ath of the token, padded", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("ath", AccessTokenHash("at")+"="))
		}, req: func(r *Request) { r.AccessToken = "at" }, want: []error{ErrInvalidProof}, msg: "ath does not match"},
		{name: "jkt mismatch", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			req: func(r *Request) {
				r.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
			}, want: []error{ErrInvalidProof}, msg: `does not match the bound key "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"`},
		{name: "jkt of another key type", proof: func(tb testing.TB, e *env) string { return signed(tb, e.ec, e.base()) },
			req: func(r *Request) {
				r.JKT, _ = Thumbprint(key.Public())
			}, want: []error{ErrInvalidProof}, msg: "proof key thumbprint"},
		// Nonces.
		{name: "nonce missing", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			nonces: true, want: []error{ErrUseNonce}, msg: "dpop: claim nonce is missing and the server requires one"},
		{name: "nonce forged", proof: func(tb testing.TB, e *env) string {
			return signed(tb, e.key, e.with("nonce", base64.RawURLEncoding.EncodeToString(make([]byte, nonceSize))))
		}, nonces: true, want: []error{ErrUseNonce}, msg: "dpop: nonce was not issued by this server"},
		{name: "nonce stale", proof: func(tb testing.TB, e *env) string {
			old, err := NewHMACNonces(nonceKey, time.Minute, func() time.Time { return e.c.now.Add(-2 * time.Minute) })
			if err != nil {
				tb.Fatal(err)
			}
			n, _ := old.Nonce(context.Background())
			return signed(tb, e.key, e.with("nonce", n))
		}, nonces: true, want: []error{ErrUseNonce}, msg: "dpop: nonce is stale"},
		{name: "nonce good but proof invalid", proof: func(tb testing.TB, e *env) string {
			n, _ := e.nonces.Nonce(context.Background())
			return signed(tb, e.key, e.with("nonce", n, "htm", "GET"))
		}, nonces: true, want: []error{ErrInvalidProof}, msg: "htm"},
		// Replay.
		{name: "replayed jti", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			replay: true, want: []error{ErrInvalidProof, ErrReplay}, msg: "dpop: jti was already used with this key"},
		{name: "replay with another query", proof: func(tb testing.TB, e *env) string { return signed(tb, e.key, e.base()) },
			replay: true, req: func(r *Request) { r.URL.RawQuery = "again=1" }, want: []error{ErrReplay}},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := &env{c: &clock{now: epoch}, key: key, other: other, ec: ec}
			e.jwk = publicJWK(t, key.Public())
			var err error
			if e.nonces, err = NewHMACNonces(nonceKey, time.Minute, e.c.Now); err != nil {
				t.Fatal(err)
			}
			cache := &countingCache{next: NewMemoryReplayCache(e.c.Now)}
			cfg := VerifierConfig{Replay: cache, Now: e.c.Now}
			if tt.nonces {
				cfg.Nonces = e.nonces
			}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			v := newVerifier(t, cfg)
			req := Request{Method: "POST", URL: mustURL(t, endpoint)}
			if tt.req != nil {
				tt.req(&req)
			}
			proof := tt.proof(t, e)
			if tt.replay {
				if _, err := v.Verify(ctx, proof, req); err != nil {
					t.Fatalf("first use: %v", err)
				}
			}
			p, err := v.Verify(ctx, proof, req)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if p != nil {
				t.Fatal("a proof returned with an error")
			}
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
			code := CodeInvalidProof
			if errors.Is(tt.want[0], ErrUseNonce) {
				code = CodeUseNonce
				if errors.Is(err, ErrInvalidProof) {
					t.Errorf("nonce error also wraps ErrInvalidProof: %v", err)
				}
			}
			if got := ErrorCode(err); got != code {
				t.Errorf("ErrorCode = %q, want %q (%v)", got, code, err)
			}
			if !strings.HasPrefix(err.Error(), "dpop: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q, want it to contain %q", err, tt.msg)
			}
			if len(err.Error()) > 400 {
				t.Errorf("message of %d bytes", len(err.Error()))
			}
			calls := int64(0)
			if tt.replay {
				calls = 2
			}
			if got := cache.calls.Load(); got != calls {
				t.Errorf("%d Remember calls, want %d: a refused proof must not consume its jti", got, calls)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	key := edKey(t)
	tests := []struct {
		name   string
		claims func(e *env) map[string]any
		header []any
		url    string
		nonces bool
	}{
		{name: "exact", claims: func(e *env) map[string]any { return e.base() }},
		{name: "query and fragment ignored", claims: func(e *env) map[string]any {
			return e.with("htu", endpoint+"?a=1#top")
		}, url: endpoint + "?b=2"},
		{name: "scheme and host case", claims: func(e *env) map[string]any {
			return e.with("htu", "HTTPS://AS.Example/oauth2/token")
		}, url: "https://as.EXAMPLE/oauth2/token"},
		{name: "default port", claims: func(e *env) map[string]any {
			return e.with("htu", "https://as.example:443/oauth2/token")
		}},
		{name: "default http port", claims: func(e *env) map[string]any {
			return e.with("htu", "http://localhost/x")
		}, url: "http://localhost:80/x"},
		{name: "other port on both sides", claims: func(e *env) map[string]any {
			return e.with("htu", "http://127.0.0.1:8080/x")
		}, url: "http://127.0.0.1:8080/x"},
		{name: "empty path", claims: func(e *env) map[string]any {
			return e.with("htu", "https://as.example")
		}, url: "https://as.example/"},
		{name: "percent-encoding and dot segments", claims: func(e *env) map[string]any {
			return e.with("htu", "https://as.example/a/./b/../%7euser/%2f")
		}, url: "https://as.example/a/~user/%2F"},
		{name: "IPv6 host", claims: func(e *env) map[string]any {
			return e.with("htu", "https://[2001:DB8::1]:443/x")
		}, url: "https://[2001:db8::1]/x"},
		{name: "typ with media type prefix", claims: func(e *env) map[string]any { return e.base() },
			header: []any{"typ", "application/DPoP+JWT"}},
		{name: "kid header", claims: func(e *env) map[string]any { return e.base() }, header: []any{"kid", "k1"}},
		{name: "exp in the future", claims: func(e *env) map[string]any { return e.with("exp", e.c.now.Add(time.Minute).Unix()) }},
		{name: "fractional iat", claims: func(e *env) map[string]any { return e.with("iat", float64(e.c.now.Unix())-0.5) }},
		{name: "iat just inside MaxAge", claims: func(e *env) map[string]any {
			return e.with("iat", e.c.now.Add(-5*time.Minute).Unix())
		}},
		{name: "iat within leeway", claims: func(e *env) map[string]any {
			return e.with("iat", e.c.now.Add(30*time.Second).Unix())
		}},
		{name: "unknown claims ignored", claims: func(e *env) map[string]any { return e.with("extra", map[string]any{"a": 1}) }},
		{name: "current nonce", claims: func(e *env) map[string]any {
			n, _ := e.nonces.Nonce(context.Background())
			return e.with("nonce", n)
		}, nonces: true},
		{name: "previous nonce", claims: func(e *env) map[string]any {
			n, _ := e.nonces.Nonce(context.Background())
			e.c.now = e.c.now.Add(time.Minute)
			return e.with("nonce", n, "iat", e.c.now.Unix())
		}, nonces: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := &env{c: &clock{now: epoch}, key: key}
			e.jwk = publicJWK(t, key.Public())
			e.nonces, _ = NewHMACNonces(nonceKey, time.Minute, e.c.Now)
			cfg := VerifierConfig{Replay: NewMemoryReplayCache(e.c.Now), Now: e.c.Now}
			if tt.nonces {
				cfg.Nonces = e.nonces
			}
			v := newVerifier(t, cfg)
			claims := tt.claims(e)
			proof := signedRaw(key, e.header(t, tt.header...), mustJSON(t, claims))
			target := tt.url
			if target == "" {
				target = endpoint
			}
			p, err := v.Verify(ctx, proof, Request{Method: "POST", URL: mustURL(t, target)})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			jkt, _ := Thumbprint(key.Public())
			if p.JKT != jkt || p.JTI != claims["jti"] || p.Nonce != stringOr(claims["nonce"]) {
				t.Fatalf("proof %+v", p)
			}
			iat := claims["iat"]
			var want time.Time
			switch x := iat.(type) {
			case int64:
				want = time.Unix(x, 0)
			case float64:
				want = time.UnixMilli(int64(x * 1000))
			}
			if !p.IssuedAt.Equal(want) {
				t.Fatalf("IssuedAt %v, want %v", p.IssuedAt, want)
			}
		})
	}
}

func stringOr(v any) string {
	s, _ := v.(string)
	return s
}

func TestVerifyRequestAndStoreErrors(t *testing.T) {
	ctx := context.Background()
	key := ecKey(t)
	c := &clock{now: epoch}
	proof, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, Now: epoch})
	if err != nil {
		t.Fatal(err)
	}
	nonceErr := nonceFunc(func(context.Context, string) error { return errors.New("nonce store down") })
	tests := []struct {
		name string
		cfg  VerifierConfig
		req  Request
		msg  string
	}{
		{"no method", VerifierConfig{Replay: acceptAll{}}, Request{URL: mustURL(t, endpoint)}, "needs a method and a URL"},
		{"no URL", VerifierConfig{Replay: acceptAll{}}, Request{Method: "POST"}, "needs a method and a URL"},
		{"relative URL", VerifierConfig{Replay: acceptAll{}}, Request{Method: "POST", URL: mustURL(t, "/oauth2/token")}, "not an absolute"},
		{"replay cache fails", VerifierConfig{Replay: failingCache{}}, Request{Method: "POST", URL: mustURL(t, endpoint)}, "dpop: replay cache: store unavailable"},
		{"nonce source fails", VerifierConfig{Replay: acceptAll{}, Nonces: nonceErr}, Request{Method: "POST", URL: mustURL(t, endpoint)}, "dpop: nonce check: nonce store down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Now = c.Now
			p := proof
			if tt.cfg.Nonces != nil {
				p, _ = NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, Nonce: "n", Now: epoch})
			}
			_, err := newVerifier(t, tt.cfg).Verify(ctx, p, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			if code := ErrorCode(err); code != "" {
				t.Fatalf("ErrorCode = %q for a server-side failure", code)
			}
		})
	}
}

// nonceFunc is a NonceSource whose Check is a function.
type nonceFunc func(ctx context.Context, nonce string) error

func (f nonceFunc) Nonce(context.Context) (string, error)         { return "n", nil }
func (f nonceFunc) Check(ctx context.Context, nonce string) error { return f(ctx, nonce) }

func TestNewVerifier(t *testing.T) {
	tests := []struct {
		name string
		cfg  VerifierConfig
		ok   bool
	}{
		{"defaults", VerifierConfig{Replay: acceptAll{}}, true},
		{"no replay cache", VerifierConfig{}, false},
		{"HS256", VerifierConfig{Replay: acceptAll{}, Algorithms: []jose.Alg{jose.ES256, "HS256"}}, false},
		{"none", VerifierConfig{Replay: acceptAll{}, Algorithms: []jose.Alg{"none"}}, false},
		{"negative MaxAge", VerifierConfig{Replay: acceptAll{}, MaxAge: -1}, false},
		{"negative Leeway", VerifierConfig{Replay: acceptAll{}, Leeway: -1}, false},
		{"negative size", VerifierConfig{Replay: acceptAll{}, MaxProofSize: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "dpop: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			if tt.ok {
				got := v.Algorithms()
				if len(got) != len(DefaultAlgorithms) {
					t.Fatalf("algorithms %v", got)
				}
				got[0] = "changed"
				if v.Algorithms()[0] != jose.ES256 || DefaultAlgorithms[0] != jose.ES256 {
					t.Fatal("Algorithms exposes the verifier's slice")
				}
			}
		})
	}
	algs := []jose.Alg{jose.ES256}
	v := newVerifier(t, VerifierConfig{Replay: acceptAll{}, Algorithms: algs})
	algs[0] = jose.EdDSA
	if got := v.Algorithms(); len(got) != 1 || got[0] != jose.ES256 {
		t.Fatalf("the verifier shares the caller's slice: %v", got)
	}
}

func TestErrorCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("other"), ""},
		{ErrInvalidProof, CodeInvalidProof},
		{invalid("x"), CodeInvalidProof},
		{ErrUseNonce, CodeUseNonce},
		{useNonce("x"), CodeUseNonce},
		{&proofError{kind: ErrInvalidProof, msg: "x", cause: ErrReplay}, CodeInvalidProof},
		// A replay of some other single-use value is not a DPoP error.
		{ErrReplay, ""},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	// Fixed keys: the fuzzing workers rebuild them and must agree with the
	// process that wrote the seeds.
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	ed := ed25519.NewKeyFromSeed([]byte(strings.Repeat("e", ed25519.SeedSize)))
	good, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, AccessToken: "at", Now: epoch})
	if err != nil {
		f.Fatal(err)
	}
	goodEd, _ := NewProof(ctx, ed, ProofParams{Method: "POST", URL: endpoint + "?q#f", AccessToken: "at", Now: epoch})
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, goodEd, "", "a.b.c", "a.b", "..", strings.Repeat(".", 10),
		"eyJhbGciOiJub25lIn0.e30.",
		parts[0] + ".e30." + parts[2],
		parts[0] + "." + parts[1] + ".",
		b64(`{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"","y":""}}`) + ".e30.c2ln",
	} {
		f.Add(s)
	}
	jkt, _ := Thumbprint(key.Public())
	jktEd, _ := Thumbprint(ed.Public())
	c := &clock{now: epoch}
	u := mustURL(f, endpoint)
	f.Fuzz(func(t *testing.T, proof string) {
		v := newVerifier(t, VerifierConfig{Replay: NewMemoryReplayCache(c.Now), Now: c.Now})
		p, err := v.Verify(ctx, proof, Request{Method: "POST", URL: u, AccessToken: "at"})
		if err != nil {
			if ErrorCode(err) != CodeInvalidProof {
				t.Fatalf("error without the invalid_dpop_proof code: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "dpop: ") || len(err.Error()) > 400 {
				t.Fatalf("message %q", err)
			}
			return
		}
		// Only the two keys above can sign a proof that passes.
		if p.JKT != jkt && p.JKT != jktEd {
			t.Fatalf("accepted a proof by an unknown key %q", p.JKT)
		}
		if p.JTI == "" || p.Key == nil {
			t.Fatalf("proof %+v", p)
		}
		if _, err := v.Verify(ctx, proof, Request{Method: "POST", URL: u, AccessToken: "at"}); !errors.Is(err, ErrReplay) {
			t.Fatalf("second use: %v", err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	for name, key := range map[string]crypto.Signer{"ES256": ecKey(b), "EdDSA": edKey(b)} {
		b.Run(name, func(b *testing.B) {
			c := &clock{now: epoch}
			// The replay cache has its own benchmark; this one measures the
			// proof checks, so the same proof is verified again and again.
			v := newVerifier(b, VerifierConfig{Replay: acceptAll{}, Now: c.Now})
			proof, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, AccessToken: "at", Now: epoch})
			if err != nil {
				b.Fatal(err)
			}
			req := Request{Method: "POST", URL: mustURL(b, endpoint), AccessToken: "at"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, proof, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewProof(b *testing.B) {
	ctx := context.Background()
	key := ecKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewProof(ctx, key, ProofParams{Method: "POST", URL: endpoint, AccessToken: "at"}); err != nil {
			b.Fatal(err)
		}
	}
}
