package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agenthost/agenthost/runtime/store"
)

// Defaults for the zero values of [Config].
const (
	DefaultSchema         = "agenthost"
	DefaultConnectTimeout = 5 * time.Second
	DefaultRetryTimeout   = 2 * time.Second
)

// MinServerVersion is the oldest PostgreSQL major version Open accepts.
const MinServerVersion = 12

// Config configures [Open].
type Config struct {
	// DSN is the PostgreSQL connection string, as a URL
	// ("postgres://user@host:5432/db?sslmode=verify-full") or in
	// keyword/value form ("host=… dbname=…"), with the parameters libpq and
	// pgx read (pool_max_conns among them). Required. It may hold a
	// password, so it never appears in an error or a log.
	DSN string
	// Schema is the PostgreSQL schema that holds the tables; Open creates
	// it if it is missing and sets every connection's search_path to it.
	// Lowercase letters, digits and '_', at most 63 bytes, not starting
	// with a digit. Empty means [DefaultSchema].
	Schema string
	// Now is the clock for TTLs and leases; nil means time.Now. The
	// database's own clock is never used, so every host sharing a
	// database should run NTP.
	Now func() time.Time
	// Logger; nil means silent.
	Logger *slog.Logger
	// ConnectTimeout bounds each attempt to connect, at Open and when the
	// pool replaces a connection. Zero means the DSN's connect_timeout, or
	// [DefaultConnectTimeout] when it has none.
	ConnectTimeout time.Duration
	// MaxConns caps the connection pool. Zero means the DSN's
	// pool_max_conns, or pgxpool's default (the greater of 4 and the
	// number of CPUs) when it has none.
	MaxConns int32
	// RetryTimeout is how long an operation that failed for a transient
	// reason (see the package documentation, # Failures) is retried, with
	// exponential backoff, within its context's deadline. Zero means
	// [DefaultRetryTimeout]; a negative value disables retries. Open does
	// not retry: a host that cannot reach its database fails to start.
	RetryTimeout time.Duration
}

// unavailable is ErrUnavailable: it wraps store.ErrUnavailable, so
// servers above the store answer it with 503.
type unavailable struct{}

func (unavailable) Error() string { return "database unavailable" }
func (unavailable) Unwrap() error { return store.ErrUnavailable }

// Errors. They are returned wrapped, with the operation and the cause, as in
// "pgstore: append: database unavailable: …".
var (
	// ErrUnavailable: the server could not be reached, or the connection
	// to it was lost, and retrying within Config.RetryTimeout did not
	// help. The pool reconnects by itself; a later call may succeed. A
	// server maps it to 503 Service Unavailable.
	ErrUnavailable error = unavailable{}
	// ErrOutcomeUnknown: a write failed after it was sent (the connection
	// was lost, or the context ended, during its commit), so it may or may
	// not have been applied. It comes with ErrUnavailable or with the
	// context's error. A caller that must know reads the state back.
	ErrOutcomeUnknown = errors.New("the write may have been applied")
	// ErrNewerSchema: the database was migrated by a newer build whose
	// schema this build does not know.
	ErrNewerSchema = errors.New("database schema is newer than this build supports")
	// ErrForeignSchema: the schema holds tables that pgstore did not
	// create. They are left untouched.
	ErrForeignSchema = errors.New("schema was not created by agenthost")
)

