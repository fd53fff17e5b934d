package asstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/store/asstore"
	"github.com/agenthost/agenthost/runtime/store/memstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestConformance runs the same contract against the authorization
// server's in-memory store and this adapter over both backends.
func TestConformance(t *testing.T) {
	backends := map[string]func(t *testing.T, now func() time.Time) authserver.Store{
		"authserver.MemoryStore": func(t *testing.T, now func() time.Time) authserver.Store {
			return authserver.NewMemoryStore(now)
		},
		"memstore": func(t *testing.T, now func() time.Time) authserver.Store {
			return asstore.New(memstore.New(now))
		},
		"sqlitestore": func(t *testing.T, now func() time.Time) authserver.Store {
			st, err := sqlitestore.Open(context.Background(), sqlitestore.Config{Path: filepath.Join(t.TempDir(), "as.db"), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return asstore.New(st)
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			conformance(t, open(t, c.Now), c)
		})
	}
}

func conformance(t *testing.T, s authserver.Store, c *clock) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "ns", "k"); !errors.Is(err, authserver.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	v1, err := s.Put(ctx, "ns", "k", []byte("a"), authserver.Write{IfAbsent: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "ns", "k", []byte("b"), authserver.Write{IfAbsent: true}); !errors.Is(err, authserver.ErrConflict) {
		t.Fatalf("second IfAbsent: %v", err)
	}
	v2, err := s.Put(ctx, "ns", "k", []byte("b"), authserver.Write{IfVersion: v1})
	if err != nil || v2 <= v1 {
		t.Fatalf("IfVersion: %d %v", v2, err)
	}
	if _, err := s.Put(ctx, "ns", "k", []byte("c"), authserver.Write{IfVersion: v1}); !errors.Is(err, authserver.ErrConflict) {
		t.Fatalf("stale IfVersion: %v", err)
	}
	val, ver, err := s.Get(ctx, "ns", "k")
	if err != nil || string(val) != "b" || ver != v2 {
		t.Fatalf("Get: %q %d %v", val, ver, err)
	}
	if err := s.Delete(ctx, "ns", "k", v1); !errors.Is(err, authserver.ErrConflict) {
		t.Fatalf("Delete stale version: %v", err)
	}
	if err := s.Delete(ctx, "ns", "k", v2); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Delete(ctx, "ns", "k", 0); !errors.Is(err, authserver.ErrNotFound) {
		t.Fatalf("Delete twice: %v", err)
	}
	// TTL: gone after it, and IfAbsent works again.
	if _, err := s.Put(ctx, "ns", "t", []byte("x"), authserver.Write{IfAbsent: true, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	c.advance(59 * time.Second)
	if _, _, err := s.Get(ctx, "ns", "t"); err != nil {
		t.Fatalf("before TTL: %v", err)
	}
	c.advance(2 * time.Second)
	if _, _, err := s.Get(ctx, "ns", "t"); !errors.Is(err, authserver.ErrNotFound) {
		t.Fatalf("after TTL: %v", err)
	}
	if _, err := s.Put(ctx, "ns", "t", []byte("y"), authserver.Write{IfAbsent: true}); err != nil {
		t.Fatalf("IfAbsent after expiry: %v", err)
	}
	// Of concurrent IfAbsent writers exactly one wins (the replay cache).
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Put(ctx, "ns", "race", []byte("1"), authserver.Write{IfAbsent: true, TTL: time.Hour}); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, authserver.ErrConflict) {
				t.Errorf("racing Put: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d IfAbsent writers won", wins.Load())
	}
}
