package host

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// TestStoreStreams: the transmitter's streams live in the store with the
// semantics of the in-memory stream store.
func TestStoreStreams(t *testing.T) {
	ctx := context.Background()
	for name, ss := range map[string]signals.StreamStore{"store": storeStreams{kv: memstore.New(nil)}, "memory": signals.NewMemoryStreamStore()} {
		t.Run(name, func(t *testing.T) {
			t0 := time.Unix(1_800_000_000, 0).UTC()
			a := signals.Stream{Config: signals.StreamConfig{StreamID: "s-a", Aud: signals.Audience{"pep"},
				Delivery: &signals.Delivery{Method: signals.DeliveryPush, EndpointURL: "https://r.example/push", AuthorizationHeader: "Bearer x"}},
				Owner: "pep", Status: "enabled", Created: t0.Add(time.Second)}
			b := signals.Stream{Config: signals.StreamConfig{StreamID: "s-b"}, Owner: "other", Created: t0}
			for _, s := range []signals.Stream{a, b} {
				if err := ss.CreateStream(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := ss.CreateStream(ctx, a); !errors.Is(err, signals.ErrStreamExists) {
				t.Fatalf("duplicate create: %v", err)
			}
			got, err := ss.GetStream(ctx, "s-a")
			if err != nil || got.Owner != "pep" || got.Config.Delivery.AuthorizationHeader != "Bearer x" || !got.Created.Equal(a.Created) {
				t.Fatalf("get: %+v %v", got, err)
			}
			all, err := ss.ListStreams(ctx, "")
			if err != nil || len(all) != 2 || all[0].Config.StreamID != "s-b" {
				t.Fatalf("list all (creation order): %+v %v", all, err)
			}
			mine, err := ss.ListStreams(ctx, "pep")
			if err != nil || len(mine) != 1 || mine[0].Config.StreamID != "s-a" {
				t.Fatalf("list of pep: %+v %v", mine, err)
			}
			a.Status = "paused"
			if err := ss.UpdateStream(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got, _ := ss.GetStream(ctx, "s-a"); got.Status != "paused" {
				t.Fatalf("after update: %+v", got)
			}
			if err := ss.DeleteStream(ctx, "s-a"); err != nil {
				t.Fatal(err)
			}
			for _, err := range []error{
				func() error { _, err := ss.GetStream(ctx, "s-a"); return err }(),
				ss.UpdateStream(ctx, a),
				ss.DeleteStream(ctx, "s-a"),
				func() error { _, err := ss.GetStream(ctx, "../\x00bad"); return err }(),
			} {
				if !errors.Is(err, signals.ErrStreamNotFound) {
					t.Fatalf("missing stream: %v", err)
				}
			}
		})
	}
}

// TestStoreQueues: the transmitter's undelivered SETs round-trip through
// the store, and an empty queue is removed.
func TestStoreQueues(t *testing.T) {
	ctx := context.Background()
	q := storeQueues{kv: memstore.New(nil)}
	sets := []signals.QueuedSET{{JTI: "j1", SET: "a.b.c", Type: signals.EventSessionRevoked}, {JTI: "j2", SET: "d.e.f", Control: true}}
	if err := q.SaveQueue(ctx, "s-1", sets); err != nil {
		t.Fatal(err)
	}
	if err := q.SaveQueue(ctx, "s-2", sets[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := q.LoadQueues(ctx)
	if err != nil || len(got) != 2 || len(got["s-1"]) != 2 || !got["s-1"][1].Control || got["s-2"][0].JTI != "j1" {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if err := q.SaveQueue(ctx, "s-1", nil); err != nil {
		t.Fatal(err)
	}
	if err := q.SaveQueue(ctx, "s-3", nil); err != nil {
		t.Fatalf("removing a queue never saved: %v", err)
	}
	if got, _ := q.LoadQueues(ctx); len(got) != 1 {
		t.Fatalf("after removal: %+v", got)
	}
}
