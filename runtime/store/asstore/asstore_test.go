package asstore_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/store"
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
	// Count sees the live keys of one namespace only: not expired ones, not
	// those of a namespace whose name starts the same.
	counter, ok := s.(authserver.Counter)
	if !ok {
		t.Fatalf("%T does not implement authserver.Counter", s)
	}
	if _, err := s.Put(ctx, "ns", "short", []byte("x"), authserver.Write{TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "ns2", "other", []byte("x"), authserver.Write{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns      string
		advance time.Duration
		want    int
	}{
		{"ns", 0, 3}, // t, race, short
		{"ns", time.Second, 2},
		{"ns2", 0, 1},
		{"empty", 0, 0},
	} {
		c.advance(tc.advance)
		if n, err := counter.Count(ctx, tc.ns); err != nil || n != tc.want {
			t.Errorf("Count(%q) = %d, %v; want %d", tc.ns, n, err, tc.want)
		}
	}
}

// TestUnusedClientsArePurged: a dynamically registered client that never
// obtains a token expires after UnusedClientTTL; the expired record is
// invisible at once (it no longer counts against MaxDynamicClients) and
// the store's Purge, which the host runs periodically, deletes it.
func TestUnusedClientsArePurged(t *testing.T) {
	backends := map[string]func(t *testing.T, now func() time.Time) store.Store{
		"memstore": func(t *testing.T, now func() time.Time) store.Store { return memstore.New(now) },
		"sqlitestore": func(t *testing.T, now func() time.Time) store.Store {
			st, err := sqlitestore.Open(context.Background(), sqlitestore.Config{Path: filepath.Join(t.TempDir(), "as.db"), Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			kv := open(t, c.Now)
			t.Cleanup(func() { kv.Close() })
			as, err := authserver.New(ctx, authserver.Config{
				Issuer: "https://as.example", Store: asstore.New(kv), AllowDynamicRegistration: true,
				UnusedClientTTL: time.Hour, Now: c.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				r := httptest.NewRequest(http.MethodPost, "https://as.example"+authserver.PathRegister,
					strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"]}`))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				as.Handler().ServeHTTP(w, r)
				if w.Code != http.StatusCreated {
					t.Fatalf("register: %d %s", w.Code, w.Body)
				}
			}
			count := func() int {
				n, err := kv.Count(ctx, "as.clients", "")
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			if n := count(); n != 3 {
				t.Fatalf("%d clients stored, want 3", n)
			}
			if n, err := kv.Purge(ctx); err != nil || n != 0 {
				t.Fatalf("Purge before expiry = %d, %v", n, err)
			}
			c.advance(time.Hour)
			if n := count(); n != 0 {
				t.Fatalf("%d clients counted after expiry, want 0", n)
			}
			if n, err := kv.Purge(ctx); err != nil || n < 3 {
				t.Fatalf("Purge after expiry = %d, %v; want the 3 clients deleted", n, err)
			}
		})
	}
}
