package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the database/sql driver "sqlite"

	"github.com/agenthost/agenthost/runtime/store"
)

// Config configures [Open].
type Config struct {
	// Path of the database file. Required. The file is created with mode
	// 0600 if it does not exist. Its directory must exist and must not be
	// writable by group or others (create it with mode 0700).
	Path string
	// Now is the clock for TTLs and leases; nil means time.Now.
	Now func() time.Time
	// Logger; nil means silent.
	Logger *slog.Logger
}

// Errors of [Open]. They are returned wrapped with the path, as in
// "sqlitestore: open /data/agenthost.db: file is not a database".
var (
	// ErrNotDatabase: the file exists and is not an SQLite database, or is
	// damaged. The file is left untouched.
	ErrNotDatabase = errors.New("file is not a database")
	// ErrForeignDatabase: the file is an SQLite database that this package
	// did not create. It is left untouched.
	ErrForeignDatabase = errors.New("database was not created by agenthost")
	// ErrNewerSchema: the database was written by a newer build whose schema
	// this build does not know.
	ErrNewerSchema = errors.New("database schema is newer than this build supports")
	// ErrUnsafeDir: the database's directory is writable by group or others.
	ErrUnsafeDir = errors.New("directory is writable by group or others")
)

// applicationID marks the files this package creates (PRAGMA application_id,
// bytes 68-71 of the header): "AGHT".
const applicationID = 0x41474854

// sqliteHeader is the first 16 bytes of every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// Store is a [store.Store] backed by one SQLite file. It is safe for
// concurrent use; several processes may open the same file, serialised by
// SQLite's own locking.
type Store struct {
	path string
	w    *sql.DB // a single connection: every write
	r    *sql.DB // a pool of query_only connections: reads
	now  func() time.Time
	log  *slog.Logger

	// mu is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and no operation starts on a
	// closed pool.
	mu     sync.RWMutex
	closed bool

	// get is Get's statement, prepared once (on each read connection as
	// it is first used); logNext and logInsert are Append's, on the
	// writer connection.
	get, logNext, logInsert *sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens the database at cfg.Path, creating it if missing, and brings
// its schema up to date. It refuses, without writing to it, a file that is
// not an SQLite database, a database another program created and one with a
// newer schema.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("sqlitestore: open: %w: empty path", store.ErrInvalid)
	}
	path := cfg.Path
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	s := &Store{path: path, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.w, err = openPool(path, false); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if s.r, err = openPool(path, true); err != nil {
		_ = s.w.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if err := s.migrate(ctx); err != nil {
		_ = s.r.Close()
		_ = s.w.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		_ = s.r.Close()
		_ = s.w.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	return s, nil
}

// checkDir refuses a directory that others could use to swap or plant
// files beside the database (its -wal and -shm companions included).
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s (mode %v): %w", dir, fi.Mode().Perm(), ErrUnsafeDir)
	}
	return nil
}

// checkFile creates path with mode 0600 if it is missing, and refuses a file
// that is not an SQLite database without writing to it.
func checkFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		nf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		return nf.Close()
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if fi.Size() == 0 {
		return nil // created but never written: SQLite initialises it
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteHeader) {
		return ErrNotDatabase
	}
	return nil
}

func openPool(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "1")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		// journal_mode is set by migrate once the file is known to be ours:
		// switching to WAL writes to the file header.
		q.Set("_synchronous", "FULL")
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	return db, nil
}

// migrations bring the schema forward; schema version N means the first N
// have run. A shipped migration is never edited: changes are appended.
// The version lives in PRAGMA user_version, which is in the file header (so
// it can be read whatever the schema) and changes in the same transaction
// as the migration; schema_migrations keeps the history.
var migrations = []string{
	`CREATE TABLE schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
	 CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
	 INSERT INTO meta (key, value) VALUES ('revision', 0);
	 CREATE TABLE kv (
		ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
		version INTEGER NOT NULL, expires_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
		PRIMARY KEY (ns, key)) WITHOUT ROWID;
	 CREATE INDEX kv_expiry ON kv (expires_at) WHERE expires_at > 0;
	 CREATE TABLE log_entries (
		log TEXT NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (log, idx)) WITHOUT ROWID;
	 CREATE TABLE leases (
		name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL,
		token INTEGER NOT NULL) WITHOUT ROWID;`,
}

// SchemaVersion is the schema version this build writes.
const SchemaVersion = 1

