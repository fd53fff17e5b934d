// Package ca is the trust-domain certificate authority of agenthost. It owns
// the signing keys of one SPIFFE trust domain, issues X509-SVIDs, JWT-SVIDs
// and WIT-SVIDs (SPECS.md §10.2–§10.4), rotates its keys and publishes the
// trust bundle (SPECS.md §10.5, §10.7).
//
// # Authorities
//
// Three kinds of authority are kept, each an ECDSA P-256 key: the X.509
// authority (a self-signed root whose only URI SAN is spiffe://<td>, cA=true,
// keyCertSign and cRLSign), the JWT-SVID key and the WIT-SVID key (each with
// a kid). Every kind has a current slot, which signs, a next slot, prepared
// ahead of activation and already published, and retired authorities, which
// stay published until they expire.
//
// # Rotation
//
// Rotation follows SPIRE's scheme: the next authority is prepared once the
// current one has less than half of its lifetime (CATTL) left and becomes
// current once less than a sixth is left; expired authorities leave the
// bundle. The decision is a pure function of the state and the time;
// [CA.Rotate] applies it, saves the state through the [Journal] and
// notifies [CA.Subscribe] subscribers; [CA.Run] calls Rotate periodically.
// The bundle's sequence number grows by one on every change.
//
// # Persistence
//
// The state is one versioned JSON document: keys as PKCS#8, certificates
// and public keys as DER, validity times and the sequence number.
// [FileJournal] writes it atomically with mode 0600 and refuses files or
// directories other users can reach. The trust domain is fixed by the
// journal: [New] fails rather than replace keys of another trust domain,
// and a corrupt journal is reported, never overwritten.
package ca
