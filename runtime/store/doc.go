// Package store is the storage interface every stateful component of
// agenthost uses: versioned key/value records in namespaces ([KV]), named
// append-only logs ([Log]) and leases ([Leases]).
//
// Implementations: sqlitestore (the embedded default, one SQLite file in the
// data directory), pgstore (PostgreSQL, which several hosts can share; it
// also implements [Notifier]) and memstore (in memory, for tests). Every
// implementation must pass the conformance suite in storetest.
package store
