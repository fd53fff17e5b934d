package signals

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Replay remembers SET jti values per issuer so that each SET is acted on
// once (RFC 8417 §2.2). Seen records issuer+jti for at least ttl and
// reports whether it was already recorded; the check and the record are
// one atomic step. The host backs it with its store.
type Replay interface {
	Seen(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error)
}

// Forgetter is implemented by a [Replay] that can drop a record, so that a
// SET whose handling failed can be delivered again.
type Forgetter interface {
	Forget(ctx context.Context, issuer, jti string) error
}

// DefaultReplayEntries caps a [MemoryReplay] made with max <= 0.
const DefaultReplayEntries = 100_000

// MemoryReplay is an in-memory [Replay] and [Forgetter] holding at most a
// fixed number of live entries. It is safe for concurrent use.
type MemoryReplay struct {
	mu      sync.Mutex
	entries map[replayKey]time.Time // expiry
	max     int
	now     func() time.Time
}

type replayKey struct{ issuer, jti string }

// NewMemoryReplay returns a MemoryReplay holding at most max entries
// (DefaultReplayEntries when max <= 0), with clock now (time.Now when nil).
func NewMemoryReplay(max int, now func() time.Time) *MemoryReplay {
	if max <= 0 {
		max = DefaultReplayEntries
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplay{entries: make(map[replayKey]time.Time), max: max, now: now}
}

// Seen implements [Replay]. When the cache is full of live entries it
// returns an error rather than forget one early.
func (m *MemoryReplay) Seen(_ context.Context, issuer, jti string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	k := replayKey{issuer, jti}
	if exp, ok := m.entries[k]; ok && now.Before(exp) {
		return true, nil
	}
	if len(m.entries) >= m.max {
		for key, exp := range m.entries {
			if !now.Before(exp) {
				delete(m.entries, key)
			}
		}
		if len(m.entries) >= m.max {
			return false, fmt.Errorf("signals: replay cache full (%d entries)", m.max)
		}
	}
	m.entries[k] = now.Add(ttl)
	return false, nil
}

// Forget implements [Forgetter].
func (m *MemoryReplay) Forget(_ context.Context, issuer, jti string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, replayKey{issuer, jti})
	return nil
}

// Len returns the number of entries held, expired ones included.
func (m *MemoryReplay) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
