package memstore

import (
	"context"
	"fmt"
	"slices"
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
	revision int64 // source of record versions and lease tokens
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

// lock takes the store's mutex for op after validate passes; on success the
// caller must unlock.
func (s *Store) lock(ctx context.Context, op string, validate error) error {
	if validate != nil {
		return fmt.Errorf("memstore: %s: %w", op, validate)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %s: %w", op, store.ErrClosed)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func cloneRecord(r store.Record) store.Record {
	r.Value = slices.Clone(r.Value)
	if r.Value == nil {
		r.Value = []byte{}
	}
	return r
}

func expired(exp, now time.Time) bool { return !exp.IsZero() && !exp.After(now) }

// live returns the record if it exists and has not expired.
func (s *Store) live(ns, key string, now time.Time) (store.Record, bool) {
	r, ok := s.kv[ns][key]
	if !ok || expired(r.ExpiresAt, now) {
		return store.Record{}, false
	}
	return r, true
}

func (s *Store) next() int64 {
	s.revision++
	return s.revision
}

// Get implements [store.KV].
func (s *Store) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if err := s.lock(ctx, "get", store.ValidateRecord(ns, key)); err != nil {
		return store.Record{}, err
	}
	defer s.mu.Unlock()
	r, ok := s.live(ns, key, s.now())
	if !ok {
		return store.Record{}, fmt.Errorf("memstore: get %s/%s: %w", ns, key, store.ErrNotFound)
	}
	return cloneRecord(r), nil
}

// Put implements [store.KV].
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	valid := firstErr(store.ValidateRecord(ns, key), store.ValidateValue(value), store.ValidateTTL(opts.TTL, false))
	if err := s.lock(ctx, "put", valid); err != nil {
		return store.Record{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	cur, exists := s.live(ns, key, now)
	if err := opts.Condition.Check(exists, cur.Version); err != nil {
		return store.Record{}, fmt.Errorf("memstore: put %s/%s: %w", ns, key, err)
	}
	r := store.Record{Namespace: ns, Key: key, Value: slices.Clone(value), Version: s.next(), UpdatedAt: now.UTC()}
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
	if err := s.lock(ctx, "delete", store.ValidateRecord(ns, key)); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cur, exists := s.live(ns, key, s.now())
	if !exists {
		return fmt.Errorf("memstore: delete %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err := cond.Check(true, cur.Version); err != nil {
		return fmt.Errorf("memstore: delete %s/%s: %w", ns, key, err)
	}
	delete(s.kv[ns], key)
	return nil
}

// List implements [store.KV].
func (s *Store) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if err := s.lock(ctx, "list", store.ValidateList(ns, prefix, after, limit)); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	now := s.now()
	var keys []string
	for k, r := range s.kv[ns] {
		if strings.HasPrefix(k, prefix) && k > after && !expired(r.ExpiresAt, now) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // Go string order is byte order
	if len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]store.Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, cloneRecord(s.kv[ns][k]))
	}
	return out, nil
}

// Count implements [store.KV].
func (s *Store) Count(ctx context.Context, ns, prefix string) (int, error) {
	if err := s.lock(ctx, "count", store.ValidateCount(ns, prefix)); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now, n := s.now(), 0
	for k, r := range s.kv[ns] {
		if strings.HasPrefix(k, prefix) && !expired(r.ExpiresAt, now) {
			n++
		}
	}
	return n, nil
}

// Purge implements [store.KV].
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.lock(ctx, "purge", nil); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	now, n := s.now(), 0
	for ns, recs := range s.kv {
		for k, r := range recs {
			if expired(r.ExpiresAt, now) {
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
	if err := s.lock(ctx, "append", store.ValidateAppend(log, entries)); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.appendLocked(log, entries), nil
}

// AppendLogs implements [store.MultiLog].
func (s *Store) AppendLogs(ctx context.Context, parts ...store.LogAppend) ([]int64, error) {
	if err := s.lock(ctx, "append", store.ValidateAppendLogs(parts)); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	// Every condition is checked before anything is appended.
	for i, p := range parts {
		first := int64(len(s.logs[p.Log]))
		for _, q := range parts[:i] {
			if q.Log == p.Log {
				first += int64(len(q.Entries))
			}
		}
		if err := p.Check(first); err != nil {
			return nil, fmt.Errorf("memstore: append: %w", err)
		}
	}
	firsts := make([]int64, len(parts))
	for i, p := range parts {
		firsts[i] = s.appendLocked(p.Log, p.Entries)
	}
	return firsts, nil
}

// appendLocked appends entries to log and returns the index of the first.
// Called with mu held.
func (s *Store) appendLocked(log string, entries [][]byte) int64 {
	first := int64(len(s.logs[log]))
	for _, e := range entries {
		s.logs[log] = append(s.logs[log], slices.Clone(e))
	}
	return first
}

// Read implements [store.Log].
func (s *Store) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := s.lock(ctx, "read", store.ValidateRead(log, from, limit)); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	l := s.logs[log]
	out := []store.Entry{}
	for i := from; i < int64(len(l)) && len(out) < limit; i++ {
		d := slices.Clone(l[i])
		if d == nil {
			d = []byte{}
		}
		out = append(out, store.Entry{Index: i, Data: d})
	}
	return out, nil
}

// Len implements [store.Log].
func (s *Store) Len(ctx context.Context, log string) (int64, error) {
	if err := s.lock(ctx, "len", store.ValidateName("log", log)); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return int64(len(s.logs[log])), nil
}

// held returns the lease l names if l still holds it at now.
func (s *Store) held(l store.Lease, now time.Time) bool {
	cur, ok := s.leases[l.Name]
	return ok && cur.Holder == l.Holder && cur.Token == l.Token && cur.ExpiresAt.After(now)
}

// AcquireLease implements [store.Leases].
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.lock(ctx, "acquire lease", store.ValidateLease(name, holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	l := store.Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	if cur, ok := s.leases[name]; ok && cur.ExpiresAt.After(now) {
		if cur.Holder != holder {
			return store.Lease{}, fmt.Errorf("memstore: acquire lease %s: held by %s until %s: %w",
				name, cur.Holder, cur.ExpiresAt.Format(time.RFC3339), store.ErrLeaseHeld)
		}
		l.Token = cur.Token
	} else {
		l.Token = s.next()
	}
	s.leases[name] = l
	return l, nil
}

// RenewLease implements [store.Leases].
func (s *Store) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.lock(ctx, "renew lease", store.ValidateLease(l.Name, l.Holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	now := s.now()
	if !s.held(l, now) {
		return store.Lease{}, fmt.Errorf("memstore: renew lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	cur := s.leases[l.Name]
	cur.ExpiresAt = now.Add(ttl).UTC()
	s.leases[l.Name] = cur
	return cur, nil
}

// ReleaseLease implements [store.Leases].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	valid := firstErr(store.ValidateName("lease", l.Name), store.ValidateName("holder", l.Holder))
	if err := s.lock(ctx, "release lease", valid); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.held(l, s.now()) {
		return fmt.Errorf("memstore: release lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	delete(s.leases, l.Name)
	return nil
}

// Close implements io.Closer: it drops the contents, and later calls to any
// method return store.ErrClosed. Closing twice is not an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.kv, s.logs, s.leases = nil, nil, nil
	return nil
}
