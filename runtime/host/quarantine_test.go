package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// quickstartRules are the quickstart's compliance rules.
var quickstartRules = filepath.Join("..", "..", "examples", "quickstart", "audit-rules.json")

// requireSandbox skips a test of the quickstart host, whose plugins run in
// strict sandboxes, where the kernel has none.
func requireSandbox(t *testing.T) {
	t.Helper()
	if _, err := sandbox.Probe(); err != nil {
		t.Skipf("strict sandbox not available here (%v); enable unprivileged user namespaces to run this test", err)
	}
}

// logBuffer collects a host's log for a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged runs a host on cfg and dataDir with its log in the returned
// buffer; stop ends it and waits until it has released the data directory.
func startLogged(t *testing.T, cfg *config.Config, dataDir string) (h *Host, logs *logBuffer, stop func()) {
	t.Helper()
	logs = &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return h, logs, stop
}

// waitStates waits until every agent named in want is done starting
// (running with a process, quarantined or failed), and fails the test
// unless each is in the state want gives it.
func waitStates(ctx context.Context, t *testing.T, h *Host, want map[string]string) map[string]localapi.AgentInfo {
	t.Helper()
	for {
		got := map[string]localapi.AgentInfo{}
		for _, a := range h.Agents(ctx) {
			got[a.Name] = a
		}
		settled := true
		for name := range want {
			switch a := got[name]; a.State {
			case "quarantined", "failed":
			case "running":
				settled = settled && a.PID != 0
			default:
				settled = false
			}
		}
		if settled {
			for name, state := range want {
				if got[name].State != state {
					t.Fatalf("agent %s is %s, want %s: %+v", name, got[name].State, state, got[name])
				}
			}
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("agents never reached %v: %+v", want, got)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pluginStarts counts the plugin.start records of agent.
func pluginStarts(ctx context.Context, t *testing.T, h *Host, agent string) int {
	t.Helper()
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Record.Action == audit.ActionPluginStart && e.Record.Agent == agent {
			n++
		}
	}
	return n
}

// TestQuarantineSurvivesRestart: a host started again on the same data
// directory keeps a quarantined agent quarantined: never launched, no
// Workload API socket, said so in its log and in its agents' states. Once
// released, the agent runs, and runs after the next restart too.
func TestQuarantineSurvivesRestart(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	all := map[string]string{"research": "running", "payments": "running", "assistant": "running"}

	h, _, stop := startLogged(t, quickstartConfig(t), dir)
	waitStates(ctx, t, h, all)
	if err := h.Quarantine(ctx, "payments", "suspicious transfers"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	stop()

	h, logs, stop := startLogged(t, quickstartConfig(t), dir)
	agents := waitStates(ctx, t, h, map[string]string{"research": "running", "assistant": "running", "payments": "quarantined"})
	if p := agents["payments"]; p.PID != 0 || !strings.Contains(p.LastError, "suspicious transfers") {
		t.Errorf("payments after the restart: %+v", p)
	}
	if n := pluginStarts(ctx, t, h, "payments"); n != 1 {
		t.Errorf("payments was started %d times in both runs, want once (before its quarantine)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, workloadDirName, "payments.sock")); !os.IsNotExist(err) {
		t.Errorf("the quarantined agent has a Workload API socket: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, `msg="agent quarantined: not started" agent=payments reason="suspicious transfers"`) {
		t.Errorf("the host does not say at start that payments is quarantined:\n%s", l)
	}
	if _, _, err := taskAnswer(ctx, h, "payments", "what is the balance of account: bob"); !errors.Is(err, supervisor.ErrQuarantined) {
		t.Errorf("a task on the quarantined agent after the restart: %v", err)
	}
	// The quarantine is in force on the same terms as before the restart.
	if err := h.Quarantine(ctx, "payments", "again"); err != nil {
		t.Errorf("Quarantine of a quarantined agent: %v", err)
	}
	if err := h.Release(ctx, "research", "not quarantined"); !errors.Is(err, localapi.ErrNotQuarantined) {
		t.Errorf("Release of a running agent: %v", err)
	}
	if err := h.Release(ctx, "payments", ""); err == nil {
		t.Error("a release without a reason was accepted")
	}

	// Through the admin API, as `agenthost release` does.
	if err := localapi.NewClient(filepath.Join(dir, localapi.SocketName)).Release(ctx, "payments", "cleared by the operator"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	waitStates(ctx, t, h, all)
	if final, failure, err := taskAnswer(ctx, h, "payments", "what is the balance of account: bob"); err != nil || failure != "" ||
		final != "The payments/balance tool returned: bob: 0.00" {
		t.Errorf("payments after its release: %q %q %v", final, failure, err)
	}
	if v, err := h.AuditCheck(ctx, mustRules(t)); err != nil || len(v) != 0 {
		t.Errorf("audit check after the release: %v, %v", v, err)
	}
	stop()

	h, _, _ = startLogged(t, quickstartConfig(t), dir)
	waitStates(ctx, t, h, all)
}

func mustRules(t *testing.T) audit.Rules {
	t.Helper()
	rules, err := audit.LoadRules(quickstartRules)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestQuarantineRefusalsAreDenials: a task on a quarantined agent, and a
// delegation to one, are refused and audited as denials (so the
// quickstart's compliance rules find no quarantined agent acting), and the
// delegating task fails with an error instead of relaying the refusal as
// its answer.
func TestQuarantineRefusalsAreDenials(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := quickstartConfig(t)
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	waitAllRunning(ctx, t, dir, len(cfg.Agents))
	if err := h.Quarantine(ctx, "payments", "suspicious"); err != nil {
		t.Fatal(err)
	}

	final, failure, err := taskAnswer(ctx, h, "payments", "what is the balance of account: bob")
	if !errors.Is(err, supervisor.ErrQuarantined) || final != "" {
		t.Errorf("task on the quarantined agent: %q %q %v", final, failure, err)
	}
	final, failure, err = taskAnswer(ctx, h, "assistant", "what is the balance of account: bob")
	if err != nil || final != "" || !strings.Contains(failure, "agent payments is quarantined") {
		t.Errorf("delegation to the quarantined agent: final %q, error event %q, %v; want only an error event", final, failure, err)
	}

	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		r := e.Record
		if r.Action == "task.run" || r.Action == "agent.call" {
			got = append(got, strings.Join([]string{r.Agent, r.Action, r.Resource, r.Decision, r.Outcome, r.Policy, r.Reason}, " | "))
		}
	}
	want := []string{
		"payments | task.run | spiffe://agenthost.local/agent/payments | deny | denied | quarantine | quarantined",
		"assistant | agent.call | payments | deny | denied | quarantine | agent payments is quarantined",
		"assistant | task.run | spiffe://agenthost.local/agent/assistant | allow | error | operator | ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("task and delegation records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v, err := h.AuditCheck(ctx, mustRules(t)); err != nil || len(v) != 0 {
		t.Errorf("audit check with the quickstart rules: %v, %v", v, err)
	}
}

// TestDelegationWaitsForARestartedAgent: a delegation to an agent that is
// starting again (here just released from quarantine) waits for it, as
// `agenthost run` does, instead of failing as not running.
func TestDelegationWaitsForARestartedAgent(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	all := map[string]string{"research": "running", "payments": "running", "assistant": "running"}
	h, _, _ := startLogged(t, quickstartConfig(t), dir)
	waitStates(ctx, t, h, all)
	if err := h.Quarantine(ctx, "payments", "checking"); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx, "payments", "checked"); err != nil {
		t.Fatal(err)
	}
	final, failure, err := taskAnswer(ctx, h, "assistant", "what is the balance of account: bob")
	if err != nil || failure != "" || !strings.Contains(final, "payments/balance tool returned") {
		t.Fatalf("delegation right after the release: %q %q %v", final, failure, err)
	}
}

// TestGatedPolicyQuarantine: a quarantined agent is refused every Host call
// whatever its grants (a call already in flight when the quarantine came),
// and a delegation to a quarantined agent is refused; both name the
// quarantine. Other calls are decided by the grants as before.
func TestGatedPolicyQuarantine(t *testing.T) {
	sup, err := supervisor.New(supervisor.Config{},
		supervisor.AgentSpec{Name: "q", Path: "/nonexistent", Quarantined: "suspicious"},
		supervisor.AgentSpec{Name: "a", Path: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	p := gatedPolicy{h: &Host{sup: sup}, grants: mediator.AllowList{
		"q": {Tools: []string{"clock/now"}, Agents: []string{"a"}},
		"a": {Tools: []string{"clock/now"}, Agents: []string{"q"}},
	}}
	tests := []struct {
		caller, action, resource string
		want                     mediator.Decision
	}{
		{"q", mediator.ActionCallTool, "clock/now", mediator.Decision{Policy: "quarantine", Reason: "agent q is quarantined"}},
		{"q", mediator.ActionCallAgent, "a", mediator.Decision{Policy: "quarantine", Reason: "agent q is quarantined"}},
		{"q", mediator.ActionCallTool, "notes/add", mediator.Decision{Policy: "quarantine", Reason: "agent q is quarantined"}},
		{"a", mediator.ActionCallAgent, "q", mediator.Decision{Policy: "quarantine", Reason: "agent q is quarantined"}},
		{"a", mediator.ActionCallTool, "clock/now", mediator.Decision{Allow: true, Policy: "allow-list"}},
		{"a", mediator.ActionCallTool, "notes/add", mediator.Decision{Policy: "allow-list",
			Reason: "notes/add is not in the agent's allow-list", NotGranted: true}},
	}
	for _, tt := range tests {
		d, err := p.Decide(context.Background(), mediator.Request{Caller: mediator.Caller{Agent: tt.caller}, Action: tt.action, Resource: tt.resource})
		if err != nil || d != tt.want {
			t.Errorf("%s %s %s = %+v, %v; want %+v", tt.caller, tt.action, tt.resource, d, err, tt.want)
		}
	}
}

// TestReleaseFailsClosed: a release that cannot serve the agent's Workload
// API socket again changes nothing: the agent stays quarantined in the
// supervisor and in the store (so also for a host started later). Once the
// socket can be served, the release goes through.
func TestReleaseFailsClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	if err := h.Quarantine(ctx, "whoami", "checking"); err != nil {
		t.Fatal(err)
	}
	// A file that is no socket where the socket goes: the Workload API
	// refuses to replace it.
	sock := filepath.Join(dir, workloadDirName, "whoami.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	stored := func() bool {
		t.Helper()
		q, err := h.loadQuarantines(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := q["whoami"]
		return ok
	}
	if err := h.Release(ctx, "whoami", "cleared"); err == nil {
		t.Fatal("the agent was released though its Workload API socket could not be served")
	}
	if !h.sup.Quarantined("whoami") || !stored() {
		t.Fatalf("after a failed release: quarantined %v, stored %v; want both", h.sup.Quarantined("whoami"), stored())
	}
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := h.Release(ctx, "whoami", "cleared"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if h.sup.Quarantined("whoami") || stored() {
		t.Fatalf("after the release: quarantined %v, stored %v; want neither", h.sup.Quarantined("whoami"), stored())
	}
}

// TestQuarantineRevokesCredentials: quarantining an agent ends its
// credentials at once: a JWT-SVID issued to it before is refused by the
// authorization server as a client assertion (it has not expired), and
// the server counts every token naming the agent as revoked.
func TestQuarantineRevokesCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exe, dir, _ := policyFixture(t, "p.cedar")
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	h := runHost(t, cfg, filepath.Join(dir, "data"))
	id := h.agentIDs["whoami"]
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		t.Fatal(err)
	}
	svid, _, err := h.CA().NewJWTSVID(ctx, sid, []string{h.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	assertWith := func() (int, string) {
		form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_assertion_type": {oauth.AssertionJWTSPIFFE},
			"client_assertion": {svid}}
		resp, err := http.PostForm(h.Issuer()+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		e, _ := out["error"].(string)
		return resp.StatusCode, e
	}
	if _, e := assertWith(); e == oauth.CodeInvalidClient {
		t.Fatal("the agent's SVID is refused before the quarantine")
	}
	time.Sleep(1100 * time.Millisecond) // revocation is at second granularity
	if err := h.Quarantine(ctx, "whoami", "suspicious"); err != nil {
		t.Fatal(err)
	}
	if st, e := assertWith(); st != http.StatusUnauthorized || e != oauth.CodeInvalidClient {
		t.Fatalf("the agent's SVID after the quarantine: %d %s", st, e)
	}
	if revoked, err := h.as.SubjectRevoked(ctx, id.String(), h.now().Add(-time.Second)); err != nil || !revoked {
		t.Fatalf("the agent's tokens are not revoked: %v %v", revoked, err)
	}
}
