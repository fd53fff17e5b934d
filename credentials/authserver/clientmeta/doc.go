// Package clientmeta owns OAuth client metadata as the embedded
// authorization server receives it: dynamic client registration requests
// (RFC 7591, SPECS.md §11.4) and client ID metadata documents (CIMD,
// SPECS.md §3.3 and §11.5).
//
// # Decoding
//
// [Parse] decodes one JSON object strictly: duplicate member names, members
// of the wrong JSON type (including null), trailing data and invalid UTF-8
// are errors, member names match case-sensitively, and members it does not
// know are ignored (RFC 7591 §2).
//
// # Validation
//
// A [Policy] checks decoded [Metadata]: [Policy.ValidateRegistration] for a
// registration request, [Policy.ValidateDocument] for a CIMD document and
// the URL it came from. Both fill in the RFC 7591 defaults, accept only
// redirect URIs that can be matched exactly (https, loopback http per
// RFC 8252 §7.3, private-use schemes per RFC 8252 §7.1; no fragments or
// wildcards), and refuse shared secrets (RFC 9700 §2.5). Failures are
// [*Error] values carrying the RFC 7591 §3.2.2 error code; test them with
// errors.Is against [ErrInvalidRedirectURI] and [ErrInvalidClientMetadata].
//
// # Client ID metadata documents
//
// [IsClientIDURL] tells a CIMD client_id from other client identifiers. A
// [Resolver] fetches the document through [fetch.Fetcher] (no redirects,
// 5 KiB cap, SSRF checks), validates it, and keeps valid documents in a
// bounded cache for at most [ResolverConfig.CacheTTL] or the response's
// Cache-Control max-age, whichever is shorter. Every failure wraps
// [ErrInvalidClient].
package clientmeta
