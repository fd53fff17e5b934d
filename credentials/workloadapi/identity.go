package workloadapi

import (
	"fmt"
	"time"

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

// X509SVIDExpiry returns when the X.509-SVID the server currently serves on
// the workload's socket expires; false if id is not registered or has none.
func (s *Server) X509SVIDExpiry(id spiffeid.ID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wl, ok := s.workloads[id]
	if !ok || wl.x509 == nil || wl.x509.svid == nil || len(wl.x509.svid.Certificates) == 0 {
		return time.Time{}, false
	}
	return wl.x509.svid.Certificates[0].NotAfter, true
}
