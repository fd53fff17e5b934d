package dpop

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestMemoryReplayCacheExpiry(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: epoch}
	r := NewMemoryReplayCache(c.Now)
	type step struct {
		advance time.Duration
		key     string
		ttl     time.Duration
		replay  bool
		size    int // Len after the step
	}
	steps := []step{
		{0, "a", time.Minute, false, 1},
		{0, "a", time.Minute, true, 1},
		{0, "b", 2 * time.Minute, false, 2},
		{0, "c", 30 * time.Second, false, 3},
		{29 * time.Second, "c", time.Minute, true, 3}, // c lives for one more second
		{time.Second, "c", time.Minute, false, 3},     // c expired; remembered again
		{29 * time.Second, "a", time.Minute, true, 3}, // a has one second left
		{time.Second, "x", time.Minute, false, 3},     // a expired and dropped
		{0, "a", time.Minute, false, 4},               // a usable again
		{0, "gone", -time.Second, false, 4},           // already expired: not kept
		{0, "gone", time.Minute, false, 5},            // so not a replay either
		{5 * time.Minute, "b", time.Minute, false, 1}, // everything older expired
	}
	for i, s := range steps {
		c.now = c.now.Add(s.advance)
		err := r.Remember(ctx, s.key, c.now.Add(s.ttl))
		if s.replay != errors.Is(err, ErrReplay) || (!s.replay && err != nil) {
			t.Fatalf("step %d (%s): err = %v, want replay %v", i, s.key, err, s.replay)
		}
		if got := r.Len(); got != s.size {
			t.Fatalf("step %d: Len = %d, want %d", i, got, s.size)
		}
	}
}

func TestMemoryReplayCacheBound(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: epoch}
	r := NewMemoryReplayCache(c.Now)
	r.MaxEntries = 3
	for i := range 3 {
		if err := r.Remember(ctx, strconv.Itoa(i), c.now.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Remember(ctx, "new", c.now.Add(time.Minute))
	if err == nil || errors.Is(err, ErrReplay) {
		t.Fatalf("full cache: %v", err)
	}
	// Live keys were kept: they are still replays.
	if err := r.Remember(ctx, "0", c.now.Add(time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("a full cache forgot a live key: %v", err)
	}
	// Once the first key expires there is room again.
	c.now = c.now.Add(time.Minute)
	if err := r.Remember(ctx, "new", c.now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d", r.Len())
	}
}

func TestMemoryReplayCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	r := NewMemoryReplayCache(nil)
	until := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				key := strconv.Itoa(i)
				err := r.Remember(ctx, key, until)
				if err != nil && !errors.Is(err, ErrReplay) {
					t.Errorf("goroutine %d: %v", g, err)
				}
				if err == nil {
					mu.Lock()
					wins[key]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(wins) != 100 {
		t.Fatalf("%d keys accepted, want 100", len(wins))
	}
	for k, n := range wins {
		if n != 1 {
			t.Fatalf("key %s accepted %d times", k, n)
		}
	}
}

func BenchmarkMemoryReplayCache(b *testing.B) {
	ctx := context.Background()
	c := &clock{now: epoch}
	r := NewMemoryReplayCache(c.Now)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		// Keys live for 1000 steps, so the cache holds about 1000 keys.
		c.now = c.now.Add(time.Millisecond)
		if err := r.Remember(ctx, strconv.Itoa(i), c.now.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
