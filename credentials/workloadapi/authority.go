package workloadapi

import (
	"context"
	"crypto"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Authority is what the server needs from the trust-domain CA. The
// credentials/ca CA implements it, and so does [Upstream], which relays
// the SVIDs and bundles of another Workload API instead of issuing them.
type Authority interface {
	// TrustDomain returns the trust domain the authority issues for.
	TrustDomain() spiffeid.TrustDomain

	// NewX509SVID issues an X.509-SVID (SPECS.md §10.2) with a fresh key for
	// id. The chain is leaf first.
	NewX509SVID(ctx context.Context, id spiffeid.ID) (*x509svid.SVID, error)

	// NewJWTSVID issues a JWT-SVID (SPECS.md §10.3) for id and audience and
	// returns it with its expiry.
	NewJWTSVID(ctx context.Context, id spiffeid.ID, audience []string) (string, time.Time, error)

	// NewWITSVID issues a WIT-SVID (SPECS.md §10.4) for id, bound to a fresh
	// key that it returns with the token and its expiry.
	NewWITSVID(ctx context.Context, id spiffeid.ID) (token string, key crypto.Signer, expiresAt time.Time, err error)

	// ValidateJWTSVID validates token for audience and returns its subject
	// and claims. Any error means the token is not acceptable.
	ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error)

	// Bundle returns the trust bundle: X.509, JWT and WIT authorities,
	// including keys prepared for the next rotation.
	Bundle() *spiffebundle.Bundle

	// Subscribe returns a channel that receives a (coalesced) notification
	// after any key or bundle change, and a function that ends the
	// subscription.
	Subscribe() (<-chan struct{}, func())
}

// FederatingAuthority is an [Authority] that also holds the bundles of the
// trust domains its own federates with. The server detects it with a type
// assertion and then serves those bundles too: in the federated_bundles of
// FetchX509SVID and beside the own trust domain's bundle in
// FetchX509Bundles, FetchJWTBundles and FetchWITBundles (SPECS.md §10.6).
// Subscribe must report changes of these bundles as well.
type FederatingAuthority interface {
	Authority

	// FederatedBundles returns the bundle of each federated trust domain,
	// keyed by trust domain; never the authority's own. The caller may
	// keep the result but must not modify the bundles.
	FederatedBundles() map[spiffeid.TrustDomain]*spiffebundle.Bundle
}
