package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agenthost/agenthost/credentials"
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
	// ErrUnavailable: the backend cannot be reached for now (a database
	// server down or unreachable); a later call may succeed. It wraps
	// credentials.ErrUnavailable, which servers answer with 503.
	ErrUnavailable error = unavailable{}
)

// unavailable is ErrUnavailable.
type unavailable struct{}

func (unavailable) Error() string { return "store: unavailable" }
func (unavailable) Unwrap() error { return credentials.ErrUnavailable }

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
	// Version is positive and grows on every write of the key, also when
	// the key is deleted and written again, so a version seen once never
	// names a different value. Versions of one key need not be consecutive.
	Version int64
	// ExpiresAt is zero for a record that never expires.
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// Condition constrains a write. The zero value is [Always].
type Condition struct {
	kind    condKind
	version int64
}

type condKind uint8

const (
	condAlways condKind = iota
	condAbsent
	condVersion
)

// Conditions for Put and Delete.
var (
	// Always applies the write whatever the record's state.
	Always = Condition{kind: condAlways}
	// IfAbsent applies the write only if the key has no live record. With a
	// TTL it is the atomic insert a replay cache is built on.
	IfAbsent = Condition{kind: condAbsent}
)

// IfVersion applies the write only if the live record is at version v.
func IfVersion(v int64) Condition { return Condition{kind: condVersion, version: v} }

// String describes the condition for logs and errors.
func (c Condition) String() string {
	switch c.kind {
	case condAbsent:
		return "if absent"
	case condVersion:
		return fmt.Sprintf("if version %d", c.version)
	default:
		return "always"
	}
}

// Check reports whether the condition holds for a record that is live (at
// version cur) or absent (exists false); it returns ErrConflict otherwise.
// Implementations call it inside the transaction that performs the write.
func (c Condition) Check(exists bool, cur int64) error {
	switch c.kind {
	case condAbsent:
		if exists {
			return fmt.Errorf("%w: key exists", ErrConflict)
		}
	case condVersion:
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
	// byte order of keys. Pass the last key returned as after to page on;
	// fewer than limit records means the listing is complete. An empty
	// namespace lists as no records, not ErrNotFound.
	List(ctx context.Context, namespace, prefix, after string, limit int) ([]Record, error)
	// Count returns how many live records of namespace have a key that
	// starts with prefix ("" = every key). Expired records are not
	// counted; an empty namespace counts 0, not ErrNotFound.
	Count(ctx context.Context, namespace, prefix string) (int, error)
	// Purge deletes expired records and returns how many it deleted.
	// Expired records are already invisible to reads; Purge reclaims their
	// space and is meant to be run periodically.
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

// LogAppend is one log's entries in a [MultiLog.AppendLogs].
type LogAppend struct {
	Log     string
	Entries [][]byte
	// IfAt makes the part conditional: its first entry must get index
	// At, or AppendLogs appends nothing and fails with ErrConflict. A
	// writer that signs what it appends as of an index (the audit log's
	// seal) uses it, so that another writer's entries never shift its own.
	IfAt bool
	At   int64
}

// Check returns ErrConflict when p is conditional and its first entry
// would get index first rather than p.At. Implementations call it inside
// the write, before they append anything.
func (p LogAppend) Check(first int64) error {
	if p.IfAt && first != p.At {
		return fmt.Errorf("%w: log %s would take the entries at %d, want %d", ErrConflict, p.Log, first, p.At)
	}
	return nil
}

// MaxLogAppends bounds the parts of one AppendLogs.
const MaxLogAppends = 16

// MultiLog is implemented by stores that can append to several logs in one
// atomic write (for a durable store: one commit). A caller that needs two
// logs to move together (the audit log's records and the seal that signs
// them) uses it when the store has it.
type MultiLog interface {
	// AppendLogs appends each part's entries to the end of its log, all
	// parts or none, and returns the index of each part's first entry. Two
	// parts may name the same log: the second's entries follow the first's.
	// It MUST return ErrConflict, appending nothing, when a part's
	// condition (LogAppend.IfAt) fails.
	AppendLogs(ctx context.Context, parts ...LogAppend) ([]int64, error)
}

// ValidateAppendLogs checks the arguments of an AppendLogs.
func ValidateAppendLogs(parts []LogAppend) error {
	if len(parts) == 0 || len(parts) > MaxLogAppends {
		return fmt.Errorf("%w: append to %d logs, want 1 to %d", ErrInvalid, len(parts), MaxLogAppends)
	}
	for _, p := range parts {
		if err := ValidateAppend(p.Log, p.Entries); err != nil {
			return err
		}
		if p.IfAt && p.At < 0 {
			return fmt.Errorf("%w: append at index %d", ErrInvalid, p.At)
		}
	}
	return nil
}

// Lease is a named, time-limited claim held by one holder.
type Lease struct {
	Name      string
	Holder    string
	ExpiresAt time.Time
	// Token grows with every new acquisition of any lease in the store, so
	// a holder that lost its lease and acquired it again holds a new,
	// larger Token; it can serve as a fencing token. Renewal keeps it.
	Token int64
}

// Leases coordinate work that only one holder may do at a time.
type Leases interface {
	// AcquireLease takes name for holder for ttl. It MUST return
	// ErrLeaseHeld while another holder's lease is unexpired. Acquiring a
	// lease the same holder still holds renews it and keeps its Token.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends l to ttl from now. It MUST return ErrLeaseLost if
	// l expired, was released, or was acquired anew since (a different
	// Holder or Token).
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives l up so another holder may take it at once. It
	// MUST return ErrLeaseLost if l is no longer held, as RenewLease does.
	ReleaseLease(ctx context.Context, l Lease) error
}

// Store is everything a storage backend provides.
//
// Rules common to every method: arguments that break the limits above or
// the Validate functions return an error wrapping ErrInvalid and change
// nothing; after Close every method returns ErrClosed (Close itself is
// idempotent); a done ctx returns ctx.Err(). Every method is safe for
// concurrent use.
type Store interface {
	KV
	Log
	Leases
	io.Closer
}

// MaxNotification bounds a Notifier payload (PostgreSQL's NOTIFY takes
// less than 8000 bytes).
const MaxNotification = 7000

// Notifier is a store shared by several processes that can tell all of
// them about an event: each process that listens on a channel gets every
// payload notified on it after it started listening, its own included,
// in order per sender. Delivery is at most once: a listener that loses
// its connection misses what was notified meanwhile, and says so by
// calling fn with a zero-length payload when it is back (the caller then
// drops whatever it caches). An embedded store shared by no other process
// does not implement it.
type Notifier interface {
	// Notify sends payload (at most MaxNotification bytes) on channel.
	Notify(ctx context.Context, channel, payload string) error
	// Listen calls fn with each payload sent on channel until ctx is
	// done; it reconnects by itself and returns only ctx's error or a
	// closed store's.
	Listen(ctx context.Context, channel string, fn func(payload string)) error
}

// ValidateName checks a namespace, log, lease or holder name: 1 to
// [MaxNameLen] bytes of UTF-8 without NUL.
func ValidateName(what, name string) error {
	return validateText(what, name, MaxNameLen)
}

// ValidateKey checks a record key: 1 to [MaxKeyLen] bytes of UTF-8 without
// NUL. Keys are text so that every backend (SQLite, PostgreSQL) stores and
// orders them the same way.
func ValidateKey(key string) error {
	return validateText("key", key, MaxKeyLen)
}

func validateText(what, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrInvalid, what, len(s), maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalid, what)
	}
	return nil
}

