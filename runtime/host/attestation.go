package host

// Attestation of agent plugins (DESIGN §6): the evidence about a running
// plugin process (credentials/attest: its executable's SHA-256, pid, uid)
// is checked against the digest the host measured and pinned when it
// launched the agent. The Workload API issues an SVID only to a caller
// whose evidence matches; every task carries the result, so policy and
// the audit log see what was measured, not an assumption.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/credentials/attest"
)

// Attestation states of a task's agent.
const (
	// attestationVerified: the agent's running plugin process was measured
	// and its executable matched the pinned digest.
	attestationVerified = "verified"
	// attestationUnverified: it could not be measured, or did not match.
	attestationUnverified = "unverified"
)

// attestTimeout bounds one measurement (hashing a binary not measured in
// the last minute).
const attestTimeout = 10 * time.Second

// checkPeerBinary admits a Workload API caller only if the executable it
// runs is the agent's pinned binary.
func (h *Host) checkPeerBinary(agent string, pid int) error {
	pinned := h.agentDigests[agent]
	if pinned == "" {
		return fmt.Errorf("agent %s has no pinned binary digest", agent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), attestTimeout)
	defer cancel()
	e, err := h.evidence.get(ctx, pid)
	if err != nil {
		return fmt.Errorf("no attestation evidence about pid %d: %w", pid, err)
	}
	if err := attest.Verify(e, attest.Policy{SHA256: pinned}); err != nil {
		return fmt.Errorf("pid %d is not agent %s's pinned binary: %w", pid, agent, err)
	}
	return nil
}

// attestAgent measures agent's running plugin process (the process the
// supervisor started, or under a sandbox the init's only child) and
// returns its attestation state and the measured digest.
func (h *Host) attestAgent(ctx context.Context, agent string) (state, digest string) {
	pinned := h.agentDigests[agent]
	root := 0
	for _, st := range h.sup.Status() {
		if st.Name == agent {
			root = st.PID
			break
		}
	}
	if root == 0 || pinned == "" || h.evidence == nil {
		return attestationUnverified, ""
	}
	ctx, cancel := context.WithTimeout(ctx, attestTimeout)
	defer cancel()
	pid := root
	if p, ok := h.pluginPIDs.Load(agent); ok && p.([2]int)[0] == root {
		pid = p.([2]int)[1]
	}
	e, err := h.evidence.get(ctx, pid)
	if err == nil && e.SHA256 != pinned && pid == root {
		// A sandbox's init: the plugin is its only child.
		if kids, kerr := attest.Children(root); kerr == nil && len(kids) == 1 {
			if ke, kerr := h.evidence.get(ctx, kids[0]); kerr == nil {
				e, pid = ke, kids[0]
				h.pluginPIDs.Store(agent, [2]int{root, pid})
			}
		}
	}
	if err != nil {
		h.log.WarnContext(ctx, "agent not attested: no evidence", slog.String("agent", agent), slog.Int("pid", pid),
			slog.Any("error", err))
		return attestationUnverified, ""
	}
	if err := attest.Verify(e, attest.Policy{SHA256: pinned}); err != nil {
		h.log.WarnContext(ctx, "agent not attested", slog.String("agent", agent), slog.Int("pid", pid),
			slog.Any("error", err))
		return attestationUnverified, e.SHA256
	}
	return attestationVerified, e.SHA256
}
