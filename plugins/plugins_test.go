package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/plugins/sdk"
)

// The test binary doubles as the agent plugin: started with
// AGENTHOST_TEST_AGENT set, it serves testAgent instead of running tests.
const agentModeEnv = "AGENTHOST_TEST_AGENT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(agentModeEnv); mode == "legacy" {
		serveLegacy()
		os.Exit(0)
	} else if mode == "hang" {
		time.Sleep(time.Hour) // never answers the handshake
		os.Exit(0)
	} else if mode == "tools" {
		sdk.ServeTools(testTools)
		os.Exit(0)
	} else if mode != "" {
		sdk.Serve(testAgent{mode: mode})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type testAgent struct{ mode string }

func (a testAgent) Describe() sdk.Description {
	if a.mode == "describe-hang" {
		time.Sleep(time.Hour) // never answers Describe
	}
	return sdk.Description{Name: "testagent", Version: "1", Tools: []string{"docs/search"},
		Skills: []sdk.Skill{{ID: "echo", Name: "Echo"}}}
}

func (a testAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	switch {
	case a.mode == "crash":
		os.Exit(3)
	case t.Input == "environ":
		return strings.Join(os.Environ(), "\n"), nil
	case t.Input == "fail":
		return "", errors.New("cannot do that")
	}
	if err := t.Think("searching for " + t.Input); err != nil {
		return "", err
	}
	res, err := t.CallTool(ctx, "docs/search", map[string]string{"q": t.Input})
	if err != nil {
		return "", err
	}
	return "tool said: " + res.Text, nil
}

// recordingHost is a Host service that records the calls it receives.
type recordingHost struct {
	pluginpb.UnimplementedHostServer
	name  string
	mu    sync.Mutex
	calls []string
}

func (h *recordingHost) CallTool(_ context.Context, req *pluginpb.CallToolRequest) (*pluginpb.CallToolResponse, error) {
	h.mu.Lock()
	if len(h.calls) < 100 {
		h.calls = append(h.calls, req.GetTaskId()+" "+req.GetTool()+" "+req.GetArgumentsJson())
	}
	h.mu.Unlock()
	return &pluginpb.CallToolResponse{Content: []*pluginpb.Content{{Text: h.name + " results"}}}, nil
}

func selfDigest(t testing.TB) (string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return exe, hex.EncodeToString(h.Sum(nil))
}

func launch(t *testing.T, mode string, host pluginpb.HostServer) *Plugin {
	t.Helper()
	exe, sum := selfDigest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := Launch(ctx, Config{Name: "testagent-" + mode, Path: exe, SHA256: sum, Host: host,
		Env: []string{agentModeEnv + "=" + mode}})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(p.Kill)
	return p
}

func run(t *testing.T, p *Plugin, task, input string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var events []string
	err := p.Run(ctx, task, input, nil, func(ev *pluginpb.RunEvent) error {
		switch e := ev.GetEvent().(type) {
		case *pluginpb.RunEvent_Thought:
			events = append(events, "thought: "+e.Thought.GetText())
		case *pluginpb.RunEvent_ToolCall:
			events = append(events, "tool: "+e.ToolCall.GetTool())
		case *pluginpb.RunEvent_Final:
			events = append(events, "final: "+e.Final.GetText())
		case *pluginpb.RunEvent_Error:
			events = append(events, "error: "+e.Error.GetMessage())
		default:
			events = append(events, fmt.Sprintf("%T", e))
		}
		return nil
	})
	return events, err
}

func TestLaunchDescribeRun(t *testing.T) {
	host := &recordingHost{name: "A"}
	p := launch(t, "ok", host)
	if p.PID() == 0 || p.Exited() {
		t.Fatalf("plugin not running: pid %d exited %v", p.PID(), p.Exited())
	}
	d, err := p.Describe(context.Background())
	if err != nil || d.GetName() != "testagent" || len(d.GetSkills()) != 1 || d.GetTools()[0] != "docs/search" {
		t.Fatalf("Describe = %v, %v", d, err)
	}
	events, err := run(t, p, "task-1", "spiffe")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"thought: searching for spiffe", "tool: docs/search", "final: tool said: A results"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Fatalf("events = %q, want %q", events, want)
	}
	if len(host.calls) != 1 || host.calls[0] != `task-1 docs/search {"q":"spiffe"}` {
		t.Fatalf("host calls = %q", host.calls)
	}
	events, err = run(t, p, "task-2", "fail")
	if err != nil || len(events) != 1 || events[0] != "error: cannot do that" {
		t.Fatalf("failing task: %q, %v", events, err)
	}
}

