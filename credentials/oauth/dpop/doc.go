// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession (RFC
// 9449): clients create proofs bound to a request and, for resource
// requests, to an access token; servers verify them (typ dpop+jwt, an
// asymmetric alg, the embedded public jwk, htm, htu, iat window, ath,
// nonce) and use each proof once, through a replay cache.
//
// Stateless server nonces come from [HMACNonces]: every host that shares
// the key accepts every other host's nonces.
package dpop
