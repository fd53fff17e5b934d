package host

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// TestAttestationIsMeasured: a task's attestation is what the host
// measured of the agent's running plugin process, recorded with its
// digest; against a pin the process does not match, the task is
// unverified, and the Workload API refuses the process an SVID.
func TestAttestationIsMeasured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe, dir, _ := policyFixture(t, "p.cedar")
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	h := runHost(t, cfg, filepath.Join(dir, "data"))
	st, err := h.sup.WaitFor(ctx, "whoami", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning })
	if err != nil {
		t.Fatal(err)
	}
	pinned := h.agentDigests["whoami"]
	if len(pinned) != 64 {
		t.Fatalf("pinned digest %q", pinned)
	}
	if state, digest := h.attestAgent(ctx, "whoami"); state != attestationVerified || digest != pinned {
		t.Fatalf("attestation of the running agent: %s %s, want verified %s", state, digest, pinned)
	}
	if _, _, err := taskAnswer(ctx, h, "whoami", "who am i"); err != nil {
		t.Fatal(err)
	}
	entries, err := h.AuditRead(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, e := range entries {
		if e.Record.Agent == "whoami" && e.Record.Action == "task.run" {
			seen = true
			if e.Record.Attestation != attestationVerified || e.Record.BinarySHA256 != pinned {
				t.Errorf("task record: attestation %q, binary %q", e.Record.Attestation, e.Record.BinarySHA256)
			}
		}
	}
	if !seen {
		t.Fatal("no task record")
	}
	// The plugin process is admitted to its Workload API socket.
	plugin := st.PID
	if p, ok := h.pluginPIDs.Load("whoami"); ok {
		plugin = p.([2]int)[1]
	}
	if err := h.checkAgentPeer("whoami", workloadapi.Peer{PID: plugin}); err != nil {
		t.Fatalf("the agent's own process refused: %v", err)
	}

	// Pinned to another binary: unverified, and no SVID.
	h.agentDigests["whoami"] = strings.Repeat("0", 64)
	defer func() { h.agentDigests["whoami"] = pinned }()
	if state, digest := h.attestAgent(ctx, "whoami"); state != attestationUnverified || digest != pinned {
		t.Fatalf("attestation against another pin: %s %s", state, digest)
	}
	if err := h.checkAgentPeer("whoami", workloadapi.Peer{PID: plugin}); err == nil || !strings.Contains(err.Error(), "pinned binary") {
		t.Fatalf("a process that is not the pinned binary was admitted: %v", err)
	}
}
