package host

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/plugins/sandbox/sandboxtest"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// escapeAgent tries every escape its task lists (sandboxtest.Targets as
// JSON) and answers with the outcomes.
type escapeAgent struct{}

func (escapeAgent) Describe() sdk.Description {
	return sdk.Description{Name: "escape", Tools: []string{"clock/now"}}
}

func (escapeAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	var targets sandboxtest.Targets
	if err := json.Unmarshal([]byte(t.Input), &targets); err != nil {
		return "", err
	}
	results := sandboxtest.Try(targets)
	// The mediated way out still works.
	if _, err := t.CallTool(ctx, "clock/now", map[string]any{}); err != nil {
		results = append(results, sandboxtest.Result{Attempt: "call a granted tool through the host", Error: err.Error()})
	}
	b, err := json.Marshal(results)
	return string(b), err
}

// hogAgent exhausts what its sandbox allows: "fork" starts processes until
// its task is stopped, "alloc" allocates until it dies.
type hogAgent struct{}

func (hogAgent) Describe() sdk.Description { return sdk.Description{Name: "hog"} }

func (hogAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	switch t.Input {
	case "fork":
		for ctx.Err() == nil {
			cmd := exec.Command("/proc/self/exe")
			cmd.Env = []string{testAgentEnv + "=sleep"}
			if err := cmd.Start(); err != nil {
				time.Sleep(5 * time.Millisecond) // and again, as an attacker would
			}
		}
		return "", ctx.Err()
	case "alloc":
		var keep [][]byte
		for {
			b := make([]byte, 8<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	}
	return "ok", nil
}

// quickstartConfig loads the quickstart configuration, on a free port.
func quickstartConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("..", "..", "examples", "quickstart", "agenthost.yaml"))
	if err != nil {
		t.Fatalf("quickstart config (its agents are built by `make build`): %v", err)
	}
	cfg.Listen.Address = "127.0.0.1:0"
	return cfg
}

