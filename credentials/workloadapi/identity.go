package workloadapi

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
)

// IDFromIdentity converts an agenthost [credentials.Identity] to the SPIFFE
// ID a [Workload] names. Only spiffe-scheme identities can be served on the
// Workload API.
func IDFromIdentity(id credentials.Identity) (spiffeid.ID, error) {
	if id.Scheme() != credentials.SchemeSPIFFE {
		return spiffeid.ID{}, fmt.Errorf("workloadapi: %q is not a SPIFFE ID: %w", id, credentials.ErrInvalidIdentity)
	}
	sid, err := spiffeid.FromString(id.String())
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("workloadapi: %w: %v", credentials.ErrInvalidIdentity, err)
	}
	return sid, nil
}
