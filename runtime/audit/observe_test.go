package audit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestOnAppend: each successful Append reports how long it took, by the
// log's clock; a queued record and a failed append report nothing.
func TestOnAppend(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	var mu sync.Mutex
	var took []time.Duration
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, Now: fixedClock(), CheckpointEvery: -1, CheckpointInterval: -1,
		OnAppend: func(d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			took = append(took, d)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	reported := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), took...)
	}
	for i := range 3 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := reported()
	if len(got) != 3 {
		t.Fatalf("%d appends reported, want 3", len(got))
	}
	for i, d := range got {
		// The test clock advances a millisecond each time it is read.
		if d < time.Millisecond {
			t.Errorf("append %d took %v by the log's clock, want at least 1ms", i, d)
		}
	}
	if err := l.Queue(testRecord(3)); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.failRecs = 1
	st.mu.Unlock()
	if _, err := l.Append(ctx, testRecord(4)); err == nil {
		t.Fatal("append to a failing store succeeded")
	}
	if n := len(reported()); n != 3 {
		t.Errorf("%d appends reported after a queued record and a failed append, want 3", n)
	}
}
