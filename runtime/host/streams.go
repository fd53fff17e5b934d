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
		return signals.Stream{}, fmt.Errorf("%w: %q", signals.ErrStreamNotFound, truncateText(id, 64))
	case err != nil:
		return signals.Stream{}, fmt.Errorf("host: read stream: %w", err)
	}
	var st signals.Stream
	if err := json.Unmarshal(rec.Value, &st); err != nil {
		return signals.Stream{}, fmt.Errorf("host: stream %q is corrupt: %w", truncateText(id, 64), err)
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
		return fmt.Errorf("%w: %q", signals.ErrStreamNotFound, truncateText(st.Config.StreamID, 64))
	case err != nil:
		return fmt.Errorf("host: read stream: %w", err)
	}
	err = s.put(ctx, st, store.IfVersion(rec.Version))
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("host: stream %q changed meanwhile: %w", truncateText(st.Config.StreamID, 64), err)
	}
	return err
}

// DeleteStream implements signals.StreamStore.
func (s storeStreams) DeleteStream(ctx context.Context, id string) error {
	err := s.kv.Delete(ctx, nsStreams, id, store.Condition{})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return fmt.Errorf("%w: %q", signals.ErrStreamNotFound, truncateText(id, 64))
	case err != nil:
		return fmt.Errorf("host: delete stream: %w", err)
	}
	return nil
}

// truncateText cuts s to at most n bytes for error messages.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
