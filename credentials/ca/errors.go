package ca

import "errors"

// Sentinel errors of the package; test them with errors.Is.
var (
	// ErrNotFound is returned by [Journal.Load] when the journal holds no
	// state yet (first start).
	ErrNotFound = errors.New("ca: journal is empty")

	// ErrCorruptJournal reports journal content that cannot be decoded or
	// fails validation. The journal is left as it is.
	ErrCorruptJournal = errors.New("ca: corrupt journal")

	// ErrInsecurePermissions reports a journal file or directory that is
	// accessible to the group or to others, or that is not a regular file
	// or directory.
	ErrInsecurePermissions = errors.New("ca: insecure journal permissions")

	// ErrTrustDomainMismatch reports a journal that holds another trust
	// domain than the one configured. Keys are never replaced.
	ErrTrustDomainMismatch = errors.New("ca: journal trust domain differs from configuration")

	// ErrNoAuthority reports that no authority of the needed kind is valid
	// at the current time (Rotate has not run since it expired).
	ErrNoAuthority = errors.New("ca: no valid authority")

	// ErrInvalidArgument reports a request the CA refuses: a zero SPIFFE
	// ID, an empty audience, an unsupported public key.
	ErrInvalidArgument = errors.New("ca: invalid argument")

	// ErrInvalidToken reports a JWT-SVID that does not validate; the
	// wrapped error (from credentials/jose) says why.
	ErrInvalidToken = errors.New("ca: invalid token")
)
