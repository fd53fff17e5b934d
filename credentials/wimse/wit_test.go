package wimse_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

func TestVerifyWIT(t *testing.T) {
	testKeys(t)
	valid := mintWIT(t, nil)
	v := newVerifier(t, nil)
	got, err := v.VerifyWIT(context.Background(), valid)
	if err != nil {
		t.Fatalf("VerifyWIT: %v", err)
	}
	want := &wimse.WIT{
		Subject:   credentials.MustParseIdentity(testSubject),
		Issuer:    testIssuer,
		ID:        "wit-jti-1",
		KeyID:     testKID,
		IssuedAt:  time.Unix(t0.Add(-time.Minute).Unix(), 0).UTC(),
		ExpiresAt: time.Unix(t0.Add(time.Hour).Unix(), 0).UTC(),
		Alg:       jose.ES256,
		Hash:      wimse.TokenHash(valid),
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(wimse.WIT{}, "Key"), cmp.AllowUnexported(credentials.Identity{})); diff != "" {
		t.Errorf("WIT mismatch (-want +got):\n%s", diff)
	}
	if !workloadKey.PublicKey.Equal(got.Key) {
		t.Errorf("Key is not the workload's cnf key")
	}
}

func TestVerifyWITRefused(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name    string
		token   func(testing.TB) string
		mod     func(*wimse.Config)
		reasons []error
	}{
		{
			name:    "JWT-SVID typ JWT",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, testKID, jose.TypJWT, witClaims(tb)) },
			reasons: []error{wimse.ErrWrongType, jose.ErrWrongType},
		},
		{
			name:    "access token at+jwt",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, testKID, jose.TypAccessToken, witClaims(tb)) },
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "WPT in place of a WIT",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, testKID, jose.TypWPT, witClaims(tb)) },
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "Txn-Token in place of a WIT",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, testKID, jose.TypTxnToken, witClaims(tb)) },
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "pre-s2s-07 typ wimse-id+jwt",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, testKID, "wimse-id+jwt", witClaims(tb)) },
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name: "no typ",
			token: func(tb testing.TB) string {
				return craft(tb, authorityKey, `{"alg":"ES256","kid":"wit-1"}`, mustJSON(tb, witClaims(tb)))
			},
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name: "alg none",
			token: func(tb testing.TB) string {
				return craft(tb, authorityKey, `{"alg":"none","kid":"wit-1","typ":"wit+jwt"}`, mustJSON(tb, witClaims(tb)))
			},
			reasons: []error{wimse.ErrSignature},
		},
		{
			name: "expired",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() })
			},
			reasons: []error{wimse.ErrExpired},
		},
		{
			name:    "no exp",
			token:   func(tb testing.TB) string { return mintWIT(tb, func(c map[string]any) { delete(c, "exp") }) },
			reasons: []error{wimse.ErrExpired},
		},
		{
			name: "nbf in the future",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["nbf"] = t0.Add(time.Hour).Unix() })
			},
			reasons: []error{wimse.ErrNotYetValid},
		},
		{
			name: "iat in the future",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["iat"] = t0.Add(time.Hour).Unix() })
			},
			reasons: []error{wimse.ErrNotYetValid},
		},
		{
			name:    "signed by an unknown key under the trusted kid",
			token:   func(tb testing.TB) string { return sign(tb, rogueKey, testKID, jose.TypWIT, witClaims(tb)) },
			reasons: []error{wimse.ErrSignature, jose.ErrInvalidSignature},
		},
		{
			name:    "unknown kid",
			token:   func(tb testing.TB) string { return sign(tb, rogueKey, "rogue", jose.TypWIT, witClaims(tb)) },
			reasons: []error{wimse.ErrSignature, jose.ErrUnknownKey},
		},
		{
			name:    "WIT-SVID without kid",
			token:   func(tb testing.TB) string { return sign(tb, authorityKey, "", jose.TypWIT, witClaims(tb)) },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name:    "tampered payload",
			token:   func(tb testing.TB) string { return flip(mintWIT(tb, nil), 2) },
			reasons: []error{wimse.ErrSignature},
		},
		{
			name: "untrusted trust domain",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["sub"] = "spiffe://other.org/agent/caller" })
			},
			reasons: []error{credentials.ErrUntrustedDomain},
		},
		{
			name: "sub not a workload identifier",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["sub"] = "https://example.org/x" })
			},
		},
		{
			name:  "no sub",
			token: func(tb testing.TB) string { return mintWIT(tb, func(c map[string]any) { delete(c, "sub") }) },
		},
		{
			name:  "sub not a string",
			token: func(tb testing.TB) string { return mintWIT(tb, func(c map[string]any) { c["sub"] = 7 }) },
		},
		{
			name:    "WIT-SVID with aud",
			token:   func(tb testing.TB) string { return mintWIT(tb, func(c map[string]any) { c["aud"] = "x" }) },
			reasons: []error{jose.ErrAudience},
		},
		{
			name:  "no cnf",
			token: func(tb testing.TB) string { return mintWIT(tb, func(c map[string]any) { delete(c, "cnf") }) },
		},
		{
			name: "cnf without jwk",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["cnf"] = map[string]any{"jkt": "x"} })
			},
		},
		{
			name: "cnf.jwk holds a private key",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) {
					jwk := c["cnf"].(map[string]any)["jwk"].(map[string]any)
					jwk["d"] = "AAAA"
				})
			},
			reasons: []error{jose.ErrUnsupportedKey},
		},
		{
			name: "cnf.jwk without alg",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) {
					delete(c["cnf"].(map[string]any)["jwk"].(map[string]any), "alg")
				})
			},
		},
		{
			name: "cnf.jwk.alg for another curve",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["cnf"] = cnf(tb, workloadKey.Public(), jose.ES384) })
			},
		},
		{
			name: "cnf.jwk.alg symmetric",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) {
					c["cnf"].(map[string]any)["jwk"].(map[string]any)["alg"] = "HS256"
				})
			},
		},
		{
			name: "issuer other than configured",
			token: func(tb testing.TB) string {
				return mintWIT(tb, func(c map[string]any) { c["iss"] = "spiffe://example.org/evil" })
			},
			mod: func(c *wimse.Config) {
				a := c.TrustDomains[testTD]
				a.Issuer = testIssuer
				c.TrustDomains[testTD] = a
			},
			reasons: []error{jose.ErrIssuer},
		},
		{
			name:  "not a JWS",
			token: func(testing.TB) string { return "not.a.jwt" },
		},
		{
			name:  "empty",
			token: func(testing.TB) string { return "" },
		},
		{
			name:  "too large",
			token: func(testing.TB) string { return strings.Repeat("a", 20<<10) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.mod)
			w, err := v.VerifyWIT(context.Background(), tt.token(t))
			if err == nil {
				t.Fatalf("VerifyWIT accepted the token: %+v", w)
			}
			t.Logf("err: %v", err)
			if w != nil {
				t.Errorf("WIT returned with an error")
			}
			if !errors.Is(err, wimse.ErrInvalidWIT) {
				t.Errorf("err = %v, want ErrInvalidWIT", err)
			}
			for _, r := range tt.reasons {
				if !errors.Is(err, r) {
					t.Errorf("err = %v, want it to wrap %v", err, r)
				}
			}
		})
	}
}

