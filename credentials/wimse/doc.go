// Package wimse owns agenthost's WIMSE workload-to-workload
// authentication, as digested in SPECS.md §8: verifying Workload Identity
// Tokens ([Verifier.VerifyWIT]; draft-ietf-wimse-workload-creds-03 and its
// SPIFFE profile WIT-SVID, §10.4), minting and verifying Workload Proof
// Tokens ([MintWPT], [Verifier.VerifyWPT]; draft-ietf-wimse-wpt-02), the
// WIMSE profile of RFC 9421 HTTP Message Signatures with RFC 9530
// Content-Digest ([SignRequest], [Verifier.VerifySignature];
// draft-ietf-wimse-http-signature-07), the replay cache that makes every
// proof single-use ([ReplayCache], [MemoryReplayCache]), and the HTTP
// plumbing: a client [Transport] and a server-side [Verifier.Verify] and
// [Verifier.Middleware].
//
// A WIT (typ wit+jwt) binds a public key (cnf.jwk) to a workload
// identifier (sub: spiffe:// or wimse://). It is never a bearer token:
// every request that presents one in the Workload-Identity-Token header
// also proves possession of the key, with a WPT (typ wpt+jwt) in the
// Workload-Proof-Token header or with an HTTP message signature in the
// Signature-Input and Signature headers. The package mints no WIT; the
// trust domain's CA (credentials/ca) does. All JWT work goes through
// credentials/jose, which enforces typ, so a WIT, WPT, access token,
// Txn-Token, DPoP proof or JWT-SVID is never accepted in another's place
// (DESIGN.md §6.2).
//
// # Verifying a WIT
//
// [NewVerifier] takes a [Config] whose TrustDomains map each trusted trust
// domain to an [Authority]: a key lookup for its WIT authorities
// ([WITAuthorityKeys] reads them from a SPIFFE bundle, such as
// credentials/ca serves) and optionally the expected iss. A WIT is
// verified only with the keys of the trust domain its sub names. The
// result, a [WIT], carries the subject, expiry, jti, the confirmation key
// and its algorithm, and the token's hash; never the token.
//
// # Proofs
//
// [MintWPT] signs a WPT for one request: aud (the target URI, see
// [TargetURI]), a short exp, a random jti, wth (the WIT's hash) and ath,
// tth and oth for the access token, Txn-Token and other context tokens
// the request carries. [Verifier.VerifyWPT] checks it against the WIT and
// [WPTExpectations], the request it came with.
//
// [SignRequest] signs a request instead: @method, @request-target,
// workload-identity-token and, when present, content-type,
// content-digest (which it computes), authorization and txn-token, with
// created, expires, nonce, tag "wimse-workload-to-workload" and wimse-aud.
// [Verifier.VerifySignature] parses Signature-Input and Signature with a
// small RFC 8941 parser, finds the signature by its tag, rebuilds the
// signature base from the received request and checks it, the time
// window, the audience, the body's digest and the nonce.
//
// Every accepted jti and nonce goes into the [ReplayCache] until the proof
// expires, so a replayed proof is refused ([ErrReplayed]).
// [MemoryReplayCache] is bounded and refuses new proofs when full rather
// than forget one early; a store shared between hosts implements the
// same one-method interface.
//
// # HTTP
//
// A [Transport] (see [TransportConfig]) adds the WIT and a WPT or a
// signature to each outgoing request, taking the bound tokens from the
// request's Authorization (Bearer or DPoP) and Txn-Token headers.
// [Verifier.Verify] authenticates an incoming request for the audience it
// derives from Config.BaseURL, never from Host or X-Forwarded-Host, and
// [Verifier.Middleware] puts the resulting [Peer] in the request context
// ([PeerFromContext]). Verification happens when a WIT is presented; a
// request without one is "no WIMSE peer" unless Config.Require is set.
//
// # Errors
//
// Every verification failure wraps [ErrInvalidWIT] or [ErrInvalidProof]
// and a reason ([ErrWrongType], [ErrSignature], [ErrExpired],
// [ErrNotYetValid], [ErrWrongAudience], [ErrReplayed], [ErrTokenBinding],
// [ErrContentDigest], ...), tested with errors.Is. [WriteError] answers
// with an RFC 9457 problem naming the reason, with status 400 as the
// WIMSE drafts recommend (401 would call for WWW-Authenticate, which WIMSE
// does not use). Errors and logs never hold a token; [TokenHash] gives
// what they hold instead.
package wimse
