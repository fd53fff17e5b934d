package host

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// The test binary doubles as an agent plugin (see TestMain).
const testAgentEnv = "AGENTHOST_HOST_TEST_AGENT"

func TestMain(m *testing.M) {
	if dir := os.Getenv(testMCPHostEnv); dir != "" {
		os.Exit(runMCPHost(dir))
	}
	if os.Getenv(testStdioServerEnv) == "1" {
		serveStdioMCP()
		os.Exit(0)
	}
	switch os.Getenv(testAgentEnv) {
	case "":
	case "recorder":
		sdk.Serve(recorderAgent{})
		os.Exit(0)
	case "flood":
		sdk.Serve(floodAgent{})
		os.Exit(0)
	case "tools":
		sdk.ServeTools(testToolSet)
		os.Exit(0)
	case "wait":
		sdk.Serve(waitAgent{})
		os.Exit(0)
	case "escape":
		sdk.Serve(escapeAgent{})
		os.Exit(0)
	case "hog":
		sdk.Serve(hogAgent{})
		os.Exit(0)
	case "sleep":
		time.Sleep(time.Hour)
		os.Exit(0)
	case "probe":
		sdk.Serve(probeAgent{})
		os.Exit(0)
	case "probe-client":
		os.Exit(runProbeClient())
	case "delegator":
		sdk.Serve(delegatorAgent{})
		os.Exit(0)
	case "toolcaller":
		sdk.Serve(toolCallerAgent{})
		os.Exit(0)
	case "transferer":
		sdk.Serve(transfererAgent{})
		os.Exit(0)
	case "caller":
		sdk.Serve(callerAgent{})
		os.Exit(0)
	default:
		sdk.Serve(identityAgent{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitAgent runs each task until the host ends it.
type waitAgent struct{}

func (waitAgent) Describe() sdk.Description { return sdk.Description{Name: "waiter"} }

func (waitAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	if err := t.Think("waiting"); err != nil {
		return "", err
	}
	<-ctx.Done()
	return "", ctx.Err()
}

// identityAgent answers every task with the SPIFFE ID it gets from the
// Workload API socket the host gave it.
type identityAgent struct{}

func (identityAgent) Describe() sdk.Description { return sdk.Description{Name: "whoami"} }

func (identityAgent) Run(ctx context.Context, _ *sdk.Task) (string, error) {
	svid, err := spiffewl.FetchX509SVID(ctx, spiffewl.WithAddr(os.Getenv("SPIFFE_ENDPOINT_SOCKET")))
	if err != nil {
		return "", err
	}
	return svid.ID.String(), nil
}

func TestHostRunsConfiguredAgent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Options{Config: cfg, DataDir: dir, Stderr: io.Discard})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Wait (as a failure guard) until the supervisor has the plugin up.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	var agents []localapi.AgentInfo
	for {
		agents, err = localapi.NewClient(filepath.Join(dir, localapi.SocketName)).Agents(wctx)
		if err == nil && len(agents) == 1 && agents[0].State == "running" {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatalf("agent never running: %+v, %v", agents, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	a := agents[0]
	if a.Identity != "spiffe://test.local/agent/whoami" || a.PID == 0 || a.SVIDExpiresAt == nil {
		t.Fatalf("agent info = %+v", a)
	}

	// The plugin process gets its own identity from its own socket.
	var final string
	err = h.RunTask(wctx, localapi.TaskRequest{Agent: "whoami", Input: "who am I?"}, func(ev localapi.TaskEvent) error {
		switch ev.Type {
		case "final":
			final = ev.Text
		case "error":
			t.Errorf("agent error: %s", ev.Text)
		}
		return nil
	})
	if err != nil || final != "spiffe://test.local/agent/whoami" {
		t.Fatalf("RunTask = %q, %v", final, err)
	}
	if err := h.RunTask(wctx, localapi.TaskRequest{Agent: "nobody", Input: "x"}, func(localapi.TaskEvent) error { return nil }); err == nil {
		t.Fatal("a task on an unknown agent started")
	}

	// Any other process, even of the same user, is refused on that socket.
	sock := "unix://" + filepath.Join(dir, workloadDirName, "whoami.sock")
	_, err = spiffewl.FetchX509SVID(wctx, spiffewl.WithAddr(sock))
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("another process on the agent's socket: %v, want PermissionDenied", err)
	}

	// Quarantine: the plugin stops, tasks are refused, the agent's socket
	// (its credentials) is gone, and the remediation is audited.
	if err := h.Quarantine(wctx, "whoami", "test remediation"); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	agents, err = localapi.NewClient(filepath.Join(dir, localapi.SocketName)).Agents(wctx)
	if err != nil || agents[0].State != "quarantined" || agents[0].PID != 0 {
		t.Fatalf("after quarantine: %+v, %v", agents, err)
	}
	if err := h.RunTask(wctx, localapi.TaskRequest{Agent: "whoami", Input: "x"}, func(localapi.TaskEvent) error { return nil }); err == nil {
		t.Fatal("a quarantined agent ran a task")
	}
	if _, err := os.Stat(filepath.Join(dir, workloadDirName, "whoami.sock")); !os.IsNotExist(err) {
		t.Fatalf("the quarantined agent's Workload API socket is still there: %v", err)
	}
	entries, err := h.Store().Read(wctx, audit.RecordsLog, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var audited bool
	for _, e := range entries {
		audited = audited || strings.Contains(string(e.Data), `"action":"remediation"`) && strings.Contains(string(e.Data), `"remedy":"quarantine"`) && strings.Contains(string(e.Data), "test remediation")
	}
	if !audited {
		t.Fatal("the quarantine is not in the audit log")
	}
	if err := h.Quarantine(wctx, "nobody", "x"); !errors.Is(err, localapi.ErrUnknownAgent) {
		t.Fatalf("Quarantine of an unknown agent: %v", err)
	}
}

// floodAgent streams thoughts without end.
type floodAgent struct{}

func (floodAgent) Describe() sdk.Description { return sdk.Description{Name: "flood"} }

func (floodAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	for {
		if err := t.Think("again"); err != nil {
			return "", err
		}
	}
}

// TestFloodingAgentFailsItsTaskOnly: an agent that floods events has its
// task failed with ErrTaskFlood, and another agent keeps serving.
func TestFloodingAgentFailsItsTaskOnly(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{
		{Name: "flood", Path: exe, Env: map[string]string{testAgentEnv: "flood"}},
		{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	run := func(agent string) (string, int, error) {
		for {
			var final string
			n := 0
			err := h.RunTask(wctx, localapi.TaskRequest{Agent: agent, Input: "x"}, func(ev localapi.TaskEvent) error {
				n++
				if ev.Type == "final" {
					final = ev.Text
				}
				return nil
			})
			if err != nil && strings.Contains(err.Error(), "not running") && wctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // still starting
				continue
			}
			return final, n, err
		}
	}
	_, n, err := run("flood")
	if !errors.Is(err, ErrTaskFlood) || n != MaxTaskEvents {
		t.Fatalf("flood task: %d events, %v", n, err)
	}
	// The failure is recorded with its reason.
	entries, err := h.Store().Read(wctx, audit.RecordsLog, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var recorded bool
	for _, e := range entries {
		s := string(e.Data)
		recorded = recorded || strings.Contains(s, `"action":"task.run"`) && strings.Contains(s, `"agent":"flood"`) &&
			strings.Contains(s, `"outcome":"error"`) && strings.Contains(s, "more than 10000 events")
	}
	if !recorded {
		t.Fatal("the flooded task's failure is not in the audit log")
	}
	final, _, err := run("whoami")
	if err != nil || final != "spiffe://test.local/agent/whoami" {
		t.Fatalf("the other agent after a flood: %q, %v", final, err)
	}
}
