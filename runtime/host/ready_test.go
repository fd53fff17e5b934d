package host

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

func TestReadinessOf(t *testing.T) {
	st := func(name string, s supervisor.State) supervisor.AgentStatus {
		return supervisor.AgentStatus{Name: name, State: s}
	}
	tests := []struct {
		name string
		sts  []supervisor.AgentStatus
		want Readiness
	}{
		{"no agents", nil, Readiness{Status: "ready"}},
		{"all running", []supervisor.AgentStatus{st("a", supervisor.StateRunning), st("b", supervisor.StateRunning)},
			Readiness{Status: "ready", Agents: 2, Running: 2}},
		{"failed and quarantined agents are settled",
			[]supervisor.AgentStatus{st("a", supervisor.StateRunning), st("b", supervisor.StateFailed), st("c", supervisor.StateQuarantined)},
			Readiness{Status: "ready", Agents: 3, Running: 1, Down: 2}},
		{"not started yet", []supervisor.AgentStatus{st("a", supervisor.StateStopped)},
			Readiness{Status: "starting", Agents: 1, Starting: []AgentStarting{{"a", "stopped"}}}},
		{"starting and restarting",
			[]supervisor.AgentStatus{st("a", supervisor.StateStarting), st("b", supervisor.StateRunning), st("c", supervisor.StateBackoff), st("d", supervisor.StateFailed)},
			Readiness{Status: "starting", Agents: 4, Running: 1, Down: 1, Starting: []AgentStarting{{"a", "starting"}, {"c", "backoff"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readinessOf(tt.sts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("readiness (-want +got):\n%s", diff)
			}
			if got.Ready() != (tt.want.Status == "ready") {
				t.Fatalf("Ready() = %v for status %s", got.Ready(), got.Status)
			}
		})
	}
}

// TestReadyz runs a host with an agent that starts and one that never
// does: /healthz answers at once, /readyz only once the second agent is
// settled (here: quarantined); a task sent before its agent runs waits for
// it, and a 1 MiB task reaches the plugin.
func TestReadyz(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{
		{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}},
		// Its plugin prints something else than the handshake and exits,
		// so the supervisor restarts it again and again.
		{Name: "slow", Path: exe, Env: map[string]string{testAgentEnv: "probe-client"}},
	}
	dir := filepath.Join(t.TempDir(), "data")
	base, stop := startHostAt(t, dir, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := localapi.NewClient(filepath.Join(dir, localapi.SocketName))

	if code, body := get(t, base+PathHealth); code != http.StatusOK {
		t.Fatalf("healthz = %d %s", code, body)
	}
	readyz := func() (int, Readiness) {
		t.Helper()
		code, body := get(t, base+PathReady)
		var r Readiness
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("readyz = %d %s: %v", code, body, err)
		}
		return code, r
	}

	// Sent at once, while the host is still starting the agent.
	input := strings.Repeat("who am I? ", localapi.MaxTaskInput/10)
	var final string
	if err := c.RunTaskWait(ctx, localapi.TaskRequest{Agent: "whoami", Input: input}, localapi.TaskWait{Timeout: 30 * time.Second},
		func(ev localapi.TaskEvent) {
			if ev.Type == "final" || ev.Type == "error" {
				final = ev.Type + ": " + ev.Text
			}
		}); err != nil {
		t.Fatalf("task of %d bytes: %v", len(input), err)
	}
	if final != "final: spiffe://test.local/agent/whoami" {
		t.Fatalf("task of %d bytes ended with %q", len(input), final)
	}

	code, r := readyz()
	if code != http.StatusServiceUnavailable || r.Status != "starting" || r.Agents != 2 || r.Running != 1 ||
		len(r.Starting) != 1 || r.Starting[0].Agent != "slow" || localapi.AgentSettled(r.Starting[0].State) {
		t.Fatalf("readyz while slow starts = %d %+v", code, r)
	}
	err = c.RunTask(ctx, localapi.TaskRequest{Agent: "slow", Input: "x"}, func(localapi.TaskEvent) {})
	if se := (*localapi.AgentStateError)(nil); !errors.Is(err, localapi.ErrAgentStarting) || !errors.As(err, &se) || se.Agent != "slow" {
		t.Fatalf("task for a starting agent: %v", err)
	}

	if err := c.Quarantine(ctx, "slow", "never starts"); err != nil {
		t.Fatal(err)
	}
	if code, r := readyz(); code != http.StatusOK || r.Status != "ready" || r.Running != 1 || r.Down != 1 || len(r.Starting) != 0 {
		t.Fatalf("readyz once slow is quarantined = %d %+v", code, r)
	}
	t0 := time.Now()
	err = c.RunTaskWait(ctx, localapi.TaskRequest{Agent: "slow", Input: "x"}, localapi.TaskWait{Timeout: 30 * time.Second}, func(localapi.TaskEvent) {})
	if !errors.Is(err, localapi.ErrAgentUnavailable) || !strings.Contains(err.Error(), "agent slow is quarantined: never starts") {
		t.Fatalf("task for a quarantined agent: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("a quarantined agent was waited for (%s)", d)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestReadyzMethods(t *testing.T) {
	base, _ := startHost(t, filepath.Join(t.TempDir(), "data"))
	req, err := http.NewRequest(http.MethodPost, base+PathReady, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /readyz = %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
	// A host without agents is ready as soon as it serves.
	if code, body := get(t, base+PathReady); code != http.StatusOK || !strings.Contains(string(body), `"status":"ready"`) {
		t.Fatalf("readyz without agents = %d %s", code, body)
	}
}
