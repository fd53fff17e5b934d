package svidtls

import (
	"crypto/x509"
	"fmt"

	"github.com/agenthost/agenthost/credentials"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Authorizer decides whether a peer whose X509-SVID has been verified may
// complete the handshake; a non-nil error refuses it. It is go-spiffe's
// tlsconfig.Authorizer, so its constructors (AuthorizeIDPrefix,
// AdaptMatcher, ...) work here as well. The chains start at the peer's
// leaf and end at an authority of its trust domain.
type Authorizer = tlsconfig.Authorizer

// AuthorizeAny accepts every peer with a valid X509-SVID of a trust domain
// the bundle source holds. It is meant for servers whose bundle source
// holds only the trust domains they serve.
func AuthorizeAny() Authorizer {
	return tlsconfig.AuthorizeAny()
}

// AuthorizeID accepts a peer whose SPIFFE ID is one of ids. With no ids it
// accepts no peer.
func AuthorizeID(ids ...spiffeid.ID) Authorizer {
	return tlsconfig.AuthorizeOneOf(ids...)
}

// AuthorizeMemberOf accepts a peer whose SPIFFE ID belongs to one of the
// trust domains tds. With no trust domain it accepts no peer.
func AuthorizeMemberOf(tds ...spiffeid.TrustDomain) Authorizer {
	allowed := make(map[spiffeid.TrustDomain]bool, len(tds))
	for _, td := range tds {
		if !td.IsZero() {
			allowed[td] = true
		}
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if !allowed[id.TrustDomain()] {
			return fmt.Errorf("svidtls: trust domain %q is not authorized", id.TrustDomain().Name())
		}
		return nil
	}
}

// AuthorizeIdentity accepts a peer whose SPIFFE ID is one of ids, given in
// the credentials vocabulary. A WIMSE identifier never matches an
// X509-SVID. With no ids it accepts no peer.
func AuthorizeIdentity(ids ...credentials.Identity) Authorizer {
	allowed := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id.Scheme() == credentials.SchemeSPIFFE {
			allowed[id.String()] = true
		}
	}
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		if !allowed[id.String()] {
			return fmt.Errorf("svidtls: %s is not authorized", id)
		}
		return nil
	}
}
