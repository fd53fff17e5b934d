//go:build linux

package agenthost_test

// startSPIRE runs a real SPIRE server and agent for a test: the binaries
// make spire-deps builds into bin/tools/spire/ from the versions pinned in
// tools/spire/go.mod (a module of its own). Tests that use it skip when the
// binaries are missing, and under -short.
//
// The server's API socket is SPIRE's default path,
// /tmp/spire-server/private/api.sock, so that `spire-server entry create`
// run without -socketPath (as the docs write it) reaches it. Only one such
// server can run on a machine at a time: startSPIRE takes a lock on
// /tmp/spire-server/.agenthost-test.lock, held until the test ends, so
// tests in different processes (go test runs packages in parallel) wait for
// each other, and it refuses to start when a server it did not start
// already listens on that socket.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// spireBinDir is where make spire-deps puts spire-server and
	// spire-agent, relative to the repository root (the root package's
	// tests run there).
	spireBinDir = "bin/tools/spire"
	// spireServerSocket is SPIRE's default server API socket.
	spireServerSocket = "/tmp/spire-server/private/api.sock"
	// spireLockFile serialises SPIRE servers across test processes.
	spireLockFile = "/tmp/spire-server/.agenthost-test.lock"
	spireLockWait = 2 * time.Minute
	// spireStartWait bounds the wait for each process's healthcheck.
	spireStartWait = 60 * time.Second
	// spireStopWait is how long a process has to exit after SIGTERM.
	spireStopWait = 10 * time.Second
	// spireCommandWait bounds one spire-server or spire-agent CLI call.
	spireCommandWait = 20 * time.Second
)

// spireDeployment is a running SPIRE server and agent, stopped when the
// test ends.
type spireDeployment struct {
	// Bin is the absolute path of the directory holding spire-server and
	// spire-agent, to put first on PATH.
	Bin string
	// TrustDomain is the deployment's trust domain, e.g. "spire.test".
	TrustDomain string
	// ServerSocket is the absolute path of the server's API socket
	// (SPIRE's default, spireServerSocket).
	ServerSocket string
	// ServerAddress is the server's agent-facing host:port.
	ServerAddress string
	// AgentSocket is the absolute path of the agent's Workload API socket.
	AgentSocket string
	// NodeID is the agent's SPIFFE ID, spiffe://<trust domain>/node/test:
	// the -parentID of workload entries.
	NodeID string

	serverLog, agentLog *syncBuffer
}

// spireBinaries returns the absolute path of bin/tools/spire, skipping the
// test when spire-server or spire-agent is not there.
func spireBinaries(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(spireBinDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"spire-server", "spire-agent"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Skipf("%s is missing: run make spire-deps to build the SPIRE server and agent (%v)", filepath.Join(spireBinDir, name), err)
		}
	}
	return dir
}

// startSPIRE starts a SPIRE server for trustDomain and an agent attested to
// it with a join token, and returns once both pass their healthchecks. It
// skips the test under -short and when the binaries are missing. Both
// processes are stopped, and their logs printed if the test failed, when
// the test ends.
func startSPIRE(t *testing.T, trustDomain string) *spireDeployment {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a SPIRE server and agent: not run under -short")
	}
	bin := spireBinaries(t)
	d := &spireDeployment{
		Bin:          bin,
		TrustDomain:  trustDomain,
		ServerSocket: spireServerSocket,
		NodeID:       "spiffe://" + trustDomain + "/node/test",
		serverLog:    &syncBuffer{},
		agentLog:     &syncBuffer{},
	}

	lockSPIRE(t)
	clearServerSocket(t)

	// The server.
	port := freeTCPPort(t)
	d.ServerAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	serverDir := t.TempDir()
	serverConf := filepath.Join(serverDir, "server.conf")
	writeSPIREConfig(t, serverConf, fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = %d
    socket_path = %q
    trust_domain = %q
    data_dir = %q
    log_level = "WARN"
    ca_ttl = "6h"
    default_x509_svid_ttl = "1h"
    default_jwt_svid_ttl = "5m"
    experimental {
        # How often the server reloads its entry cache (default 5s): an
        # entry reaches the agent after this and the agent's sync_interval.
        cache_reload_interval = "1s"
    }
}

plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = %q
        }
    }
    KeyManager "memory" {
        plugin_data {}
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
}
`, port, d.ServerSocket, trustDomain, filepath.Join(serverDir, "data"), filepath.Join(serverDir, "datastore.sqlite3")))
	serverDone := d.start(t, "spire-server", d.serverLog, "run", "-config", serverConf)
	t.Cleanup(func() { _ = os.Remove(d.ServerSocket) })
	d.waitHealthy(t, "spire-server", serverDone, d.serverLog, "healthcheck", "-socketPath", d.ServerSocket)

	// A join token whose agent gets NodeID as an alias.
	out, err := d.Server("token", "generate", "-spiffeID", d.NodeID)
	if err != nil {
		t.Fatalf("spire-server token generate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Token:\s*(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("spire-server token generate printed no token:\n%s", out)
	}
	token := m[1]

	// The agent. Its socket lives in a short directory of its own under
	// the system's temporary directory: a unix socket's path is limited to
	// 108 bytes, which t.TempDir() can exceed.
	sockDir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	d.AgentSocket = filepath.Join(sockDir, "agent.sock")
	agentDir := t.TempDir()
	agentConf := filepath.Join(agentDir, "agent.conf")
	writeSPIREConfig(t, agentConf, fmt.Sprintf(`agent {
    server_address = "127.0.0.1"
    server_port = %d
    socket_path = %q
    data_dir = %q
    trust_domain = %q
    insecure_bootstrap = true
    join_token = %q
    log_level = "WARN"
    experimental {
        # How often the agent fetches its entries from the server (default 5s).
        sync_interval = "1s"
    }
}