// TestHostServicePerPlugin: each plugin's calls reach only the Host service
// launched with it, so the host knows the caller from the connection.
func TestHostServicePerPlugin(t *testing.T) {
	hostA, hostB := &recordingHost{name: "A"}, &recordingHost{name: "B"}
	a, b := launch(t, "ok", hostA), launch(t, "ok", hostB)
	if _, err := run(t, a, "ta", "x"); err != nil {
		t.Fatal(err)
	}
	events, err := run(t, b, "tb", "y")
	if err != nil || events[len(events)-1] != "final: tool said: B results" {
		t.Fatalf("plugin B: %q, %v", events, err)
	}
	if len(hostA.calls) != 1 || !strings.HasPrefix(hostA.calls[0], "ta ") ||
		len(hostB.calls) != 1 || !strings.HasPrefix(hostB.calls[0], "tb ") {
		t.Fatalf("calls crossed plugins: A %q, B %q", hostA.calls, hostB.calls)
	}
}

// TestHostEnvironmentNotPassed: a secret in the host's environment never
// reaches the plugin process.
func TestHostEnvironmentNotPassed(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-test-secret-value")
	p := launch(t, "ok", &recordingHost{})
	events, err := run(t, p, "t", "environ")
	if err != nil || len(events) != 1 {
		t.Fatalf("%q, %v", events, err)
	}
	if strings.Contains(events[0], "sk-test-secret-value") || strings.Contains(events[0], "OPENAI_API_KEY") {
		t.Fatalf("the plugin saw the host's secret:\n%s", events[0])
	}
	if !strings.Contains(events[0], agentModeEnv+"=ok") {
		t.Fatalf("the plugin did not get the environment it was given:\n%s", events[0])
	}
}

