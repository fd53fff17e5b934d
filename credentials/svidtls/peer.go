package svidtls

import (
	"crypto/tls"
	"net/http"

	"github.com/agenthost/agenthost/credentials"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// PeerID returns the SPIFFE ID of the client of r, as its X509-SVID named
// it, and false for a request without a client certificate (plain HTTP, or
// a client that presented none to an [OptionalClientSVID] server).
//
// The ID is verified only because the server's handshake verified it: use
// PeerID on servers whose TLS configuration comes from [ServerConfig],
// which completes no handshake with a certificate it has not verified and
// authorized. On any other server it reports an unverified claim.
func PeerID(r *http.Request) (spiffeid.ID, bool) {
	return PeerIDFromState(r.TLS)
}

// PeerIDFromState returns the SPIFFE ID of the peer of a completed
// handshake, with the same caveat as [PeerID]: cs must come from a
// connection configured by [ServerConfig] or made by a [Transport]
// (http.Response.TLS). It reports false when cs is nil, the handshake is
// not complete, or the peer presented no certificate or one without a
// single SPIFFE ID.
func PeerIDFromState(cs *tls.ConnectionState) (spiffeid.ID, bool) {
	if cs == nil || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, false
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, false
	}
	return id, true
}

// PeerIdentity is [PeerID] in the credentials vocabulary.
func PeerIdentity(r *http.Request) (credentials.Identity, bool) {
	id, ok := PeerID(r)
	if !ok {
		return credentials.Identity{}, false
	}
	ident, err := credentials.ParseIdentity(id.String())
	if err != nil {
		return credentials.Identity{}, false
	}
	return ident, true
}
