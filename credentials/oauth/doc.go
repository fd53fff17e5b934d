// Package oauth is the OAuth 2.0 wire vocabulary shared by the embedded
// authorization server, the resource servers and the host's clients: the
// error object of RFC 6749 §5.2 and the codes later RFCs added, strict form
// parsing, scope strings, authorization server metadata (RFC 8414, OpenID
// Connect Discovery), protected resource metadata (RFC 9728), token and
// introspection responses (RFC 6749 §5.1, RFC 8693 §2.2, RFC 7662 §2.2) and
// the JWT access token claims of RFC 9068.
//
// Field names, grant types, token types and error codes follow SPECS.md
// exactly; identifiers are compared by code point, never normalized.
package oauth
