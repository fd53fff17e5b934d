package fanout_test

import (
	"context"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/store/memstore"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
)

// TestFanOutBetweenHosts: an event one host publishes reaches the other
// host on the same PostgreSQL database, not the one that sent it, within
// a second.
func TestFanOutBetweenHosts(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *pgstore.Store {
		s, err := pgstore.Open(ctx, pgstore.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	heard := map[string]chan fanout.Event{"a": make(chan fanout.Event, 8), "b": make(chan fanout.Event, 8)}
	buses := map[string]*fanout.Bus{}
	for _, name := range []string{"a", "b"} {
		bus, err := fanout.New(fanout.Config{Store: open(), Host: name,
			OnEvent: func(_ context.Context, ev fanout.Event) { heard[name] <- ev }})
		if err != nil || bus == nil {
			t.Fatalf("bus %s: %v, %v", name, bus, err)
		}
		buses[name] = bus
		go func() { _ = bus.Run(ctx) }()
	}
	// Until b listens, a's events are lost (at most once): probe.
	deadline := time.Now().Add(10 * time.Second)
	for done := false; !done; {
		if err := buses["a"].Publish(ctx, fanout.Event{Kind: "probe"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard["b"]:
			done = true
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("b never heard a")
		}
	}
	for len(heard["b"]) > 0 {
		<-heard["b"]
	}
	start := time.Now()
	if err := buses["a"].Publish(ctx, fanout.Event{Kind: fanout.KindUser, Subject: "alice", Stop: true, Drop: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-heard["b"]:
		latency := time.Since(start)
		if ev.Kind != fanout.KindUser || ev.Subject != "alice" || !ev.Stop || !ev.Drop || ev.Origin != "a" {
			t.Fatalf("b heard %+v", ev)
		}
		if latency > time.Second {
			t.Fatalf("fan-out took %v, want under a second", latency)
		}
		t.Logf("fan-out latency %v", latency)
	case <-time.After(5 * time.Second):
		t.Fatal("b did not hear alice's event")
	}
	select {
	case ev := <-heard["a"]:
		if ev.Kind != "probe" {
			t.Fatalf("a heard its own event: %+v", ev)
		}
	default:
	}
}

// TestNoFanOutOnAnEmbeddedStore: a store no other host shares gives no bus,
// and a nil bus publishes and runs as a no-op.
func TestNoFanOutOnAnEmbeddedStore(t *testing.T) {
	bus, err := fanout.New(fanout.Config{Store: memstore.New(nil), Host: "a", OnEvent: func(context.Context, fanout.Event) {}})
	if err != nil || bus != nil {
		t.Fatalf("New on memstore: %v, %v", bus, err)
	}
	if err := bus.Publish(context.Background(), fanout.Event{Kind: fanout.KindRevocations}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}
