package federation

import (
	"context"
	"fmt"
	"sync"
)

// Store keeps the last accepted bundle of every federated trust domain, so
// a restarted host has them before its first fetch succeeds.
type Store interface {
	// Load returns the bundle last saved for the trust domain td (its
	// name), in the SPIFFE bundle format. It MUST return an error
	// wrapping ErrNotFound when none was saved.
	Load(ctx context.Context, td string) ([]byte, error)
	// Save replaces the bundle kept for td.
	Save(ctx context.Context, td string, bundle []byte) error
}

// MemoryStore is a [Store] held in memory, for tests and for hosts that
// keep no state. The zero value is ready to use; it is safe for concurrent
// use.
type MemoryStore struct {
	mu      sync.Mutex
	bundles map[string][]byte
}

var _ Store = (*MemoryStore)(nil)

// Load implements [Store].
func (m *MemoryStore) Load(ctx context.Context, td string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("federation: load bundle: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bundles[td]
	if !ok {
		return nil, fmt.Errorf("%w for %s", ErrNotFound, td)
	}
	return append([]byte(nil), b...), nil
}

// Save implements [Store].
func (m *MemoryStore) Save(ctx context.Context, td string, bundle []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("federation: save bundle: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bundles == nil {
		m.bundles = make(map[string][]byte)
	}
	m.bundles[td] = append([]byte(nil), bundle...)
	return nil
}
