// Package storetest is the conformance suite every [store.Store]
// implementation must pass: call [Run] from the implementation's tests with
// a [Factory] that builds an empty store reading time from the suite's
// [Clock], so TTL and lease expiry are tested without sleeping.
//
// It covers records (CRUD, versions, every condition, TTL expiry, listing
// order and pagination, isolation of caller slices), concurrent
// put-if-absent with exactly one winner, logs (batch atomicity, no gaps or
// duplicates under concurrent appends), leases (acquire, renew, expiry,
// takeover, release, tokens, concurrent acquisition), bad input, canceled
// contexts, use after Close and Close racing writers.
package storetest
