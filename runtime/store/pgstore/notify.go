package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenthost/agenthost/runtime/store"
)

var _ store.Notifier = (*Store)(nil)

// listenBackoff bounds the wait before a lost listener connects again.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Notify implements store.Notifier with pg_notify: every session
// listening on channel, in any process, gets payload when the
// notification's transaction commits (at once here).
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	var valid error
	switch {
	case channel == "" || len(channel) > 63:
		valid = fmt.Errorf("%w: channel name of %d bytes (1 to 63)", store.ErrInvalid, len(channel))
	case len(payload) > store.MaxNotification:
		valid = fmt.Errorf("%w: payload of %d bytes (at most %d)", store.ErrInvalid, len(payload), store.MaxNotification)
	}
	if err := s.enter(ctx, "notify", valid); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if _, err := s.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		return s.wrap(ctx, "notify", err, false)
	}
	return nil
}

// Listen implements store.Notifier on a connection of its own, held while
// it listens. A lost connection is replaced (with backoff), and fn is
// then called once with "" to say notifications may have been missed.
func (s *Store) Listen(ctx context.Context, channel string, fn func(payload string)) error {
	if channel == "" || len(channel) > 63 {
		return fmt.Errorf("pgstore: listen: %w: channel name of %d bytes (1 to 63)", store.ErrInvalid, len(channel))
	}
	backoff := listenBackoffMin
	for first := true; ; first = false {
		err := s.listenOnce(ctx, channel, fn, !first)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, store.ErrClosed):
			return err
		}
		s.log.WarnContext(ctx, "pgstore: listener lost, connecting again", slog.String("channel", channel),
			slog.Duration("in", backoff), slog.Any("error", err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.stop:
			t.Stop()
			return fmt.Errorf("pgstore: listen: %w", store.ErrClosed)
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce listens on one connection until it fails or ctx ends;
// missed says the listener was down before, which fn is told once it
// listens again.
func (s *Store) listenOnce(ctx context.Context, channel string, fn func(string), missed bool) error {
	if err := s.enter(ctx, "listen", nil); err != nil {
		return err
	}
	pc, err := s.pool.Acquire(ctx)
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("pgstore: listen: %w: %w", ErrUnavailable, err)
	}
	// The connection leaves the pool (Close does not wait for it) and is
	// closed when listening ends, by ctx or by Close.
	conn := pc.Hijack()
	defer func() { _ = conn.Close(context.Background()) }()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-lctx.Done():
		}
	}()
	if _, err := conn.Exec(lctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return s.listenErr(err)
	}
	if missed {
		fn("")
	}
	for {
		n, err := conn.WaitForNotification(lctx)
		if err != nil {
			return s.listenErr(err)
		}
		if n.Channel == channel {
			fn(n.Payload)
		}
	}
}

// listenErr is the error that ended a listener: the store's closing, or
// the connection's.
func (s *Store) listenErr(err error) error {
	select {
	case <-s.stop:
		return fmt.Errorf("pgstore: listen: %w", store.ErrClosed)
	default:
		return fmt.Errorf("pgstore: listen: %w", err)
	}
}
