package host

import (
	"encoding/json"
	"net/http"

	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// PathReady answers 200 once the host has finished starting its agents
// and 503 while it has not; see [Readiness].
const PathReady = "/readyz"

// Readiness statuses.
const (
	ReadyStatusReady    = "ready"
	ReadyStatusStarting = "starting"
)

// Readiness is whether the host has finished starting its agents, as GET
// /readyz answers it. The host is ready when the supervisor is starting
// nothing: every configured agent is running, or failed for good, or is
// quarantined. It is not while an agent is starting, waiting to restart
// after an exit (backoff), or not started yet; so readiness is lost again
// while a crashed agent restarts.
//
// The endpoint is public, like /healthz: it names the agents still
// starting, but only counts those that will not run (failed or
// quarantined); `agenthost agents` shows them and why.
type Readiness struct {
	// Status is ReadyStatusReady or ReadyStatusStarting.
	Status string `json:"status"`
	// Agents is how many agents are configured, Running how many run.
	Agents  int `json:"agents"`
	Running int `json:"running"`
	// Down is how many agents will not run: failed or quarantined.
	Down int `json:"down"`
	// Starting lists the agents the supervisor is still starting.
	Starting []AgentStarting `json:"starting,omitempty"`
}

// AgentStarting is an agent that is not running yet.
type AgentStarting struct {
	Agent string `json:"agent"`
	// State is starting, backoff or stopped.
	State string `json:"state"`
}

// Ready reports whether r says the host is ready.
func (r Readiness) Ready() bool { return r.Status == ReadyStatusReady }

// readinessOf is the readiness of agents in these states.
func readinessOf(sts []supervisor.AgentStatus) Readiness {
	r := Readiness{Status: ReadyStatusReady, Agents: len(sts)}
	for _, st := range sts {
		state := string(st.State)
		switch {
		case state == localapi.StateRunning:
			r.Running++
		case localapi.AgentSettled(state):
			r.Down++
		default:
			r.Status = ReadyStatusStarting
			r.Starting = append(r.Starting, AgentStarting{Agent: st.Name, State: state})
		}
	}
	return r
}

// Readiness says whether the host has finished starting its agents.
func (h *Host) Readiness() Readiness { return readinessOf(h.sup.Status()) }

// handleReady serves GET /readyz: 200 with the [Readiness] when ready, 503
// with it while not.
func (h *Host) handleReady(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rd := h.Readiness()
	code := http.StatusOK
	if !rd.Ready() {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(rd)
}
