package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
)

// The test binary doubles as the agent plugin (see TestMain).
const modeEnv = "AGENTHOST_SUPERVISOR_TEST_AGENT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		sdk.Serve(testAgent{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type testAgent struct{}

func (testAgent) Describe() sdk.Description { return sdk.Description{Name: "t"} }

func (testAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	switch t.Input {
	case "crash":
		os.Exit(7)
	case "hang":
		select {} // ignores cancellation, as a stuck agent would
	}
	return "done: " + t.Input, nil
}

func selfSpec(t testing.TB, name string) AgentSpec {
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
	return AgentSpec{Name: name, Path: exe, SHA256: hex.EncodeToString(h.Sum(nil)),
		Env: []string{modeEnv + "=1"}, Host: &pluginpb.UnimplementedHostServer{}}
}

var fast = Config{
	Backoff:      Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2},
	PollInterval: 10 * time.Millisecond,
	TaskDeadline: 2 * time.Second,
}

func start(t *testing.T, cfg Config, specs ...AgentSpec) *Supervisor {
	t.Helper()
	s, err := New(cfg, specs...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("supervisor did not stop")
		}
	})
	return s
}

// wait is a failure guard, not a timing assertion.
func wait(t *testing.T, s *Supervisor, name string, what string, ok func(AgentStatus) bool) AgentStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.WaitFor(ctx, name, ok)
	if err != nil {
		t.Fatalf("waiting for %s: %v (last status %+v)", what, err, st)
	}
	return st
}

func running(st AgentStatus) bool { return st.State == StateRunning && st.PID != 0 }

func runTask(s *Supervisor, name, input string) (string, error) {
	var final string
	err := s.RunTask(context.Background(), name, "task", input, func(ev *pluginpb.RunEvent) error {
		if f := ev.GetFinal(); f != nil {
			final = f.GetText()
		}
		return nil
	})
	return final, err
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2}
	for n, want := range map[int]time.Duration{0: 100 * time.Millisecond, 1: 100 * time.Millisecond,
		2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 1000: time.Second} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestRestartCount(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		prev int
		up   time.Time
		now  time.Time
		want int
	}{
		{"launch failure counts up", 3, time.Time{}, t0, 4},
		{"short-lived plugin counts up", 2, t0, t0.Add(10 * time.Second), 3},
		{"stable plugin starts over", 5, t0, t0.Add(time.Minute), 1},
	}
	for _, tt := range tests {
		if got := restartCount(tt.prev, tt.up, tt.now, time.Minute); got != tt.want {
			t.Errorf("%s: restartCount = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	s := start(t, fast, selfSpec(t, "a"))
	first := wait(t, s, "a", "first start", running)
	if d := s.Status()[0].Description; d == nil || d.GetName() != "t" {
		t.Fatalf("description = %v", d)
	}
	if out, err := runTask(s, "a", "hello"); err != nil || out != "done: hello" {
		t.Fatalf("task = %q, %v", out, err)
	}
	if _, err := runTask(s, "a", "crash"); err == nil {
		t.Fatal("a task whose plugin crashed returned no error")
	}
	second := wait(t, s, "a", "restart", func(st AgentStatus) bool { return running(st) && st.Restarts == 1 })
	if second.PID == first.PID {
		t.Fatalf("restarted plugin has the same pid %d", first.PID)
	}
	if out, err := runTask(s, "a", "again"); err != nil || out != "done: again" {
		t.Fatalf("task after restart = %q, %v", out, err)
	}
}

func TestHungTaskKillsAndRestarts(t *testing.T) {
	cfg := fast
	cfg.TaskDeadline = time.Hour // the agent's own deadline applies
	spec := selfSpec(t, "a")
	spec.TaskDeadline = 300 * time.Millisecond
	s := start(t, cfg, spec)
	first := wait(t, s, "a", "first start", running)
	_, err := runTask(s, "a", "hang")
	if !errors.Is(err, ErrHung) {
		t.Fatalf("hung task error = %v, want ErrHung", err)
	}
	st := wait(t, s, "a", "restart after hang", func(st AgentStatus) bool { return running(st) && st.PID != first.PID })
	if st.Restarts != 1 {
		t.Fatalf("restarts = %d, want 1", st.Restarts)
	}
}

func TestQuarantine(t *testing.T) {
	s := start(t, fast, selfSpec(t, "a"), selfSpec(t, "b"))
	wait(t, s, "a", "a running", running)
	wait(t, s, "b", "b running", running)
	if err := s.Quarantine("a", "operator request"); err != nil {
		t.Fatal(err)
	}
	if _, err := runTask(s, "a", "x"); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("task on a quarantined agent: %v", err)
	}
	st := s.Status()
	if st[0].Name != "a" || st[0].State != StateQuarantined || st[0].PID != 0 || !strings.Contains(st[0].LastError, "operator request") {
		t.Fatalf("status of a = %+v", st[0])
	}
	// The other agent keeps serving.
	if out, err := runTask(s, "b", "y"); err != nil || out != "done: y" {
		t.Fatalf("b after a's quarantine: %q, %v", out, err)
	}
	if err := s.Quarantine("a", "again"); err != nil {
		t.Fatalf("second quarantine: %v", err)
	}
	if err := s.Quarantine("nope", "x"); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("unknown agent: %v", err)
	}
}

