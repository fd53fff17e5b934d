package wimse_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/wimse"
)

func TestMemoryReplayCache(t *testing.T) {
	ctx := context.Background()
	type step struct {
		at      time.Duration // clock offset from t0
		key     string
		expires time.Duration // offset from t0
		want    error
		len     int // entries held after the step
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{
			name: "second use within lifetime is a replay",
			max:  4,
			steps: []step{
				{0, "a", time.Minute, nil, 1},
				{30 * time.Second, "a", time.Minute, wimse.ErrReplayed, 1},
				{30 * time.Second, "b", time.Minute, nil, 2},
			},
		},
		{
			name: "an expired entry is dropped and its key usable again",
			max:  4,
			steps: []step{
				{0, "a", time.Minute, nil, 1},
				{time.Minute, "a", 2 * time.Minute, nil, 1},
				{90 * time.Second, "a", 2 * time.Minute, wimse.ErrReplayed, 1},
			},
		},
		{
			name: "full of unexpired entries refuses new ones",
			max:  2,
			steps: []step{
				{0, "a", time.Minute, nil, 1},
				{0, "b", 2 * time.Minute, nil, 2},
				{10 * time.Second, "c", time.Minute, wimse.ErrReplayCacheFull, 2},
				{10 * time.Second, "a", time.Minute, wimse.ErrReplayed, 2},
				// a expires: room for c, and b is still remembered.
				{61 * time.Second, "c", 3 * time.Minute, nil, 2},
				{61 * time.Second, "b", 3 * time.Minute, wimse.ErrReplayed, 2},
			},
		},
		{
			name: "an already expired proof is not stored",
			max:  1,
			steps: []step{
				{time.Minute, "old", 30 * time.Second, nil, 0},
				{time.Minute, "new", 2 * time.Minute, nil, 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			c := wimse.NewMemoryReplayCache(tt.max, clk.Now)
			for i, s := range tt.steps {
				clk.Set(t0.Add(s.at))
				err := c.CheckAndStore(ctx, s.key, t0.Add(s.expires))
				if (s.want == nil) != (err == nil) || (s.want != nil && !errors.Is(err, s.want)) {
					t.Fatalf("step %d (%s): err = %v, want %v", i, s.key, err, s.want)
				}
				if n := c.Len(); n != s.len {
					t.Fatalf("step %d: Len = %d, want %d", i, n, s.len)
				}
			}
		})
	}
}

func TestMemoryReplayCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	c := wimse.NewMemoryReplayCache(0, fixed(t0))
	exp := t0.Add(time.Minute)
	var wg sync.WaitGroup
	var fresh atomic.Int32
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := c.CheckAndStore(ctx, fmt.Sprintf("g%d-%d", g, i), exp); err != nil {
					t.Errorf("distinct key: %v", err)
				}
			}
			switch err := c.CheckAndStore(ctx, "shared", exp); {
			case err == nil:
				fresh.Add(1)
			case !errors.Is(err, wimse.ErrReplayed):
				t.Errorf("shared key: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := fresh.Load(); n != 1 {
		t.Errorf("shared key accepted %d times, want once", n)
	}
	if n := c.Len(); n != 16*100+1 {
		t.Errorf("Len = %d", n)
	}
}

func TestMemoryReplayCacheCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := wimse.NewMemoryReplayCache(1, nil)
	if err := c.CheckAndStore(ctx, "k", time.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
