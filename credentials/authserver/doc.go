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
// Transaction Tokens and ID-JAGs, below) and jwt-bearer (RFC 7523; with
// ID-JAGs, below). Access tokens are
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
// # Identity chaining across trust domains (ID-JAG)
//
// Both roles of the Identity Assertion JWT Authorization Grant
// (draft-ietf-oauth-identity-assertion-authz-grant, SPECS.md §12.2) are
// served, so an agent of one host reaches a resource behind another
// host's server for its user, without a consent step there.
//
// As the IdP ("AS-A"), token exchange with requested_token_type
// urn:ietf:params:oauth:token-type:id-jag issues an ID-JAG for an
// authorization server listed in [Config.IDJAGAudiences]: audience is
// exactly its issuer (anything else is invalid_target), scope within the
// entry's [IDJAGAudience.Scopes], resource carried as asked. The subject
// token is an access token of this server addressed to the client (the
// user's token for an agent, [Server.IssueAgentToken], or one delegated
// to it) or an ID token of this server for the client; refresh tokens,
// other issuers' and sender-constrained tokens are refused. The ID-JAG
// (typ oauth-id-jag+jwt, the current signing key) has iss, sub, aud (that
// issuer alone), client_id (the client's ID here, which for a hosted agent
// is its SPIFFE ID), jti, iat, exp (at most [IDJAGLifetime], never after
// the subject token), scope, resource, act (the client over the subject
// token's act, built here), email and auth_time when known, and cnf.jkt
// when the request proved a DPoP key. It is answered as access_token with
// token_type N_A and no refresh token, and reported to [Config.OnIssue]
// with [Issued.TokenType] oauth.TokenTypeIDJAG. Metadata lists the type
// in identity_chaining_requested_token_types_supported.
//
// As the resource authorization server ("AS-B"), the jwt-bearer grant
// takes an ID-JAG of a [TrustedIssuer] marked IDJAG, never one of its own:
// typ, signature, aud a string or one-element array equal to this
// issuer, exp and iat, jti once per issuer (the replay cache of client
// assertions), client_id equal to the authenticated client, the DPoP
// binding matrix of SPECS.md §12.2 on cnf.jkt, and resource and scope
// narrowed to what the ID-JAG grants and the client may have; every
// refusal of the grant is invalid_grant. The access token keeps the
// ID-JAG's sub, act and auth_time, has the client as client_id, and names
// the originating issuer in sub_id ({"format": "iss_sub", "iss": …,
// "sub": …}, RFC 9493), which resource servers read from the token and
// introspection returns; no refresh token is issued. Metadata lists
// urn:ietf:params:oauth:grant-profile:id-jag in
// authorization_grant_profiles_supported. An issuer can be trusted for
// ID-JAGs alone ([TrustedIssuer.NoSubjectTokens]).
//
// The client at AS-B is typically an agent of the other host: a
// workload of a federated trust domain, admitted by [FederatedClient]
// entries (an exact SPIFFE ID or a path-segment prefix ending in "/*")
// and authenticated by a JWT-SVID of its domain (jwt-spiffe, or
// jwt-bearer with iss and sub its SPIFFE ID) that
// [Config.FederatedSVIDs] validates over that domain's bundle; a workload
// no entry admits is invalid_client (401). Federated clients may use the
// jwt-bearer grant with ID-JAGs and client_credentials, as their entry
// says, within its scopes; nothing else, not even introspection.
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
