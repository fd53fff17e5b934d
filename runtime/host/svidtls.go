package host

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/agenthost/agenthost/runtime/audit"
)

// SVID TLS between hosts (listen.tls.svid, federation.trust_domains[].
// peers). The listener serves the host's X.509-SVID, renewed at half its
// lifetime (the "svid" task) without dropping connections. A client
// certificate stays optional, since OAuth clients and browsers connect
// without one; a client that presents one must present an X.509-SVID of
// this trust domain or a federated one, verified with that domain's
// bundle, and one listen.tls.peers names when it is set. Outbound, a
// call from an agent to a peer origin of a federated domain presents the
// agent's own X.509-SVID and accepts only an SVID of that domain as the
// server's certificate: each agent has its own transport, so no
// connection is ever shared between identities.

// svidServerTLS is the listener's TLS configuration with the host's SVID.
func (h *Host) svidServerTLS(ctx context.Context) (*tls.Config, error) {
	issue, err := svidtls.IssueFor(h.ident, h.hostID)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	rot, err := svidtls.NewRotating(ctx, svidtls.RotatingConfig{Issue: issue, Now: h.now, Logger: h.log.With("component", "svidtls")})
	if err != nil {
		return nil, fmt.Errorf("host: listen.tls.svid: %w", err)
	}
	h.tasks = append(h.tasks, Task{Name: "svid", Run: rot.Run})
	var auth svidtls.Authorizer
	if peers := h.cfg.Listen.TLS.Peers; len(peers) > 0 {
		auth, err = svidtls.ParseAuthorizer(peers)
	} else {
		auth, err = svidtls.AuthorizeTrustDomains(h.trustDomains()...)
	}
	if err != nil {
		return nil, fmt.Errorf("host: listen.tls.peers: %w", err)
	}
	cfg, err := svidtls.ServerConfig(rot, h.federation, svidtls.ServerOptions{ClientCerts: svidtls.OptionalClientSVID,
		Authorizer: auth, OnRefuse: h.tlsPeerRefused, Now: h.now, Logger: h.log.With("component", "svidtls")})
	if err != nil {
		return nil, fmt.Errorf("host: listen.tls.svid: %w", err)
	}
	return cfg, nil
}

// trustDomains are this host's trust domain and the federated ones.
func (h *Host) trustDomains() []string {
	tds := []string{h.cfg.TrustDomain}
	for _, d := range h.cfg.Federation.TrustDomains {
		tds = append(tds, d.Name)
	}
	return tds
}

// newPeerTransports prepares the workloads' transports to the federated
// domains' peers (federation.trust_domains[].peers): each workload's own
// SVID to those origins, http.DefaultTransport for every other.
func (h *Host) newPeerTransports() error {
	origins := map[string]svidtls.Authorizer{}
	for _, d := range h.cfg.Federation.TrustDomains {
		auth, err := svidtls.AuthorizeTrustDomains(d.Name)
		if err != nil {
			return fmt.Errorf("host: federation.trust_domains %s: %w", d.Name, err)
		}
		for _, p := range d.Peers {
			origins[p] = auth
		}
	}
	h.peers = svidtls.NewTransports(svidtls.TransportsConfig{Issuer: h.ident, Bundles: h.federation, Origins: origins,
		Base: http.DefaultTransport, Now: h.now, Logger: h.log.With("component", "svidtls")})
	h.closers = append(h.closers, h.peers.Close)
	return nil
}

// peerTransport is the round tripper of workload id's outbound calls:
// http.DefaultTransport itself but for the federated domains' peers.
func (h *Host) peerTransport(id credentials.Identity) (http.RoundTripper, error) {
	rt, err := h.peers.For(id)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return rt, nil
}

// actionTLSPeer records a client certificate the listener refused.
const actionTLSPeer = "tls.peer"

// tlsPeerRefused audits a client the SVID listener refused at the
// handshake: at most one record per claimed SPIFFE ID per interval, with
// the count of those left out, since anyone can try a handshake.
func (h *Host) tlsPeerRefused(peerID string, err error) {
	door := "tls " + peerID
	n := h.doors.note(door, 0)
	if !n.record || h.audit == nil {
		return
	}
	reason := err.Error()
	if n.suppressed > 0 {
		reason += fmt.Sprintf("; %d later refusals of the same certificate within %s were not recorded", n.suppressed, doorAuditInterval)
	}
	resource := peerID
	if resource == "" {
		resource = "no SPIFFE ID"
	}
	rec := audit.Record{Time: h.now().UTC(), Action: actionTLSPeer, Resource: resource, Decision: audit.DecisionDeny,
		Policy: "svid tls", Reason: reason, Outcome: audit.OutcomeDenied}
	if err := h.audit.Append(context.Background(), rec); err != nil {
		h.log.Error("could not record a refused TLS peer", "peer", peerID, "error", err)
	}
}
