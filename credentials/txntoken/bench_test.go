package txntoken_test

import (
	"context"
	"testing"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

func BenchmarkMint(b *testing.B) {
	iss := newIssuer(b, nil)
	req := request(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := iss.Mint(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b, nil)
	ctx := context.Background()
	tok, _, err := iss.Mint(ctx, request(b))
	if err != nil {
		b.Fatal(err)
	}
	opts := verifyOpts(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := txntoken.Verify(ctx, tok, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkArgsDigest(b *testing.B) {
	args := []byte(testArgs)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := txntoken.ArgsDigest(args); err != nil {
			b.Fatal(err)
		}
	}
}
