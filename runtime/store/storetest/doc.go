// Package storetest is the conformance suite every [store.Store]
// implementation must pass: call [Run] from the implementation's tests with
// a factory that builds an empty store reading time from the suite's clock.
// It covers records, conditions, TTLs, listing, concurrent put-if-absent,
// logs (batch atomicity, no gaps under concurrent appends), leases, bad input
// and use after Close.
package storetest
