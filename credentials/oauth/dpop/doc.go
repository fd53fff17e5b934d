// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession
// (RFC 9449) on both sides of a request.
//
// # Clients
//
// [NewProof] signs a proof (typ dpop+jwt, the public key embedded as jwk)
// bound to one HTTP method and URL and, for resource requests, to an access
// token through ath. [Thumbprint] gives the key's RFC 7638 thumbprint, the
// cnf.jkt of tokens bound to it.
//
// [Keys] are one client's key pairs, one per algorithm, made on first use
// and held in memory only; [Keys.Key] picks the client's most preferred
// algorithm a server lists (ES256 first, [ClientAlgorithms]). A
// [NonceCache] keeps the last DPoP-Nonce of each server origin for the
// client's next proof there (RFC 9449 §8, §9).
//
// # Servers
//
// A [Verifier] applies the checks of RFC 9449 §4.3: the compact JWS, typ,
// an allowed asymmetric alg, a public jwk that verifies the signature, the
// jti, htm, htu and iat claims, the iat window, ath and the token's key
// binding, the server nonce when one is required, and finally single use of
// the jti through a [ReplayCache], so that a refused proof never consumes
// its jti.
//
// Every refusal wraps [ErrInvalidProof] or [ErrUseNonce]; [ErrorCode] maps
// them to the OAuth error codes invalid_dpop_proof and use_dpop_nonce.
//
// [HMACNonces] are stateless server nonces (RFC 9449 §8): every host that
// shares the key accepts every other host's nonces. [Verifier.Nonce] gives
// the one to send with a use_dpop_nonce refusal. [MemoryReplayCache]
// serves a single process and tests.
package dpop