// Store is a [store.Store] on a PostgreSQL database. It is safe for
// concurrent use, and several Stores (in this process or in other hosts) may
// share one database: they see each other's writes and conflict with each
// other exactly as the callers of one Store do.
type Store struct {
	pool           *pgxpool.Pool
	schema         string
	target         string // user@host:port/database, for messages (never the DSN)
	connectTimeout time.Duration
	now            func() time.Time
	log            *slog.Logger
	retryFor       time.Duration

	// mu is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and no operation starts on a
	// closed pool. stop, closed at the start of Close, cuts short the
	// backoff of retrying operations.
	mu       sync.RWMutex
	closed   bool
	stop     chan struct{}
	stopOnce sync.Once
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.KV       = (*Store)(nil)
	_ store.Log      = (*Store)(nil)
	_ store.MultiLog = (*Store)(nil)
	_ store.Leases   = (*Store)(nil)
)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database cfg.DSN names, checks the server and brings
// the schema up to date: the migrations this build has and the database
// lacks run in one transaction, under an advisory lock, so hosts starting
// together migrate once. Open fails, without writing, on a DSN that does not
// connect within the connect timeout ([ErrUnavailable]), a server older than
// [MinServerVersion] or not using UTF8, a schema holding tables of another
// program ([ErrForeignSchema]) and a database with a newer schema
// ([ErrNewerSchema]).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if strings.TrimSpace(cfg.DSN) == "" {
		return nil, fmt.Errorf("pgstore: open: %w: empty DSN", store.ErrInvalid)
	}
	schema := cfg.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("pgstore: open: %w: schema %q: want lowercase letters, digits and '_', at most 63 bytes, not starting with a digit",
			store.ErrInvalid, schema)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w: the DSN is not a PostgreSQL connection string: %s", store.ErrInvalid, parseProblem(err))
	}
	switch {
	case cfg.ConnectTimeout > 0:
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	case pc.ConnConfig.ConnectTimeout <= 0:
		pc.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
		pc.MinConns = min(pc.MinConns, pc.MaxConns)
	}
	params := pc.ConnConfig.RuntimeParams
	params["search_path"] = schema
	// The locking scheme assumes READ COMMITTED, whatever the database's
	// default is.
	params["default_transaction_isolation"] = "read committed"
	if params["application_name"] == "" {
		params["application_name"] = "agenthost"
	}
	s := &Store{
		schema:         schema,
		target:         describe(pc.ConnConfig),
		connectTimeout: pc.ConnConfig.ConnectTimeout,
		now:            cfg.Now,
		log:            cfg.Logger,
		retryFor:       cfg.RetryTimeout,
		stop:           make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.retryFor == 0 {
		s.retryFor = DefaultRetryTimeout
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, fmt.Errorf("pgstore: open %s: %w", s.target, err)
	}
	if err := s.check(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, s.openErr(ctx, err)
	}
	return s, nil
}

// describe names the database a connection goes to, for messages: user,
// first host and port, database; never the password or other parameters.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "unix:" + host
	}
	return fmt.Sprintf("%s@%s/%s", c.User, netJoin(host, c.Port), c.Database)
}

func netJoin(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "unix:") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// parseProblem says what is wrong with a DSN without quoting it: pgconn's
// message quotes the string with the password masked on a best-effort
// basis only, so only the part after the quoted string is kept.
func parseProblem(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return "malformed"
	}
	msg := pe.Error()
	i := strings.LastIndex(msg, "`: ")
	if !strings.HasPrefix(msg, "cannot parse `") || i < 0 {
		return "malformed"
	}
	detail := msg[i+len("`: "):]
	if pe.ConnString != "" && strings.Contains(detail, pe.ConnString) {
		return "malformed"
	}
	return detail
}

// check connects once (bounded by the connect timeout) and refuses a server
// this package cannot use.
func (s *Store) check(ctx context.Context) error {
	var version int
	var encoding string
	err := s.pool.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_encoding')`).
		Scan(&version, &encoding)
	if err != nil {
		return s.openErr(ctx, err)
	}
	switch {
	case version < MinServerVersion*10000:
		return fmt.Errorf("pgstore: open %s: PostgreSQL %d.%d is too old; want %d or later",
			s.target, version/10000, version%10000, MinServerVersion)
	case encoding != "UTF8":
		return fmt.Errorf("pgstore: open %s: the database encoding is %s; want UTF8 (CREATE DATABASE … ENCODING 'UTF8')",
			s.target, encoding)
	}
	return nil
}

func (s *Store) openErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("pgstore: open %s: %w", s.target, ctxErr)
	}
	if connLost(err) {
		if pgconn.Timeout(err) {
			return fmt.Errorf("pgstore: open %s: %w: no answer within the connect timeout (%v): %w",
				s.target, ErrUnavailable, s.connectTimeout, err)
		}
		return fmt.Errorf("pgstore: open %s: %w: %w", s.target, ErrUnavailable, err)
	}
	return fmt.Errorf("pgstore: open %s: %w", s.target, err)
}

// Close closes the pool after the operations in flight finish (a retrying
// operation stops retrying). Later calls to any method return
// store.ErrClosed; a second Close returns nil.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.pool.Close()
	return nil
}

// Ping reports whether the database answers: it takes a connection from the
// pool (connecting if need be) and round-trips to the server, once, without
// retrying. A failure wraps [ErrUnavailable] (or store.ErrClosed, or the
// context's error). It is meant for a health endpoint.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx, "ping", nil); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.pool.Ping(ctx); err != nil {
		if ctx.Err() == nil && !connLost(err) {
			// A server that answers with an error is not healthy either.
			return fmt.Errorf("pgstore: ping %s: %w: %w", s.target, ErrUnavailable, err)
		}
		return s.wrap(ctx, "ping "+s.target, err, false)
	}
	return nil
}