// ValidatePrefix checks a List prefix or cursor, which may be empty.
func ValidatePrefix(what, s string) error {
	if s == "" {
		return nil
	}
	return validateText(what, s, MaxKeyLen)
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

// ValidateTTL checks a record TTL (zero means no expiry) or, with required,
// a lease TTL (must be positive).
func ValidateTTL(ttl time.Duration, required bool) error {
	if ttl < 0 || (required && ttl == 0) {
		return fmt.Errorf("%w: ttl %v must be positive", ErrInvalid, ttl)
	}
	return nil
}

// ValidateList checks the arguments of [KV.List].
func ValidateList(namespace, prefix, after string, limit int) error {
	if err := ValidateName("namespace", namespace); err != nil {
		return err
	}
	if err := ValidatePrefix("prefix", prefix); err != nil {
		return err
	}
	if err := ValidatePrefix("cursor", after); err != nil {
		return err
	}
	return ValidateLimit(limit)
}

// ValidateCount checks the arguments of [KV.Count].
func ValidateCount(namespace, prefix string) error {
	if err := ValidateName("namespace", namespace); err != nil {
		return err
	}
	return ValidatePrefix("prefix", prefix)
}

// ValidateRead checks the arguments of [Log.Read].
func ValidateRead(log string, from int64, limit int) error {
	if err := ValidateName("log", log); err != nil {
		return err
	}
	if from < 0 {
		return fmt.Errorf("%w: negative log index %d", ErrInvalid, from)
	}
	return ValidateLimit(limit)
}

// ValidateAppend checks the arguments of [Log.Append].
func ValidateAppend(log string, entries [][]byte) error {
	if err := ValidateName("log", log); err != nil {
		return err
	}
	if len(entries) == 0 || len(entries) > MaxBatch {
		return fmt.Errorf("%w: append of %d entries, want 1 to %d", ErrInvalid, len(entries), MaxBatch)
	}
	for i, e := range entries {
		if len(e) > MaxValueLen {
			return fmt.Errorf("%w: entry %d of %d bytes exceeds %d", ErrInvalid, i, len(e), MaxValueLen)
		}
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
