// Package memstore is an in-memory [store.Store] for tests of the
// components built on the store. It keeps nothing across restarts and passes
// the same conformance suite (storetest) as the durable implementations.
package memstore
