package wimse_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/wimse"
)

// BenchmarkMintVerifyWPT is one proven call: the caller mints a WPT bound
// to an access token, the callee verifies it against the WIT (already
// verified) and records the jti.
func BenchmarkMintVerifyWPT(b *testing.B) {
	testKeys(b)
	ctx := context.Background()
	wit := mintWIT(b, nil)
	v := newVerifier(b, func(c *wimse.Config) { c.ReplayCache = nopCache{} })
	w := verifiedWIT(b, v, wit)
	opts := wimse.WPTOptions{AccessToken: testAccessToken, Now: fixed(t0)}
	want := wimse.WPTExpectations{Audience: testTarget, AccessToken: testAccessToken}
	b.ReportAllocs()
	for b.Loop() {
		wpt, err := wimse.MintWPT(ctx, workloadKey, wit, testTarget, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.VerifyWPT(ctx, wpt, w, want); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWIT is the per-request WIT check a server does.
func BenchmarkVerifyWIT(b *testing.B) {
	testKeys(b)
	ctx := context.Background()
	wit := mintWIT(b, nil)
	v := newVerifier(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyWIT(ctx, wit); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignVerifyRequest is one request under the HTTP Message
// Signatures profile, WIT verification included.
func BenchmarkSignVerifyRequest(b *testing.B) {
	testKeys(b)
	ctx := context.Background()
	wit := mintWIT(b, nil)
	v := newVerifier(b, func(c *wimse.Config) { c.ReplayCache = nopCache{} })
	opts := wimse.SignOptions{Now: fixed(t0), Audience: testTarget}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, "/tools/call?q=1", nil)
		r.Header.Set("Authorization", "Bearer "+testAccessToken)
		if err := wimse.SignRequest(ctx, r, wit, workloadKey, opts); err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryReplayCache stores fresh keys in a cache whose entries
// expire as the clock moves (about a thousand are live at a time).
func BenchmarkMemoryReplayCache(b *testing.B) {
	ctx := context.Background()
	clk := &clock{now: t0}
	c := wimse.NewMemoryReplayCache(0, clk.Now)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		now := t0.Add(time.Duration(i) * time.Millisecond)
		clk.Set(now)
		if err := c.CheckAndStore(ctx, strconv.Itoa(i), now.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}
