// Package txntoken owns agenthost's OAuth Transaction Tokens
// (draft-ietf-oauth-transaction-tokens, editor's copy after -08, as
// digested in SPECS.md §6): the [Claims] a Txn-Token carries, minting them
// as the trust domain's Transaction Token Service ([Issuer], [Sign]),
// verifying them where they are used ([Verify]), binding a token to one
// tool call ([CallContext], [Claims.CheckCall], [Claims.CheckField]), the
// rules a replacement token must follow ([CheckReplacement]), and carrying
// the token in the Txn-Token header ([FromHeader], [SetHeader]).
//
// A Txn-Token is a short-lived JWT with typ txntoken+jwt that carries the
// subject and the immutable authorization context of one transaction
// through the workloads of one trust domain. It is neither a credential nor
// an access token: it never authenticates a workload and is never accepted
// where an access token is expected, nor the other way round. All signing
// and verification goes through credentials/jose, which enforces the typ.
//
// # Minting
//
// [NewIssuer] takes a [Config] with the signing key and its kid, the trust
// domain (written as aud, a single string), an optional iss, a lifetime
// (default [DefaultTTL], 60 s; at most [MaxTTL]), a clock and a logger.
// [Issuer.Mint] takes the transaction's txn, sub, scope, req_wl and,
// usually, tctx and rctx, sets iat, exp, aud and iss, and signs. [Sign] is
// the primitive underneath, for a service that rotates keys itself.
//
// # Verifying
//
// [Verify] checks signature, typ, aud (exactly the verifier's trust
// domain), exp, iat and the presence and JSON type of every required claim.
// Each failure wraps one sentinel error ([ErrWrongType], [ErrSignature],
// [ErrAudience], [ErrExpired], [ErrNotYetValid], [ErrInvalid], ...), tested
// with errors.Is.
//
// # Binding a tool call
//
// The host writes into tctx the tool name ("tool"), the SHA-256 of the
// call's canonical arguments ("args_sha256", see [ArgsDigest]) and any
// business fields the tool declares, as top-level members:
//
//	{"tool": "payments/transfer", "args_sha256": "09d2…", "amount": 3}
//
// The tool calls [Claims.CheckCall] with its name and the arguments it
// received, and [Claims.CheckField] for a field it acts on. JSON values are
// compared in a canonical form ([Object]), so key order, whitespace and the
// spelling of a number (3, 3.0) do not matter and any change of value does.
//
// # Logging
//
// Whole tokens are never logged nor put into errors; [TokenHash] gives the
// SHA-256 that logs and audit records hold instead (SPECS.md §6.5).
package txntoken
