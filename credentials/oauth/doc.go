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
//
// # The host's token client
//
// A [Client] gets access tokens for one workload (an agent, or the host
// itself) from any authorization server it has discovered: on the
// workload's own authority (client_credentials) or for a subject (token
// exchange, RFC 8693, with the workload's JWT-SVID as actor_token). It
// authenticates with a fresh client assertion per request (a JWT-SVID,
// jwt-spiffe or RFC 7523 jwt-bearer; never a static secret), caches tokens
// per (issuer, resource, scopes, subject, binding) until
// [ClientConfig.ExpiryMargin] before they expire, with one request in
// flight per key, and forgets a subject's tokens on demand
// ([Client.ForgetSubject]).
//
// # Identities per server
//
// A server that does not trust the workload's trust domain knows it by
// another client_id: a client ID metadata document URL, a dynamic
// registration, a client registered out of band (package clientid
// resolves which). [ClientConfig.Identify] gives, the first time a
// request goes to a server, its [ClientIdentity] there: the client_id,
// the assertion source (private_key_jwt) and the assertion type, kept
// per issuer. An invalid_client answer to an identity that can be
// replaced ([ClientIdentity.Rejected]: a registration the server dropped)
// is answered once with the replacement. In a token exchange the
// actor_token stays the workload's own credential
// ([ClientConfig.ActorToken]), whatever the client authenticates with.
//
// # Sender-constrained tokens (DPoP, RFC 9449)
//
// Given the workload's keys ([ClientConfig.DPoPKeys], a [dpop.Keys]), the
// client asks for DPoP-bound tokens whenever the server advertises
// dpop_signing_alg_values_supported and the request does not ask for a
// bearer token ([TokenRequest.Bearer]; a resource that does not take
// DPoP, or a token that is only a subject token for a later exchange).
// The key is the one of the most preferred algorithm (ES256 first) that
// the server and, when it names any, the resource ([TokenRequest.DPoPAlgs])
// accept; with none in common the token is bearer. Every token request
// then carries a proof (htm POST, htu the token endpoint, a fresh jti,
// iat). A use_dpop_nonce refusal is answered once with the DPoP-Nonce the
// server sent, and the latest nonce of each server origin is kept for the
// next proof. The answer must say token_type DPoP; the [Token] then
// carries the key it is bound to ([Token.DPoPKey]) so that whoever
// presents it signs the proofs of RFC 9449 §7 with that key. A server may
// answer with a bearer token instead (RFC 9449 §5): the token is then
// used as the bearer token it is (with the Bearer scheme and no proof:
// presenting it with the DPoP scheme would only be refused), and the
// client logs a warning. A DPoP token the client did not ask for is an
// error: nothing holds its key.
//
// # Identity chaining (ID-JAG)
//
// Reaching a resource behind another domain's authorization server for a
// user takes two steps (SPECS.md §12): [Client.IDJAG] asks the home
// authorization server (the IdP) for an Identity Assertion JWT
// Authorization Grant by token exchange (requested_token_type id-jag,
// audience the other server's issuer, the user's token as subject_token,
// scope and resource as wanted there), and a [TokenRequest] with a
// [TokenRequest.GrantAssertion] presents it at the other server with the
// JWT bearer grant, the client authenticating with its own assertion
// there. [Client.IDJAGSource] joins the two: each time the other
// server's token has to be acquired, a fresh ID-JAG is obtained (it is
// single-use, and never cached), bound to the DPoP key of that request
// when the IdP takes DPoP; an IdP that does not bind it (cnf.jkt) after a
// proof is refused. The token is cached like any other, by
// [TokenRequest.SubjectKey] (never a token), and renewed the same way,
// never by a refresh token. [IDJAGClaims] are the grant's wire claims.
//
// # Renewal
//
// A token is renewed by the grant that got it, with fresh assertions and
// (for an exchange) the subject token again, never by a refresh token: a
// refresh token in a response is dropped. client_credentials needs none,
// and renewing an exchanged token without presenting the subject token
// would let the host act for a user after the user's token (and the task
// that held it) is gone. So no refresh grant is ever sent from here, DPoP
// or not; refresh tokens live only in the command line's sign-in
// (package login).
//
// # golang.org/x/oauth2 and what is written here
//
// golang.org/x/oauth2 is the vocabulary where it fits, and nothing here
// duplicates it:
//
//   - package login (the command line's sign-in) is built on it: the
//     authorization code flow with PKCE (oauth2.Config, AuthCodeURL,
//     Exchange, GenerateVerifier, S256ChallengeOption), refresh with
//     rotation (Config.TokenSource), oauth2.Token in its Session, and its
//     TokenSource is an oauth2.TokenSource.
//
// Written here, because x/oauth2 has no support for it:
//
//   - client authentication by a JWT assertion minted per request
//     (jwt-spiffe, RFC 7523 client assertions): its clientcredentials
//     package authenticates with a client secret; an assertion could ride
//     in its fixed EndpointParams, but each one is single-use and minted
//     for one request to one issuer;
//   - token exchange (RFC 8693): no x/oauth2 API; nor for the JWT bearer
//     grant with an authorization grant obtained elsewhere (its jwt
//     package signs its own assertion), which identity chaining needs;
//   - DPoP (RFC 9449): proofs on token requests and resource requests,
//     nonce challenges, the key a token is bound to;
//   - the cache: per resource, scopes, subject and binding, with single
//     flight and per-subject forgetting, where oauth2.ReuseTokenSource
//     keeps one token per source;
//   - [Token]: unlike oauth2.Token it carries the granted scopes and the
//     DPoP key, and it has no refresh token (see Renewal);
//   - [AssertionSource] and [TokenRequest.SubjectTokenSource]: functions
//     of a context, where oauth2.TokenSource takes none, so each call's
//     deadline and cancellation reach the minting;
//   - discovery (RFC 9728, RFC 8414 with its exact-issuer check, OpenID
//     Connect Discovery), introspection (RFC 7662) and the wire types the
//     authorization server writes.
//
// # External issuers' keys
//
// [RemoteKeys] is an authorization server's JWK Set (RFC 7517 §5), read
// from its jwks_uri through package fetch (same-origin redirects only, a
// size cap, a timeout, no private addresses) and used as a jose.KeyFunc.
// A set is kept for its Cache-Control max-age, clamped between MinTTL
// and MaxTTL; a kid it lacks fetches it again at most once per
// MinRefetch, so made-up kids cannot make the resource hammer the
// server; concurrent lookups share one fetch; a failed fetch keeps the
// last good set until it is MaxStale old, then lookups fail with
// [ErrKeysUnavailable]. [DiscoverIssuer] reads an issuer's metadata and
// returns its RemoteKeys and, given client credentials, its
// introspection.
package oauth
