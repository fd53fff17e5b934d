package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them; callers test with errors.Is.
var (
	// ErrNotFound: the record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a write's condition did not hold.
	ErrConflict = errors.New("store: condition failed")
	// ErrLeaseHeld: another holder holds an unexpired lease.
	ErrLeaseHeld = errors.New("store: lease held by another holder")
	// ErrLeaseLost: the lease expired or was taken over.
	ErrLeaseLost = errors.New("store: lease lost")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid: an argument is malformed (empty name, oversized key, …).
	ErrInvalid = errors.New("store: invalid argument")
)

// Limits every implementation enforces.
const (
	MaxNameLen  = 128     // namespace, log and lease names
	MaxKeyLen   = 1024    // record keys
	MaxValueLen = 1 << 24 // record values and log entries (16 MiB)
	MaxBatch    = 10000   // entries in one Append
	MaxLimit    = 10000   // records or entries returned by one List or Read
)

// Record is one versioned value.
type Record struct {
	Namespace string
	Key       string
	Value     []byte
	// Version starts at 1 and grows by one on every write of the key; it
	// keeps growing if the key is deleted and written again.
	Version int64
	// ExpiresAt is zero for a record that never expires.
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// Condition constrains a write.
type Condition struct {
	kind    int
	version int64
}

// Conditions for Put and Delete.
var (
	// Always applies the write whatever the record's state.
	Always = Condition{kind: 0}
	// IfAbsent applies the write only if the key has no live record.
	IfAbsent = Condition{kind: 1}
)

// IfVersion applies the write only if the live record is at version v.
func IfVersion(v int64) Condition { return Condition{kind: 2, version: v} }

// Check reports whether the condition holds for a record that is live (at
// version cur) or absent (exists false); it returns ErrConflict otherwise.
func (c Condition) Check(exists bool, cur int64) error {
	switch c.kind {
	case 1:
		if exists {
			return fmt.Errorf("%w: key exists", ErrConflict)
		}
	case 2:
		if !exists {
			return fmt.Errorf("%w: key does not exist, want version %d", ErrConflict, c.version)
		}
		if cur != c.version {
			return fmt.Errorf("%w: key is at version %d, want %d", ErrConflict, cur, c.version)
		}
	}
	return nil
}

// PutOptions qualify a Put.
type PutOptions struct {
	Condition Condition
	// TTL, if positive, makes the record expire TTL after the write.
	TTL time.Duration
}

// KV holds versioned records in namespaces.
type KV interface {
	// Get returns the live record. It MUST return ErrNotFound when the key
	// has no record or its record has expired.
	Get(ctx context.Context, namespace, key string) (Record, error)
	// Put writes value if opts.Condition holds, atomically, and returns the
	// new record. It MUST return ErrConflict when the condition fails: of
	// two concurrent IfAbsent puts of one key, exactly one succeeds.
	Put(ctx context.Context, namespace, key string, value []byte, opts PutOptions) (Record, error)
	// Delete removes the live record if cond holds. It MUST return
	// ErrNotFound when there is no live record and ErrConflict when cond
	// fails.
	Delete(ctx context.Context, namespace, key string, cond Condition) error
	// List returns up to limit live records of namespace whose key starts
	// with prefix and sorts after the key after ("" = from the start), in
	// byte order of keys. Pass the last key returned as after to page on.
	List(ctx context.Context, namespace, prefix, after string, limit int) ([]Record, error)
	// Purge deletes expired records and returns how many it deleted.
	Purge(ctx context.Context) (int, error)
}

// Entry is one element of a log.
type Entry struct {
	Index int64
	Data  []byte
}

// Log holds named append-only sequences. Entries are never changed or
// removed through this interface.
type Log interface {
	// Append adds entries to the end of log atomically (all or none) and
	// returns the index of the first; indexes start at 0 and have no gaps.
	Append(ctx context.Context, log string, entries ...[]byte) (int64, error)
	// Read returns up to limit entries of log from index from on. Reading
	// past the end returns no entries and no error.
	Read(ctx context.Context, log string, from int64, limit int) ([]Entry, error)
	// Len returns the number of entries in log (0 for a log never written).
	Len(ctx context.Context, log string) (int64, error)
}

// Lease is a named, time-limited claim held by one holder.
type Lease struct {
	Name      string
	Holder    string
	ExpiresAt time.Time
	// Token changes on every acquisition, so a holder that lost its lease
	// and acquired it again holds a new Token.
	Token int64
}

// Leases coordinate work that only one holder may do at a time.
type Leases interface {
	// AcquireLease takes name for holder for ttl. It MUST return
	// ErrLeaseHeld while another holder's lease is unexpired. Acquiring a
	// lease the same holder still holds renews it.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends l by ttl from now. It MUST return ErrLeaseLost if
	// l expired or another acquisition happened since.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives l up. Releasing a lost lease returns ErrLeaseLost.
	ReleaseLease(ctx context.Context, l Lease) error
}

// Store is everything a storage backend provides. After Close every method
// returns ErrClosed.
type Store interface {
	KV
	Log
	Leases
	io.Closer
}

// ValidateName checks a namespace, log or lease name.
func ValidateName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, what, MaxNameLen)
	}
	return nil
}

// ValidateKey checks a record key.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, MaxKeyLen)
	}
	return nil
}

// ValidateValue checks a value or log entry.
func ValidateValue(v []byte) error {
	if len(v) > MaxValueLen {
		return fmt.Errorf("%w: value of %d bytes exceeds %d", ErrInvalid, len(v), MaxValueLen)
	}
	return nil
}

// ValidateLimit checks a List or Read limit.
func ValidateLimit(limit int) error {
	if limit <= 0 || limit > MaxLimit {
		return fmt.Errorf("%w: limit %d not in 1..%d", ErrInvalid, limit, MaxLimit)
	}
	return nil
}

// ValidateTTL checks a lease TTL or record TTL (zero allowed for records).
func ValidateTTL(ttl time.Duration, required bool) error {
	if ttl < 0 || (required && ttl == 0) {
		return fmt.Errorf("%w: ttl %v", ErrInvalid, ttl)
	}
	return nil
}

// ValidateRecord checks a namespace and a record key.
func ValidateRecord(namespace, key string) error {
	if err := ValidateName("namespace", namespace); err != nil {
		return err
	}
	return ValidateKey(key)
}

// ValidateLease checks a lease name, holder and TTL.
func ValidateLease(name, holder string, ttl time.Duration) error {
	if err := ValidateName("lease", name); err != nil {
		return err
	}
	if err := ValidateName("holder", holder); err != nil {
		return err
	}
	return ValidateTTL(ttl, true)
}
