package wimse_test

import (
	"context"
	"crypto"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

const (
	testAccessToken = "eyJ.access.token-of-alice"
	testTxnToken    = "eyJ.txn.token-42"
	testOtherHeader = "x-agent-grant"
	testOtherToken  = "grant-token-7"
)

// wptClaims are the claims of a valid WPT for wit to testTarget, as
// MintWPT writes them.
func wptClaims(wit string) map[string]any {
	return map[string]any{
		"aud": testTarget,
		"exp": t0.Add(time.Minute).Unix(),
		"jti": "jti-" + wimse.TokenHash(wit)[:8],
		"wth": wimse.TokenHash(wit),
	}
}

func mintOpts() wimse.WPTOptions {
	return wimse.WPTOptions{Now: fixed(t0)}
}

func TestMintVerifyWPT(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	edWIT := mintWIT(t, func(c map[string]any) { c["cnf"] = cnf(t, edKey.Public(), jose.EdDSA) })
	tests := []struct {
		name string
		wit  string
		key  crypto.Signer
		opts wimse.WPTOptions
		aud  string
		want wimse.WPTExpectations
	}{
		{
			name: "no bound tokens",
			wit:  wit, key: workloadKey, aud: testTarget,
			want: wimse.WPTExpectations{Audience: testTarget},
		},
		{
			name: "access token, Txn-Token and another token",
			wit:  wit, key: workloadKey, aud: testTarget,
			opts: wimse.WPTOptions{
				AccessToken: testAccessToken,
				TxnToken:    testTxnToken,
				OtherTokens: map[string]string{"X-Agent-Grant": " " + testOtherToken + " "},
			},
			want: wimse.WPTExpectations{
				Audience:    testTarget,
				AccessToken: testAccessToken,
				TxnToken:    testTxnToken,
				OtherTokens: map[string]string{testOtherHeader: testOtherToken},
			},
		},
		{
			name: "Ed25519 key",
			wit:  edWIT, key: edKey, aud: testTarget,
			want: wimse.WPTExpectations{Audience: testTarget},
		},
		{
			name: "aud compared without query, default port or case",
			wit:  wit, key: workloadKey, aud: "HTTPS://API.example.org:443/tools/call?x=1#f",
			want: wimse.WPTExpectations{Audience: testTarget},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Now = fixed(t0)
			wpt, err := wimse.MintWPT(context.Background(), tt.key, tt.wit, tt.aud, opts)
			if err != nil {
				t.Fatalf("MintWPT: %v", err)
			}
			v := newVerifier(t, nil)
			w := verifiedWIT(t, v, tt.wit)
			got, err := v.VerifyWPT(context.Background(), wpt, w, tt.want)
			if err != nil {
				t.Fatalf("VerifyWPT: %v", err)
			}
			if len(got.ID) < 26 || got.Audience != tt.aud || !got.ExpiresAt.Equal(t0.Add(wimse.DefaultProofLifetime)) {
				t.Errorf("WPT %+v", got)
			}
			if tt.want.AccessToken != "" && got.AccessTokenHash != wimse.TokenHash(tt.want.AccessToken) {
				t.Errorf("ath %q", got.AccessTokenHash)
			}
			if tt.want.TxnToken != "" && got.TxnTokenHash != wimse.TokenHash(tt.want.TxnToken) {
				t.Errorf("tth %q", got.TxnTokenHash)
			}
			wantOth := map[string]string(nil)
			for k, val := range tt.want.OtherTokens {
				if wantOth == nil {
					wantOth = map[string]string{}
				}
				wantOth[k] = wimse.TokenHash(val)
			}
			if diff := cmp.Diff(wantOth, got.OtherTokenHashes); diff != "" {
				t.Errorf("oth (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyWPTRefused(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	otherWIT := mintWIT(t, func(c map[string]any) { c["jti"] = "another" })
	edWIT := mintWIT(t, func(c map[string]any) { c["cnf"] = cnf(t, edKey.Public(), jose.EdDSA) })
	signed := func(tb testing.TB, mod func(map[string]any)) string {
		c := wptClaims(wit)
		if mod != nil {
			mod(c)
		}
		return sign(tb, workloadKey, "", jose.TypWPT, c)
	}
	minted := func(tb testing.TB, opts wimse.WPTOptions) string {
		opts.Now = fixed(t0)
		tok, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, opts)
		if err != nil {
			tb.Fatalf("MintWPT: %v", err)
		}
		return tok
	}
	base := wimse.WPTExpectations{Audience: testTarget}
	withAT := wimse.WPTExpectations{Audience: testTarget, AccessToken: testAccessToken}
	withTT := wimse.WPTExpectations{Audience: testTarget, TxnToken: testTxnToken}
	withOther := wimse.WPTExpectations{Audience: testTarget, OtherTokens: map[string]string{testOtherHeader: testOtherToken}}

	tests := []struct {
		name    string
		wit     string // the WIT presented; default wit
		wpt     func(testing.TB) string
		want    wimse.WPTExpectations
		kind    error // default ErrInvalidProof
		reasons []error
	}{
		{
			name:    "access token typ at+jwt",
			wpt:     func(tb testing.TB) string { return sign(tb, workloadKey, "", jose.TypAccessToken, wptClaims(wit)) },
			want:    base,
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "JWT-SVID typ JWT",
			wpt:     func(tb testing.TB) string { return sign(tb, workloadKey, "", jose.TypJWT, wptClaims(wit)) },
			want:    base,
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "DPoP proof typ",
			wpt:     func(tb testing.TB) string { return sign(tb, workloadKey, "", jose.TypDPoP, wptClaims(wit)) },
			want:    base,
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "the WIT itself as proof",
			wpt:     func(testing.TB) string { return wit },
			want:    base,
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "pre-s2s-07 typ wimse-proof+jwt",
			wpt:     func(tb testing.TB) string { return sign(tb, workloadKey, "", "wimse-proof+jwt", wptClaims(wit)) },
			want:    base,
			reasons: []error{wimse.ErrWrongType},
		},
		{
			name:    "signed by a key other than cnf",
			wpt:     func(tb testing.TB) string { return sign(tb, otherKey, "", jose.TypWPT, wptClaims(wit)) },
			want:    base,
			reasons: []error{wimse.ErrSignature, jose.ErrInvalidSignature},
		},
		{
			name:    "alg other than cnf.jwk.alg",
			wit:     edWIT,
			wpt:     func(tb testing.TB) string { return sign(tb, workloadKey, "", jose.TypWPT, wptClaims(edWIT)) },
			want:    base,
			reasons: []error{wimse.ErrSignature, jose.ErrAlgorithm},
		},
		{
			name:    "tampered signature",
			wpt:     func(tb testing.TB) string { return flip(signed(tb, nil), 2) },
			want:    base,
			reasons: []error{wimse.ErrSignature},
		},
		{
			name: "expired",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["exp"] = t0.Add(-time.Minute).Unix() })
			},
			want:    base,
			reasons: []error{wimse.ErrExpired},
		},
		{
			name:    "no exp",
			wpt:     func(tb testing.TB) string { return signed(tb, func(c map[string]any) { delete(c, "exp") }) },
			want:    base,
			reasons: []error{wimse.ErrExpired},
		},
		{
			name: "lifetime beyond the cap",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["exp"] = t0.Add(time.Hour).Unix() })
			},
			want:    base,
			reasons: []error{wimse.ErrExpired},
		},
		{
			name: "no jti",
			wpt:  func(tb testing.TB) string { return signed(tb, func(c map[string]any) { delete(c, "jti") }) },
			want: base,
		},
		{
			name:    "no wth",
			wpt:     func(tb testing.TB) string { return signed(tb, func(c map[string]any) { delete(c, "wth") }) },
			want:    base,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name: "wth of another WIT",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["wth"] = wimse.TokenHash(otherWIT) })
			},
			want:    base,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name: "re-targeted to another path",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["aud"] = testBase + "/admin" })
			},
			want:    base,
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name: "re-targeted to another host",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["aud"] = "https://evil.example/tools/call" })
			},
			want:    base,
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name: "aud holds two targets",
			wpt: func(tb testing.TB) string {
				return signed(tb, func(c map[string]any) { c["aud"] = []string{testTarget, "https://evil.example/"} })
			},
			want:    base,
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name:    "no aud",
			wpt:     func(tb testing.TB) string { return signed(tb, func(c map[string]any) { delete(c, "aud") }) },
			want:    base,
			reasons: []error{wimse.ErrWrongAudience},
		},
		{
			name:    "bound to another access token",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{AccessToken: "someone-elses-token"}) },
			want:    withAT,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "no ath while an access token is presented",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{}) },
			want:    withAT,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "ath while no access token is presented",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{AccessToken: testAccessToken}) },
			want:    base,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "bound to another Txn-Token",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{TxnToken: "another-txn"}) },
			want:    withTT,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "no tth while a Txn-Token is presented",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{AccessToken: testAccessToken}) },
			want:    wimse.WPTExpectations{Audience: testTarget, AccessToken: testAccessToken, TxnToken: testTxnToken},
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "ath not a string",
			wpt:     func(tb testing.TB) string { return signed(tb, func(c map[string]any) { c["ath"] = 1 }) },
			want:    withAT,
			reasons: nil,
		},
		{
			name: "oth entry the verifier does not understand",
			wpt: func(tb testing.TB) string {
				return minted(tb, wimse.WPTOptions{OtherTokens: map[string]string{"x-custom-token": "v"}})
			},
			want:    base,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name:    "no oth while another token is presented",
			wpt:     func(tb testing.TB) string { return minted(tb, wimse.WPTOptions{}) },
			want:    withOther,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name: "oth bound to another value",
			wpt: func(tb testing.TB) string {
				return minted(tb, wimse.WPTOptions{OtherTokens: map[string]string{testOtherHeader: "other-grant"}})
			},
			want:    withOther,
			reasons: []error{wimse.ErrTokenBinding},
		},
		{
			name: "oth not an object of strings",
			wpt:  func(tb testing.TB) string { return signed(tb, func(c map[string]any) { c["oth"] = []int{1} }) },
			want: base,
		},
		{
			name: "not a JWS",
			wpt:  func(testing.TB) string { return "a.b" },
			want: base,
		},
		{
			name: "empty",
			wpt:  func(testing.TB) string { return "" },
			want: base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, nil)
			presented := wit
			if tt.wit != "" {
				presented = tt.wit
			}
			w := verifiedWIT(t, v, presented)
			got, err := v.VerifyWPT(context.Background(), tt.wpt(t), w, tt.want)
			if err == nil {
				t.Fatalf("VerifyWPT accepted the proof: %+v", got)
			}
			t.Logf("err: %v", err)
			kind := tt.kind
			if kind == nil {
				kind = wimse.ErrInvalidProof
			}
			if !errors.Is(err, kind) {
				t.Errorf("err = %v, want %v", err, kind)
			}
			for _, r := range tt.reasons {
				if !errors.Is(err, r) {
					t.Errorf("err = %v, want it to wrap %v", err, r)
				}
			}
		})
	}
}