// waitAllRunning waits until every agent of the host runs.
func waitAllRunning(ctx context.Context, t *testing.T, dataDir string, n int) []localapi.AgentInfo {
	t.Helper()
	client := localapi.NewClient(filepath.Join(dataDir, localapi.SocketName))
	for {
		agents, err := client.Agents(ctx)
		running := 0
		for _, a := range agents {
			if a.State == "running" && a.PID != 0 {
				running++
			}
		}
		if err == nil && running == n && len(agents) == n {
			return agents
		}
		select {
		case <-ctx.Done():
			t.Fatalf("agents never all running: %+v, %v", agents, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func taskAnswer(ctx context.Context, h *Host, agent, input string) (final, failure string, err error) {
	err = h.RunTask(ctx, localapi.TaskRequest{Agent: agent, Input: input}, func(ev localapi.TaskEvent) error {
		switch ev.Type {
		case "final":
			final = ev.Text
		case "error":
			failure = ev.Text
		}
		return nil
	})
	return final, failure, err
}

// TestSandboxedAgentCannotEscape: an agent plugin running under the
// quickstart host tries every escape an attacker would (the host's data
// directory and environment, its sockets, its listener and the network,
// signals and ptrace, files the host sees, the host's processes, new
// namespaces, mounts, capabilities); every attempt fails with an error the
// plugin can read, the granted tool still works through the host, and the
// host and the quickstart agents keep serving.
func TestSandboxedAgentCannotEscape(t *testing.T) {
	if _, err := sandbox.Probe(); err != nil {
		t.Skipf("strict sandbox not available here (%v); enable unprivileged user namespaces to run this test", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := quickstartConfig(t)
	cfg.Agents = append(cfg.Agents, config.AgentConfig{Name: "escape", Path: exe, Tools: []string{"clock/now"},
		Env: map[string]string{testAgentEnv: "escape"}})
	dir := filepath.Join(t.TempDir(), "data")
	outside := t.TempDir()
	h := runHost(t, cfg, dir)
	agents := waitAllRunning(ctx, t, dir, len(cfg.Agents))
	for _, a := range agents {
		if !strings.HasPrefix(a.Sandbox, "strict: namespaces user,mount,pid,network,ipc,uts") {
			t.Errorf("agent %s runs in %q", a.Name, a.Sandbox)
		}
	}

	var sockets []string
	for _, a := range cfg.Agents {
		if a.Name != "escape" {
			sockets = append(sockets, filepath.Join(dir, workloadDirName, a.Name+".sock"))
		}
	}
	admin := filepath.Join(dir, localapi.SocketName)
	targets := sandboxtest.Targets{
		Files:       []string{filepath.Join(dir, caDirName, caJournalName), filepath.Join(dir, dbFileName), "/etc/shadow"},
		Dirs:        []string{dir, filepath.Join(dir, workloadDirName), outside, os.Getenv("HOME")},
		WriteDirs:   []string{dir, outside},
		WriteFiles:  []string{exe},
		HostPID:     os.Getpid(),
		Sockets:     append(sockets, admin, filepath.Join(dir, workloadDirName, "host.sock")),
		HTTPSockets: []string{admin},
		HTTPPath:    "/v1/agents",
		TCP:         []string{h.Addr(), "192.0.2.1:443"},
	}
	input, _ := json.Marshal(targets)
	final, failure, err := taskAnswer(ctx, h, "escape", string(input))
	if err != nil || failure != "" {
		t.Fatalf("escape task: %v %s", err, failure)
	}
	var results []sandboxtest.Result
	if err := json.Unmarshal([]byte(final), &results); err != nil {
		t.Fatalf("escape results: %v\n%s", err, final)
	}
	if len(results) < 25 {
		t.Fatalf("only %d attempts ran: %+v", len(results), results)
	}
	for _, r := range results {
		t.Log(r)
		if r.Escaped {
			t.Errorf("ESCAPED: %s", r)
		} else if r.Error == "" {
			t.Errorf("%s: refused without an error", r)
		}
	}
	for _, d := range []string{dir, outside} {
		if left, _ := filepath.Glob(filepath.Join(d, "escape-*")); len(left) > 0 {
			t.Errorf("the plugin wrote %v", left)
		}
	}

	// The host keeps serving, and the quickstart agents work in their
	// sandboxes.
	if status, _ := get(t, "http://"+h.Addr()+PathHealth); status != http.StatusOK {
		t.Errorf("health after the escape attempts: %d", status)
	}
	final, failure, err = taskAnswer(ctx, h, "research", "What time is it now?")
	if err != nil || failure != "" || !strings.Contains(final, "The clock/now tool returned: ") {
		t.Errorf("research task: %q %q %v", final, failure, err)
	}
	// The tool plugin, in its own sandbox.
	final, failure, err = taskAnswer(ctx, h, "research", "give me the text stats of: the quick brown fox")
	if err != nil || failure != "" || !strings.Contains(final, "The textkit/stats tool returned: 1 lines, 3 words") {
		t.Errorf("research task with the tool plugin: %q %q %v", final, failure, err)
	}
	final, failure, err = taskAnswer(ctx, h, "assistant", "ask research what time it is")
	if err != nil || failure != "" || final == "" {
		t.Errorf("assistant task: %q %q %v", final, failure, err)
	}

	// Every plugin start was audited with its protections.
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]bool{}
	for _, e := range entries {
		if r := e.Record; r.Action == audit.ActionPluginStart && r.Policy == "sandbox strict" {
			starts[r.Resource] = true
		}
	}
	if want := len(cfg.Agents) + len(cfg.MCP.Plugins) - 1; len(starts) < want { // escape and the test agents share a binary
		t.Errorf("plugin.start records for %d binaries, want %d: %v", len(starts), want, starts)
	}
}

// TestResourceHogIsContained: an agent that forks until its process limit
// or allocates until its memory limit is stopped and started again, and
// the host and another agent keep working meanwhile.
func TestResourceHogIsContained(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's runtime needs more memory than the hog's limit; this test runs without -race")
	}
	if _, err := sandbox.Probe(); err != nil {
		t.Skipf("strict sandbox not available here (%v); enable unprivileged user namespaces to run this test", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	// The hog is this test binary (about 60 MB, with every dependency of
	// the host's tests): its mapped pages count against the limit, so the
	// limit leaves room for a healthy start and still stops the hog.
	limits := config.SandboxConfig{Memory: 256 * config.MiB, Processes: 64}
	cfg.Agents = []config.AgentConfig{
		{Name: "hog", Path: exe, Env: map[string]string{testAgentEnv: "hog"}, TaskTimeout: 3 * time.Second, Sandbox: limits},
		{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}},
	}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	client := localapi.NewClient(filepath.Join(dir, localapi.SocketName))

	for _, mode := range []string{"fork", "alloc"} {
		before := waitAllRunning(ctx, t, dir, 2)
		var hog localapi.AgentInfo
		for _, a := range before {
			if a.Name == "hog" {
				hog = a
			}
		}
		done := make(chan error, 1)
		go func() {
			_, failure, err := taskAnswer(ctx, h, "hog", mode)
			if err == nil && failure != "" {
				err = errors.New(failure)
			}
			done <- err
		}()
		// While the hog runs, the other agent answers.
		if final, failure, err := taskAnswer(ctx, h, "whoami", "who?"); err != nil || failure != "" || final != "spiffe://test.local/agent/whoami" {
			t.Errorf("%s: the other agent: %q %q %v", mode, final, failure, err)
		}
		if err := <-done; err == nil {
			t.Fatalf("%s: the hog's task succeeded", mode)
		}
		// The hog was stopped, everything it started with it, and it runs
		// again.
		if !sandboxtest.Gone(hog.PID, 10*time.Second) {
			t.Errorf("%s: the hog's sandbox (pid %d) is still there", mode, hog.PID)
		}
		for restarted := false; !restarted; {
			for _, a := range waitAllRunning(ctx, t, dir, 2) {
				restarted = restarted || a.Name == "hog" && a.PID != hog.PID && a.Restarts > hog.Restarts
			}
			if !restarted {
				select {
				case <-ctx.Done():
					t.Fatalf("%s: the hog was not restarted", mode)
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		if _, err := client.Agents(ctx); err != nil {
			t.Fatalf("%s: the admin API: %v", mode, err)
		}
	}
	if status, _ := get(t, "http://"+h.Addr()+PathHealth); status != http.StatusOK {
		t.Errorf("health: %d", status)
	}
}
