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
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"

	"github.com/agenthost/agenthost/runtime/store"
)

// Config configures [Open].
type Config struct {
	// Path of the database file. Required. It is created with mode 0600
	// if it does not exist; its directory must exist.
	Path string
	// Now is the clock for TTLs and leases; nil means time.Now.
	Now func() time.Time
	// Logger; nil means silent.
	Logger *slog.Logger
}

// Store is a [store.Store] backed by one SQLite file.
type Store struct {
	w      *sql.DB // one connection: all writes
	r      *sql.DB // reads
	now    func() time.Time
	log    *slog.Logger
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// sqliteHeader is the first 16 bytes of every SQLite 3 database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// ErrNotDatabase reports a file that exists and is not an SQLite database.
var ErrNotDatabase = errors.New("sqlitestore: file is not a database")

// ErrNewerSchema reports a database written by a newer version.
var ErrNewerSchema = errors.New("sqlitestore: database schema is newer than this build")

// Open opens or creates the database at cfg.Path and brings its schema up to
// date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("sqlitestore: %w: empty path", store.ErrInvalid)
	}
	if err := checkFile(cfg.Path); err != nil {
		return nil, err
	}
	s := &Store{now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.w, err = openPool(cfg.Path, false); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	if s.r, err = openPool(cfg.Path, true); err != nil {
		s.w.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(4)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, err
	}
	return s, nil
}

// checkFile creates path 0600 if it is missing, and refuses a file that is
// not an SQLite database without touching it.
func checkFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		nf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("sqlitestore: create %s: %w", path, err)
		}
		return nf.Close()
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlitestore: open %s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil // created but never written: SQLite initialises it
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteHeader) {
		return fmt.Errorf("%w: %s (refusing to use or overwrite it)", ErrNotDatabase, path)
	}
	return nil
}

func openPool(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	return db, nil
}

// migrations are applied in order; schema version N means the first N have
// been applied. Never edit one that has shipped: append a new one.
var migrations = []string{
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
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

func (s *Store) migrate(ctx context.Context) error {
	var have int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return fmt.Errorf("sqlitestore: read schema version: %w", mapOpenErr(err))
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: database is at version %d, this build knows %d", ErrNewerSchema, have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlitestore: migrate to schema %d: %w", v+1, mapOpenErr(err))
		}
		s.log.InfoContext(ctx, "migrated database schema", slog.Int("version", v+1))
	}
	return nil
}

func mapOpenErr(err error) error {
	if err != nil && strings.Contains(err.Error(), "file is not a database") {
		return fmt.Errorf("%w: %v", ErrNotDatabase, err)
	}
	return err
}

// Close closes the database. Later calls return store.ErrClosed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	errR := s.r.Close()
	errW := s.w.Close()
	if err := errors.Join(errW, errR); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

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

// --- KV ---

// Get implements [store.KV].
func (s *Store) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if err := s.check(ctx); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateRecord(ns, key); err != nil {
		return store.Record{}, err
	}
	rec := store.Record{Namespace: ns, Key: key}
	var exp, upd int64
	err := s.r.QueryRowContext(ctx,
		`SELECT value, version, expires_at, updated_at FROM kv WHERE ns = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)`,
		ns, key, s.now().UnixNano()).Scan(&rec.Value, &rec.Version, &exp, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("sqlitestore: %s/%s: %w", ns, key, store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, fmt.Errorf("sqlitestore: get: %w", err)
	}
	rec.ExpiresAt, rec.UpdatedAt = fromNanos(exp), fromNanos(upd)
	return rec, nil
}

// live returns the live version of a key inside tx (0, false if absent or
// expired).
func live(ctx context.Context, tx *sql.Tx, ns, key string, now int64) (int64, bool, error) {
	var v int64
	err := tx.QueryRowContext(ctx,
		`SELECT version FROM kv WHERE ns = ? AND key = ? AND (expires_at = 0 OR expires_at > ?)`, ns, key, now).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return v, err == nil, err
}

func nextRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value`).Scan(&rev)
	return rev, err
}

// Put implements [store.KV]. Versions come from one store-wide revision
// counter, so a version is never reused, even after a delete.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	if err := s.check(ctx); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateRecord(ns, key); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateValue(value); err != nil {
		return store.Record{}, err
	}
	if err := store.ValidateTTL(opts.TTL, false); err != nil {
		return store.Record{}, err
	}
	now := s.now()
	// A copy, never nil: SQLite stores an empty BLOB, not NULL.
	v := make([]byte, len(value))
	copy(v, value)
	rec := store.Record{Namespace: ns, Key: key, Value: v, UpdatedAt: now.UTC()}
	if opts.TTL > 0 {
		rec.ExpiresAt = now.Add(opts.TTL).UTC()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, exists, err := live(ctx, tx, ns, key, now.UnixNano())
		if err != nil {
			return err
		}
		if err := opts.Condition.Check(exists, cur); err != nil {
			return err
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
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.ValidateRecord(ns, key); err != nil {
		return err
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, exists, err := live(ctx, tx, ns, key, s.now().UnixNano())
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("%s/%s: %w", ns, key, store.ErrNotFound)
		}
		if err := cond.Check(true, cur); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM kv WHERE ns = ? AND key = ?`, ns, key)
		return err
	})
	return wrap("delete", err)
}

