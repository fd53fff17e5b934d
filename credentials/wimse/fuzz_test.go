package wimse_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/wimse"
)

// FuzzVerifyWPT feeds arbitrary proof tokens and presented access tokens
// to VerifyWPT: it must never panic, and a proof it accepts must be bound
// to what was presented.
func FuzzVerifyWPT(f *testing.F) {
	testKeys(f)
	wit := mintWIT(f, nil)
	valid, err := wimse.MintWPT(context.Background(), workloadKey, wit, testTarget, wimse.WPTOptions{AccessToken: testAccessToken, Now: fixed(t0)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, testAccessToken)
	f.Add(valid, "")
	f.Add(sign(f, workloadKey, "", jose.TypWPT, wptClaims(wit)), "")
	f.Add(sign(f, workloadKey, "", jose.TypAccessToken, wptClaims(wit)), "")
	f.Add(wit, "")
	f.Add("", "")
	f.Add("..", "x")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "")
	v := newVerifier(f, func(c *wimse.Config) { c.ReplayCache = nopCache{} })
	w := verifiedWIT(f, v, wit)
	f.Fuzz(func(t *testing.T, wpt, accessToken string) {
		got, err := v.VerifyWPT(context.Background(), wpt, w, wimse.WPTExpectations{Audience: testTarget, AccessToken: accessToken})
		if err != nil {
			if got != nil {
				t.Fatal("WPT returned with an error")
			}
			return
		}
		if got.ID == "" || (accessToken != "" && got.AccessTokenHash != wimse.TokenHash(accessToken)) || (accessToken == "" && got.AccessTokenHash != "") {
			t.Fatalf("accepted an unbound proof %+v", got)
		}
	})
}

// FuzzVerifySignature puts arbitrary Signature-Input and Signature fields
// on a request with a valid WIT: verification must never panic, and must
// refuse everything but the genuine fields.
func FuzzVerifySignature(f *testing.F) {
	testKeys(f)
	wit := mintWIT(f, nil)
	req := httptest.NewRequest(http.MethodGet, "/tools/call?q=1", nil)
	if err := wimse.SignRequest(context.Background(), req, wit, workloadKey, wimse.SignOptions{Now: fixed(t0), Audience: testTarget}); err != nil {
		f.Fatal(err)
	}
	genuineInput, genuineSig := req.Header.Get(wimse.HeaderSignatureInput), req.Header.Get(wimse.HeaderSignature)
	f.Add(genuineInput, genuineSig)
	f.Add(`wimse=("@method" "@request-target" "workload-identity-token");created=1;expires=2;nonce="n";tag="wimse-workload-to-workload";wimse-aud="x"`, `wimse=:AAAA:`)
	f.Add(`a=("@query-param";name="x");tag="wimse-workload-to-workload"`, `a=:AAAA:`)
	f.Add(`wimse=(`, ``)
	f.Add(``, ``)
	v := newVerifier(f, func(c *wimse.Config) { c.ReplayCache = nopCache{} })
	f.Fuzz(func(t *testing.T, input, signature string) {
		r := httptest.NewRequest(http.MethodGet, "/tools/call?q=1", nil)
		r.Header.Set(wimse.HeaderWIT, wit)
		r.Header.Set(wimse.HeaderSignatureInput, input)
		r.Header.Set(wimse.HeaderSignature, signature)
		p, err := v.Verify(r)
		if err != nil {
			if p != nil {
				t.Fatal("peer returned with an error")
			}
			return
		}
		if p.Mode != wimse.ModeHTTPSig {
			t.Fatalf("mode %s", p.Mode)
		}
		if input != genuineInput {
			// A re-serialisation of the genuine parameters (other
			// whitespace, extra unrelated members) may verify; anything
			// else must not.
			if p.Signature.Nonce != signatureNonce(t, genuineInput) {
				t.Fatalf("forged signature accepted: %q / %q", input, signature)
			}
		}
	})
}

// signatureNonce returns the nonce of a Signature-Input made by
// SignRequest.
func signatureNonce(tb testing.TB, input string) string {
	tb.Helper()
	_, rest, ok := strings.Cut(input, `nonce="`)
	nonce, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		tb.Fatalf("no nonce in %q", input)
	}
	return nonce
}