// PoolStats is a snapshot of the connection pool, for status reports.
type PoolStats struct {
	// Total is the number of open connections, Idle of those unused, Max
	// the cap.
	Total, Idle, Max int32
	// EmptyAcquires counts the times a caller had to wait for (or open) a
	// connection; a steady rise means the pool is too small.
	EmptyAcquires int64
}

// Stats returns a snapshot of the connection pool.
func (s *Store) Stats() PoolStats {
	st := s.pool.Stat()
	return PoolStats{Total: st.TotalConns(), Idle: st.IdleConns(), Max: st.MaxConns(), EmptyAcquires: st.EmptyAcquireCount()}
}

// enter starts operation op once valid (its argument check) passed: it
// takes the shared lock, which the caller releases with s.mu.RUnlock.
func (s *Store) enter(ctx context.Context, op string, valid error) error {
	if valid != nil {
		return fmt.Errorf("pgstore: %s: %w", op, valid)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("pgstore: %s: %w", op, store.ErrClosed)
	}
	return nil
}

// --- failures and retries ---

// SQLSTATE codes this package acts on.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connLost reports whether err means the server is out of reach: no
// connection could be made, the connection broke, or the server is
// shutting down or out of connection slots. A server that refuses the
// credentials or does not have the database is misconfigured, not
// unavailable.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		switch code := sqlState(err); {
		case strings.HasPrefix(code, "28"), code == "3D000":
			return false // invalid authorization, unknown database
		}
		return true
	}
	switch code := sqlState(err); {
	case strings.HasPrefix(code, "08"), code == codeAdminShutdown, code == codeCrashShutdown,
		code == codeCannotConnectNow, code == codeTooManyConnections:
		return true
	case code != "":
		return false
	}
	// Anything else is a failure of the connection itself when it comes
	// from the socket: EOF, reset, refused, timeout, or a connection the
	// driver closed after one of those.
	var netErr net.Error
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &netErr) || pgconn.Timeout(err)
}

// transient reports whether a failed attempt may succeed if made again.
func transient(err error) bool {
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return connLost(err)
}

// unsent reports whether err happened before any of the attempt reached
// the server, so the attempt certainly had no effect.
func unsent(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err)
}

