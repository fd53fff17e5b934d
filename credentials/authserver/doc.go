// Package authserver is the host's embedded OAuth 2.0 authorization
// server, so every flow of draft-klrc-aiagent-auth works on a fresh machine
// without an external one.
//
// It serves RFC 8414 and OpenID Connect discovery metadata, a JWKS with the
// current and next ES256 signing keys, and the authorization, token,
// introspection (RFC 7662), revocation (RFC 7009), registration (RFC 7591)
// and userinfo endpoints. Its clients are the hosted agents (client_id =
// SPIFFE ID; JWT-SVID client assertions or X.509-SVIDs over mTLS, never a
// secret), static clients from config, dynamically registered public
// clients and client ID metadata documents. Grants: authorization_code
// with PKCE S256 only, refresh_token with rotation and reuse detection,
// client_credentials, token exchange (RFC 8693, nesting act) and
// jwt-bearer (RFC 7523). Access tokens are RFC 9068 JWTs, sender-
// constrained by DPoP (RFC 9449) or the client certificate when the
// client proves a key, and have exactly one audience: a request naming
// several resources is invalid_target. RFC 9700 governs the details.
//
// Dynamic registration is rate-limited per client address, capped in size
// and in the number of clients kept, drops clients that obtain no token in
// time, and can be closed to holders of an initial access token
// ([Config.RegistrationTokenHash]). Revocation cascades along each access
// token's lineage (its refresh-token family, the subject token it was
// exchanged from), which every check walks; see [Server.Revoked]. The
// answers are cached in memory and every revocation invalidates them
// ([Config.RevocationCache]).
//
// All state (keys, clients, pending requests, codes, refresh families,
// the jti replay cache, revocations) goes through [Store], so several
// hosts can share one database, provided each is told of the others'
// revocations ([Server.InvalidateRevocations]) or has the revocation
// cache off. Everything cryptographic goes through credentials/jose.
package authserver
