package asstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/store"
)

// Store is an [authserver.Store] over a [store.KV].
type Store struct {
	kv store.KV
}

var (
	_ authserver.Store   = (*Store)(nil)
	_ authserver.Counter = (*Store)(nil)
)

// New returns the adapter.
func New(kv store.KV) *Store { return &Store{kv: kv} }

// Get implements authserver.Store.
func (s *Store) Get(ctx context.Context, namespace, key string) ([]byte, int64, error) {
	rec, err := s.kv.Get(ctx, namespace, key)
	if err != nil {
		return nil, 0, mapErr(err)
	}
	return rec.Value, rec.Version, nil
}

// Put implements authserver.Store.
func (s *Store) Put(ctx context.Context, namespace, key string, value []byte, w authserver.Write) (int64, error) {
	cond := store.Always
	switch {
	case w.IfAbsent && w.IfVersion > 0:
		return 0, fmt.Errorf("asstore: IfAbsent and IfVersion together")
	case w.IfAbsent:
		cond = store.IfAbsent
	case w.IfVersion > 0:
		cond = store.IfVersion(w.IfVersion)
	}
	rec, err := s.kv.Put(ctx, namespace, key, value, store.PutOptions{Condition: cond, TTL: w.TTL})
	if err != nil {
		return 0, mapErr(err)
	}
	return rec.Version, nil
}

// Delete implements authserver.Store.
func (s *Store) Delete(ctx context.Context, namespace, key string, version int64) error {
	cond := store.Always
	if version > 0 {
		cond = store.IfVersion(version)
	}
	return mapErr(s.kv.Delete(ctx, namespace, key, cond))
}

// Count implements authserver.Counter.
func (s *Store) Count(ctx context.Context, namespace string) (int, error) {
	n, err := s.kv.Count(ctx, namespace, "")
	if err != nil {
		return 0, mapErr(err)
	}
	return n, nil
}

// mapErr keeps the backend's message and adds the authserver sentinel.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", authserver.ErrNotFound, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", authserver.ErrConflict, err)
	default:
		return fmt.Errorf("asstore: %w", err)
	}
}