func TestVerifyWPTReplay(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	clk := &clock{now: t0}
	cache := wimse.NewMemoryReplayCache(10, clk.Now)
	v := newVerifier(t, func(c *wimse.Config) { c.Clock = clk.Now; c.ReplayCache = cache })
	w := verifiedWIT(t, v, wit)
	wpt, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, mintOpts())
	if err != nil {
		t.Fatal(err)
	}
	want := wimse.WPTExpectations{Audience: testTarget}
	if _, err := v.VerifyWPT(context.Background(), wpt, w, want); err != nil {
		t.Fatalf("first use: %v", err)
	}
	clk.Set(t0.Add(50 * time.Second))
	if _, err := v.VerifyWPT(context.Background(), wpt, w, want); !errors.Is(err, wimse.ErrReplayed) || !errors.Is(err, wimse.ErrInvalidProof) {
		t.Fatalf("second use: err = %v, want ErrReplayed", err)
	}
	// A second verifier sharing the cache (another replica) refuses it too.
	v2 := newVerifier(t, func(c *wimse.Config) { c.Clock = clk.Now; c.ReplayCache = cache })
	if _, err := v2.VerifyWPT(context.Background(), wpt, w, want); !errors.Is(err, wimse.ErrReplayed) {
		t.Fatalf("other replica: err = %v, want ErrReplayed", err)
	}
	// Once the proof has expired (beyond the leeway) it is refused as
	// expired, and the cache has forgotten it.
	clk.Set(t0.Add(2 * time.Minute))
	if _, err := v.VerifyWPT(context.Background(), wpt, w, want); !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("after expiry: err = %v, want ErrExpired", err)
	}
	// A fresh proof is accepted, and the expired entry is gone.
	fresh, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, wimse.WPTOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyWPT(context.Background(), fresh, w, want); err != nil {
		t.Fatalf("fresh proof: %v", err)
	}
	if n := cache.Len(); n != 1 {
		t.Errorf("cache holds %d entries, want 1", n)
	}
}

