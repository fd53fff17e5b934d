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

// X509SVIDExpiry returns when the X.509-SVID the server currently serves
// for id (a workload's ID or one of its ExtraIDs) expires; false if no
// socket serves id or it has none.
func (s *Server) X509SVIDExpiry(id spiffeid.ID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wl := s.workloadServingLocked(id)
	if wl == nil {
		return time.Time{}, false
	}
	entry := wl.x509[id]
	if entry == nil || entry.svid == nil || len(entry.svid.Certificates) == 0 {
		return time.Time{}, false
	}
	return entry.svid.Certificates[0].NotAfter, true
}

// workloadServingLocked returns the workload whose socket serves id, or
// nil; s.mu must be held.
func (s *Server) workloadServingLocked(id spiffeid.ID) *workload {
	if wl, ok := s.workloads[id]; ok {
		return wl
	}
	for _, wl := range s.workloads {
		if wl.serves(id) {
			return wl
		}
	}
	return nil
}
