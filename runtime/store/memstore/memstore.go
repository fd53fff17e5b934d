package memstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// Store is an in-memory [store.Store]. The zero value is not usable; call
// [New].
type Store struct {
	now func() time.Time

	mu       sync.Mutex
	closed   bool
	revision int64
	kv       map[string]map[string]store.Record
	logs     map[string][][]byte
	leases   map[string]store.Lease
}

var _ store.Store = (*Store)(nil)

// New returns an empty store that reads time from now (nil = time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:    now,
		kv:     map[string]map[string]store.Record{},
		logs:   map[string][][]byte{},
		leases: map[string]store.Lease{},
	}
}

func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

func cloneRecord(r store.Record) store.Record {
	r.Value = clone(r.Value)
	return r
}

// live returns the record if it exists and has not expired.
func (s *Store) live(ns, key string, now time.Time) (store.Record, bool) {
	r, ok := s.kv[ns][key]
	if !ok || (!r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now)) {
		return store.Record{}, false
	}
	return r, true
}

// Get implements [store.KV].
func (s *Store) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if err := store.ValidateRecord(ns, key); err != nil {
		return store.Record{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.live(ns, key, s.now())
	if !ok {
		return store.Record{}, fmt.Errorf("memstore: %s/%s: %w", ns, key, store.ErrNotFound)
	}
	return cloneRecord(r), nil
}

// Put implements [store.KV].
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	if err := store.ValidateRecord(ns, key); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateValue(value); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateTTL(opts.TTL, false); err != nil {
		return store.Record{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Record{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	cur, exists := s.live(ns, key, now)
	if err := opts.Condition.Check(exists, cur.Version); err != nil {
		return store.Record{}, fmt.Errorf("memstore: put %s/%s: %w", ns, key, err)
	}
	s.revision++
	r := store.Record{Namespace: ns, Key: key, Value: clone(value), Version: s.revision, UpdatedAt: now.UTC()}
	if opts.TTL > 0 {
		r.ExpiresAt = now.Add(opts.TTL).UTC()
	}
	if s.kv[ns] == nil {
		s.kv[ns] = map[string]store.Record{}
	}
	s.kv[ns][key] = r
	return cloneRecord(r), nil
}

// Delete implements [store.KV].
func (s *Store) Delete(ctx context.Context, ns, key string, cond store.Condition) error {
	if err := store.ValidateRecord(ns, key); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, exists := s.live(ns, key, s.now())
	if !exists {
		return fmt.Errorf("memstore: %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err := cond.Check(true, cur.Version); err != nil {
		return fmt.Errorf("memstore: delete %s/%s: %w", ns, key, err)
	}
	delete(s.kv[ns], key)
	return nil
}

// List implements [store.KV].
func (s *Store) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if err := store.ValidateName("namespace", ns); err != nil {
		return nil, err
	}
	if err := store.ValidateLimit(limit); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := s.now()
	var keys []string
	for k := range s.kv[ns] {
		if strings.HasPrefix(k, prefix) && k > after {
			if _, ok := s.live(ns, k, now); ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys) // byte order
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]store.Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, cloneRecord(s.kv[ns][k]))
	}
	return out, nil
}

// Purge implements [store.KV].
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now, n := s.now(), 0
	for ns, recs := range s.kv {
		for k, r := range recs {
			if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(now) {
				delete(recs, k)
				n++
			}
		}
		if len(recs) == 0 {
			delete(s.kv, ns)
		}
	}
	return n, nil
}

// Append implements [store.Log].
func (s *Store) Append(ctx context.Context, log string, entries ...[]byte) (int64, error) {
	if err := store.ValidateName("log", log); err != nil {
		return 0, err
	}
	if len(entries) == 0 || len(entries) > store.MaxBatch {
		return 0, fmt.Errorf("memstore: %w: append of %d entries (want 1..%d)", store.ErrInvalid, len(entries), store.MaxBatch)
	}
	for _, e := range entries {
		if err := store.ValidateValue(e); err != nil {
			return 0, err
		}
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	first := int64(len(s.logs[log]))
	for _, e := range entries {
		s.logs[log] = append(s.logs[log], clone(e))
	}
	return first, nil
}

// Read implements [store.Log].
func (s *Store) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := store.ValidateName("log", log); err != nil {
		return nil, err
	}
	if err := store.ValidateLimit(limit); err != nil {
		return nil, err
	}
	if from < 0 {
		return nil, fmt.Errorf("memstore: %w: negative index %d", store.ErrInvalid, from)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	l := s.logs[log]
	var out []store.Entry
	for i := from; i < int64(len(l)) && len(out) < limit; i++ {
		out = append(out, store.Entry{Index: i, Data: clone(l[i])})
	}
	return out, nil
}

// Len implements [store.Log].
func (s *Store) Len(ctx context.Context, log string) (int64, error) {
	if err := store.ValidateName("log", log); err != nil {
		return 0, err
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return int64(len(s.logs[log])), nil
}

// AcquireLease implements [store.Leases].
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := store.ValidateLease(name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	l := store.Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	if cur, ok := s.leases[name]; ok && cur.ExpiresAt.After(now) {
		if cur.Holder != holder {
			return store.Lease{}, fmt.Errorf("memstore: %s held by %s: %w", name, cur.Holder, store.ErrLeaseHeld)
		}
		l.Token = cur.Token
	}
	if l.Token == 0 {
		s.revision++
		l.Token = s.revision
	}
	s.leases[name] = l
	return l, nil
}

// RenewLease implements [store.Leases].
func (s *Store) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := store.ValidateLease(l.Name, l.Holder, ttl); err != nil {
		return store.Lease{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	cur, ok := s.leases[l.Name]
	if !ok || cur.Holder != l.Holder || cur.Token != l.Token || !cur.ExpiresAt.After(now) {
		return store.Lease{}, fmt.Errorf("memstore: renew lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	cur.ExpiresAt = now.Add(ttl).UTC()
	s.leases[l.Name] = cur
	return cur, nil
}

// ReleaseLease implements [store.Leases].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	if err := store.ValidateName("lease", l.Name); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Name]
	if !ok || cur.Holder != l.Holder || cur.Token != l.Token || !cur.ExpiresAt.After(s.now()) {
		return fmt.Errorf("memstore: release lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	delete(s.leases, l.Name)
	return nil
}

// Close implements io.Closer. Later calls to any method return
// store.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