func TestVerifyWITLeewayAndSchemes(t *testing.T) {
	testKeys(t)
	t.Run("exp within leeway", func(t *testing.T) {
		tok := mintWIT(t, func(c map[string]any) { c["exp"] = t0.Unix() })
		v := newVerifier(t, nil) // now is t0+10s, leeway 30s
		if _, err := v.VerifyWIT(context.Background(), tok); err != nil {
			t.Fatalf("VerifyWIT: %v", err)
		}
	})
	t.Run("exp beyond leeway", func(t *testing.T) {
		tok := mintWIT(t, func(c map[string]any) { c["exp"] = t0.Unix() })
		v := newVerifier(t, func(c *wimse.Config) { c.Leeway = 5 * time.Second })
		if _, err := v.VerifyWIT(context.Background(), tok); !errors.Is(err, wimse.ErrExpired) {
			t.Fatalf("err = %v, want ErrExpired", err)
		}
	})
	t.Run("wimse scheme without kid", func(t *testing.T) {
		c := witClaims(t)
		c["sub"] = "wimse://example.org/svc/caller"
		c["aud"] = "https://api.example.org"
		tok := sign(t, authorityKey, "", jose.TypWIT, c)
		v := newVerifier(t, nil)
		w, err := v.VerifyWIT(context.Background(), tok)
		if err != nil {
			t.Fatalf("VerifyWIT: %v", err)
		}
		if w.Subject.String() != "wimse://example.org/svc/caller" {
			t.Errorf("subject %s", w.Subject)
		}
	})
	t.Run("typ with application prefix", func(t *testing.T) {
		tok := sign(t, authorityKey, testKID, "application/wit+jwt", witClaims(t))
		if _, err := newVerifier(t, nil).VerifyWIT(context.Background(), tok); err != nil {
			t.Fatalf("VerifyWIT: %v", err)
		}
	})
	t.Run("Ed25519 confirmation key", func(t *testing.T) {
		tok := mintWIT(t, func(c map[string]any) { c["cnf"] = cnf(t, edKey.Public(), jose.EdDSA) })
		w, err := newVerifier(t, nil).VerifyWIT(context.Background(), tok)
		if err != nil {
			t.Fatalf("VerifyWIT: %v", err)
		}
		if w.Alg != jose.EdDSA {
			t.Errorf("alg %s", w.Alg)
		}
	})
	t.Run("keys of one trust domain never verify another's", func(t *testing.T) {
		// other.org trusts the rogue key; a WIT for example.org signed by
		// it must still be refused.
		tok := sign(t, rogueKey, testKID, jose.TypWIT, witClaims(t))
		v := newVerifier(t, func(c *wimse.Config) {
			c.TrustDomains["other.org"] = wimse.Authority{Keys: jose.StaticKeys(map[string]crypto.PublicKey{testKID: rogueKey.Public()})}
		})
		if _, err := v.VerifyWIT(context.Background(), tok); !errors.Is(err, wimse.ErrSignature) {
			t.Fatalf("err = %v, want ErrSignature", err)
		}
	})
}