func (s *Store) migrate(ctx context.Context) error {
	var have, appID, tables int
	err := s.w.QueryRowContext(ctx, `SELECT
		(SELECT user_version FROM pragma_user_version),
		(SELECT application_id FROM pragma_application_id),
		(SELECT count(*) FROM sqlite_schema)`).Scan(&have, &appID, &tables)
	if err != nil {
		if err := mapErr(err); errors.Is(err, ErrNotDatabase) {
			return err
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case appID != applicationID && (appID != 0 || tables > 0):
		return fmt.Errorf("%w (application_id %#x, %d schema objects)", ErrForeignDatabase, appID, tables)
	case have > len(migrations):
		return fmt.Errorf("%w: the database is at schema %d, this build knows up to %d", ErrNewerSchema, have, len(migrations))
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", mapErr(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL mode: journal mode is %q", mode)
	}
	for v := have; v < len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				v+1, s.now().UnixNano()); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d; PRAGMA application_id = %d`, v+1, applicationID))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, mapErr(err))
		}
		s.log.InfoContext(ctx, "sqlitestore: migrated database schema", slog.String("path", s.path), slog.Int("version", v+1))
	}
	return nil
}

// mapErr turns SQLite's reports of a damaged file into ErrNotDatabase.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "file is not a database") || strings.Contains(msg, "database disk image is malformed") {
		return fmt.Errorf("%w (sqlite: %v)", ErrNotDatabase, err)
	}
	return err
}

// Close closes the database after the operations in flight finish. Later
// calls to any method return store.ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := errors.Join(s.get.Close(), s.logNext.Close(), s.logInsert.Close(), s.r.Close(), s.w.Close()); err != nil {
		return fmt.Errorf("sqlitestore: close %s: %w", s.path, err)
	}
	return nil
}

// enter starts operation op once valid (its argument check) passed: it
// takes the shared lock, which the caller releases with s.mu.RUnlock.
func (s *Store) enter(ctx context.Context, op string, valid error) error {
	if valid != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, valid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("sqlitestore: %s: %w", op, store.ErrClosed)
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

// tx runs fn in a write transaction (BEGIN IMMEDIATE on the single write
// connection, so writers queue rather than fail with SQLITE_BUSY).
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// --- KV ---

// Get implements [store.KV].
func (s *Store) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if err := s.enter(ctx, "get", store.ValidateRecord(ns, key)); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	rec := store.Record{Namespace: ns, Key: key}
	var exp, upd int64
	err := s.get.QueryRowContext(ctx, ns, key, s.now().UnixNano()).Scan(&rec.Value, &rec.Version, &exp, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("sqlitestore: get %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, wrap("get", err)
	}
	rec.Value = nonNil(rec.Value)
	rec.ExpiresAt, rec.UpdatedAt = fromNanos(exp), fromNanos(upd)
	return rec, nil
}

// live returns the version of the live record of a key inside tx (false if
// it is absent or expired).
func live(ctx context.Context, tx *sql.Tx, ns, key string, now int64) (int64, bool, error) {
	var v int64
	err := tx.QueryRowContext(ctx,
		`SELECT version FROM kv WHERE ns = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)`,
		ns, key, now).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, err
}

// nextRevision draws from the store-wide counter behind record versions
// and lease tokens, so neither is ever reused.
func nextRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value`).Scan(&rev)
	return rev, err
}

// Put implements [store.KV]. The condition is checked and the record
// written in one IMMEDIATE transaction, so concurrent IfAbsent puts of a key
// (from this process or another) have exactly one winner.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	valid := firstErr(store.ValidateRecord(ns, key), store.ValidateValue(value), store.ValidateTTL(opts.TTL, false))
	if err := s.enter(ctx, "put", valid); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	rec := store.Record{Namespace: ns, Key: key, Value: bytes.Clone(nonNil(value)), UpdatedAt: now.UTC()}
	if opts.TTL > 0 {
		rec.ExpiresAt = now.Add(opts.TTL).UTC()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, exists, err := live(ctx, tx, ns, key, now.UnixNano())
		if err != nil {
			return err
		}
		if err := opts.Condition.Check(exists, cur); err != nil {
			return fmt.Errorf("%s/%s: %w", ns, key, err)
		}
		if rec.Version, err = nextRevision(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO kv (ns, key, value, version, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version,
			 expires_at = excluded.expires_at, updated_at = excluded.updated_at`,
			ns, key, rec.Value, rec.Version, nanos(rec.ExpiresAt), nanos(rec.UpdatedAt))
		return err
	})
	if err != nil {
		return store.Record{}, wrap("put", err)
	}
	return rec, nil
}

// Delete implements [store.KV].
func (s *Store) Delete(ctx context.Context, ns, key string, cond store.Condition) error {
	if err := s.enter(ctx, "delete", store.ValidateRecord(ns, key)); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, exists, err := live(ctx, tx, ns, key, s.now().UnixNano())
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%s/%s: %w", ns, key, store.ErrNotFound)
		}
		if err := cond.Check(true, cur); err != nil {
			return fmt.Errorf("%s/%s: %w", ns, key, err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM kv WHERE ns = ? AND key = ?`, ns, key)
		return err
	})
	return wrap("delete", err)
}

