// Package svidtls owns TLS authenticated with X509-SVIDs (SPECS.md §10.2)
// between hosts and on outbound calls: the server configuration, the
// client [Transport], peer authorization by SPIFFE ID and the [Rotating]
// source that keeps a workload's X509-SVID fresh. It is built on
// go-spiffe: certificates are presented through spiffetls/tlsconfig and
// verified with svid/x509svid, against an x509bundle.Source that holds
// one bundle per trust domain (the host's own and federated ones); a
// certificate is only ever checked against the bundle of the trust
// domain its SPIFFE ID names, and never against the system roots.
//
// # Rotation
//
// A [Rotating] gets an X509-SVID from an [IssueFunc] (the host's CA,
// credentials/ca, or an upstream Workload API) and renews it half way
// through its lifetime ([Rotating.Run], or [Rotating.Renew] on demand). A
// failed renewal keeps the current SVID, is logged, and is retried with
// exponential backoff; an SVID that expired anyway is not presented
// ([ErrExpired]). Servers and clients fetch the SVID on every handshake,
// so a renewed SVID is used from the next connection on, while
// established connections, keep-alive ones included, carry on with the
// certificate they were made with.
//
// # Servers
//
// [ServerConfig] returns a *tls.Config for http.Server.TLSConfig or
// tls.NewListener: TLS 1.2 or later (1.3 preferred), serving the current
// SVID. In [RequireClientSVID] mode, the default, every client must
// present a valid X509-SVID. In [OptionalClientSVID] mode a client may
// present no certificate at all, for callers authenticated otherwise
// (OAuth, WIMSE), but one that presents a certificate must present a
// valid X509-SVID or the handshake fails. Either way the client's SPIFFE
// ID must pass the [Authorizer]: [AuthorizeMemberOf] for whole trust
// domains, [AuthorizeID] or [AuthorizeIdentity] for exact IDs, or any
// go-spiffe tlsconfig authorizer. Verification runs on every handshake,
// session resumptions included. Handlers read the verified client ID
// with [PeerID] (or [PeerIdentity], [PeerIDFromState]), which reports
// false for a client without a certificate.
//
// # Outbound calls
//
// A [Transport] is the http.RoundTripper of one workload. For each origin
// configured in [TransportConfig.Origins] (https://host:port) it dials
// TLS directly, presents the workload's SVID and accepts the server only
// if its certificate is a valid X509-SVID whose SPIFFE ID that origin's
// authorizer accepts, say any member of trust domain b.test, or exactly
// spiffe://b.test/api. Requests to every other origin go to the base
// RoundTripper unchanged. Each Transport has its own connection pools, so
// connections, idle ones included, are never shared between workloads:
// create one Transport per identity.
package svidtls
