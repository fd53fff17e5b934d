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
)