// prefixEnd returns the least string greater than every string with the
// given non-empty prefix. Keys are valid UTF-8, whose last byte is never
// 0xff, so incrementing it cannot overflow.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// List implements [store.KV]. Keys are TEXT with the BINARY collation, which
// compares bytes (memcmp), so the primary key index gives byte order and the
// prefix becomes an index range.
func (s *Store) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if err := s.enter(ctx, "list", store.ValidateList(ns, prefix, after, limit)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	q := `SELECT key, value, version, expires_at, updated_at FROM kv
		WHERE ns = ? AND key > ? AND key >= ? AND (expires_at = 0 OR expires_at > ?)`
	args := []any{ns, after, prefix, s.now().UnixNano()}
	if prefix != "" {
		q += ` AND key < ?`
		args = append(args, prefixEnd(prefix))
	}
	q += ` ORDER BY key LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("list", err)
	}
	defer rows.Close()
	out := []store.Record{}
	for rows.Next() {
		r := store.Record{Namespace: ns}
		var exp, upd int64
		if err := rows.Scan(&r.Key, &r.Value, &r.Version, &exp, &upd); err != nil {
			return nil, wrap("list", err)
		}
		r.Value = nonNil(r.Value)
		r.ExpiresAt, r.UpdatedAt = fromNanos(exp), fromNanos(upd)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list", err)
	}
	return out, nil
}

// Count implements [store.KV]. Like List, the prefix is a range of the
// primary key index, so counting reads only the matching keys.
func (s *Store) Count(ctx context.Context, ns, prefix string) (int, error) {
	if err := s.enter(ctx, "count", store.ValidateCount(ns, prefix)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	q := `SELECT count(*) FROM kv WHERE ns = ? AND key >= ? AND (expires_at = 0 OR expires_at > ?)`
	args := []any{ns, prefix, s.now().UnixNano()}
	if prefix != "" {
		q += ` AND key < ?`
		args = append(args, prefixEnd(prefix))
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, wrap("count", err)
	}
	return n, nil
}

// Purge implements [store.KV].
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.enter(ctx, "purge", nil); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	res, err := s.w.ExecContext(ctx, `DELETE FROM kv WHERE expires_at > 0 AND expires_at <= ?`, s.now().UnixNano())
	if err != nil {
		return 0, wrap("purge", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("purge", err)
	}
	if n > 0 {
		s.log.DebugContext(ctx, "sqlitestore: purged expired records", slog.Int64("count", n))
	}
	return int(n), nil
}

// --- Log ---

// Append implements [store.Log]. The batch is one transaction: it is
// written whole or not at all.
func (s *Store) Append(ctx context.Context, log string, entries ...[]byte) (int64, error) {
	if err := s.enter(ctx, "append", store.ValidateAppend(log, entries)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	firsts, err := s.appendLogs(ctx, store.LogAppend{Log: log, Entries: entries})
	if err != nil {
		return 0, err
	}
	return firsts[0], nil
}

// AppendLogs implements [store.MultiLog]: every part in one transaction.
func (s *Store) AppendLogs(ctx context.Context, parts ...store.LogAppend) ([]int64, error) {
	if err := s.enter(ctx, "append", store.ValidateAppendLogs(parts)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return s.appendLogs(ctx, parts...)
}

// appendLogs appends the parts in one transaction, checking each part's
// condition before its entries are inserted.
func (s *Store) appendLogs(ctx context.Context, parts ...store.LogAppend) ([]int64, error) {
	firsts := make([]int64, len(parts))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		next, insert := tx.StmtContext(ctx, s.logNext), tx.StmtContext(ctx, s.logInsert)
		for i, p := range parts {
			if err := next.QueryRowContext(ctx, p.Log).Scan(&firsts[i]); err != nil {
				return err
			}
			if err := p.Check(firsts[i]); err != nil {
				return err
			}
			for j, e := range p.Entries {
				if _, err := insert.ExecContext(ctx, p.Log, firsts[i]+int64(j), nonNil(e)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("append", err)
	}
	return firsts, nil
}

// Read implements [store.Log].
func (s *Store) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := s.enter(ctx, "read", store.ValidateRead(log, from, limit)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	rows, err := s.r.QueryContext(ctx,
		`SELECT idx, data FROM log_entries WHERE log = ? AND idx >= ? ORDER BY idx LIMIT ?`, log, from, limit)
	if err != nil {
		return nil, wrap("read", err)
	}
	defer rows.Close()
	out := []store.Entry{}
	for rows.Next() {
		var e store.Entry
		if err := rows.Scan(&e.Index, &e.Data); err != nil {
			return nil, wrap("read", err)
		}
		e.Data = nonNil(e.Data)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("read", err)
	}
	return out, nil
}

// Len implements [store.Log].
func (s *Store) Len(ctx context.Context, log string) (int64, error) {
	if err := s.enter(ctx, "len", store.ValidateName("log", log)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries WHERE log = ?`, log).Scan(&n)
	if err != nil {
		return 0, wrap("len", err)
	}
	return n, nil
}

