// Package sqlitestore implements [store.Store] on one SQLite file
// (modernc.org/sqlite: pure Go, no cgo). It is the embedded default: the
// file lives in the host's data directory.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a write has reached
// the disk when it returns, so a crash or power loss never loses an
// acknowledged write (an audit append or an issued grant). Writes go
// through one connection with BEGIN IMMEDIATE transactions, so concurrent
// writers queue instead of failing with SQLITE_BUSY; reads use a separate
// pool and run concurrently with writes.
//
// # Safety of existing files
//
// Open never overwrites a file that is not an SQLite database: it checks the
// header first and refuses with a precise error. A database written by a
// newer schema than this build knows is refused too.
package sqlitestore
