package federation

import "errors"

// Sentinel errors of the package; test them with errors.Is. A trust domain
// that is neither the own one nor federated is reported with
// credentials.ErrUntrustedDomain, and failed fetches wrap the sentinels of
// credentials/oauth/fetch (fetch.ErrRedirect, fetch.ErrTooLarge,
// fetch.ErrTimeout, fetch.ErrStatus …).
var (
	// ErrNotFound is returned by [Store.Load] when no bundle is kept for
	// the trust domain.
	ErrNotFound = errors.New("federation: no stored bundle")

	// ErrInvalidConfig reports a [Config] or [Peer] that New refuses.
	ErrInvalidConfig = errors.New("federation: invalid configuration")

	// ErrNoBundle reports a federated trust domain whose bundle is not
	// known yet: none was stored, configured or fetched.
	ErrNoBundle = errors.New("federation: no bundle yet")

	// ErrInvalidBundle reports a document that is not a SPIFFE bundle
	// (SPECS.md §10.5): malformed JSON, no keys member, a bad key.
	ErrInvalidBundle = errors.New("federation: invalid bundle")

	// ErrWrongTrustDomain reports a bundle whose X.509 authorities name
	// another trust domain than the one it was fetched for.
	ErrWrongTrustDomain = errors.New("federation: a bundle for another trust domain")

	// ErrRollback reports a bundle whose spiffe_sequence is lower than the
	// kept bundle's, or missing while the kept bundle has one.
	ErrRollback = errors.New("federation: bundle sequence number went back")

	// ErrInvalidSVID reports an X.509-SVID that does not verify against
	// the bundle of its trust domain.
	ErrInvalidSVID = errors.New("federation: invalid X.509-SVID")
)