func TestChecksumMismatchIsNotRetried(t *testing.T) {
	spec := selfSpec(t, "a")
	spec.SHA256 = strings.Repeat("ab", 32)
	launches := 0
	cfg := fast
	cfg.Launch = func(ctx context.Context, c plugins.Config) (*plugins.Plugin, error) {
		launches++
		return plugins.Launch(ctx, c)
	}
	s := start(t, cfg, spec)
	st := wait(t, s, "a", "failed state", func(st AgentStatus) bool { return st.State == StateFailed })
	if !strings.Contains(st.LastError, "checksum") || launches != 1 {
		t.Fatalf("status %+v after %d launches", st, launches)
	}
	if _, err := runTask(s, "a", "x"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("task on a failed agent: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{}, AgentSpec{Name: "a"}, AgentSpec{Name: "a"}); err == nil {
		t.Fatal("duplicate agent names accepted")
	}
	if _, err := New(Config{}, AgentSpec{}); err == nil {
		t.Fatal("empty agent name accepted")
	}
	if _, err := New(Config{Backoff: Backoff{Initial: time.Second, Max: time.Millisecond, Factor: 2}}); err == nil {
		t.Fatal("backoff with Max < Initial accepted")
	}
}

// TestQuarantinedFromTheStart: an agent quarantined by an earlier run is
// never launched and refuses tasks; released, it is launched and serves.
func TestQuarantinedFromTheStart(t *testing.T) {
	launches := map[string]int{}
	var mu sync.Mutex
	cfg := fast
	cfg.Launch = func(ctx context.Context, c plugins.Config) (*plugins.Plugin, error) {
		mu.Lock()
		launches[c.Name]++
		mu.Unlock()
		return plugins.Launch(ctx, c)
	}
	q := selfSpec(t, "q")
	q.Quarantined = "kept from the last run"
	s := start(t, cfg, q, selfSpec(t, "b"))
	wait(t, s, "b", "b running", running)
	st := s.Status()[1]
	if st.Name != "q" || st.State != StateQuarantined || st.PID != 0 || !strings.Contains(st.LastError, "kept from the last run") {
		t.Fatalf("status of q = %+v", st)
	}
	if _, err := runTask(s, "q", "x"); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("task on q: %v, want ErrQuarantined", err)
	}
	mu.Lock()
	n := launches["q"]
	mu.Unlock()
	if n != 0 {
		t.Fatalf("q was launched %d times while quarantined", n)
	}

	if err := s.Release("q"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wait(t, s, "q", "q running after release", running)
	if out, err := runTask(s, "q", "hello"); err != nil || out != "done: hello" {
		t.Fatalf("task after release = %q, %v", out, err)
	}
	if st := s.Status()[1]; st.LastError != "" || st.Restarts != 0 {
		t.Fatalf("status after release = %+v", st)
	}

	// Quarantined again, then released again: one monitor loop at a time.
	if err := s.Quarantine("q", "again"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("q"); err != nil {
		t.Fatal(err)
	}
	wait(t, s, "q", "q running after the second release", running)
	mu.Lock()
	n = launches["q"]
	mu.Unlock()
	if n != 2 {
		t.Fatalf("q launched %d times, want 2", n)
	}

	tests := []struct {
		name, agent string
		want        error
	}{
		{"running agent", "b", ErrNotQuarantined},
		{"unknown agent", "nope", ErrUnknownAgent},
	}
	for _, tt := range tests {
		if err := s.Release(tt.agent); !errors.Is(err, tt.want) {
			t.Errorf("%s: Release = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestReleaseBeforeRun: an agent released before Run starts is launched by
// Run like any other.
func TestReleaseBeforeRun(t *testing.T) {
	q := selfSpec(t, "q")
	q.Quarantined = "x"
	s, err := New(fast, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release("q"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wait(t, s, "q", "q running", running)
}