func TestLaunchRefusals(t *testing.T) {
	exe, sum := selfDigest(t)
	wrong := strings.Repeat("0", 64)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"checksum mismatch", Config{Name: "x", Path: exe, SHA256: wrong, Host: &recordingHost{}, Env: []string{agentModeEnv + "=ok"}}, ErrChecksum},
		{"relative path", Config{Name: "x", Path: "plugins.test", SHA256: sum, Host: &recordingHost{}}, ErrConfig},
		{"bad digest", Config{Name: "x", Path: exe, SHA256: "abc", Host: &recordingHost{}}, ErrConfig},
		{"no host service", Config{Name: "x", Path: exe, SHA256: sum}, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := Launch(ctx, tt.cfg)
			if !errors.Is(err, tt.want) {
				if p != nil {
					p.Kill()
				}
				t.Fatalf("Launch error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCrashDuringRun(t *testing.T) {
	p := launch(t, "crash", &recordingHost{})
	_, err := run(t, p, "t", "anything")
	if err == nil {
		t.Fatal("Run returned no error although the plugin crashed")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !p.Exited() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Exited() {
		t.Fatal("plugin process still running after a crash")
	}
}

// benchLevels are the sandbox levels the benchmarks compare: the strict
// sandbox against a plain child process.
var benchLevels = []sandbox.Level{sandbox.LevelStrict, sandbox.LevelNone}

// TestLaunchCanceledDuringHandshake: a start abandoned while the plugin
// has not answered the handshake ends at once, process included, instead
// of waiting for the handshake's timeout.
func TestLaunchCanceledDuringHandshake(t *testing.T) {
	exe, sum := selfDigest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	type result struct {
		p   *Plugin
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := Launch(ctx, Config{Name: "hang", Path: exe, SHA256: sum, Host: &recordingHost{},
			Env: []string{agentModeEnv + "=hang"}, StartTimeout: 10 * time.Minute})
		done <- result{p, err}
	}()
	select {
	case res := <-done:
		if !errors.Is(res.err, context.DeadlineExceeded) {
			t.Fatalf("Launch = %v, %v", res.p, res.err)
		}
	case <-time.After(time.Minute): // a failure guard far below the handshake timeout
		t.Fatal("Launch waited for the handshake timeout")
	}
}

// TestKillDuringDescribe: Kill ends a plugin that never answers Describe
// without waiting for that call.
func TestKillDuringDescribe(t *testing.T) {
	p := launch(t, "describe-hang", &recordingHost{})
	described := make(chan error, 1)
	go func() {
		_, err := p.Describe(context.Background())
		described <- err
	}()
	for p.mu.TryLock() { // until the Describe is in flight
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	killed := make(chan struct{})
	go func() { p.Kill(); close(killed) }()
	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("Kill waited for the plugin's answer to Describe")
	}
	if err := <-described; err == nil {
		t.Fatal("Describe of a killed plugin succeeded")
	}
}

// TestFailedStartLeavesNoSocketDirectory: a plugin whose sandbox cannot
// start leaves no go-plugin socket directory behind.
func TestFailedStartLeavesNoSocketDirectory(t *testing.T) {
	exe, sum := selfDigest(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, err := Launch(context.Background(), Config{Name: "x", Path: exe, SHA256: sum, Host: &recordingHost{},
		Env: []string{agentModeEnv + "=ok"}, Sandbox: sandbox.Policy{Level: "loose"}})
	if err == nil {
		t.Fatal("Launch with an unknown sandbox level succeeded")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("left in the temporary directory: %v", left)
	}
}

// BenchmarkLaunch measures a plugin's cold start: checksum, process start
// (in its sandbox), handshake with AutoMTLS, Describe, then Kill.
func BenchmarkLaunch(b *testing.B) {
	exe, sum := selfDigest(b)
	ctx := context.Background()
	for _, level := range benchLevels {
		b.Run("sandbox="+string(level), func(b *testing.B) {
			for b.Loop() {
				p, err := Launch(ctx, Config{Name: "bench", Path: exe, SHA256: sum, Host: &recordingHost{},
					Env: []string{agentModeEnv + "=ok"}, Sandbox: sandbox.Policy{Level: level}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Describe(ctx); err != nil {
					b.Fatal(err)
				}
				p.Kill()
			}
		})
	}
}

// BenchmarkRunWithHostCall measures one task on a running plugin: host →
// plugin Run, plugin → host CallTool, events back to the host.
func BenchmarkRunWithHostCall(b *testing.B) {
	exe, sum := selfDigest(b)
	ctx := context.Background()
	for _, level := range benchLevels {
		b.Run("sandbox="+string(level), func(b *testing.B) {
			p, err := Launch(ctx, Config{Name: "bench", Path: exe, SHA256: sum, Host: &recordingHost{},
				Env: []string{agentModeEnv + "=ok"}, Sandbox: sandbox.Policy{Level: level}})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Kill()
			// As the supervisor does after every start.
			if _, err := p.Describe(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Run(ctx, "t", "q", nil, func(*pluginpb.RunEvent) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFirstTaskLongAfterLaunch: go-plugin forgets a broker id the plugin
// has not dialled within 5 seconds of its offer, so the Host service is
// offered per task. A first task started well after launch, and tasks
// after it, still reach the host.
func TestFirstTaskLongAfterLaunch(t *testing.T) {
	host := &recordingHost{name: "A"}
	p := launch(t, "ok", host)
	time.Sleep(5500 * time.Millisecond) // past go-plugin's pending-connection expiry
	for i, task := range []string{"late-1", "late-2", "described-1", "described-2"} {
		if i == 2 {
			// From here on the plugin holds the Host service it took at
			// Describe, also offered long after launch.
			if d, err := p.Describe(context.Background()); err != nil || !d.GetHostConnected() {
				t.Fatalf("Describe = %v, %v", d, err)
			}
		}
		events, err := run(t, p, task, "q")
		if err != nil || len(events) != 3 || events[2] != "final: tool said: A results" {
			t.Fatalf("task %s: %q, %v", task, events, err)
		}
	}
	if len(host.calls) != 4 {
		t.Fatalf("host calls = %q", host.calls)
	}
}
