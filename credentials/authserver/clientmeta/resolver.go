package clientmeta

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// Resolver defaults and limits.
const (
	// MaxDocumentSize caps a client ID metadata document (the 5 KB the
	// CIMD draft recommends, SPECS.md §11.5).
	MaxDocumentSize = 5 << 10
	// DefaultCacheTTL is the longest a document is cached by default.
	DefaultCacheTTL = 5 * time.Minute
	// DefaultMaxEntries is the default cache size.
	DefaultMaxEntries = 1024
)

// ResolverConfig configures a [Resolver]. The zero value is usable.
type ResolverConfig struct {
	// Fetcher fetches documents. Nil means fetch.New(fetch.Config{}).
	// The Resolver tightens it to MaxDocumentSize and no redirects
	// (CIMD: redirects MUST NOT be followed).
	Fetcher *fetch.Fetcher

	// Policy validates documents (see [Policy.ValidateDocument]).
	Policy Policy

	// CacheTTL is the longest a valid document is cached; a shorter
	// Cache-Control max-age (less Age) wins, and no-store, no-cache or
	// max-age=0 prevent caching. Zero means DefaultCacheTTL; negative
	// disables the cache.
	CacheTTL time.Duration

	// MaxEntries bounds the cache; the least recently used document is
	// dropped first. Zero means DefaultMaxEntries.
	MaxEntries int

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Logger receives debug records of refused documents. Nil means
	// silent.
	Logger *slog.Logger
}

// Resolver fetches, validates and caches client ID metadata documents.
// Only valid documents are cached; failures are never cached (CIMD §4).
// Concurrent resolutions of the same client_id share one fetch. It is safe
// for concurrent use.
type Resolver struct {
	fetcher *fetch.Fetcher
	policy  Policy
	ttl     time.Duration
	max     int
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	entries  map[string]*list.Element // of *cacheEntry
	lru      *list.List               // most recently used first
	inflight map[string]*resolveCall
}

type cacheEntry struct {
	clientID string
	md       *Metadata
	expires  time.Time
}

type resolveCall struct {
	done chan struct{}
	md   *Metadata
	err  error
}

// NewResolver returns a Resolver for cfg, with defaults for zero fields.
func NewResolver(cfg ResolverConfig) *Resolver {
	r := &Resolver{
		fetcher:  cfg.Fetcher,
		policy:   cfg.Policy,
		ttl:      cfg.CacheTTL,
		max:      cfg.MaxEntries,
		now:      cfg.Now,
		log:      cfg.Logger,
		entries:  make(map[string]*list.Element),
		lru:      list.New(),
		inflight: make(map[string]*resolveCall),
	}
	if r.fetcher == nil {
		r.fetcher = fetch.New(fetch.Config{Logger: cfg.Logger})
	}
	r.fetcher = r.fetcher.Restrict(MaxDocumentSize, 0)
	if r.ttl == 0 {
		r.ttl = DefaultCacheTTL
	}
	if r.max <= 0 {
		r.max = DefaultMaxEntries
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Resolve returns the validated metadata document of clientID, from the
// cache or fetched. The result is the caller's to modify. Every error
// wraps [ErrInvalidClient], and also the fetch or validation error behind
// it ([fetch.ErrRedirect], [ErrInvalidRedirectURI], context.Canceled, …).
func (r *Resolver) Resolve(ctx context.Context, clientID string) (*Metadata, error) {
	if !IsClientIDURL(clientID) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidClient,
			metadataError("the client_id is not a client ID metadata document URL"))
	}
	for {
		r.mu.Lock()
		if md, ok := r.cached(clientID); ok {
			r.mu.Unlock()
			return md.Clone(), nil
		}
		if c, ok := r.inflight[clientID]; ok {
			r.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrInvalidClient, ctx.Err())
			}
			if c.err != nil && isContextError(c.err) && ctx.Err() == nil {
				continue // the fetching caller gave up; fetch again
			}
			if c.err != nil {
				return nil, c.err
			}
			return c.md.Clone(), nil
		}
		c := &resolveCall{done: make(chan struct{})}
		r.inflight[clientID] = c
		r.mu.Unlock()

		md, ttl, err := r.fetch(ctx, clientID)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrInvalidClient, err)
			r.log.LogAttrs(ctx, slog.LevelDebug, "client metadata document refused",
				slog.String("client_id", clientID), slog.String("err", err.Error()))
		}
		r.mu.Lock()
		delete(r.inflight, clientID)
		if err == nil && ttl > 0 {
			r.store(clientID, md, r.now().Add(ttl))
		}
		r.mu.Unlock()
		c.md, c.err = md, err
		close(c.done)
		if err != nil {
			return nil, err
		}
		return md.Clone(), nil
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fetch gets, parses and validates one document and returns how long it
// may be cached.
func (r *Resolver) fetch(ctx context.Context, clientID string) (*Metadata, time.Duration, error) {
	resp, err := r.fetcher.JSON(ctx, clientID, nil)
	if err != nil {
		return nil, 0, err
	}
	// CIMD §4: only 200 is a success.
	if resp.Status != http.StatusOK {
		return nil, 0, fmt.Errorf("%w %d: only 200 is accepted", fetch.ErrStatus, resp.Status)
	}
	md, err := Parse(resp.Body, MaxDocumentSize)
	if err != nil {
		return nil, 0, err
	}
	if err := r.policy.ValidateDocument(clientID, md); err != nil {
		return nil, 0, err
	}
	return md, freshness(resp.Header, r.ttl), nil
}

// cached returns the live entry for clientID and marks it used. r.mu is
// held.
func (r *Resolver) cached(clientID string) (*Metadata, bool) {
	el, ok := r.entries[clientID]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !r.now().Before(e.expires) {
		r.lru.Remove(el)
		delete(r.entries, clientID)
		return nil, false
	}
	r.lru.MoveToFront(el)
	return e.md, true
}

// store caches md until expires, evicting the least recently used entries
// beyond the bound. r.mu is held.
func (r *Resolver) store(clientID string, md *Metadata, expires time.Time) {
	if el, ok := r.entries[clientID]; ok {
		e := el.Value.(*cacheEntry)
		e.md, e.expires = md, expires
		r.lru.MoveToFront(el)
		return
	}
	r.entries[clientID] = r.lru.PushFront(&cacheEntry{clientID: clientID, md: md, expires: expires})
	for r.lru.Len() > r.max {
		last := r.lru.Back()
		r.lru.Remove(last)
		delete(r.entries, last.Value.(*cacheEntry).clientID)
	}
}

// Len is the number of cached documents, live or expired.
func (r *Resolver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lru.Len()
}

// freshness is how long a response may be cached: limit, shortened by a
// Cache-Control max-age (less the Age header), and zero for no-store,
// no-cache or a malformed max-age (RFC 9111 §5.2.2, §4.2.1).
func freshness(h http.Header, limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	ttl := limit
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				secs, ok := deltaSeconds(value)
				if !ok {
					return 0
				}
				if age, ok := deltaSeconds(h.Get("Age")); ok {
					secs -= age
				}
				if d := time.Duration(secs) * time.Second; d < ttl {
					ttl = d
				}
			}
		}
	}
	if ttl < 0 {
		return 0
	}
	return ttl
}

// deltaSeconds parses delta-seconds (RFC 9111 §1.2.2), also in quotes,
// capped at one day.
func deltaSeconds(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	const day = 86400
	if len(s) > 6 {
		return day, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return min(n, day), true
}
