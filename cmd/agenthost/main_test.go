package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/sandbox/sandboxtest"
)

// TestUpServesAndStopsOnSignal builds the real binary, starts `agenthost up`,
// checks /healthz, then sends SIGINT or SIGTERM and requires a clean exit
// (status 0) within 5 seconds.
func TestUpServesAndStopsOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "agenthost")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			cfg := filepath.Join(dir, "agenthost.yaml")
			if err := os.WriteFile(cfg, fmt.Appendf(nil, "version: 1\nlisten:\n  address: %s\n", addr), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, "up", "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-done
				}
			}()

			if err := waitHealthy("http://"+addr+"/healthz", done); err != nil {
				t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			// A CLI command finds the running host through --data-dir.
			status, err := exec.Command(bin, "status", "--data-dir", filepath.Join(dir, "data")).CombinedOutput()
			if err != nil || !strings.Contains(string(status), "health        200 OK") ||
				!strings.Contains(string(status), "listening on  "+addr) {
				t.Errorf("status: %v\n%s", err, status)
			}

			agents, err := exec.Command(bin, "agents", "--data-dir", filepath.Join(dir, "data")).CombinedOutput()
			if err != nil || !strings.Contains(string(agents), "no agents configured") {
				t.Errorf("agents: %v\n%s", err, agents)
			}

			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %v: %v\nstderr:\n%s", sig, err, &stderr)
				}
				if d := time.Since(sent); d > 5*time.Second {
					t.Fatalf("shutdown took %v, want at most 5s", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no exit 10s after %v\nstderr:\n%s", sig, &stderr)
			}
			if !strings.Contains(stdout.String(), "trust domain   agenthost.local") {
				t.Errorf("start banner missing:\n%s", &stdout)
			}
			if !strings.Contains(stderr.String(), "host stopped") {
				t.Errorf("no clean-stop log line:\n%s", &stderr)
			}
		})
	}
}

// TestRunResearchAgent is the quickstart flow against the real binaries:
// the host runs the research example agent on the offline model, and
// `agenthost run` shows the model choosing a tool and the final answer.
func TestRunResearchAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	dir := t.TempDir()
	bin, agent := filepath.Join(dir, "agenthost"), filepath.Join(dir, "research")
	for _, b := range [][2]string{{bin, "."}, {agent, "../../examples/agents/research"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "agenthost.yaml")
	conf := fmt.Sprintf("version: 1\nlisten:\n  address: %s\nagents:\n  - name: research\n    path: research\n    tools: [clock/now, notes/search]\n", addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	var stderr bytes.Buffer
	up := exec.Command(bin, "up", "--config", cfg, "--data-dir", data)
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Wait() }()
	defer func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		<-done
	}()
	if err := waitHealthy("http://"+addr+"/healthz", done); err != nil {
		t.Fatalf("%v\n%s", err, &stderr)
	}
	// The supervisor starts the plugin right after the host serves; run
	// retries while it is still starting (a failure guard, not a timing test).
	var out []byte
	var err error
	for i := 0; i < 100; i++ {
		out, err = exec.Command(bin, "run", "research", "What time is it now?", "--data-dir", data).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not running") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("agenthost run: %v\n%s\nhost log:\n%s", err, out, &stderr)
	}
	if !strings.Contains(string(out), "→ clock/now") || !strings.Contains(string(out), "The clock/now tool returned: ") {
		t.Fatalf("agenthost run output:\n%s", out)
	}
	// A tool the agent is not granted is refused by the mediator, and the
	// agent reports that refusal instead of a result.
	out, _ = exec.Command(bin, "run", "research", "add a note: buy milk", "--data-dir", data).CombinedOutput()
	if strings.Contains(string(out), "saved") {
		t.Fatalf("an ungranted write tool ran:\n%s", out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHealthy polls url until it answers 200, the process exits, or 30 s
// pass (a generous bound for a slow machine; it is a failure guard, not a
// timing assertion).
func waitHealthy(url string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("host exited before serving: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"ok"`)) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("host never became healthy")
}

// TestKillNineLeavesNoPlugin: the real host runs an agent and a tool
// plugin in their sandboxes; after kill -9 of the host no process it
// started is left within a few seconds, and a host started again on the
// same data directory runs them again and, once stopped, leaves none.
func TestKillNineLeavesNoPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "agenthost")
	for _, b := range [][2]string{{bin, "."}, {filepath.Join(dir, "research"), "../../examples/agents/research"},
		{filepath.Join(dir, "textkit"), "../../examples/toolplugins/textkit"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	cfg := filepath.Join(dir, "agenthost.yaml")
	data := filepath.Join(dir, "data")
	start := func() (*exec.Cmd, chan error, *bytes.Buffer) {
		addr := freeAddr(t)
		conf := fmt.Sprintf("version: 1\nlisten:\n  address: %s\nagents:\n  - name: research\n    path: research\n"+
			"    tools: [clock/now]\nmcp:\n  plugins:\n    - name: textkit\n      path: textkit\n", addr)
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		up := exec.Command(bin, "up", "--config", cfg, "--data-dir", data)
		up.Stderr = &stderr
		if err := up.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- up.Wait() }()
		t.Cleanup(func() {
			if up.ProcessState == nil {
				_ = up.Process.Kill()
				<-done
			}
		})
		if err := waitHealthy("http://"+addr+"/healthz", done); err != nil {
			t.Fatalf("%v\n%s", err, &stderr)
		}
		return up, done, &stderr
	}

	up, done, stderr := start()
	// The tool plugin starts with the host, the agent right after; each is
	// a sandbox init with the plugin as its child.
	plugins := waitDescendants(t, up.Process.Pid, 4, stderr)
	// The agent's processes exist before it has described itself and
	// runs; agents shows its sandbox once it runs.
	var out []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, err = exec.Command(bin, "agents", "--data-dir", data).CombinedOutput()
		if err == nil && strings.Contains(string(out), "research: strict: namespaces user,mount,pid,network,ipc,uts") {
			break
		}
	}
	if err != nil || !strings.Contains(string(out), "research: strict: namespaces user,mount,pid,network,ipc,uts") {
		t.Errorf("agenthost agents: %v\n%s", err, out)
	}
	if err := up.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	for _, pid := range plugins {
		if !sandboxtest.Gone(pid, 5*time.Second) {
			t.Errorf("pid %d (%s) outlived the host's kill -9", pid, cmdline(pid))
		}
	}

	up, done, stderr = start()
	again := waitDescendants(t, up.Process.Pid, 4, stderr)
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("host after restart: %v\n%s", err, stderr)
	}
	for _, pid := range again {
		if !sandboxtest.Gone(pid, 5*time.Second) {
			t.Errorf("pid %d (%s) outlived the host's clean stop", pid, cmdline(pid))
		}
	}
}

// waitDescendants waits until pid has at least n descendant processes and
// returns them.
func waitDescendants(t *testing.T, pid, n int, log *bytes.Buffer) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := sandboxtest.Descendants(pid)
		if len(all) >= n {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d has %d descendants, want %d\n%s", pid, len(all), n, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}
