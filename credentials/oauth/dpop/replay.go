package dpop

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// ReplayCache remembers single-use values.
type ReplayCache interface {
	// Remember records key until until. It MUST return an error wrapping
	// ErrReplay when key is already recorded and its until has not
	// passed; any other error means the cache could not answer.
	Remember(ctx context.Context, key string, until time.Time) error
}

// DefaultMaxReplayEntries bounds a MemoryReplayCache unless MaxEntries
// says otherwise.
const DefaultMaxReplayEntries = 1 << 20

// MemoryReplayCache is a ReplayCache for one process. Expired keys are
// dropped as time passes, oldest expiry first. The cache is bounded: when
// MaxEntries live keys are held, Remember refuses new keys rather than
// forget live ones, which would let them be replayed.
type MemoryReplayCache struct {
	// MaxEntries is the most keys held at once; zero means
	// DefaultMaxReplayEntries. Set it before the first Remember.
	MaxEntries int

	now func() time.Time

	mu      sync.Mutex
	entries map[string]time.Time
	expiry  expiryHeap
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// NewMemoryReplayCache returns an empty cache; now nil means time.Now.
func NewMemoryReplayCache(now func() time.Time) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayCache{now: now, entries: map[string]time.Time{}}
}

// Remember implements ReplayCache. A key whose until has already passed
// is not recorded.
func (c *MemoryReplayCache) Remember(_ context.Context, key string, until time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.prune(now)
	if _, ok := c.entries[key]; ok {
		return fmt.Errorf("%w: key already used", ErrReplay)
	}
	if !until.After(now) {
		return nil
	}
	limit := c.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxReplayEntries
	}
	if len(c.entries) >= limit {
		return fmt.Errorf("dpop: replay cache is full (%d live keys)", len(c.entries))
	}
	c.entries[key] = until
	heap.Push(&c.expiry, expiryEntry{key: key, until: until})
	return nil
}

// Len returns the number of keys held, expired ones included until the
// next Remember drops them.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// prune drops every key whose until is not after now.
func (c *MemoryReplayCache) prune(now time.Time) {
	for len(c.expiry) > 0 && !c.expiry[0].until.After(now) {
		e := heap.Pop(&c.expiry).(expiryEntry)
		delete(c.entries, e.key)
	}
}

type expiryEntry struct {
	key   string
	until time.Time
}

// expiryHeap is a min-heap of keys by until (container/heap).
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiryEntry{}
	*h = old[:len(old)-1]
	return e
}