// List implements [store.KV].
func (s *Store) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := store.ValidateName("namespace", ns); err != nil {
		return nil, err
	}
	if err := store.ValidateLimit(limit); err != nil {
		return nil, err
	}
	// Keys are compared as bytes (BLOB collation) so order is byte order.
	rows, err := s.r.QueryContext(ctx,
		`SELECT key, value, version, expires_at, updated_at FROM kv
		 WHERE ns = ? AND CAST(key AS BLOB) > CAST(? AS BLOB) AND substr(CAST(key AS BLOB), 1, ?) = CAST(? AS BLOB)
		 AND (expires_at = 0 OR expires_at > ?)
		 ORDER BY CAST(key AS BLOB) LIMIT ?`,
		ns, after, len(prefix), prefix, s.now().UnixNano(), limit)
	if err != nil {
		return nil, wrap("list", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r := store.Record{Namespace: ns}
		var exp, upd int64
		if err := rows.Scan(&r.Key, &r.Value, &r.Version, &exp, &upd); err != nil {
			return nil, wrap("list", err)
		}
		r.ExpiresAt, r.UpdatedAt = fromNanos(exp), fromNanos(upd)
		out = append(out, r)
	}
	return out, wrap("list", rows.Err())
}

// Purge implements [store.KV].
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM kv WHERE expires_at > 0 AND expires_at <= ?`, s.now().UnixNano())
	if err != nil {
		return 0, wrap("purge", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// --- Log ---

// Append implements [store.Log].
func (s *Store) Append(ctx context.Context, log string, entries ...[]byte) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.ValidateName("log", log); err != nil {
		return 0, err
	}
	if len(entries) == 0 || len(entries) > store.MaxBatch {
		return 0, fmt.Errorf("sqlitestore: %w: append of %d entries (want 1..%d)", store.ErrInvalid, len(entries), store.MaxBatch)
	}
	for _, e := range entries {
		if err := store.ValidateValue(e); err != nil {
			return 0, err
		}
	}
	var first int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries WHERE log = ?`, log).Scan(&first); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO log_entries (log, idx, data) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, e := range entries {
			if e == nil {
				e = []byte{}
			}
			if _, err := stmt.ExecContext(ctx, log, first+int64(i), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("append", err)
	}
	return first, nil
}

// Read implements [store.Log].
func (s *Store) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := store.ValidateName("log", log); err != nil {
		return nil, err
	}
	if err := store.ValidateLimit(limit); err != nil {
		return nil, err
	}
	if from < 0 {
		return nil, fmt.Errorf("sqlitestore: %w: negative index %d", store.ErrInvalid, from)
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT idx, data FROM log_entries WHERE log = ? AND idx >= ? ORDER BY idx LIMIT ?`, log, from, limit)
	if err != nil {
		return nil, wrap("read", err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var e store.Entry
		if err := rows.Scan(&e.Index, &e.Data); err != nil {
			return nil, wrap("read", err)
		}
		out = append(out, e)
	}
	return out, wrap("read", rows.Err())
}

// Len implements [store.Log].
func (s *Store) Len(ctx context.Context, log string) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.ValidateName("log", log); err != nil {
		return 0, err
	}
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries WHERE log = ?`, log).Scan(&n)
	return n, wrap("len", err)
}

// --- Leases ---

// AcquireLease implements [store.Leases].
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.check(ctx); err != nil {
		return store.Lease{}, err
	}
	if err := store.ValidateLease(name, holder, ttl); err != nil {
		return store.Lease{}, err
	}
	now := s.now()
	l := store.Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var curHolder string
		var exp, token int64
		err := tx.QueryRowContext(ctx, `SELECT holder, expires_at, token FROM leases WHERE name = ?`, name).Scan(&curHolder, &exp, &token)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case exp > now.UnixNano() && curHolder != holder:
			return fmt.Errorf("%s held by %s until %s: %w", name, curHolder, fromNanos(exp).Format(time.RFC3339), store.ErrLeaseHeld)
		case exp > now.UnixNano() && curHolder == holder:
			l.Token = token // renewal by the same holder keeps its token
		}
		if l.Token == 0 {
			if l.Token, err = nextRevision(ctx, tx); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO leases (name, holder, expires_at, token) VALUES (?, ?, ?, ?)
			 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, token = excluded.token`,
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
	if err := s.check(ctx); err != nil {
		return store.Lease{}, err
	}
	if err := store.ValidateLease(l.Name, l.Holder, ttl); err != nil {
		return store.Lease{}, err
	}
	now := s.now()
	res, err := s.w.ExecContext(ctx,
		`UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?`,
		now.Add(ttl).UnixNano(), l.Name, l.Holder, l.Token, now.UnixNano())
	if err != nil {
		return store.Lease{}, wrap("renew lease", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return store.Lease{}, fmt.Errorf("sqlitestore: renew lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	l.ExpiresAt = now.Add(ttl).UTC()
	return l, nil
}

// ReleaseLease implements [store.Leases].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.ValidateName("lease", l.Name); err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM leases WHERE name = ? AND holder = ? AND token = ? AND expires_at > ?`,
		l.Name, l.Holder, l.Token, s.now().UnixNano())
	if err != nil {
		return wrap("release lease", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("sqlitestore: release lease %s: %w", l.Name, store.ErrLeaseLost)
	}
	return nil
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}
