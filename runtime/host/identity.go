package host

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/workloadapi"
)

// identitySource is where the host's and its agents' SVIDs and the trust
// bundle come from: the host's own trust-domain CA (the default), or an
// upstream SPIFFE Workload API such as a SPIRE agent's
// (identity.workload_api). Everything else in the host asks it, never
// the CA directly.
type identitySource interface {
	workloadapi.Authority
	// Run keeps the credentials current until ctx ends.
	Run(ctx context.Context) error
}

// bundleJSON is the trust domain's bundle in the SPIFFE bundle format.
func (h *Host) bundleJSON() []byte {
	if h.ca != nil {
		return h.ca.BundleJSON()
	}
	b, err := h.ident.Bundle().Marshal()
	if err != nil {
		// A bundle assembled from an upstream's authorities always
		// marshals; an empty key set refuses every SVID, as it should.
		return []byte(`{"keys":[]}`)
	}
	return b
}

// bundleHandler serves the trust domain's bundle at PathSPIFFEBundle.
func (h *Host) bundleHandler() http.Handler {
	if h.ca != nil {
		return h.ca.BundleHandler()
	}
	return ca.NewBundleHandler(func() ([]byte, time.Duration) {
		hint := upstreamRefreshHint
		if d, ok := h.ident.Bundle().RefreshHint(); ok && d > 0 {
			hint = d
		}
		return h.bundleJSON(), hint
	})
}

// upstreamRefreshHint is the refresh hint served with an upstream's
// bundle that names none.
const upstreamRefreshHint = 5 * time.Minute

// upstreamIdentity is an upstream Workload API as the identity source.
type upstreamIdentity struct{ *workloadapi.Upstream }

// Run has nothing to keep current: the upstream streams its updates.
func (upstreamIdentity) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// newUpstreamIdentity connects to identity.workload_api and waits for its
// first SVIDs and bundles. The upstream must serve the trust domain of
// the configuration, the host's own SPIFFE ID and every agent's: a
// registration still missing after upstreamEntryWait is reported at
// start, naming each ID, rather than at the first task.
func (h *Host) newUpstreamIdentity(ctx context.Context) error {
	addr := h.cfg.Identity.WorkloadAPI
	u, err := workloadapi.NewUpstream(workloadapi.UpstreamConfig{Addr: addr, Now: h.now,
		Logger: h.log.With("component", "workloadapi", "upstream", addr)})
	if err != nil {
		return fmt.Errorf("host: identity.workload_api: %w", err)
	}
	h.closers = append(h.closers, func() { _ = u.Close() })
	if err := u.Start(ctx); err != nil {
		return fmt.Errorf("host: identity.workload_api: %w", err)
	}
	if td := u.TrustDomain().Name(); td != h.cfg.TrustDomain {
		return fmt.Errorf("host: identity.workload_api %s serves trust domain %s, not trust_domain %s", addr, td, h.cfg.TrustDomain)
	}
	want := []string{h.hostID.String()}
	for _, a := range h.cfg.Agents {
		id, err := credentials.AgentIdentity(h.cfg.TrustDomain, a.Name)
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		want = append(want, id.String())
	}
	// Entries created just before the start reach a SPIRE agent at its
	// next sync: wait for them a while, watching the upstream's updates
	// (subscribed before the first look, so that none is missed).
	updates, stop := u.Subscribe()
	defer stop()
	missing := missingIDs(u, want)
	if len(missing) > 0 {
		h.log.Info("waiting for the Workload API's registration entries", slog.String("address", addr),
			slog.String("missing", strings.Join(missing, ", ")), slog.Duration("up_to", upstreamEntryWait))
		timer := time.NewTimer(upstreamEntryWait)
		defer timer.Stop()
		for len(missing) > 0 {
			select {
			case <-updates:
				missing = missingIDs(u, want)
			case <-timer.C:
				return fmt.Errorf("host: identity.workload_api %s has no registration entry for %s (waited %s): register the host's workload under each of these SPIFFE IDs",
					addr, strings.Join(missing, ", "), upstreamEntryWait)
			case <-ctx.Done():
				return fmt.Errorf("host: identity.workload_api %s: waiting for registration entries of %s: %w", addr, strings.Join(missing, ", "), ctx.Err())
			}
		}
	}
	h.ident = upstreamIdentity{u}
	h.log.Info("identities from the Workload API", slog.String("address", addr), slog.Int("ids", len(u.IDs())))
	return nil
}

// upstreamEntryWait bounds how long a start waits for identities the
// upstream does not serve yet. A SPIRE agent syncs its entries every 5s
// by default; a start soon after the entries were created finds them
// within one or two syncs.
var upstreamEntryWait = 30 * time.Second

// missingIDs returns the IDs of want that u serves no SVID for.
func missingIDs(u *workloadapi.Upstream, want []string) []string {
	served := map[string]bool{}
	for _, id := range u.IDs() {
		served[id.String()] = true
	}
	var missing []string
	for _, id := range want {
		if !served[id] {
			missing = append(missing, id)
		}
	}
	return missing
}