func TestVerifyWPTExpiredWIT(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, func(c map[string]any) { c["exp"] = t0.Add(time.Minute).Unix() })
	clk := &clock{now: t0}
	v := newVerifier(t, func(c *wimse.Config) { c.Clock = clk.Now })
	w := verifiedWIT(t, v, wit)
	wpt, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, wimse.WPTOptions{Now: fixed(t0.Add(2 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Minute))
	_, err = v.VerifyWPT(context.Background(), wpt, w, wimse.WPTExpectations{Audience: testTarget})
	if !errors.Is(err, wimse.ErrInvalidWIT) || !errors.Is(err, wimse.ErrExpired) {
		t.Fatalf("err = %v, want ErrInvalidWIT and ErrExpired", err)
	}
}

func TestMintWPTConfig(t *testing.T) {
	testKeys(t)
	wit := mintWIT(t, nil)
	edWIT := mintWIT(t, func(c map[string]any) { c["cnf"] = cnf(t, edKey.Public(), jose.EdDSA) })
	tests := []struct {
		name string
		key  crypto.Signer
		wit  string
		aud  string
		opts wimse.WPTOptions
	}{
		{"key other than cnf", otherKey, wit, testTarget, wimse.WPTOptions{}},
		{"Ed25519 key for an ES256 WIT", edKey, wit, testTarget, wimse.WPTOptions{}},
		{"ES256 key for an EdDSA WIT", workloadKey, edWIT, testTarget, wimse.WPTOptions{}},
		{"nil key", nil, wit, testTarget, wimse.WPTOptions{}},
		{"no WIT", workloadKey, "", testTarget, wimse.WPTOptions{}},
		{"not a WIT", workloadKey, "x.y.z", testTarget, wimse.WPTOptions{}},
		{"no audience", workloadKey, wit, "", wimse.WPTOptions{}},
		{"lifetime over the cap", workloadKey, wit, testTarget, wimse.WPTOptions{Lifetime: time.Hour}},
		{"negative lifetime", workloadKey, wit, testTarget, wimse.WPTOptions{Lifetime: -time.Second}},
		{"oth naming Authorization", workloadKey, wit, testTarget, wimse.WPTOptions{OtherTokens: map[string]string{"Authorization": "x"}}},
		{"oth naming a non-token", workloadKey, wit, testTarget, wimse.WPTOptions{OtherTokens: map[string]string{"a b": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := wimse.MintWPT(context.Background(), tt.key, tt.wit, tt.aud, tt.opts)
			if !errors.Is(err, wimse.ErrConfig) {
				t.Fatalf("MintWPT = %q, %v; want ErrConfig", tok, err)
			}
		})
	}
}

func TestVerifyWPTNeedsVerifiedWIT(t *testing.T) {
	v := newVerifier(t, nil)
	if _, err := v.VerifyWPT(context.Background(), "a.b.c", nil, wimse.WPTExpectations{Audience: testTarget}); !errors.Is(err, wimse.ErrConfig) {
		t.Fatalf("nil WIT: err = %v", err)
	}
	w := verifiedWIT(t, v, mintWIT(t, nil))
	if _, err := v.VerifyWPT(context.Background(), "a.b.c", w, wimse.WPTExpectations{}); !errors.Is(err, wimse.ErrConfig) {
		t.Fatalf("no audience: err = %v", err)
	}
}
