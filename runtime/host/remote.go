package host

import (
	"fmt"
	"maps"

	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

// addRemoteTools adds every configured remote tool (runtime/remotetools)
// to tools as "<remote>/<tool>". The remotes get from the host what is
// the host's: each workload's token client (its JWT-SVID, or the client
// identity cimd.go resolves, at the remote's authorization server), whom
// a call is made for (the task's user along the delegation chain, or the
// agent: delegation.go, chaining.go) and the transport to a federated
// domain's peer (svidtls.go).
func (h *Host) addRemoteTools(tools map[string]mediator.Tool) error {
	remotes, err := remotetools.New(remotetools.Config{
		Remotes:     h.cfg.MCP.Remotes,
		TrustDomain: h.cfg.TrustDomain,
		TokenClient: h.remoteTokenClient,
		Subject:     h.remoteSubject,
		Transport:   h.peerTransport,
		Now:         h.now,
		Logger:      h.log,
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.remotes = remotes
	h.closers = append(h.closers, remotes.Close)
	maps.Copy(tools, remotes.Tools())
	return nil
}