func TestNewVerifierConfig(t *testing.T) {
	testKeys(t)
	keys := jose.StaticKeys(map[string]crypto.PublicKey{testKID: authorityKey.Public()})
	tests := []struct {
		name string
		cfg  wimse.Config
	}{
		{"no trust domains", wimse.Config{}},
		{"bad trust domain", wimse.Config{TrustDomains: map[string]wimse.Authority{"Example.org:8": {Keys: keys}}}},
		{"no keys", wimse.Config{TrustDomains: map[string]wimse.Authority{testTD: {}}}},
		{"symmetric algorithm", wimse.Config{TrustDomains: authorities(t), Algorithms: []jose.Alg{"HS256"}}},
		{"base URL with query", wimse.Config{TrustDomains: authorities(t), BaseURL: "https://a.example/?x=1"}},
		{"base URL relative", wimse.Config{TrustDomains: authorities(t), BaseURL: "/api"}},
		{"base URL other scheme", wimse.Config{TrustDomains: authorities(t), BaseURL: "ftp://a.example"}},
		{"reserved other token header", wimse.Config{TrustDomains: authorities(t), OtherTokenHeaders: []string{"Authorization"}}},
		{"negative lifetime", wimse.Config{TrustDomains: authorities(t), MaxProofLifetime: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := wimse.NewVerifier(tt.cfg); !errors.Is(err, wimse.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestWITAuthorityKeys(t *testing.T) {
	testKeys(t)
	witJWK, err := jose.PublicJWK(authorityKey.Public(), testKID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	witJWK["use"] = "wit-svid"
	jwtJWK, _ := jose.PublicJWK(rogueKey.Public(), "jwt-1", "", "")
	jwtJWK["use"] = "jwt-svid"
	x509JWK, _ := jose.PublicJWK(otherKey.Public(), "", "", "")
	x509JWK["use"] = "x509-svid"
	bundle := mustJSON(t, map[string]any{"keys": []any{x509JWK, jwtJWK, witJWK, map[string]any{"kty": "future", "use": "wit-svid", "kid": "f"}}, "spiffe_sequence": 3})
	keys, err := wimse.WITAuthorityKeys([]byte(bundle))
	if err != nil {
		t.Fatalf("WITAuthorityKeys: %v", err)
	}
	ctx := context.Background()
	if k, err := keys(ctx, testKID); err != nil || !authorityKey.PublicKey.Equal(k) {
		t.Errorf("wit-1: %v, %v", k, err)
	}
	for _, kid := range []string{"jwt-1", "", "f"} {
		if _, err := keys(ctx, kid); !errors.Is(err, jose.ErrUnknownKey) {
			t.Errorf("kid %q: err = %v, want ErrUnknownKey", kid, err)
		}
	}

	dup := mustJSON(t, map[string]any{"keys": []any{witJWK, witJWK}})
	if _, err := wimse.WITAuthorityKeys([]byte(dup)); !errors.Is(err, wimse.ErrConfig) {
		t.Errorf("duplicate kid: err = %v", err)
	}
	noKID := map[string]any{}
	for k, v := range witJWK {
		noKID[k] = v
	}
	delete(noKID, "kid")
	if _, err := wimse.WITAuthorityKeys([]byte(mustJSON(t, map[string]any{"keys": []any{noKID}}))); !errors.Is(err, wimse.ErrConfig) {
		t.Errorf("no kid: err = %v", err)
	}
	if _, err := wimse.WITAuthorityKeys([]byte(`{"nokeys":1}`)); !errors.Is(err, wimse.ErrConfig) {
		t.Errorf("not a JWK set: err = %v", err)
	}
	empty, err := wimse.WITAuthorityKeys([]byte(`{"keys":[]}`))
	if err != nil {
		t.Fatalf("empty bundle: %v", err)
	}
	if _, err := empty(ctx, testKID); !errors.Is(err, jose.ErrUnknownKey) {
		t.Errorf("empty bundle finds a key: %v", err)
	}
}
