// Package resource is the resource-server side of OAuth 2.0: it
// authenticates the access token on a request (RFC 6750 Bearer or RFC 9449
// DPoP), checks it as RFC 9068 requires (typ at+jwt, signature by the
// authorization server's keys, iss, aud = this resource, exp) and answers
// failures with the challenges RFC 6750 §3, RFC 9449 §7 and RFC 9728 §5.1
// define: 401 with WWW-Authenticate naming resource_metadata, 403
// insufficient_scope naming the scope to step up to.
//
// The verified [Caller] travels in the request context; the token itself
// never does.
package resource
