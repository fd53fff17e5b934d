package credentials

import "errors"

// Sentinel errors shared across the credential packages. Packages wrap them
// with their own prefix, so callers test with errors.Is.
var (
	// ErrInvalidIdentity reports a string that is not a valid workload
	// identifier.
	ErrInvalidIdentity = errors.New("credentials: invalid identity")

	// ErrUntrustedDomain reports an identity or credential from a trust
	// domain the caller does not trust.
	ErrUntrustedDomain = errors.New("credentials: untrusted trust domain")

	// ErrUnavailable reports that a service a request needs (the store
	// behind an authorization server, a database) cannot be reached for
	// now: the request may succeed later. Servers answer it with 503.
	ErrUnavailable = errors.New("credentials: a service the request needs is unavailable")
)
