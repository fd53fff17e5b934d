package jose

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	keysOnce sync.Once
	p256Key  *ecdsa.PrivateKey
	p384Key  *ecdsa.PrivateKey
	p521Key  *ecdsa.PrivateKey
	rsaKey   *rsa.PrivateKey
	edKey    ed25519.PrivateKey
	evilKey  *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		p256Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		p384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		p521Key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		evilKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		if err != nil {
			panic(err)
		}
	})
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// craft builds a compact JWS from raw header and payload JSON, signed by
// sign over the signing input (nil sign gives an empty-looking signature
// "AA").
func craft(header, payload []byte, sign func(input []byte) []byte) string {
	input := b64(header) + "." + b64(payload)
	sig := []byte{0}
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64(sig)
}

// es256 signs input with key in JWS (r||s) form.
func es256(t testing.TB, key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(input []byte) []byte {
		h := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func baseClaims() map[string]any {
	return map[string]any{
		"iss": "https://issuer.example",
		"sub": "spiffe://example.org/agent/a",
		"aud": []string{"https://rs.example", "other"},
		"exp": t0.Add(time.Hour).Unix(),
		"iat": t0.Unix(),
		"nbf": t0.Add(-time.Minute).Unix(),
		"jti": "id-1",
	}
}

func baseOpts(typ Typ) VerifyOptions {
	return VerifyOptions{
		Types:    []Typ{typ},
		Keys:     StaticKeys(map[string]crypto.PublicKey{"k1": &p256Key.PublicKey}),
		Issuer:   "https://issuer.example",
		Audience: "https://rs.example",
		Now:      fixedNow,
		Leeway:   30 * time.Second,
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name    string
		key     crypto.Signer
		wantAlg Alg
	}{
		{"p256", p256Key, ES256},
		{"p384", p384Key, ES384},
		{"p521", p521Key, ES512},
		{"rsa", rsaKey, RS256},
		{"ed25519", edKey, EdDSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Sign(context.Background(), tt.key, "kid-x", TypAccessToken, baseClaims())
			if err != nil {
				t.Fatal(err)
			}
			hdrPart, _, _ := strings.Cut(tok, ".")
			hb, err := base64.RawURLEncoding.DecodeString(hdrPart)
			if err != nil {
				t.Fatal(err)
			}
			var hdr map[string]any
			if err := json.Unmarshal(hb, &hdr); err != nil {
				t.Fatal(err)
			}
			wantHdr := map[string]any{"alg": string(tt.wantAlg), "kid": "kid-x", "typ": "at+jwt"}
			if diff := cmp.Diff(wantHdr, hdr); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			opts := baseOpts(TypAccessToken)
			opts.Keys = StaticKeys(map[string]crypto.PublicKey{"kid-x": tt.key.Public()})
			opts.Algorithms = append(append([]Alg(nil), DefaultAlgorithms...), EdDSA)
			got, err := Verify(context.Background(), tok, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Alg != tt.wantAlg || got.KID != "kid-x" || got.Typ != "at+jwt" {
				t.Errorf("header = %s %s %s", got.Alg, got.KID, got.Typ)
			}
			if got.Subject != "spiffe://example.org/agent/a" || got.Issuer != "https://issuer.example" || got.ID != "id-1" {
				t.Errorf("claims = %+v", got)
			}
			if diff := cmp.Diff([]string{"https://rs.example", "other"}, got.Audience); diff != "" {
				t.Errorf("aud (-want +got):\n%s", diff)
			}
			if !got.ExpiresAt.Equal(t0.Add(time.Hour)) || !got.IssuedAt.Equal(t0) || !got.NotBefore.Equal(t0.Add(-time.Minute)) {
				t.Errorf("times = %s %s %s", got.ExpiresAt, got.IssuedAt, got.NotBefore)
			}
			var decoded struct {
				JTI string `json:"jti"`
			}
			if err := got.Decode(&decoded); err != nil || decoded.JTI != "id-1" {
				t.Errorf("Decode = %+v, %v", decoded, err)
			}
		})
	}
}

func TestSignRefusals(t *testing.T) {
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    crypto.Signer
		h      Header
		claims any
		want   error
	}{
		{"rsa 1024", small, Header{Typ: TypJWT}, map[string]any{}, ErrUnsupportedKey},
		{"p224", p224, Header{Typ: TypJWT}, map[string]any{}, ErrUnsupportedKey},
		{"nil key", nil, Header{Typ: TypJWT}, map[string]any{}, ErrUnsupportedKey},
		{"no typ", p256Key, Header{}, map[string]any{}, ErrInvalidOptions},
		{"claims not object", p256Key, Header{Typ: TypJWT}, []string{"a"}, ErrInvalidOptions},
		{"extra alg", p256Key, Header{Typ: TypJWT, Extra: map[string]any{"alg": "none"}}, map[string]any{}, ErrInvalidOptions},
		{"extra crit", p256Key, Header{Typ: TypJWT, Extra: map[string]any{"crit": []string{"x"}}}, map[string]any{}, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key crypto.Signer
			if tt.key != nil {
				key = tt.key
			}
			_, err := SignWithHeader(context.Background(), key, tt.h, tt.claims)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Sign(ctx, p256Key, "k", TypJWT, map[string]any{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	testKeys(t)
	ctx := context.Background()
	good := func(t *testing.T) string {
		tok, err := Sign(ctx, p256Key, "k1", TypAccessToken, baseClaims())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	withClaims := func(mut func(map[string]any)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := baseClaims()
			mut(c)
			tok, err := Sign(ctx, p256Key, "k1", TypAccessToken, c)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	withHeader := func(hdr string, key *ecdsa.PrivateKey) func(t *testing.T) string {
		return func(t *testing.T) string {
			return craft([]byte(hdr), mustJSON(t, baseClaims()), es256(t, key))
		}
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&p256Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := PublicJWK(&p256Key.PublicKey, "k1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	evilJWK, err := PublicJWK(&evilKey.PublicKey, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) func(t *testing.T) string {
		return func(t *testing.T) string {
			return craft([]byte(`{"alg":"HS256","kid":"k1","typ":"at+jwt"}`), mustJSON(t, baseClaims()), func(in []byte) []byte {
				m := hmac.New(sha256.New, secret)
				m.Write(in)
				return m.Sum(nil)
			})
		}
	}
	tests := []struct {
		name  string
		token func(t *testing.T) string
		opts  func(*VerifyOptions)
		want  error
	}{
		{"alg none", func(t *testing.T) string {
			return b64([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + b64(mustJSON(t, baseClaims())) + "."
		}, nil, ErrMalformed},
		{"alg none with signature", func(t *testing.T) string {
			return craft([]byte(`{"alg":"none","kid":"k1","typ":"at+jwt"}`), mustJSON(t, baseClaims()), nil)
		}, nil, ErrAlgorithm},
		{"alg missing", withHeader(`{"kid":"k1","typ":"at+jwt"}`, p256Key), nil, ErrAlgorithm},
		{"alg not a string", withHeader(`{"alg":1,"kid":"k1","typ":"at+jwt"}`, p256Key), nil, ErrMalformed},
		{"HS256 with public key DER as secret", hs256(pubDER), nil, ErrAlgorithm},
		{"HS256 with public JWK as secret", hs256(mustJSON(t, pubJWK)), nil, ErrAlgorithm},
		{"ES384 not allowed", good, func(o *VerifyOptions) { o.Algorithms = []Alg{ES384} }, ErrAlgorithm},
		{"alg and key curve mismatch", withHeader(`{"alg":"ES384","kid":"k1","typ":"at+jwt"}`, p256Key), nil, ErrAlgorithm},
		{"RS256 header with ecdsa key", withHeader(`{"alg":"RS256","kid":"k1","typ":"at+jwt"}`, p256Key), nil, ErrAlgorithm},
		{"missing typ", withHeader(`{"alg":"ES256","kid":"k1"}`, p256Key), nil, ErrWrongType},
		{"null typ", withHeader(`{"alg":"ES256","kid":"k1","typ":null}`, p256Key), nil, ErrMalformed},
		{"empty typ", withHeader(`{"alg":"ES256","kid":"k1","typ":""}`, p256Key), nil, ErrWrongType},
		{"typ JWT where at+jwt expected", withHeader(`{"alg":"ES256","kid":"k1","typ":"JWT"}`, p256Key), nil, ErrWrongType},
		{"typ with other prefix", withHeader(`{"alg":"ES256","kid":"k1","typ":"text/at+jwt"}`, p256Key), nil, ErrWrongType},
		{"expired", withClaims(func(c map[string]any) { c["exp"] = t0.Add(-31 * time.Second).Unix() }), nil, ErrExpired},
		{"expired exactly at leeway", withClaims(func(c map[string]any) { c["exp"] = t0.Add(-30 * time.Second).Unix() }), nil, ErrExpired},
		{"exp missing", withClaims(func(c map[string]any) { delete(c, "exp") }), nil, ErrExpired},
		{"exp not a number", withClaims(func(c map[string]any) { c["exp"] = "tomorrow" }), nil, ErrMalformed},
		{"nbf in the future", withClaims(func(c map[string]any) { c["nbf"] = t0.Add(31 * time.Second).Unix() }), nil, ErrNotYetValid},
		{"iat in the future beyond skew", withClaims(func(c map[string]any) { c["iat"] = t0.Add(31 * time.Second).Unix() }), nil, ErrIssuedInFuture},
		{"wrong aud", withClaims(func(c map[string]any) { c["aud"] = "https://other.example" }), nil, ErrAudience},
		{"aud missing", withClaims(func(c map[string]any) { delete(c, "aud") }), nil, ErrAudience},
		{"aud wrong type", withClaims(func(c map[string]any) { c["aud"] = 5 }), nil, ErrMalformed},
		{"aud forbidden", good, func(o *VerifyOptions) { o.Audience = ""; o.ForbidAudience = true }, ErrAudience},
		{"wrong iss", withClaims(func(c map[string]any) { c["iss"] = "https://issuer.example/" }), nil, ErrIssuer},
		{"sub required", withClaims(func(c map[string]any) { delete(c, "sub") }), func(o *VerifyOptions) { o.RequireSubject = true }, ErrMissingClaim},
		{"unknown kid", withHeader(`{"alg":"ES256","kid":"k2","typ":"at+jwt"}`, p256Key), nil, ErrUnknownKey},
		{"kid required", withHeader(`{"alg":"ES256","typ":"at+jwt"}`, p256Key), func(o *VerifyOptions) { o.RequireKID = true }, ErrUnknownKey},
		{"embedded jwk not trusted", withHeader(`{"alg":"ES256","kid":"evil","typ":"at+jwt","jwk":`+string(mustJSON(t, evilJWK))+`}`, evilKey), nil, ErrUnknownKey},
		{"embedded jwk with known kid", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","jwk":`+string(mustJSON(t, evilJWK))+`}`, evilKey), nil, ErrInvalidSignature},
		{"jku not followed", withHeader(`{"alg":"ES256","kid":"evil","typ":"at+jwt","jku":"https://evil.example/jwks"}`, evilKey), nil, ErrUnknownKey},
		{"x5u with known kid", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","x5u":"https://evil.example/c"}`, evilKey), nil, ErrInvalidSignature},
		{"crit", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","crit":["exp"],"exp":1}`, p256Key), nil, ErrHeader},
		{"b64", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","b64":false}`, p256Key), nil, ErrHeader},
		{"header not allowed", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","x":1}`, p256Key), func(o *VerifyOptions) { o.AllowedHeaders = []string{"alg", "kid", "typ"} }, ErrHeader},
		{"duplicate header member", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt","typ":"at+jwt"}`, p256Key), nil, ErrMalformed},
		{"duplicate claim", func(t *testing.T) string {
			return craft([]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`), []byte(`{"sub":"a","sub":"b","exp":99999999999}`), es256(t, p256Key))
		}, func(o *VerifyOptions) { o.Issuer, o.Audience = "", "" }, ErrMalformed},
		{"payload not an object", func(t *testing.T) string {
			return craft([]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`), []byte(`[1]`), es256(t, p256Key))
		}, nil, ErrMalformed},
		{"tampered payload", func(t *testing.T) string {
			tok := good(t)
			parts := strings.Split(tok, ".")
			c := baseClaims()
			c["sub"] = "spiffe://example.org/agent/b"
			return parts[0] + "." + b64(mustJSON(t, c)) + "." + parts[2]
		}, nil, ErrInvalidSignature},
		{"signature of other key", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, evilKey), nil, ErrInvalidSignature},
		{"signature wrong length", func(t *testing.T) string {
			return craft([]byte(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`), mustJSON(t, baseClaims()), func([]byte) []byte { return make([]byte, 63) })
		}, nil, ErrInvalidSignature},
		{"too large", good, func(o *VerifyOptions) { o.MaxTokenSize = 100 }, ErrMalformed},
		{"two parts", func(*testing.T) string { return "a.b" }, nil, ErrMalformed},
		{"four parts", func(*testing.T) string { return "a.b.c.d" }, nil, ErrMalformed},
		{"bad base64", func(*testing.T) string { return "a+b.c.d" }, nil, ErrMalformed},
		{"header padding", func(t *testing.T) string {
			tok := good(t)
			h, rest, _ := strings.Cut(tok, ".")
			return h + "=." + rest
		}, nil, ErrMalformed},
		{"no types configured", good, func(o *VerifyOptions) { o.Types = nil }, ErrInvalidOptions},
		{"HS256 configured", good, func(o *VerifyOptions) { o.Algorithms = []Alg{"HS256"} }, ErrInvalidOptions},
		{"none configured", good, func(o *VerifyOptions) { o.Algorithms = []Alg{"none"} }, ErrInvalidOptions},
		{"no key source", good, func(o *VerifyOptions) { o.Keys = nil }, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOpts(TypAccessToken)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := Verify(ctx, tt.token(t), opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	testKeys(t)
	ctx := context.Background()
	withHeader := func(hdr string, claims map[string]any) string {
		return craft([]byte(hdr), mustJSON(t, claims), es256(t, p256Key))
	}
	tests := []struct {
		name  string
		token string
		opts  func(*VerifyOptions)
	}{
		{"application prefix", withHeader(`{"alg":"ES256","kid":"k1","typ":"application/at+jwt"}`, baseClaims()), nil},
		{"upper case typ", withHeader(`{"alg":"ES256","kid":"k1","typ":"AT+JWT"}`, baseClaims()), nil},
		{"upper case prefix", withHeader(`{"alg":"ES256","kid":"k1","typ":"Application/At+Jwt"}`, baseClaims()), nil},
		{"iat within skew", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			c["iat"] = t0.Add(29 * time.Second).Unix()
			c["nbf"] = t0.Add(29 * time.Second).Unix()
			return c
		}()), nil},
		{"expired within skew", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			c["exp"] = t0.Add(-29 * time.Second).Unix()
			return c
		}()), nil},
		{"fractional exp", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			c["exp"] = float64(t0.Add(time.Hour).Unix()) + 0.5
			return c
		}()), nil},
		{"aud as string", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			c["aud"] = "https://rs.example"
			return c
		}()), nil},
		{"exp optional", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			delete(c, "exp")
			return c
		}()), func(o *VerifyOptions) { o.OptionalExp = true }},
		{"missing typ allowed for JWT-SVID", withHeader(`{"alg":"ES256","kid":"k1"}`, baseClaims()), func(o *VerifyOptions) {
			o.Types = []Typ{TypJWT, TypJOSE}
			o.AllowMissingTyp = true
		}},
		{"JOSE typ for JWT-SVID", withHeader(`{"alg":"ES256","kid":"k1","typ":"JOSE"}`, baseClaims()), func(o *VerifyOptions) {
			o.Types = []Typ{TypJWT, TypJOSE}
			o.AllowMissingTyp = true
		}},
		{"no kid with single static key", withHeader(`{"alg":"ES256","typ":"at+jwt"}`, baseClaims()), nil},
		{"unknown claims ignored", withHeader(`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, func() map[string]any {
			c := baseClaims()
			c["x-private"] = map[string]any{"a": 1}
			return c
		}()), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOpts(TypAccessToken)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			if _, err := Verify(ctx, tt.token, opts); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// TestTypConfusion signs one token of every type and presents it where
// each other type is expected: only the matching type is accepted.
func TestTypConfusion(t *testing.T) {
	testKeys(t)
	ctx := context.Background()
	types := []Typ{TypAccessToken, TypDPoP, TypTxnToken, TypWIT, TypWPT, TypIDJAG, TypSecEvent, TypClientAttestPoP, TypJWT}
	for _, presented := range types {
		tok, err := Sign(ctx, p256Key, "k1", presented, baseClaims())
		if err != nil {
			t.Fatal(err)
		}
		for _, expected := range types {
			t.Run(fmt.Sprintf("%s as %s", presented, expected), func(t *testing.T) {
				_, err := Verify(ctx, tok, baseOpts(expected))
				if presented == expected {
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					return
				}
				if !errors.Is(err, ErrWrongType) {
					t.Fatalf("err = %v, want ErrWrongType", err)
				}
			})
		}
	}
}

func TestEmbeddedJWK(t *testing.T) {
	testKeys(t)
	ctx := context.Background()
	claims := map[string]any{"jti": "p1", "htm": "POST", "htu": "https://rs.example/x", "iat": t0.Unix()}
	opts := VerifyOptions{Types: []Typ{TypDPoP}, AllowEmbeddedJWK: true, OptionalExp: true, Now: fixedNow}

	tok, err := SignWithHeader(ctx, p256Key, Header{Typ: TypDPoP, EmbedJWK: true}, claims)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(ctx, tok, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !p256Key.PublicKey.Equal(got.Key) {
		t.Errorf("Key is not the signer's public key")
	}

	privJWK := mustJSON(t, map[string]any{
		"kty": "EC", "crv": "P-256",
		"x": b64(p256Key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": b64(p256Key.PublicKey.Y.FillBytes(make([]byte, 32))),
		"d": b64(p256Key.D.FillBytes(make([]byte, 32))),
	})
	tests := []struct {
		name string
		hdr  string
		want error
	}{
		{"no jwk", `{"alg":"ES256","typ":"dpop+jwt"}`, ErrUnknownKey},
		{"private jwk", `{"alg":"ES256","typ":"dpop+jwt","jwk":` + string(privJWK) + `}`, ErrUnknownKey},
		{"symmetric jwk", `{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"oct","k":"c2VjcmV0"}}`, ErrUnknownKey},
		{"jwk of other key", `{"alg":"ES256","typ":"dpop+jwt","jwk":` + string(mustJSON(t, mustPublicJWK(t, &evilKey.PublicKey))) + `}`, ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := craft([]byte(tt.hdr), mustJSON(t, claims), es256(t, p256Key))
			if _, err := Verify(ctx, tok, opts); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func mustPublicJWK(t testing.TB, pub crypto.PublicKey) map[string]any {
	t.Helper()
	m, err := PublicJWK(pub, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKeyFuncErrors(t *testing.T) {
	testKeys(t)
	ctx := context.Background()
	tok, err := Sign(ctx, p256Key, "k1", TypAccessToken, baseClaims())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		keys KeyFunc
	}{
		{"lookup error", func(context.Context, string) (crypto.PublicKey, error) { return nil, errors.New("jwks fetch failed") }},
		{"nil key", func(context.Context, string) (crypto.PublicKey, error) { return nil, nil }},
		{"incomplete ecdsa key", func(context.Context, string) (crypto.PublicKey, error) { return &ecdsa.PublicKey{}, nil }},
		{"no kid with two keys", StaticKeys(map[string]crypto.PublicKey{"a": &p256Key.PublicKey, "b": &p384Key.PublicKey})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := baseOpts(TypAccessToken)
			o.Keys = tt.keys
			token := tok
			if tt.name == "no kid with two keys" {
				token = craft([]byte(`{"alg":"ES256","typ":"at+jwt"}`), mustJSON(t, baseClaims()), es256(t, p256Key))
			}
			_, err := Verify(ctx, token, o)
			if !errors.Is(err, ErrUnknownKey) && !(tt.name == "incomplete ecdsa key" && errors.Is(err, ErrAlgorithm)) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		})
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 §3.1 example key and thumbprint.
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
	testKeys(t)
	if _, err := Thumbprint(p256Key); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("Thumbprint(private key): err = %v, want ErrUnsupportedKey", err)
	}
	if _, err := Thumbprint([]byte("secret")); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("Thumbprint(symmetric): err = %v, want ErrUnsupportedKey", err)
	}
}

func TestPublicJWK(t *testing.T) {
	testKeys(t)
	m, err := PublicJWK(&p256Key.PublicKey, "kid-1", "ES256", "sig")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "kid-1", "alg": "ES256", "use": "sig",
		"x": b64(p256Key.PublicKey.X.FillBytes(make([]byte, 32))),
		"y": b64(p256Key.PublicKey.Y.FillBytes(make([]byte, 32))),
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("PublicJWK (-want +got):\n%s", diff)
	}
	back, err := ParsePublicJWK(mustJSON(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if !p256Key.PublicKey.Equal(back) {
		t.Errorf("ParsePublicJWK did not return the same key")
	}
	for _, bad := range []any{p256Key, rsaKey, []byte("k"), "x", nil, &ecdsa.PublicKey{}, (*ecdsa.PublicKey)(nil), &rsa.PublicKey{}} {
		if _, err := PublicJWK(bad, "", "", ""); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("PublicJWK(%T): err = %v, want ErrUnsupportedKey", bad, err)
		}
	}
}

func TestKeySet(t *testing.T) {
	testKeys(t)
	keys := []SetKey{
		{KID: "b", Key: &p384Key.PublicKey, Alg: "ES384", Use: "sig"},
		{KID: "a", Key: &p256Key.PublicKey, Alg: "ES256"},
		{KID: "c", Key: &rsaKey.PublicKey},
		{KID: "d", Key: edKey.Public()},
	}
	data, err := MarshalKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKeySet(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("got %d keys, want %d", len(got), len(keys))
	}
	for _, k := range keys {
		eq, ok := got[k.KID].(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(k.Key) {
			t.Errorf("kid %s: got %T, not equal to the original", k.KID, got[k.KID])
		}
	}
	if _, err := MarshalKeySet([]SetKey{{KID: "a", Key: &p256Key.PublicKey}, {KID: "a", Key: &p384Key.PublicKey}}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("duplicate kid: err = %v", err)
	}

	ecJWK := string(mustJSON(t, mustPublicJWK(t, &p256Key.PublicKey)))
	withKID := func(kid string) string {
		m := mustPublicJWK(t, &p256Key.PublicKey)
		m["kid"] = kid
		return string(mustJSON(t, m))
	}
	tests := []struct {
		name string
		data string
		max  int
		want error
	}{
		{"too large", `{"keys":[]}`, 5, ErrMalformed},
		{"not json", `{`, 0, ErrMalformed},
		{"no keys member", `{}`, 0, ErrMalformed},
		{"keys not array", `{"keys":{}}`, 0, ErrMalformed},
		{"keys null", `{"keys":null}`, 0, ErrMalformed},
		{"no kid", `{"keys":[` + ecJWK + `]}`, 0, ErrMalformed},
		{"duplicate kid", `{"keys":[` + withKID("x") + `,` + withKID("x") + `]}`, 0, ErrMalformed},
		{"private key", `{"keys":[{"kty":"EC","kid":"p","crv":"P-256","x":"` + b64(p256Key.PublicKey.X.FillBytes(make([]byte, 32))) + `","y":"` + b64(p256Key.PublicKey.Y.FillBytes(make([]byte, 32))) + `","d":"` + b64(p256Key.D.FillBytes(make([]byte, 32))) + `"}]}`, 0, ErrUnsupportedKey},
		{"symmetric key", `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, 0, ErrUnsupportedKey},
		{"unknown kty", `{"keys":[{"kty":"XYZ","kid":"s"}]}`, 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseKeySet([]byte(tt.data), tt.max); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	empty, err := ParseKeySet([]byte(`{"keys":[{"kty":"EC","use":"enc","crv":"P-256"}]}`), 0)
	if err != nil || len(empty) != 0 {
		t.Errorf("enc key: got %v, %v; want it skipped", empty, err)
	}
}

func TestTypMatches(t *testing.T) {
	tests := []struct {
		typ  Typ
		v    string
		want bool
	}{
		{TypAccessToken, "at+jwt", true},
		{TypAccessToken, "application/at+jwt", true},
		{TypAccessToken, "AT+JWT", true},
		{TypAccessToken, "application/application/at+jwt", false},
		{TypAccessToken, "", false},
		{TypJWT, "jwt", true},
		{TypJWT, "JOSE", false},
		{TypWIT, "wimse-id+jwt", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ)+" "+tt.v, func(t *testing.T) {
			if got := tt.typ.Matches(tt.v); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	testKeys(f)
	ctx := context.Background()
	tok, err := Sign(ctx, p256Key, "k1", TypAccessToken, baseClaims())
	if err != nil {
		f.Fatal(err)
	}
	dpop, err := SignWithHeader(ctx, p256Key, Header{Typ: TypDPoP, EmbedJWK: true}, baseClaims())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		tok, dpop, "", ".", "..", "a.b.c", "e30.e30.e30", "e30.e30.",
		b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{}`)) + ".",
		b64([]byte(`{"alg":"ES256","typ":"at+jwt","kid":"k1"}`)) + "." + b64([]byte(`{"exp":1e400}`)) + ".AAAA",
		b64([]byte(`{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}`)) + "." + b64([]byte(`{}`)) + ".AAAA",
		tok[:len(tok)-3],
	} {
		f.Add(s)
	}
	opts := baseOpts(TypAccessToken)
	dpopOpts := VerifyOptions{Types: []Typ{TypDPoP}, AllowEmbeddedJWK: true, Now: fixedNow}
	f.Fuzz(func(t *testing.T, s string) {
		for _, o := range []VerifyOptions{opts, dpopOpts} {
			got, err := Verify(ctx, s, o)
			if err == nil && got == nil {
				t.Fatal("nil token without error")
			}
			if err != nil && got != nil {
				t.Fatal("token with error")
			}
		}
	})
}
