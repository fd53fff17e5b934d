// Package a2acard owns agenthost's A2A agent cards: building the card of a
// hosted agent from a small description ([AgentInfo], [New]), its
// canonical form ([Canonical]), signing it with the agent's key ([Sign])
// and verifying the signatures of a card against a trust bundle
// ([Verify], [VerifyJSON]). Cards are a2a-go's [a2a.AgentCard] (A2A 0.3,
// the version github.com/a2aproject/a2a-go v0.3.3 speaks).
//
// # The card of a hosted agent
//
// [New] fills what a client needs to call the agent: its A2A URL with the
// JSON-RPC binding as the preferred transport, protocolVersion
// [ProtocolVersion], streaming, text in and out, its skills, and how to
// authenticate: an OAuth 2.0 security scheme (client credentials at the
// authorization server's token endpoint, authorization code when the
// server has an authorization endpoint, and the RFC 8414 metadata URL)
// requiring the agent's scopes, and, when the listener does TLS client
// authentication, a mutualTLS scheme as an alternative that adds a client
// certificate (for certificate-bound tokens, RFC 8705).
//
// # Signatures
//
// A signature is a JWS (RFC 7515) with a detached payload, as A2A's
// AgentCardSignature defines it (SPECS.md §16.1): the payload is the
// card's canonical form, which is not carried; the card holds the
// base64url protected header and signature. The protected header has alg,
// kid and typ "JOSE" (and jku when given).
//
// The canonical form ([Canonical]) is the card's JSON without its
// signatures member and without the members a signer may or may not have
// written for an unset value (null, "", [] and {}, at any depth, as the A2A
// Python SDK drops them), in the JSON Canonicalization Scheme (RFC 8785) as
// credentials/txntoken/canonjson implements it. Adding or removing such an
// empty member leaves a signature valid; changing any value breaks it.
// canonjson differs from RFC 8785 in three corners no card of ours
// reaches: it escapes U+2028 and U+2029, sorts member names by UTF-8
// rather than UTF-16 code units (a difference only for names with
// characters above U+FFFF), and writes numbers by exact decimal value
// rather than through binary64.
//
// [Verify] and [VerifyJSON] recompute the canonical form and accept the
// card when one of its signatures verifies with a key of the given key
// set: the key is looked up by kid in the set the caller trusts (the
// trust bundle of the card's domain), never taken from jku or any other
// header; alg must be one of the allowed asymmetric algorithms; typ, when
// present, must be JOSE. A card without signatures, a signature by a key
// the set does not hold, an algorithm outside the set and a card changed
// after signing are each refused with their own sentinel error.
// Verification goes through credentials/jose; signing uses the key's
// crypto.Signer directly, because jose signs only JSON it marshals itself
// and a detached card signature must cover the canonical bytes exactly.
package a2acard
