package federation_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/federation"
)

// TestRefreshByHint: the next refresh follows the bundle's refresh hint,
// clamped to [MinRefresh, MaxRefresh]; RefreshDue fetches nothing before
// that time and fetches at it.
func TestRefreshByHint(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		hint time.Duration
		want time.Duration
	}{
		{"hint used", 5 * time.Minute, 5 * time.Minute},
		{"short hint raised to MinRefresh", 10 * time.Second, federation.DefaultMinRefresh},
		{"long hint lowered to MaxRefresh", 5 * time.Hour, federation.DefaultMaxRefresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			foreign := newCA(t, foreignTD, tt.hint)
			e := newWebEndpoint(t, foreign.BundleHandler())
			clock := newFakeClock()
			s := newSet(t, clock, nil, nil, nil, webPeer(e))
			if next := s.Status()[0].NextRefresh; !next.IsZero() {
				t.Fatalf("next refresh before the first fetch %s, want at once", next)
			}
			if err := s.RefreshDue(ctx); err != nil {
				t.Fatal(err)
			}
			start := clock.Now()
			st := s.Status()[0]
			if got := st.NextRefresh.Sub(start); got != tt.want {
				t.Fatalf("next refresh in %s, want %s", got, tt.want)
			}
			if !st.LastSuccess.Equal(start) || st.Failures != 0 || st.LastError != nil {
				t.Errorf("status %+v", st)
			}
			clock.Advance(tt.want - time.Second)
			if err := s.RefreshDue(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(e.requests()); n != 1 {
				t.Fatalf("%d requests before the refresh time, want 1", n)
			}
			clock.Advance(time.Second)
			if err := s.RefreshDue(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(e.requests()); n != 2 {
				t.Fatalf("%d requests at the refresh time, want 2", n)
			}
			if got := s.Status()[0].NextRefresh.Sub(clock.Now()); got != tt.want {
				t.Errorf("then next refresh in %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRetryBackoff: a failed refresh is retried after RetryInterval,
// doubled on each further failure up to the regular interval; a success
// returns to the regular interval.
func TestRetryBackoff(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 2*time.Minute)
	e := newWebEndpoint(t, serve(500, nil))
	clock := newFakeClock()
	rec := &recorder{}
	s := newSet(t, clock, rec, nil, nil, webPeer(e))

	// No bundle yet: the limit is DefaultRefreshHint (5 min).
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if err := s.RefreshDue(ctx); err == nil {
			t.Fatalf("failure %d: RefreshDue succeeded", i+1)
		}
		st := s.Status()[0]
		if got := st.NextRefresh.Sub(clock.Now()); got != w || st.Failures != i+1 {
			t.Fatalf("failure %d: retry in %s (failures %d), want %s", i+1, got, st.Failures, w)
		}
		clock.Advance(w)
	}
	if n := len(rec.gotRefusals()); n != len(want) {
		t.Errorf("%d refusals, want %d", n, len(want))
	}

	e.set(foreign.BundleHandler())
	if err := s.RefreshDue(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0]; st.NextRefresh.Sub(clock.Now()) != 2*time.Minute || st.Failures != 0 {
		t.Fatalf("after success: %+v", st)
	}

	// With a bundle kept, retries are capped by its own interval.
	e.set(serve(500, nil))
	clock.Advance(2 * time.Minute)
	for i, w := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 2 * time.Minute} {
		if err := s.RefreshDue(ctx); err == nil {
			t.Fatalf("failure %d: RefreshDue succeeded", i+1)
		}
		if got := s.Status()[0].NextRefresh.Sub(clock.Now()); got != w {
			t.Fatalf("failure %d with a kept bundle: retry in %s, want %s", i+1, got, w)
		}
		clock.Advance(w)
	}
	if !s.Status()[0].HasBundle {
		t.Error("failures dropped the kept bundle")
	}
}

// fakeTimer hands the waits of the refresh loop to the test.
type fakeTimer struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeTimer() *fakeTimer {
	return &fakeTimer{waits: make(chan time.Duration, 16), fire: make(chan time.Time)}
}

func (f *fakeTimer) after(d time.Duration) (<-chan time.Time, func() bool) {
	f.waits <- d
	return f.fire, func() bool { return true }
}

// TestRun: Run fetches every peer at once, then waits for the refresh
// hint, fetches again when the wait ends, and returns when ctx ends.
func TestRun(t *testing.T) {
	foreign := newCA(t, foreignTD, 3*time.Minute)
	e := newWebEndpoint(t, foreign.BundleHandler())
	clock := newFakeClock()
	updated := make(chan uint64, 4)
	cfg := setConfig(clock, nil, nil, nil, webPeer(e))
	cfg.OnUpdate = func(_ string, seq uint64) { updated <- seq }
	s, err := federation.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	timer := newFakeTimer()
	federation.SetAfter(s, timer.after)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	seq, _ := foreign.Bundle().SequenceNumber()
	if got := <-updated; got != seq {
		t.Fatalf("OnUpdate sequence %d, want %d", got, seq)
	}
	if d := <-timer.waits; d != 3*time.Minute {
		t.Fatalf("Run waits %s, want the refresh hint 3m", d)
	}
	// The wait ends at the refresh time: Run fetches again (the same
	// bundle, so no update) and waits for the next one.
	clock.Advance(3 * time.Minute)
	timer.fire <- clock.Now()
	if d := <-timer.waits; d != 3*time.Minute {
		t.Fatalf("Run waits %s after the second fetch, want 3m", d)
	}
	if got := e.requests(); !slices.Equal(got, []string{"/bundle", "/bundle"}) {
		t.Errorf("requests %v, want two", got)
	}
	// Refresh moves the schedule; the loop is woken and waits anew.
	clock.Advance(time.Minute)
	if err := s.Refresh(ctx, foreignTD); err != nil {
		t.Fatal(err)
	}
	if d := <-timer.waits; d != 3*time.Minute {
		t.Fatalf("Run waits %s after Refresh, want 3m", d)
	}
	if got := len(e.requests()); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("a second Run was accepted")
	}
	if len(updated) != 0 {
		t.Errorf("unexpected updates: %d", len(updated))
	}
}
