// Package fetch retrieves JSON metadata documents from URLs that other
// parties choose: authorization server and protected resource metadata,
// client ID metadata documents and JWK Sets. Every fetch is bounded
// (DESIGN.md invariant 8): it refuses redirects to other origins, caps the
// body, and times out.
//
// # Rules
//
// [Fetcher.Get] and [Fetcher.JSON] accept only absolute URLs without
// userinfo or fragment, with the https scheme (http only when
// [Config.AllowHTTP] is set). Redirects are followed only within the
// origin (scheme, host and port) of the URL asked for, at most three
// times, and never by a Fetcher made with [Fetcher.Restrict] and zero
// redirects. A body longer than [Config.MaxBytes] is refused, and the
// whole exchange, body included, must finish within [Config.Timeout].
// Responses outside 2xx are errors. [Fetcher.JSON] further requires a JSON
// media type and a body that is exactly one JSON object.
//
// # Address checks
//
// Unless [Config.AllowPrivate] is set, connections to loopback, private
// (RFC 1918, RFC 4193), link-local, CGNAT, multicast, unspecified and other
// special-purpose addresses (RFC 6890) are refused. The check runs on the
// address each connection is about to use, after name resolution, so a name
// that resolves to a public address once and to a private one later
// (DNS rebinding) is still refused; IP literals in the URL are refused
// before any connection is tried.
//
// # Errors
//
// Every failure wraps one of the exported sentinel errors ([ErrInvalidURL],
// [ErrRedirect], [ErrTooLarge], [ErrTimeout], [ErrStatus], [ErrBadJSON],
// [ErrPrivateAddress]); test them with errors.Is. Error messages carry at
// most a short, sanitized excerpt of a response body.
package fetch