plugins {
    KeyManager "memory" {
        plugin_data {}
    }
    NodeAttestor "join_token" {
        plugin_data {}
    }
    WorkloadAttestor "unix" {
        plugin_data {}
    }
}
`, port, d.AgentSocket, filepath.Join(agentDir, "data"), trustDomain, token))
	agentDone := d.start(t, "spire-agent", d.agentLog, "run", "-config", agentConf)
	d.waitHealthy(t, "spire-agent", agentDone, d.agentLog, "healthcheck", "-socketPath", d.AgentSocket)
	return d
}

// Server runs `spire-server ARGS -socketPath ServerSocket` and returns its
// combined output.
func (d *spireDeployment) Server(args ...string) (string, error) {
	return d.run("spire-server", withSocket(args, d.ServerSocket)...)
}

// Agent runs `spire-agent ARGS -socketPath AgentSocket` and returns its
// combined output.
func (d *spireDeployment) Agent(args ...string) (string, error) {
	return d.run("spire-agent", withSocket(args, d.AgentSocket)...)
}

// Env returns the test process's environment with Bin first on PATH, for
// commands that call spire-server or spire-agent by name.
func (d *spireDeployment) Env() []string {
	env := os.Environ()
	for i, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			env[i] = "PATH=" + d.Bin + string(os.PathListSeparator) + strings.TrimPrefix(kv, "PATH=")
			return env
		}
	}
	return append(env, "PATH="+d.Bin)
}

// withSocket appends -socketPath to a CLI call that does not name one.
func withSocket(args []string, socket string) []string {
	for _, a := range args {
		if a == "-socketPath" || strings.HasPrefix(a, "-socketPath=") {
			return args
		}
	}
	return append(append([]string(nil), args...), "-socketPath", socket)
}

func (d *spireDeployment) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), spireCommandWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(d.Bin, name), args...)
	cmd.Env = d.Env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs a long-lived SPIRE process with its output in log. The
// returned channel is closed when it exits. When the test ends the process
// gets SIGTERM, then SIGKILL after spireStopWait, and its log is printed if
// the test failed.
func (d *spireDeployment) start(t *testing.T, name string, log *syncBuffer, args ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(filepath.Join(d.Bin, name), args...)
	cmd.Env = d.Env()
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies (a -timeout panic), so does the process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(spireStopWait):
			t.Logf("%s did not exit %v after SIGTERM: killing it", name, spireStopWait)
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, log.String())
		}
	})
	return done
}

// waitHealthy runs NAME's healthcheck until it passes, failing the test
// with the process's log if it exits or spireStartWait passes first.
func (d *spireDeployment) waitHealthy(t *testing.T, name string, done <-chan struct{}, log *syncBuffer, args ...string) {
	t.Helper()
	deadline := time.Now().Add(spireStartWait)
	for {
		out, err := d.run(name, args...)
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited before it was healthy; its output:\n%s", name, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after %v: %v\n%s\n%s output:\n%s", name, spireStartWait, err, out, name, log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// lockSPIRE takes the machine-wide lock on running a SPIRE server at the
// default socket, waiting up to spireLockWait for another test (in this or
// another process) to release it, and releases it when the test ends.
func lockSPIRE(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(spireLockFile), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(spireLockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(spireLockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			t.Fatalf("lock %s: %v", spireLockFile, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("another test has held %s for %v (a SPIRE server at %s): giving up", spireLockFile, spireLockWait, spireServerSocket)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// clearServerSocket fails the test when something listens on SPIRE's
// default server socket (a SPIRE server this harness did not start), and
// removes the socket file a killed server left behind.
func clearServerSocket(t *testing.T) {
	t.Helper()
	if _, err := os.Lstat(spireServerSocket); errors.Is(err, os.ErrNotExist) {
		return
	}
	conn, err := net.DialTimeout("unix", spireServerSocket, 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("another SPIRE server is running at %s: stop it first (the SPIRE tests need SPIRE's default socket)", spireServerSocket)
	}
	if err := os.Remove(spireServerSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("remove the stale SPIRE server socket %s: %v", spireServerSocket, err)
	}
}

// freeTCPPort returns a loopback port nothing listens on right now.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeSPIREConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSPIREHarness checks startSPIRE end to end: a workload entry created
// on the server for this process's uid reaches the agent, whose Workload
// API then serves its X.509-SVID and a JWT-SVID.
func TestSPIREHarness(t *testing.T) {
	const td = "spire.test"
	start := time.Now()
	d := startSPIRE(t, td)
	t.Logf("SPIRE server and agent healthy after %v", time.Since(start).Round(time.Millisecond))

	workload := "spiffe://" + td + "/workload"
	out, err := d.Server("entry", "create", "-parentID", d.NodeID, "-spiffeID", workload,
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Fatalf("spire-server entry create: %v\n%s", err, out)
	}

	// The agent learns of new entries on its next sync with the server.
	created := time.Now()
	deadline := created.Add(30 * time.Second)
	for {
		out, err = d.Agent("api", "fetch", "x509")
		if err == nil && strings.Contains(out, workload) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent served no X.509-SVID for %s within 30s of entry create; last fetch: %v\n%s", workload, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("X.509-SVID for %s served %v after entry create", workload, time.Since(created).Round(time.Millisecond))

	out, err = d.Agent("api", "fetch", "jwt", "-audience", "test")
	if err != nil {
		t.Fatalf("spire-agent api fetch jwt: %v\n%s", err, out)
	}
	for _, want := range []string{"token(" + workload + ")", "bundle(spiffe://" + td + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("spire-agent api fetch jwt: no %q in\n%s", want, out)
		}
	}
}