func isStoreErr(err error) bool {
	for _, e := range []error{store.ErrNotFound, store.ErrConflict, store.ErrLeaseHeld, store.ErrLeaseLost,
		store.ErrClosed, store.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// wrap turns an operation's final error into this package's: the store's
// sentinels pass through, a done context is reported as such, a lost
// connection as ErrUnavailable, a write whose fate is unknown with
// ErrOutcomeUnknown, and a unique violation or an exhausted serialization
// failure as store.ErrConflict.
func (s *Store) wrap(ctx context.Context, op string, err error, uncertain bool) error {
	switch {
	case err == nil:
		return nil
	case isStoreErr(err):
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if uncertain {
			return fmt.Errorf("pgstore: %s: %w (%w)", op, ctxErr, ErrOutcomeUnknown)
		}
		return fmt.Errorf("pgstore: %s: %w", op, ctxErr)
	}
	if connLost(err) {
		if uncertain {
			return fmt.Errorf("pgstore: %s: %w (%w): %w", op, ErrUnavailable, ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("pgstore: %s: %w: %w", op, ErrUnavailable, err)
	}
	switch sqlState(err) {
	case codeUniqueViolation, codeSerializationFailure, codeDeadlockDetected:
		return fmt.Errorf("pgstore: %s: %w: %w", op, store.ErrConflict, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// Backoff between attempts: it starts at retryBase and doubles up to
// retryMax, with jitter.
const (
	retryBase = 20 * time.Millisecond
	retryMax  = 500 * time.Millisecond
)

// retry runs attempt until it succeeds, fails for good (attempt reports
// whether its failure may be retried), the retry budget is spent, ctx ends or
// the store closes. Backoff runs on the real clock, not Config.Now.
func (s *Store) retry(ctx context.Context, op string, attempt func() (again bool, err error)) error {
	var deadline time.Time
	delay := retryBase
	for n := 1; ; n++ {
		again, err := attempt()
		if err == nil || !again || s.retryFor < 0 || ctx.Err() != nil {
			return err
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.retryFor)
		}
		wait := delay/2 + rand.N(delay/2+1)
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		s.log.DebugContext(ctx, "pgstore: retrying", slog.String("op", op), slog.Int("attempt", n), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-s.stop:
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, retryMax)
	}
}

// read runs a query that changes nothing: any transient failure is retried.
func (s *Store) read(ctx context.Context, op string, fn func() error) error {
	err := s.retry(ctx, op, func() (bool, error) {
		err := fn()
		return err != nil && transient(err), err
	})
	return s.wrap(ctx, op, err, false)
}

// exec runs one write statement (a transaction of its own). A transient
// failure is retried when the statement is idempotent, or when it failed
// before reaching the server; otherwise its outcome is unknown.
func (s *Store) exec(ctx context.Context, op string, idempotent bool, fn func() error) error {
	uncertain := false
	err := s.retry(ctx, op, func() (bool, error) {
		err := fn()
		switch {
		case err == nil || isStoreErr(err):
			return false, err
		case sqlState(err) != "" || unsent(err):
			// The server refused the statement (and rolled it back), or
			// never got it.
			return transient(err), err
		case idempotent:
			return transient(err), err
		case transient(err) || ctx.Err() != nil:
			uncertain = true
		}
		return false, err
	})
	return s.wrap(ctx, op, err, uncertain)
}

// errRaced is returned by a transaction body that committed without
// writing because it lost a race to create a row (its INSERT … ON CONFLICT
// DO NOTHING found a row it had not seen): the body is run again, in a new
// transaction, and then locks that row.
var errRaced = errors.New("lost the race to create the row")

// maxRaces bounds how often in a row a body may lose that race, which only
// a pathological mix of concurrent creates and deletes of one key causes.
const maxRaces = 16

// txRun is one transaction run by hand on one connection, so that its
// statements travel in as few round trips as possible: BEGIN goes with the
// first batch (the locking reads), COMMIT with the last (the writes).
type txRun struct {
	ctx        context.Context
	conn       *pgxpool.Conn
	open       bool // BEGIN was sent and no COMMIT or ROLLBACK since
	committing bool // the COMMIT was sent
}

// batch returns a batch to queue statements on; the first batch of the
// transaction starts with BEGIN.
func (t *txRun) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.open {
		b.Queue("BEGIN")
	}
	return b
}

// send sends b and reads its results (running the queued callbacks).
func (t *txRun) send(b *pgx.Batch) error {
	t.open = true
	return t.conn.SendBatch(t.ctx, b).Close()
}

// commit sends b followed by COMMIT. If a statement of b fails, the server
// skips the COMMIT and the transaction stays open (aborted) until rolled
// back.
func (t *txRun) commit(b *pgx.Batch) error {
	b.Queue("COMMIT")
	t.open, t.committing = true, true
	err := t.conn.SendBatch(t.ctx, b).Close()
	if err == nil {
		t.open, t.committing = false, false
	}
	return err
}

// tx runs body as a transaction (READ COMMITTED; body locks the rows it
// reads with FOR UPDATE) on one connection, rolling back whatever body
// leaves open. A transient failure before the COMMIT was sent rolled the
// transaction back, so body is run again after backoff; a failure of the
// COMMIT itself is retried only if the server cannot have committed (it
// answered with an error, or never got the COMMIT); otherwise the outcome
// is unknown. A body that returns errRaced committed nothing and is run
// again at once.
func (s *Store) tx(ctx context.Context, op string, body func(t *txRun) error) error {
	uncertain := false
	err := s.retry(ctx, op, func() (bool, error) {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return transient(err), err
		}
		defer conn.Release() // a connection left in a transaction is closed, not reused
		t := &txRun{ctx: ctx, conn: conn}
		for range maxRaces {
			err = body(t)
			if t.open {
				abort(ctx, conn)
			}
			if !errors.Is(err, errRaced) {
				break
			}
			t = &txRun{ctx: ctx, conn: conn}
		}
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, errRaced):
			return false, fmt.Errorf("%w %d times", err, maxRaces)
		case isStoreErr(err):
			return false, err
		case !t.committing || sqlState(err) != "" || unsent(err):
			// Rolled back, or the server refused the COMMIT (and rolled
			// back), or the COMMIT never left.
			return transient(err), err
		case transient(err) || ctx.Err() != nil:
			uncertain = true
		}
		return false, err
	})
	return s.wrap(ctx, op, err, uncertain)
}

// abort rolls back a transaction left open. It runs even when ctx is done,
// briefly, so that the connection goes back to the pool clean rather than
// closed.
func abort(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().IsClosed() {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_, _ = conn.Exec(rctx, "ROLLBACK")
}

// rollback ends a failed transaction. It runs even when ctx is done, briefly,
// so that the connection goes back to the pool clean rather than closed.
func rollback(ctx context.Context, tx pgx.Tx) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = tx.Rollback(rctx)
}

// --- helpers ---

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
