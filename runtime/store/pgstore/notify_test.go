package pgstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// TestNotifyListen: a payload notified through one store reaches a
// listener on another store of the same database (and on the same one),
// in order; a listener stops with its context and when its store closes;
// oversized payloads and bad channel names are refused.
func TestNotifyListen(t *testing.T) {
	dsn := newDatabase(t)
	a, b := open(t, Config{DSN: dsn}), open(t, Config{DSN: dsn})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 16)
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Listen(lctx, "agenthost_test", func(p string) { got <- p }) }()
	// The listener is up once a probe gets through.
	deadline := time.Now().Add(10 * time.Second)
	for up := false; !up; {
		if err := a.Notify(ctx, "agenthost_test", "probe"); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-got:
			up = p == "probe"
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener never heard a notification")
		}
	}
	for len(got) > 0 {
		<-got
	}
	start := time.Now()
	for _, p := range []string{"one", "two", "three"} {
		if err := a.Notify(ctx, "agenthost_test", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "two", "three"} {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got %q, want %q", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
	t.Logf("3 notifications across two stores in %v", time.Since(start))
	if err := a.Notify(ctx, "agenthost_test", strings.Repeat("x", store.MaxNotification+1)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("oversized payload: %v", err)
	}
	if err := a.Notify(ctx, "", "x"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty channel: %v", err)
	}
	lcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("listener after its context ended: %v", err)
	}
	// Close ends a listener.
	go func() { done <- a.Listen(ctx, "agenthost_test", func(string) {}) }()
	time.Sleep(200 * time.Millisecond)
	_ = a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("listener after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the listener")
	}
}
