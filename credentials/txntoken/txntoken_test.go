package txntoken_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

func decodePart(t *testing.T, token string, part int) map[string]json.RawMessage {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMintVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, func(c *txntoken.Config) { c.Issuer = "https://tts.example.org" })
	req := request(t)
	tok, minted, err := iss.Mint(ctx, req)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}

	want := req
	want.Issuer = "https://tts.example.org"
	want.Audience = testTD
	want.IssuedAt = t0.Unix()
	want.ExpiresAt = t0.Add(txntoken.DefaultTTL).Unix()
	if minted != want {
		t.Errorf("minted claims\n got %+v\nwant %+v", minted, want)
	}
	if txntoken.DefaultTTL != 60*time.Second {
		t.Errorf("DefaultTTL = %v, want 60s", txntoken.DefaultTTL)
	}

	hdr := decodePart(t, tok, 0)
	for name, v := range map[string]string{"typ": `"txntoken+jwt"`, "kid": `"k1"`, "alg": `"ES256"`} {
		if string(hdr[name]) != v {
			t.Errorf("header %s = %s, want %s", name, hdr[name], v)
		}
	}
	pay := decodePart(t, tok, 1)
	if string(pay["aud"]) != `"example.org"` {
		t.Errorf("aud = %s, want a single string", pay["aud"])
	}
	if string(pay["scope"]) != `"payments.transfer notes.read"` {
		t.Errorf("scope = %s", pay["scope"])
	}
	var tctx map[string]json.RawMessage
	if err := json.Unmarshal(pay["tctx"], &tctx); err != nil {
		t.Fatalf("tctx: %v", err)
	}
	if string(tctx["tool"]) != `"payments/transfer"` || len(tctx["args_sha256"]) != 66 || string(tctx["amount"]) != "3" {
		t.Errorf("tctx = %s", pay["tctx"])
	}

	got, err := txntoken.Verify(ctx, tok, verifyOpts(t))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if *got != want {
		t.Errorf("verified claims\n got %+v\nwant %+v", *got, want)
	}
	if s := got.Scopes(); len(s) != 2 || s[0] != "payments.transfer" || s[1] != "notes.read" {
		t.Errorf("Scopes() = %q", s)
	}
	if !got.HasScope("notes.read") || got.HasScope("notes") {
		t.Errorf("HasScope wrong")
	}
	if err := got.CheckCall(testTool, json.RawMessage(testArgs)); err != nil {
		t.Errorf("CheckCall: %v", err)
	}
}

