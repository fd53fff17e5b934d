package ca

import (
	"context"
	"testing"
	"time"
)

func BenchmarkNewX509SVID(b *testing.B) {
	c := newTestCA(b, time.Now, nil)
	id := mustID(b, "spiffe://example.org/agent/bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.NewX509SVID(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewJWTSVID(b *testing.B) {
	c := newTestCA(b, time.Now, nil)
	id := mustID(b, "spiffe://example.org/agent/bench")
	ctx := context.Background()
	aud := []string{"https://rs.example"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.NewJWTSVID(ctx, id, aud); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateJWTSVID(b *testing.B) {
	c := newTestCA(b, time.Now, nil)
	ctx := context.Background()
	tok, _, err := c.NewJWTSVID(ctx, mustID(b, "spiffe://example.org/agent/bench"), []string{"aud"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.ValidateJWTSVID(ctx, tok, "aud"); err != nil {
			b.Fatal(err)
		}
	}
}
