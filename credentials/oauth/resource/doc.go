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
//
// # Several authorization servers
//
// A [Verifier] accepts the tokens of [Config.Issuer] (for the host's own
// resources, the embedded authorization server) and of every
// [Config.Issuers] entry: an organisation's Keycloak, Okta, Entra ID or
// Auth0, or any RFC 8414 server. oauth.DiscoverIssuer reads such a
// server's metadata and gives its keys (oauth.RemoteKeys, the JWK Set at
// its jwks_uri, cached and refreshed) and, with client credentials, its
// introspection.
//
// A JWT's iss, read before anything is verified, picks the issuer; the
// token is then verified with that issuer's keys only, its iss must be
// identical to that issuer's identifier, and every check above applies.
// A key of one issuer never vouches for a token naming another, even
// under the same kid. A token naming an issuer not accepted here is
// refused (401 invalid_token) without naming any issuer. An opaque token
// (not a JWT) is introspected (RFC 7662) at each issuer that has
// introspection, in order, and the first that answers active decides: its
// answer must name that issuer if it names one, this resource, and no
// binding. Each introspecting issuer before the one that knows the token
// sees it, so list introspection only for issuers trusted with each
// other's tokens. [Caller.Issuer] says which issuer vouched for the token.
//
// Config.Revoked and Config.SubjectRevoked concern Config.Issuer's tokens
// only: another issuer's subjects are another namespace. An [Issuer] has
// its own hooks.
//
// The resource's RFC 9728 metadata lists every accepted issuer in
// authorization_servers: [Verifier.AuthorizationServers], and
// [Verifier.Metadata] or [Verifier.MetadataHandler] to fill a document.
//
// # What other servers put in their tokens
//
// Each [Issuer] can accept what its server writes, and only for that
// server:
//
//   - typ: RFC 9068 §4 requires at+jwt, but Okta, Entra ID, Auth0 (and
//     Keycloak unless told otherwise) send typ JWT. With
//     [Issuer.AcceptJWTTyp] a token of typ JWT is accepted from that
//     issuer if it carries every claim RFC 9068 §2.2 requires (iss, exp,
//     aud, sub, client_id or azp, iat, jti) and none that marks an ID
//     token (nonce, at_hash, c_hash, a typ claim other than "Bearer").
//     This weakens the typ check of RFC 8725 §3.11 for that issuer:
//     another JWT it signs with the same claims and this resource as
//     audience passes as an access token. It is off by default; a token
//     without typ is never accepted. Entra ID's tokens carry uti, not
//     jti, and fail this check.
//   - scopes: [Issuer.ScopeClaim] ScopeClaimSCP reads scp, a
//     space-delimited string (Entra ID) or an array of scope tokens
//     (Okta), instead of scope. Only the named claim is read.
//   - aud: [Issuer.Audiences] are further exact audience values that mean
//     this resource in that issuer's tokens (Entra ID's api://…, an Auth0
//     API identifier). Such a value often names a whole application, not
//     one resource: every resource that lists it accepts the same token,
//     and scopes must then tell them apart.
//   - client: a token without client_id names its client by azp
//     (Keycloak): [Caller.ClientID] is then azp.
package resource
