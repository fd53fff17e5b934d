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
// client_credentials, token exchange (RFC 8693, nesting act; also for
// Transaction Tokens, below) and jwt-bearer (RFC 7523). Access tokens are
// RFC 9068 JWTs, sender-constrained by DPoP (RFC 9449) or the client
// certificate when the client proves a key, and have exactly one
// audience: a request naming several resources is invalid_target. RFC
// 9700 governs the details.
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
// # Delegation across authorization servers
//
// Token exchange takes as subject token an access token of another
// authorization server listed in [Config.TrustedIssuers]: signature by
// that issuer's keys, typ at+jwt, iss, exp, aud naming this server or the
// client presenting it, its scope as the cap and its act nested under the
// new actor (see [TrustedIssuer]). The host starts the chain in process
// with [Server.IssueAgentToken]: the user's token for the agent a task
// runs on, issued from the user's token for the host's task resource.
//
// All state (keys, clients, pending requests, codes, refresh families,
// the jti replay cache, revocations) goes through [Store], so several
// hosts can share one database, provided each is told of the others'
// revocations ([Server.InvalidateRevocations]) or has the revocation
// cache off. Everything cryptographic goes through credentials/jose.
//
// # Transaction Tokens
//
// The server is also its trust domain's Transaction Token Service
// (draft-ietf-oauth-transaction-tokens, SPECS.md §6). A workload of the
// trust domain, authenticated by its SVID, asks at the token endpoint by
// RFC 8693 token exchange with requested_token_type
// urn:ietf:params:oauth:token-type:txn_token, audience set to the trust
// domain name ([Config.TrustDomain], "example.org", which every Txn-Token
// carries as aud), a scope within the subject token's, and optionally
// request_context and request_details as plain JSON objects. The subject
// token is an access token of this server issued for the workload, or a
// Txn-Token of this server, which is then replaced: txn, sub, aud and
// tctx kept, scope never wider, never once expired. Refresh tokens,
// self-signed and unsigned JSON subject tokens are refused, as is any
// subject token whose scope cannot be determined. The response holds the
// Txn-Token (typ txntoken+jwt, signed with the current signing key, so
// the JWKS verifies it; see [Server.TxnTokenVerifyOptions]) as
// access_token, token_type N_A, no refresh token. The host mints
// Txn-Tokens in process with [Server.IssueTxnToken].
//
// req_wl is the requesting workload's SPIFFE ID; rctx holds the
// request_context plus what the server asserts: the chain of requesting
// workloads through replacements ([RctxWorkloadChain]), how the workload
// authenticated ([RctxAuthn]) and whether a token or the operator named
// the subject ([RctxSubjectSource]). Which workloads may ask is
// [Config.TxnTokenWorkloads]; the lifetime, 60 s by default,
// [Config.TxnTokenTTL]; [Config.OnIssueTxnToken] audits each token by its
// claims and hash. A Txn-Token is never accepted where an access token is
// expected, nor the other way round: the typ tells them apart.
package authserver
