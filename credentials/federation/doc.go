// Package federation keeps the SPIFFE bundles of the foreign trust domains
// this host federates with (SPECS.md §10.5, §10.7) and the bundle set, own
// trust domain plus federated ones, that validates SVIDs of any trusted
// domain.
//
// # Peers
//
// Each federated trust domain is a [Peer]: its name, its bundle endpoint
// URL and the endpoint's profile. Under [ProfileHTTPSWeb] the endpoint
// proves itself with a Web PKI certificate (the system roots, or
// [Peer.Roots]); under [ProfileHTTPSSPIFFE] it presents an X.509-SVID with
// [Peer.EndpointSPIFFEID], verified against the peer's own last known
// bundle, bootstrapped from [Peer.Bundle].
//
// # Fetching
//
// Bundles are fetched with credentials/oauth/fetch (DESIGN.md invariant 8):
// GET only, redirects only within the origin of the configured URL and
// under the same TLS rules, a capped body ([DefaultMaxBytes]) and a timeout
// ([DefaultTimeout]); only status 200 is accepted, and the configured URL
// is used again on every refresh. A bundle is refused when it is not a
// SPIFFE bundle (malformed JSON, no keys member), when one of its X.509
// authorities names another trust domain, or when its spiffe_sequence is
// lower than the kept bundle's (or missing while the kept one has one).
// Every failed refresh is logged and reported to [Config.OnRefuse]; the
// last good bundle stays in use. Accepted bundles are saved to the
// [Store], which [New] reads, so a restarted host trusts its peers before
// the first fetch succeeds.
//
// # Refresh
//
// [Set.Run] refreshes every peer after its bundle's refresh hint, clamped
// between [Config.MinRefresh] and [Config.MaxRefresh]; a failed refresh is retried
// after [Config.RetryInterval], doubled on each further failure and never
// later than the regular refresh. [Set.Refresh] fetches one peer now and
// [Set.RefreshDue] fetches every peer whose time has come.
//
// # The bundle set
//
// A [Set] is an x509bundle.Source, a jwtbundle.Source and a
// spiffebundle.Source over the own trust domain ([Config.Own]) and the
// federated ones; any other trust domain is an error wrapping
// credentials.ErrUntrustedDomain. [Set.ValidateJWTSVID] validates a
// JWT-SVID of any trusted domain with the checks of the own CA, and
// [Set.VerifyX509SVID] an X.509-SVID chain. A bundle with an empty keys
// array revokes its domain: every SVID of that domain is refused.
package federation
