// Package signals owns the host's Shared Signals: receiving and sending
// Security Event Tokens under SSF 1.0 and CAEP 1.0 (SPECS.md §14), so that
// a revoked session or changed credential upstream stops agents acting on
// it, and so that the host can tell others when one of its agents is
// quarantined or its credentials change.
//
// # Receiving
//
// A [Verifier] checks one SET (RFC 8417 as SSF profiles it): typ
// secevent+jwt and nothing else, the signature with the transmitter's key
// (a [KeySet], made by [DiscoverKeys] from the transmitter's metadata,
// caches the JWK Set and refetches it once on an unknown kid, at most once
// per MinRefresh), iss equal to the configured
// transmitter issuer, aud naming this receiver, iat present and not in the
// future (exp is not required; when present it is honoured), no sub,
// exactly one event of a known type whose payload conforms, a sub_id (or a
// legacy event subject) of a known format (RFC 9493 formats, SSF's
// jwt_id, saml_assertion_id, ip-addresses and complex), and a jti not seen
// before ([Replay]; [MemoryReplay] in memory, the host backs it with its
// store).
//
// A [Receiver] passes every verified CAEP event to the host's [Handler].
// SSF verification and stream-updated events are handled by the receiver
// itself and never reach the Handler. Rejected SETs are logged and counted
// ([Receiver.Stats]); nothing else is done with them. The Receiver is the
// push endpoint (RFC 8935): 202 with an empty body on success, 400 with
// {"err","description"} on rejection. The codes are those of RFC 8935
// §2.4: invalid_request for anything that is not a conforming SET
// (malformed, wrong typ, missing or forbidden claims, not exactly one
// event, unknown subject format, replayed jti, wrong content type,
// oversized body), invalid_key for an unknown kid or an algorithm not
// acceptable for the key, authentication_failed for a signature that
// does not verify or a push request failing the Authorize hook,
// access_denied for a push request the hook refuses, invalid_issuer and
// invalid_audience; SSF's invalid_state for a verification event with a
// state that was not requested. When a valid SET cannot be acted on for
// now (Handler error, keys or replay store unavailable) the answer is 503
// so that the transmitter retries; after a Handler error the jti is
// released (when the [Replay] is a [Forgetter]) so the retry is accepted.
//
// A [Poller] fetches SETs from a transmitter's poll endpoint (RFC 8936),
// acknowledging accepted SETs and reporting rejected ones in setErrs on
// its next request. A [StreamClient] discovers a transmitter
// ([DiscoverTransmitter]: metadata at /.well-known/ssf-configuration, its
// issuer must match exactly) and manages the receiver's streams.
//
// # Acting on events
//
// A [Remediator] is the host's [Handler] ([Remediator.Handler] for each
// receiver): it decides what each event means for the host and acts
// through the functions of its [RemediatorConfig], which the host wires
// to its agents, users, authorization server, tasks, held tokens, risk
// state, other hosts and audit log. A subject naming one of the host's
// agents by its exact SPIFFE ID (uri, or the application member of a
// complex subject, or an alias) makes session-revoked, credential-change
// and high risk quarantine the agent. Otherwise the subject must be a
// user the host knows (email, iss_sub, opaque, account, the user member
// of a complex subject, an alias): session-revoked and credential-change
// revoke the user's credentials ([RemedyRevoke]); token-claims-change,
// a decreased assurance level and a device no longer compliant drop the
// tokens and sessions held for the user and stop the user's tasks
// ([RemedyRefresh]); risk-level-change sets the risk policy sees, and
// high risk also refreshes. What was done for a user is published to the
// other hosts ([UserRemedy]) and every event, including one about a
// subject the host does not know, is recorded ([Remediation]). A failed
// action or record is returned, so the SET is not acknowledged and is
// delivered again.
//
// # Transmitting
//
// A [Transmitter] signs SETs with the host's key, serves the SSF metadata,
// its JWK Set and the stream management endpoints (streams belong to the
// client that created them; another client's stream is not found), and
// delivers each stream's SETs in order by push (retrying transient
// failures with backoff, dropping on a 4xx rejection) or poll (a queue
// per stream, unacknowledged SETs returned again, long polls bounded).
// [Transmitter.Transmit] queues an event on every enabled stream that
// asked for its type and includes its subject. Streams live in a
// [StreamStore]; [MemoryStreamStore] keeps them in memory.
package signals
