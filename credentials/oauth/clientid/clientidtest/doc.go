// Package clientidtest owns the conformance suites that every
// [clientid.KeyStore] and [clientid.RegistrationStore] implementation
// runs in its tests: [KeyStore] and [RegistrationStore].
package clientidtest