func TestMintOptionalClaimsOmitted(t *testing.T) {
	iss := newIssuer(t, nil)
	req := request(t)
	req.TransactionContext = txntoken.Object{}
	req.RequestContext = txntoken.Object{}
	tok, _, err := iss.Mint(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	pay := decodePart(t, tok, 1)
	for _, name := range []string{"iss", "tctx", "rctx"} {
		if v, ok := pay[name]; ok {
			t.Errorf("%s = %s, want it omitted", name, v)
		}
	}
	got, err := txntoken.Verify(context.Background(), tok, verifyOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	if !got.TransactionContext.IsZero() || !got.RequestContext.IsZero() || got.Issuer != "" {
		t.Errorf("got %+v", got)
	}
}

func TestMintLifetime(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, func(c *txntoken.Config) { c.TTL = 5 * time.Minute })
	req := request(t)
	_, c, err := iss.Mint(ctx, req)
	if err != nil || c.ExpiresAt != t0.Add(5*time.Minute).Unix() {
		t.Fatalf("TTL: exp %d, err %v", c.ExpiresAt, err)
	}
	// A caller-supplied exp (e.g. the subject token's) caps the lifetime.
	req.ExpiresAt = t0.Add(30 * time.Second).Unix()
	_, c, err = iss.Mint(ctx, req)
	if err != nil || c.ExpiresAt != t0.Add(30*time.Second).Unix() {
		t.Fatalf("cap: exp %d, err %v", c.ExpiresAt, err)
	}
	// ... but never extends it.
	req.ExpiresAt = t0.Add(time.Hour).Unix()
	_, c, err = iss.Mint(ctx, req)
	if err != nil || c.ExpiresAt != t0.Add(5*time.Minute).Unix() {
		t.Fatalf("no extension: exp %d, err %v", c.ExpiresAt, err)
	}
}

func TestMintRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*txntoken.Claims)
	}{
		{"missing txn", func(c *txntoken.Claims) { c.Txn = "" }},
		{"missing sub", func(c *txntoken.Claims) { c.Subject = "" }},
		{"missing scope", func(c *txntoken.Claims) { c.Scope = "" }},
		{"scope with double space", func(c *txntoken.Claims) { c.Scope = "a  b" }},
		{"scope with leading space", func(c *txntoken.Claims) { c.Scope = " a" }},
		{"scope with quote", func(c *txntoken.Claims) { c.Scope = `a"b` }},
		{"missing req_wl", func(c *txntoken.Claims) { c.RequestingWorkload = "" }},
		{"aud of another trust domain", func(c *txntoken.Claims) { c.Audience = "other.org" }},
		{"iss other than the issuer's", func(c *txntoken.Claims) { c.Issuer = "https://evil.example" }},
		{"exp already passed", func(c *txntoken.Claims) { c.ExpiresAt = t0.Unix() }},
	}
	iss := newIssuer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(t)
			tt.mod(&req)
			tok, _, err := iss.Mint(context.Background(), req)
			if !errors.Is(err, txntoken.ErrInvalid) {
				t.Fatalf("Mint err = %v, want ErrInvalid", err)
			}
			if tok != "" {
				t.Errorf("Mint returned a token with an error")
			}
			if !strings.HasPrefix(err.Error(), "txntoken: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	testKeys(t)
	complete := func(t testing.TB) txntoken.Claims {
		c := request(t)
		c.Audience = testTD
		c.IssuedAt = t0.Unix()
		c.ExpiresAt = t0.Add(time.Minute).Unix()
		return c
	}
	if _, err := txntoken.Sign(context.Background(), key, testKID, complete(t)); err != nil {
		t.Fatalf("Sign of complete claims: %v", err)
	}
	tests := []struct {
		name string
		kid  string
		mod  func(*txntoken.Claims)
		want error
	}{
		{"missing aud", testKID, func(c *txntoken.Claims) { c.Audience = "" }, txntoken.ErrInvalid},
		{"missing iat", testKID, func(c *txntoken.Claims) { c.IssuedAt = 0 }, txntoken.ErrInvalid},
		{"missing exp", testKID, func(c *txntoken.Claims) { c.ExpiresAt = 0 }, txntoken.ErrInvalid},
		{"exp before iat", testKID, func(c *txntoken.Claims) { c.ExpiresAt = c.IssuedAt - 1 }, txntoken.ErrInvalid},
		{"missing txn", testKID, func(c *txntoken.Claims) { c.Txn = "" }, txntoken.ErrInvalid},
		{"missing sub", testKID, func(c *txntoken.Claims) { c.Subject = "" }, txntoken.ErrInvalid},
		{"missing scope", testKID, func(c *txntoken.Claims) { c.Scope = "" }, txntoken.ErrInvalid},
		{"missing req_wl", testKID, func(c *txntoken.Claims) { c.RequestingWorkload = "" }, txntoken.ErrInvalid},
		{"missing kid", "", func(*txntoken.Claims) {}, txntoken.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := complete(t)
			tt.mod(&c)
			if _, err := txntoken.Sign(context.Background(), key, tt.kid, c); !errors.Is(err, tt.want) {
				t.Fatalf("Sign err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := txntoken.Sign(context.Background(), nil, testKID, complete(t)); !errors.Is(err, txntoken.ErrConfig) {
		t.Errorf("nil key: err = %v, want ErrConfig", err)
	}
}

func TestNewIssuerConfig(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name string
		mod  func(*txntoken.Config)
	}{
		{"nil signer", func(c *txntoken.Config) { c.Signer = nil }},
		{"no kid", func(c *txntoken.Config) { c.KeyID = "" }},
		{"no trust domain", func(c *txntoken.Config) { c.TrustDomain = "" }},
		{"negative TTL", func(c *txntoken.Config) { c.TTL = -time.Second }},
		{"TTL above MaxTTL", func(c *txntoken.Config) { c.TTL = txntoken.MaxTTL + time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := txntoken.Config{Signer: key, KeyID: testKID, TrustDomain: testTD}
			tt.mod(&cfg)
			if _, err := txntoken.NewIssuer(cfg); !errors.Is(err, txntoken.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestIssuerKeys(t *testing.T) {
	iss := newIssuer(t, nil)
	tok, _, err := iss.Mint(context.Background(), request(t))
	if err != nil {
		t.Fatal(err)
	}
	opts := verifyOpts(t)
	opts.Keys = iss.Keys()
	if _, err := txntoken.Verify(context.Background(), tok, opts); err != nil {
		t.Fatalf("Verify with Issuer.Keys: %v", err)
	}
	if iss.TrustDomain() != testTD {
		t.Errorf("TrustDomain() = %q", iss.TrustDomain())
	}
}

func TestVerifyRejects(t *testing.T) {
	testKeys(t)
	withClaims := func(mod func(map[string]any)) func(testing.TB) string {
		return func(tb testing.TB) string {
			c := rawClaims()
			mod(c)
			return signJOSE(tb, key, testKID, jose.TypTxnToken, c)
		}
	}
	without := func(name string) func(testing.TB) string {
		return withClaims(func(c map[string]any) { delete(c, name) })
	}
	good := withClaims(func(map[string]any) {})
	tests := []struct {
		name  string
		token func(testing.TB) string
		opts  func(*txntoken.VerifyOptions)
		want  error
	}{
		// typ: no other kind of token is a Txn-Token (SPECS.md X.1, §6.6).
		{name: "typ at+jwt", want: txntoken.ErrWrongType,
			token: func(tb testing.TB) string { return signJOSE(tb, key, testKID, jose.TypAccessToken, rawClaims()) }},
		{name: "typ JWT (JWT-SVID, ID token)", want: txntoken.ErrWrongType,
			token: func(tb testing.TB) string { return signJOSE(tb, key, testKID, jose.TypJWT, rawClaims()) }},
		{name: "typ wit+jwt", want: txntoken.ErrWrongType,
			token: func(tb testing.TB) string { return signJOSE(tb, key, testKID, jose.TypWIT, rawClaims()) }},
		{name: "typ missing", want: txntoken.ErrWrongType,
			token: func(tb testing.TB) string {
				return craft(tb, key, `{"alg":"ES256","kid":"k1"}`, mustJSON(tb, rawClaims()))
			}},

		// aud: the token is good only inside its trust domain.
		{name: "aud of another trust domain", want: txntoken.ErrAudience,
			token: withClaims(func(c map[string]any) { c["aud"] = "other.org" })},
		{name: "verifier of another trust domain", want: txntoken.ErrAudience, token: good,
			opts: func(o *txntoken.VerifyOptions) { o.TrustDomain = "other.org" }},
		{name: "aud differing in case", want: txntoken.ErrAudience,
			token: withClaims(func(c map[string]any) { c["aud"] = "Example.org" })},
		{name: "aud array", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["aud"] = []string{testTD, "other.org"} })},

		// Time.
		{name: "expired", want: txntoken.ErrExpired, token: good,
			opts: func(o *txntoken.VerifyOptions) { o.Now = fixed(t0.Add(61 * time.Second)) }},
		{name: "at exp", want: txntoken.ErrExpired, token: good,
			opts: func(o *txntoken.VerifyOptions) { o.Now = fixed(t0.Add(time.Minute)) }},
		{name: "expired beyond leeway", want: txntoken.ErrExpired, token: good,
			opts: func(o *txntoken.VerifyOptions) {
				o.Now = fixed(t0.Add(time.Minute + 6*time.Second))
				o.Leeway = 5 * time.Second
			}},
		{name: "iat in the future", want: txntoken.ErrNotYetValid, token: good,
			opts: func(o *txntoken.VerifyOptions) { o.Now = fixed(t0.Add(-10 * time.Second)) }},
		{name: "iat in the future beyond leeway", want: txntoken.ErrNotYetValid, token: good,
			opts: func(o *txntoken.VerifyOptions) {
				o.Now = fixed(t0.Add(-10 * time.Second))
				o.Leeway = 5 * time.Second
			}},
		{name: "exp not after iat", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) {
				c["iat"] = t0.Add(15 * time.Second).Unix()
				c["exp"] = c["iat"]
			}),
			opts: func(o *txntoken.VerifyOptions) { o.Leeway = 10 * time.Second }},

		// Signature and key.
		{name: "signature byte flipped", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string { return flip(good(tb), 2) }},
		{name: "payload byte flipped", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string { return flip(good(tb), 1) }},
		{name: "signed by another key", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string { return signJOSE(tb, otherKey, testKID, jose.TypTxnToken, rawClaims()) }},
		{name: "unknown kid", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string { return signJOSE(tb, key, "k2", jose.TypTxnToken, rawClaims()) }},
		{name: "alg none", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string {
				enc := base64.RawURLEncoding
				return enc.EncodeToString([]byte(`{"alg":"none","typ":"txntoken+jwt"}`)) + "." +
					enc.EncodeToString([]byte(mustJSON(tb, rawClaims()))) + ".AAAA"
			}},
		{name: "alg HS256", want: txntoken.ErrSignature,
			token: func(tb testing.TB) string {
				return craft(tb, key, `{"alg":"HS256","typ":"txntoken+jwt","kid":"k1"}`, mustJSON(tb, rawClaims()))
			}},

		// Required claims, each missing.
		{name: "missing iat", want: txntoken.ErrInvalid, token: without("iat")},
		{name: "missing aud", want: txntoken.ErrInvalid, token: without("aud")},
		{name: "missing exp", want: txntoken.ErrInvalid, token: without("exp")},
		{name: "missing txn", want: txntoken.ErrInvalid, token: without("txn")},
		{name: "missing sub", want: txntoken.ErrInvalid, token: without("sub")},
		{name: "missing scope", want: txntoken.ErrInvalid, token: without("scope")},
		{name: "missing req_wl", want: txntoken.ErrInvalid, token: without("req_wl")},
		{name: "empty sub", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["sub"] = "" })},
		{name: "empty scope", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["scope"] = "" })},
		{name: "sub only in another case", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["SUB"] = c["sub"]; delete(c, "sub") })},

		// Claims of the wrong JSON type.
		{name: "iss is a number", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["iss"] = 5 })},
		{name: "iss is null", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["iss"] = nil })},
		{name: "txn is a number", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["txn"] = 7 })},
		{name: "req_wl is an array (draft -06 form)", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["req_wl"] = []string{testWL} })},
		{name: "iat is a string", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["iat"] = "now" })},
		{name: "tctx is a string", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["tctx"] = "x" })},
		{name: "tctx is null", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["tctx"] = nil })},
		{name: "rctx is an array", want: txntoken.ErrInvalid,
			token: withClaims(func(c map[string]any) { c["rctx"] = []int{1} })},
		{name: "tctx with a duplicate member", want: txntoken.ErrInvalid,
			token: func(tb testing.TB) string {
				c := rawClaims()
				delete(c, "tctx")
				p := mustJSON(tb, c)
				p = p[:len(p)-1] + `,"tctx":{"amount":3,"amount":30}}`
				return craft(tb, key, `{"alg":"ES256","typ":"txntoken+jwt","kid":"k1"}`, p)
			}},

		// Malformed.
		{name: "empty", want: txntoken.ErrInvalid, token: func(testing.TB) string { return "" }},
		{name: "two parts", want: txntoken.ErrInvalid, token: func(testing.TB) string { return "abc.def" }},
		{name: "not base64", want: txntoken.ErrInvalid, token: func(testing.TB) string { return "a*b.c*d.e*f" }},

		// Issuer, when pinned.
		{name: "iss other than expected", want: txntoken.ErrIssuer,
			token: withClaims(func(c map[string]any) { c["iss"] = "https://evil.example" }),
			opts:  func(o *txntoken.VerifyOptions) { o.Issuer = "https://tts.example.org" }},
		{name: "iss missing when expected", want: txntoken.ErrIssuer, token: good,
			opts: func(o *txntoken.VerifyOptions) { o.Issuer = "https://tts.example.org" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			opts := verifyOpts(t)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			c, err := txntoken.Verify(context.Background(), tok, opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify err = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Errorf("Verify returned claims with an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "txntoken: ") {
				t.Errorf("error %q lacks the package prefix", msg)
			}
			if parts := strings.Split(tok, "."); len(parts) == 3 && (strings.Contains(msg, tok) || strings.Contains(msg, parts[1]) || strings.Contains(msg, parts[2])) {
				t.Errorf("error %q carries the token", msg)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name  string
		token func(testing.TB) string
		opts  func(*txntoken.VerifyOptions)
	}{
		{name: "typ with media type prefix and other case (RFC 7515 §4.1.9)",
			token: func(tb testing.TB) string {
				return signJOSE(tb, key, testKID, "application/TxnToken+JWT", rawClaims())
			}},
		{name: "expired within leeway",
			token: func(tb testing.TB) string { return signJOSE(tb, key, testKID, jose.TypTxnToken, rawClaims()) },
			opts: func(o *txntoken.VerifyOptions) {
				o.Now = fixed(t0.Add(time.Minute + 4*time.Second))
				o.Leeway = 5 * time.Second
			}},
		{name: "iat in the future within leeway",
			token: func(tb testing.TB) string { return signJOSE(tb, key, testKID, jose.TypTxnToken, rawClaims()) },
			opts: func(o *txntoken.VerifyOptions) {
				o.Now = fixed(t0.Add(-4 * time.Second))
				o.Leeway = 5 * time.Second
			}},
		{name: "no kid, one trusted key",
			token: func(tb testing.TB) string { return signJOSE(tb, key, "", jose.TypTxnToken, rawClaims()) }},
		{name: "unknown claims ignored",
			token: func(tb testing.TB) string {
				c := rawClaims()
				c["x-extra"] = map[string]any{"a": 1}
				return signJOSE(tb, key, testKID, jose.TypTxnToken, c)
			}},
		{name: "pinned issuer",
			token: func(tb testing.TB) string {
				c := rawClaims()
				c["iss"] = "https://tts.example.org"
				return signJOSE(tb, key, testKID, jose.TypTxnToken, c)
			},
			opts: func(o *txntoken.VerifyOptions) { o.Issuer = "https://tts.example.org" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := verifyOpts(t)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			c, err := txntoken.Verify(context.Background(), tt.token(t), opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Txn != "txn-1" || c.Subject != "user:alice" || c.Audience != testTD || c.RequestingWorkload != testWL {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

func TestVerifyOptionsRequired(t *testing.T) {
	iss := newIssuer(t, nil)
	tok, _, err := iss.Mint(context.Background(), request(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*txntoken.VerifyOptions){
		"no keys":         func(o *txntoken.VerifyOptions) { o.Keys = nil },
		"no trust domain": func(o *txntoken.VerifyOptions) { o.TrustDomain = "" },
		"negative leeway": func(o *txntoken.VerifyOptions) { o.Leeway = -time.Second },
		"symmetric alg":   func(o *txntoken.VerifyOptions) { o.Algorithms = []jose.Alg{"HS256"} },
	} {
		t.Run(name, func(t *testing.T) {
			opts := verifyOpts(t)
			mod(&opts)
			if _, err := txntoken.Verify(context.Background(), tok, opts); !errors.Is(err, txntoken.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestVerifyKeepsJOSESentinel(t *testing.T) {
	testKeys(t)
	tok := signJOSE(t, key, testKID, jose.TypAccessToken, rawClaims())
	_, err := txntoken.Verify(context.Background(), tok, verifyOpts(t))
	if !errors.Is(err, txntoken.ErrWrongType) || !errors.Is(err, jose.ErrWrongType) {
		t.Fatalf("err = %v, want both ErrWrongType sentinels", err)
	}
}

func TestMintLogsNoToken(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	iss := newIssuer(t, func(c *txntoken.Config) { c.Logger = log })
	tok, _, err := iss.Mint(context.Background(), request(t))
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if out == "" {
		t.Fatal("nothing logged")
	}
	parts := strings.Split(tok, ".")
	if strings.Contains(out, parts[1]) || strings.Contains(out, parts[2]) {
		t.Errorf("log carries the token: %s", out)
	}
	if !strings.Contains(out, txntoken.TokenHash(tok)) || !strings.Contains(out, "txn-1") {
		t.Errorf("log lacks the token hash or txn: %s", out)
	}
}

func TestKeysFromOtherTypesAreNotShared(t *testing.T) {
	// A Txn-Token presented where jose verifies an access token is refused
	// too: the typ check cuts both ways.
	iss := newIssuer(t, nil)
	tok, _, err := iss.Mint(context.Background(), request(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = jose.Verify(context.Background(), tok, jose.VerifyOptions{
		Types: []jose.Typ{jose.TypAccessToken},
		Keys:  jose.StaticKeys(map[string]crypto.PublicKey{testKID: key.Public()}),
		Now:   fixed(t0),
	})
	if !errors.Is(err, jose.ErrWrongType) {
		t.Fatalf("err = %v, want jose.ErrWrongType", err)
	}
}
