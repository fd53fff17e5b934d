package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// The benchmarks mirror sqlitestore's (same names, same sizes), so that
// `go test -bench . ./runtime/store/sqlitestore ./runtime/store/pgstore`
// compares the two; the Concurrent ones add 1 and 32 goroutines sharing one
// Store, as the requests of a busy host do.

func benchStore(b *testing.B) *Store {
	s, err := Open(context.Background(), Config{DSN: packageDSN(b), Schema: newSchema(), MaxConns: 32})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	v := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(ctx, "bench", fmt.Sprintf("key-%08d", i), v, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutIfAbsentTTL(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Put(ctx, "jti", fmt.Sprintf("jti-%08d", i), nil, store.PutOptions{Condition: store.IfAbsent, TTL: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, "bench", "k", bytes.Repeat([]byte("x"), 256), store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	if _, err := s.Put(ctx, "bench", "k", bytes.Repeat([]byte("x"), 256), store.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench", "k"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	e := bytes.Repeat([]byte("x"), 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBatch64(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = bytes.Repeat([]byte("x"), 256)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Append(ctx, "bench", batch...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/entry")
}

// concurrently runs op b.N times in total from g goroutines and reports
// the throughput.
func concurrently(b *testing.B, g int, op func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkPutConcurrent(b *testing.B) {
	v := bytes.Repeat([]byte("x"), 256)
	for _, g := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			concurrently(b, g, func(i int64) error {
				_, err := s.Put(ctx, "bench", fmt.Sprintf("key-%08d", i), v, store.PutOptions{})
				return err
			})
		})
	}
}

func BenchmarkAppendConcurrent(b *testing.B) {
	e := bytes.Repeat([]byte("x"), 256)
	for _, g := range []int{1, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			s := benchStore(b)
			ctx := context.Background()
			concurrently(b, g, func(int64) error {
				_, err := s.Append(ctx, "bench", e)
				return err
			})
		})
	}
}
