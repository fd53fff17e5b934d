// Package sqlitestore implements [store.Store] on one SQLite file
// (modernc.org/sqlite: pure Go, no cgo). It is the embedded default backend:
// the file lives in the host's data directory (DESIGN §7).
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: when a write returns,
// its WAL frame has been synced to disk, so a crash or power loss never
// loses an acknowledged write such as an audit append or an issued grant.
// NORMAL would be faster but may drop the last commits on power loss, which
// the audit log cannot afford. Foreign keys are on and busy_timeout is ten
// seconds.
//
// # Concurrency
//
// Every write runs on a single connection inside BEGIN IMMEDIATE, so writers
// in this process queue instead of failing with SQLITE_BUSY, and writers in
// other processes wait on the busy timeout. Reads use a separate pool of
// query_only connections and run alongside writes (WAL readers see the last
// committed state).
//
// # Files
//
// Open creates the database with mode 0600; SQLite gives its -wal and -shm
// files the same mode. The directory must not be writable by group or others
// (the caller creates it 0700), else Open fails with [ErrUnsafeDir]. Open never
// writes to a file that is not an SQLite database ([ErrNotDatabase]), to an
// SQLite database another program created ([ErrForeignDatabase], recognised
// by the application_id header field) or to one with a newer schema
// ([ErrNewerSchema]).
//
// # Schema
//
// The schema version is PRAGMA user_version; forward migrations run in
// order at Open, each in one transaction with its row in schema_migrations.
package sqlitestore
