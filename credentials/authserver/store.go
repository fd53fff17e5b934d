package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Store is the durable state the authorization server keeps: clients,
// pending authorization requests, codes, refresh-token families, the jti
// replay cache, revocations and its own keys. The host adapts its storage
// backend (SQLite, PostgreSQL) to it; [NewMemoryStore] serves tests.
//
// Implementations return errors wrapping [ErrNotFound] and [ErrConflict]
// as documented, and are safe for concurrent use.
type Store interface {
	// Get returns the live value of key and its version, or ErrNotFound.
	Get(ctx context.Context, namespace, key string) (value []byte, version int64, err error)
	// Put writes value if w's condition holds and returns the new version;
	// ErrConflict when it does not. Of two concurrent IfAbsent puts of one
	// key exactly one succeeds.
	Put(ctx context.Context, namespace, key string, value []byte, w Write) (version int64, err error)
	// Delete removes key if it is live (and at version, when version > 0);
	// ErrNotFound when it is not live, ErrConflict on a version mismatch.
	Delete(ctx context.Context, namespace, key string, version int64) error
}

// Counter is a [Store] that can count the live keys of a namespace. The
// server needs it to cap dynamic client registrations
// ([Config.MaxDynamicClients]); [MemoryStore] and the host's store adapter
// implement it.
type Counter interface {
	// Count returns how many live (unexpired) keys namespace has.
	Count(ctx context.Context, namespace string) (int, error)
}

// Write qualifies a Put.
type Write struct {
	// IfAbsent writes only when the key has no live value.
	IfAbsent bool
	// IfVersion, when positive, writes only when the live value is at
	// that version.
	IfVersion int64
	// TTL, when positive, makes the value expire that long after the write.
	TTL time.Duration
}

// Store errors.
var (
	ErrNotFound = errors.New("authserver: not found")
	ErrConflict = errors.New("authserver: write condition failed")
)

// MemoryStore is an in-memory Store for tests and single-process use.
type MemoryStore struct {
	mu   sync.Mutex
	now  func() time.Time
	seq  int64
	data map[string]memEntry
}

type memEntry struct {
	value   []byte
	version int64
	expires time.Time
}

// NewMemoryStore returns an empty MemoryStore; now nil means time.Now.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, data: make(map[string]memEntry)}
}

func memKey(ns, key string) string { return ns + "\x00" + key }

func (m *MemoryStore) live(k string) (memEntry, bool) {
	e, ok := m.data[k]
	if !ok {
		return memEntry{}, false
	}
	if !e.expires.IsZero() && !m.now().Before(e.expires) {
		delete(m.data, k)
		return memEntry{}, false
	}
	return e, true
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, ns, key string) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(memKey(ns, key))
	if !ok {
		return nil, 0, ErrNotFound
	}
	return append([]byte(nil), e.value...), e.version, nil
}

// Put implements Store.
func (m *MemoryStore) Put(ctx context.Context, ns, key string, value []byte, w Write) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(ns, key)
	e, ok := m.live(k)
	if w.IfAbsent && ok {
		return 0, ErrConflict
	}
	if w.IfVersion > 0 && (!ok || e.version != w.IfVersion) {
		return 0, ErrConflict
	}
	m.seq++
	ne := memEntry{value: append([]byte(nil), value...), version: m.seq}
	if w.TTL > 0 {
		ne.expires = m.now().Add(w.TTL)
	}
	m.data[k] = ne
	return ne.version, nil
}

// Count implements Counter.
func (m *MemoryStore) Count(ctx context.Context, ns string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.data {
		if strings.HasPrefix(k, ns+"\x00") {
			if _, ok := m.live(k); ok {
				n++
			}
		}
	}
	return n, nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(ctx context.Context, ns, key string, version int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(ns, key)
	e, ok := m.live(k)
	if !ok {
		return ErrNotFound
	}
	if version > 0 && e.version != version {
		return ErrConflict
	}
	delete(m.data, k)
	return nil
}

// Namespaces the server writes.
const (
	nsKeys      = "as.keys"
	nsClients   = "as.clients"
	nsRequests  = "as.authreq"
	nsCodes     = "as.codes"
	nsRefresh   = "as.refresh"
	nsFamilies  = "as.families"
	nsReplay    = "as.jti"
	nsRevoked   = "as.revoked"
	nsDPoPNonce = "as.dpop"
	nsLineage   = "as.lineage"
)

// getRecord reads the JSON record at key into a new T. A missing record
// is ErrNotFound (wrapped); a record that does not decode is reported as
// corrupt, naming what it is.
func getRecord[T any](ctx context.Context, st Store, ns, key, what string) (*T, int64, error) {
	data, version, err := st.Get(ctx, ns, key)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("authserver: load %s: %w", what, err)
	}
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, 0, fmt.Errorf("authserver: %s record is corrupt: %w", what, err)
	}
	return v, version, nil
}
