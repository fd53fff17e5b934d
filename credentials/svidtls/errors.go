package svidtls

import "errors"

// Sentinel errors of the package; test them with errors.Is. A peer refused
// during a TLS handshake fails it with an error that wraps exactly one of
// [ErrInvalidSVID] and [ErrPeerNotAuthorized].
var (
	// ErrInvalidSVID reports a certificate chain that is not a valid
	// X509-SVID (SPECS.md §10.2): no certificate where one is required, no
	// or more than one URI SAN, a leaf that may sign certificates or lacks
	// digitalSignature, a chain that does not verify against the bundle of
	// the SPIFFE ID's own trust domain, or a certificate outside its
	// validity period. A trust domain the bundle source has no bundle for
	// also wraps credentials.ErrUntrustedDomain. An issue function that
	// returns an unusable SVID gets this error too.
	ErrInvalidSVID = errors.New("svidtls: not a valid X509-SVID")

	// ErrPeerNotAuthorized reports a peer with a valid X509-SVID whose
	// SPIFFE ID the configured [Authorizer] refuses.
	ErrPeerNotAuthorized = errors.New("svidtls: peer not authorized")

	// ErrExpired reports a [Rotating] source whose X509-SVID has expired
	// because no renewal succeeded in time. Nothing is presented to peers
	// until a renewal succeeds.
	ErrExpired = errors.New("svidtls: X509-SVID expired")

	// ErrConfig reports a configuration that cannot be used: a missing
	// source, bundle source, authorizer or issue function, an unknown
	// client certificate mode, or an origin that is not an https origin.
	ErrConfig = errors.New("svidtls: invalid configuration")
)