// --- Leases ---

// AcquireLease implements [store.Leases].
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.enter(ctx, "acquire lease", store.ValidateLease(name, holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	l := store.Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var curHolder string
		var exp, token int64
		err := tx.QueryRowContext(ctx, `SELECT holder, expires_at, token FROM leases WHERE name = ?`, name).
			Scan(&curHolder, &exp, &token)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case exp > now.UnixNano() && curHolder != holder:
			return fmt.Errorf("%s: held by %s until %s: %w",
				name, curHolder, fromNanos(exp).Format(time.RFC3339), store.ErrLeaseHeld)
		case exp > now.UnixNano():
			l.Token = token // the holder renews its own lease
		}
		if l.Token == 0 {
			if l.Token, err = nextRevision(ctx, tx); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO leases (name, holder, expires_at, token) VALUES (?, ?, ?, ?)
			 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
			 expires_at = excluded.expires_at, token = excluded.token`,
			name, holder, nanos(l.ExpiresAt), l.Token)
		return err
	})
	if err != nil {
		return store.Lease{}, wrap("acquire lease", err)
	}
	return l, nil
}

// RenewLease implements [store.Leases].
func (s *Store) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.enter(ctx, "renew lease", store.ValidateLease(l.Name, l.Holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	res, err := s.w.ExecContext(ctx,
		`UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?`,
		now.Add(ttl).UnixNano(), l.Name, l.Holder, l.Token, now.UnixNano())
	if err != nil {
		return store.Lease{}, wrap("renew lease", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return store.Lease{}, fmt.Errorf("sqlitestore: renew lease %s: %w", l.Name, firstErr(err, store.ErrLeaseLost))
	}
	l.ExpiresAt = now.Add(ttl).UTC()
	return l, nil
}

// ReleaseLease implements [store.Leases].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	valid := firstErr(store.ValidateName("lease", l.Name), store.ValidateName("holder", l.Holder))
	if err := s.enter(ctx, "release lease", valid); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM leases WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?`,
		l.Name, l.Holder, l.Token, s.now().UnixNano())
	if err != nil {
		return wrap("release lease", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("sqlitestore: release lease %s: %w", l.Name, firstErr(err, store.ErrLeaseLost))
	}
	return nil
}

// prepare prepares the statements of the hottest operations once.
func (s *Store) prepare(ctx context.Context) error {
	var err error
	if s.get, err = s.r.PrepareContext(ctx, `SELECT value, version, expires_at, updated_at FROM kv
		 WHERE ns = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)`); err != nil {
		return err
	}
	if s.logNext, err = s.w.PrepareContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries WHERE log = ?`); err != nil {
		return err
	}
	s.logInsert, err = s.w.PrepareContext(ctx, `INSERT INTO log_entries (log, idx, data) VALUES (?, ?, ?)`)
	return err
}
