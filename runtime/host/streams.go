package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/store"
)

// nsStreams holds the SSF streams receivers created at the host's
// transmitter, so that they outlive a restart.
const nsStreams = "ssf.streams"

// storeStreams keeps the transmitter's streams in the host's store.
type storeStreams struct{ kv store.KV }

var _ signals.StreamStore = storeStreams{}

func (s storeStreams) put(ctx context.Context, st signals.Stream, cond store.Condition) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("host: encode stream: %w", err)
	}
	_, err = s.kv.Put(ctx, nsStreams, st.Config.StreamID, data, store.PutOptions{Condition: cond})
	switch {
	case errors.Is(err, store.ErrConflict) && cond == store.IfAbsent:
		return fmt.Errorf("%w: %q", signals.ErrStreamExists, st.Config.StreamID)
	case errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %v", signals.ErrStreamNotFound, err)
	case err != nil:
		return fmt.Errorf("host: save stream: %w", err)
	}
	return nil
}

// CreateStream implements signals.StreamStore.
func (s storeStreams) CreateStream(ctx context.Context, st signals.Stream) error {
	return s.put(ctx, st, store.IfAbsent)
}

// GetStream implements signals.StreamStore.
func (s storeStreams) GetStream(ctx context.Context, id string) (signals.Stream, error) {
	rec, err := s.kv.Get(ctx, nsStreams, id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return signals.Stream{}, fmt.Errorf("%w: %.64q", signals.ErrStreamNotFound, id)
	case err != nil:
		return signals.Stream{}, fmt.Errorf("host: read stream: %w", err)
	}
	var st signals.Stream
	if err := json.Unmarshal(rec.Value, &st); err != nil {
		return signals.Stream{}, fmt.Errorf("host: stream %.64q is corrupt: %w", id, err)
	}
	return st, nil
}

// ListStreams implements signals.StreamStore, in creation order.
func (s storeStreams) ListStreams(ctx context.Context, owner string) ([]signals.Stream, error) {
	out := []signals.Stream{}
	after := ""
	for {
		recs, err := s.kv.List(ctx, nsStreams, "", after, 100)
		if err != nil {
			return nil, fmt.Errorf("host: list streams: %w", err)
		}
		for _, rec := range recs {
			var st signals.Stream
			if err := json.Unmarshal(rec.Value, &st); err != nil {
				return nil, fmt.Errorf("host: stream %q is corrupt: %w", rec.Key, err)
			}
			if owner == "" || st.Owner == owner {
				out = append(out, st)
			}
		}
		if len(recs) < 100 {
			break
		}
		after = recs[len(recs)-1].Key
	}
	slices.SortStableFunc(out, func(a, b signals.Stream) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// UpdateStream implements signals.StreamStore: it replaces a stream that
// exists (a stream deleted meanwhile is not written back).
func (s storeStreams) UpdateStream(ctx context.Context, st signals.Stream) error {
	rec, err := s.kv.Get(ctx, nsStreams, st.Config.StreamID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %.64q", signals.ErrStreamNotFound, st.Config.StreamID)
	case err != nil:
		return fmt.Errorf("host: read stream: %w", err)
	}
	err = s.put(ctx, st, store.IfVersion(rec.Version))
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("host: stream %.64q changed meanwhile: %w", st.Config.StreamID, err)
	}
	return err
}

// DeleteStream implements signals.StreamStore.
func (s storeStreams) DeleteStream(ctx context.Context, id string) error {
	err := s.kv.Delete(ctx, nsStreams, id, store.Condition{})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %.64q", signals.ErrStreamNotFound, id)
	case err != nil:
		return fmt.Errorf("host: delete stream: %w", err)
	}
	return nil
}

// nsQueues holds the transmitter's undelivered SETs by stream.
const nsQueues = "ssf.queues"

// storeQueues keeps the transmitter's undelivered SETs in the host's
// store, so that a restart does not lose them.
type storeQueues struct{ kv store.KV }

var _ signals.QueueStore = storeQueues{}

// SaveQueue implements signals.QueueStore.
func (q storeQueues) SaveQueue(ctx context.Context, stream string, sets []signals.QueuedSET) error {
	if len(sets) == 0 {
		err := q.kv.Delete(ctx, nsQueues, stream, store.Condition{})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("host: delete stream queue: %w", err)
		}
		return nil
	}
	data, err := json.Marshal(sets)
	if err != nil {
		return fmt.Errorf("host: encode stream queue: %w", err)
	}
	if _, err := q.kv.Put(ctx, nsQueues, stream, data, store.PutOptions{}); err != nil {
		return fmt.Errorf("host: save stream queue: %w", err)
	}
	return nil
}

// LoadQueues implements signals.QueueStore.
func (q storeQueues) LoadQueues(ctx context.Context) (map[string][]signals.QueuedSET, error) {
	out := map[string][]signals.QueuedSET{}
	after := ""
	for {
		recs, err := q.kv.List(ctx, nsQueues, "", after, 100)
		if err != nil {
			return nil, fmt.Errorf("host: list stream queues: %w", err)
		}
		for _, rec := range recs {
			var sets []signals.QueuedSET
			if err := json.Unmarshal(rec.Value, &sets); err != nil {
				return nil, fmt.Errorf("host: stream queue %q is corrupt: %w", rec.Key, err)
			}
			out[rec.Key] = sets
		}
		if len(recs) < 100 {
			return out, nil
		}
		after = recs[len(recs)-1].Key
	}
}
