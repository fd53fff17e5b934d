// Package pgstore implements [store.Store] on PostgreSQL (pgx/v5 and its
// pool, pgxpool), for several hosts that share one database and so act as
// one deployment (DESIGN §7). It owns the connection pool, the tables of
// its schema and their migrations; what the records mean belongs to their
// callers. It passes the same conformance suite (storetest) as sqlitestore.
//
// # Opening
//
// [Open] takes a [Config] whose DSN comes from the host's configuration
// (storage.dsn_env or storage.dsn_file: the connection string, which may
// hold a password, is never written in the config file, nor in an error or
// a log). It connects once, bounded by [Config.ConnectTimeout], so a DSN
// that does not connect fails Open with [ErrUnavailable] rather than
// hanging; it refuses a server older than [MinServerVersion] or whose
// database is not UTF8.
//
// # Schema
//
// The tables live in their own PostgreSQL schema ([Config.Schema], default
// "agenthost"), which every connection's search_path names, so they never
// collide with another program's tables in the same database. Migrations are
// SQL files embedded in the binary (migrations/NNNN_name.sql), never edited
// once shipped; schema_migrations records each version applied. Open applies
// the missing ones in one transaction that first takes an advisory lock
// (pg_advisory_xact_lock, keyed on the schema), so hosts that start together
// migrate once and the others wait, then find the schema current. A database
// whose version is newer than [SchemaVersion] is refused, naming both
// versions ([ErrNewerSchema]); a schema holding another program's tables is
// refused too ([ErrForeignSchema]).
//
// The tables: kv (ns, key, value, version, expires_at, updated_at), logs
// (one head per log: the index of its next entry), log_entries (log, idx,
// data), leases (name, holder, expires_at, token), and the sequence
// revision. Names and keys are text in the "C" collation, which compares
// bytes, so List order and prefixes match every other backend. Times are
// Unix nanoseconds from [Config.Now], never the server's now(): TTL expiry
// and lease expiry compare against the time the caller's clock gives (the
// conformance suite uses a fake clock), and hosts sharing a database
// should keep their clocks in sync.
//
// # Consistency
//
// Every statement runs at READ COMMITTED. A write that depends on a row's
// state (Put, Delete, AcquireLease) locks the row first (SELECT … FOR
// UPDATE), or creates it with INSERT … ON CONFLICT DO NOTHING and, if
// another writer created it meanwhile, locks that one, so conditions
// (IfAbsent, IfVersion) hold across any number of Stores. Record versions
// and lease tokens are drawn from the revision sequence after the row is
// locked: they grow on every write, also across delete and re-create, and
// are never reused. An Append advances its log's head in the same
// statement that inserts the entries; the head row's lock orders appends
// to one log across Stores, so indexes have no gaps, and a batch is
// written whole or not at all. AppendLogs does the same for several logs
// in one transaction, locking their heads in name order so that
// concurrent AppendLogs cannot deadlock.
//
// A transaction travels in two round trips, pipelined on one connection:
// BEGIN with the locking reads, then (once the condition is checked in Go,
// with store.Condition.Check) the writes with COMMIT. A one-statement write
// (Append, RenewLease, ReleaseLease, Purge) is one round trip.
//
// # Failures
//
// A lost connection, a server that cannot be reached, is restarting or has
// no connection slot left, is reported as [ErrUnavailable]: a server maps
// it to 503. The pool opens new connections by itself. Before giving up, an
// operation is retried with backoff for up to [Config.RetryTimeout] when
// retrying is safe: reads and idempotent writes (RenewLease, Purge) always;
// a transaction that failed before its COMMIT (the server rolled it back);
// a statement that never reached the server. A write that fails after it
// was sent (during the COMMIT, or in the middle of a one-statement Append
// or ReleaseLease) may have been applied: it is not retried, and its error
// also wraps [ErrOutcomeUnknown], so that a caller that must know (the
// audit log) can read the state back. Serialization failures and
// deadlocks, which READ COMMITTED and the lock order make unlikely, are
// retried and reported as store.ErrConflict if they persist, as is a
// unique violation. [Store.Ping] checks the database for a health
// endpoint, [Store.Stats] reports the pool.
package pgstore
