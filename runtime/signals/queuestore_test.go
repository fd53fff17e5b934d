package signals

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
)

// mapQueues is a QueueStore in a map.
type mapQueues struct {
	mu sync.Mutex
	m  map[string][]QueuedSET
}

func (q *mapQueues) SaveQueue(_ context.Context, stream string, sets []QueuedSET) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(sets) == 0 {
		delete(q.m, stream)
		return nil
	}
	q.m[stream] = slices.Clone(sets)
	return nil
}

func (q *mapQueues) LoadQueues(context.Context) (map[string][]QueuedSET, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.m), nil
}

// TestQueuesSurviveRestart: undelivered SETs are saved when the
// transmitter closes and delivered by the next one; acknowledged ones are
// gone from the store.
func TestQueuesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	streams := NewMemoryStreamStore()
	queues := &mapQueues{m: map[string][]QueuedSET{}}
	first := newTransmitterEnv(t, func(c *TransmitterConfig) { c.Store, c.Queues = streams, queues })
	sc := first.streamClient(t, tokenA)
	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	alice := EmailSubject("alice@example.com")
	if err := sc.AddSubject(ctx, stream.StreamID, alice, nil); err != nil {
		t.Fatal(err)
	}
	if err := first.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: alice}); err != nil {
		t.Fatal(err)
	}
	first.tr.Close()
	saved, _ := queues.LoadQueues(ctx)
	if len(saved[stream.StreamID]) != 1 || saved[stream.StreamID][0].SET == "" {
		t.Fatalf("saved queues %+v", saved)
	}

	// A new transmitter with the same stores has the SET waiting.
	second := newTransmitterEnv(t, func(c *TransmitterConfig) {
		c.Store, c.Queues, c.Signer, c.Issuer = streams, queues, first.key, first.srv.URL
	})
	if n := second.tr.Pending(stream.StreamID); n != 1 {
		t.Fatalf("pending after restart: %d, want 1", n)
	}
	// Once it is acknowledged (here: taken off the queue as a poll
	// would), the stored queue empties.
	second.tr.mu.Lock()
	second.tr.queues[stream.StreamID].remove(saved[stream.StreamID][0].JTI)
	second.tr.mu.Unlock()
	second.tr.Close()
	if after, _ := queues.LoadQueues(ctx); len(after[stream.StreamID]) != 0 {
		t.Fatalf("acknowledged SET still stored: %+v", after)
	}
}
