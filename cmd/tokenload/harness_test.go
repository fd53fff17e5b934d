package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkTokenEndpoint reports requests/s of the token endpoint on
// SQLite for each flow at 1 and 32 concurrent clients, and for
// client_credentials with every issued token audited first (+audit):
//
//	go test -run '^$' -bench TokenEndpoint -benchtime 3000x ./cmd/tokenload
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, flow := range []string{FlowClientCredentials, FlowTokenExchange, FlowClientCredentials + "+audit"} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/clients=%d", flow, clients), func(b *testing.B) {
				ctx := context.Background()
				flow, audited := strings.CutSuffix(flow, "+audit")
				h, err := NewHarness(ctx, b.TempDir(), audited)
				if err != nil {
					b.Fatal(err)
				}
				defer h.Close()
				bodies, err := h.Bodies(ctx, flow, b.N)
				if err != nil {
					b.Fatal(err)
				}
				var next, failed atomic.Int64
				b.ResetTimer()
				if clients == 1 {
					for i := range b.N {
						if _, err := h.post(ctx, bodies[i]); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
					return
				}
				// RunParallel starts GOMAXPROCS × parallelism goroutines.
				b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := next.Add(1) - 1
						if _, err := h.post(ctx, bodies[i]); err != nil {
							if failed.Add(1) == 1 {
								b.Error(err)
							}
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}

// TestHarness runs each flow briefly so the load command cannot rot.
func TestHarness(t *testing.T) {
	ctx := context.Background()
	h, err := NewHarness(ctx, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, flow := range []string{FlowClientCredentials, FlowTokenExchange} {
		bodies, err := h.Bodies(ctx, flow, 40)
		if err != nil {
			t.Fatal(err)
		}
		res := h.Drive(ctx, bodies, 4, 1<<62)
		if res.Requests != 40 || res.Errors != 0 {
			t.Fatalf("%s: %d requests, %d errors (%s)", flow, res.Requests, res.Errors, res.FirstError)
		}
		// Each assertion is single-use: sending them again fails them all.
		res = h.Drive(ctx, bodies[:5], 1, 1<<62)
		if res.Errors != 5 {
			t.Fatalf("%s: replayed bodies: %d errors, want 5", flow, res.Errors)
		}
	}
}
