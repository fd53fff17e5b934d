package wimse

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// DefaultReplayCacheSize is the number of entries of the MemoryReplayCache
// a Verifier creates when Config.ReplayCache is nil.
const DefaultReplayCacheSize = 100_000

// ReplayCache remembers the proofs a verifier has accepted, so that each
// WPT jti and each HTTP-signature nonce is used once within its lifetime
// (DESIGN.md §6.3). Keys are opaque fixed-length strings (a hash of the
// proof kind, the WIT subject and the jti or nonce), so a shared store can
// hold them as they are.
//
// Implementations must be safe for concurrent use. [MemoryReplayCache] is
// the in-process one; a store shared by several hosts can implement the
// same method.
type ReplayCache interface {
	// CheckAndStore records key until expires, atomically with checking
	// it. It MUST return an error wrapping [ErrReplayed] when key was
	// recorded before and that record has not expired. Any other error
	// means the cache could not decide, and the proof is refused.
	CheckAndStore(ctx context.Context, key string, expires time.Time) error
}

// replayKey returns the cache key of a proof: kind ("wpt" or "sig"), the
// WIT subject, and the jti or nonce, hashed together.
func replayKey(kind, subject, id string) string {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// MemoryReplayCache is a [ReplayCache] held in memory, bounded in size. It
// drops entries as they expire; when it holds its maximum of unexpired
// entries it refuses new ones with [ErrReplayCacheFull] rather than
// forget one that might be replayed (fail closed). It is safe for
// concurrent use.
type MemoryReplayCache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]time.Time
	byExp   expiryHeap
}

// NewMemoryReplayCache returns a cache of at most maxEntries unexpired
// entries (zero or less means DefaultReplayCacheSize) on clock (nil means
// time.Now).
func NewMemoryReplayCache(maxEntries int, clock func() time.Time) *MemoryReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayCacheSize
	}
	if clock == nil {
		clock = time.Now
	}
	return &MemoryReplayCache{max: maxEntries, now: clock, entries: make(map[string]time.Time)}
}

// CheckAndStore implements [ReplayCache].
func (c *MemoryReplayCache) CheckAndStore(ctx context.Context, key string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wimse: replay cache: %w", err)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(now)
	if _, seen := c.entries[key]; seen {
		return fmt.Errorf("%w: already used", ErrReplayed)
	}
	if !expires.After(now) {
		// Already expired: nothing can replay it within its lifetime.
		return nil
	}
	if len(c.entries) >= c.max {
		return fmt.Errorf("%w: %d unexpired entries", ErrReplayCacheFull, len(c.entries))
	}
	c.entries[key] = expires
	heap.Push(&c.byExp, expiryEntry{key: key, exp: expires})
	return nil
}

// Len returns the number of entries held, expired ones included until the
// next CheckAndStore drops them.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// evict drops every entry whose expiry is not after now. The map holds no
// expired entry afterwards, so a key is never in the heap twice.
func (c *MemoryReplayCache) evict(now time.Time) {
	for len(c.byExp) > 0 && !c.byExp[0].exp.After(now) {
		e := heap.Pop(&c.byExp).(expiryEntry)
		delete(c.entries, e.key)
	}
}

type expiryEntry struct {
	key string
	exp time.Time
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = expiryEntry{}
	*h = old[:n-1]
	return e
}
