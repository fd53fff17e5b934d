package sandbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/sandbox/sandboxtest"
)

// The test binary doubles as the contained program: started with
// SANDBOX_TEST_MODE set, it runs that mode instead of the tests, with its
// argument in SANDBOX_TEST_ARG.
const (
	testModeEnv = "SANDBOX_TEST_MODE"
	testArgEnv  = "SANDBOX_TEST_ARG"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(testModeEnv); mode != "" {
		os.Exit(runMode(mode, os.Getenv(testArgEnv)))
	}
	os.Exit(m.Run())
}

// allowedChecks is the argument of the "allowed" mode.
type allowedChecks struct {
	Read   string `json:"read"`
	Write  string `json:"write"`
	Socket string `json:"socket"`
	Port   int    `json:"port"`
	Denied int    `json:"denied"`
}

func runMode(mode, arg string) int {
	switch mode {
	case "escape":
		var t sandboxtest.Targets
		if err := json.Unmarshal([]byte(arg), &t); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		_ = json.NewEncoder(os.Stdout).Encode(sandboxtest.Try(t))
		return 0
	case "allowed":
		var c allowedChecks
		if err := json.Unmarshal([]byte(arg), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		report := map[string]string{}
		errText := func(err error) string {
			if err == nil {
				return "ok"
			}
			return err.Error()
		}
		b, err := os.ReadFile(c.Read)
		report["read"] = errText(err) + ":" + string(b)
		report["write into read-only"] = errText(os.WriteFile(c.Read, []byte("x"), 0o644))
		report["write"] = errText(os.WriteFile(filepath.Join(c.Write, "from-sandbox"), []byte("hello"), 0o644))
		conn, err := net.Dial("unix", c.Socket)
		if err == nil {
			conn.Close()
		}
		report["socket"] = errText(err)
		conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.Port))
		if err == nil {
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			if rerr != nil {
				err = rerr
			} else {
				report["port said"] = strings.TrimSpace(line)
			}
			conn.Close()
		}
		report["port"] = errText(err)
		conn, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(c.Denied), time.Second)
		if err == nil {
			conn.Close()
		}
		report["denied port"] = errText(err)
		_ = json.NewEncoder(os.Stdout).Encode(report)
		return 0
	case "fork":
		// Start sleeping children until the kernel refuses one.
		n := 0
		for {
			cmd := exec.Command("/proc/self/exe")
			cmd.Env = []string{testModeEnv + "=sleep"}
			if err := cmd.Start(); err != nil {
				fmt.Printf("%d %v\n", n, err)
				return 0
			}
			n++
			if n > 10000 {
				fmt.Println(n, "no limit")
				return 0
			}
		}
	case "alloc":
		var keep [][]byte
		for i := 0; ; i++ {
			b := make([]byte, 16<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
			fmt.Println("allocated MiB", (i+1)*16)
		}
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	case "sigterm":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		return 7
	case "exit":
		n, _ := strconv.Atoi(arg)
		return n
	case "probe-without-userns":
		// In a user namespace of its own where no further one may be
		// created, as on a kernel with user.max_user_namespaces=0.
		if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0"), 0); err != nil {
			fmt.Println("setup:", err)
			return 2
		}
		_, err := Probe()
		fmt.Println(errors.Is(err, ErrUnsupported), err)
		return 0
	case "host":
		// A host that starts one sandbox and then waits to be killed.
		bin, err := os.Open("/proc/self/exe")
		if err != nil {
			return 2
		}
		exe, _ := os.Executable()
		p, err := Start(Spec{Path: exe, Binary: bin, Env: []string{testModeEnv + "=sleep"}, Stdout: os.Stderr, Stderr: os.Stderr, Owner: arg}, Policy{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println(p.PID())
		time.Sleep(time.Hour)
		return 0
	}
	return 2
}

// requireStrict skips the test where this kernel cannot give LevelStrict.
func requireStrict(t testing.TB) Protections {
	t.Helper()
	prot, err := Probe()
	if err != nil {
		t.Skipf("strict sandbox not available here (%v); enable unprivileged user namespaces to run this test", err)
	}
	return prot
}

type run struct {
	p   *Process
	out syncBuffer
	err error
}

// syncBuffer is a buffer the plugin's output is copied into while a test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Bytes() []byte { return []byte(s.String()) }

// startSelf starts the test binary in mode with arg, contained by pol, and
// returns once it exits (or, with wait false, at once).
func startSelf(t *testing.T, mode, arg string, pol Policy, spec Spec, wait bool) *run {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bin.Close() })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	spec.Path, spec.Binary, spec.Stdout, spec.Stderr = exe, bin, w, w
	spec.Env = append(spec.Env, testModeEnv+"="+mode, testArgEnv+"="+arg)
	if spec.Owner == "" {
		spec.Owner = "sandbox-test"
	}
	p, err := Start(spec, pol)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("Start: %v", err)
	}
	res := &run{p: p}
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&res.out, r); r.Close(); close(copied) }()
	t.Cleanup(func() { p.Kill(); _ = p.Wait() })
	if wait {
		res.err = p.Wait()
		<-copied
	}
	return res
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// hostTargets sets up, outside any sandbox, what a plugin must not reach.
func hostTargets(t *testing.T) (sandboxtest.Targets, *atomic.Int32, string) {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "ca-journal.json")
	if err := os.WriteFile(secret, []byte("private key"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "host.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var hits atomic.Int32
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) })
	go func() { _ = http.Serve(ln, handler) }()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	go func() { _ = http.Serve(tcp, handler) }()
	exe, _ := os.Executable()
	return sandboxtest.Targets{
		Files:       []string{secret, "/etc/passwd"},
		Dirs:        []string{dir, os.Getenv("HOME"), "/home", "/root"},
		WriteDirs:   []string{dir},
		WriteFiles:  []string{exe},
		HostPID:     os.Getpid(),
		Sockets:     []string{sock},
		HTTPSockets: []string{sock},
		HTTPPath:    "/v1/agents",
		TCP:         []string{tcp.Addr().String(), "1.1.1.1:443"},
	}, &hits, dir
}

func escapeResults(t *testing.T, out []byte) []sandboxtest.Result {
	t.Helper()
	var res []sandboxtest.Result
	line, _, _ := bytes.Cut(out, []byte("\n"))
	if err := json.Unmarshal(line, &res); err != nil {
		t.Fatalf("plugin output: %v\n%s", err, out)
	}
	return res
}

func TestStrictRefusesEveryEscape(t *testing.T) {
	prot := requireStrict(t)
	targets, hits, dir := hostTargets(t)
	// A descriptor of the host's secret left inheritable, as a library
	// that opens files without O_CLOEXEC would.
	fd, err := syscall.Open(targets.Files[0], syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	targets.Descriptors = []int{fd}
	// A directory the host shares, as go-plugin's socket directory.
	shared := t.TempDir()
	var spec Spec
	if prot.Landlock > 0 { // without Landlock a symbolic link can be made there
		spec.WritableDirs = []Bind{{Source: shared, Target: "/run/agenthost/shared"}}
		targets.SharedDirs = []string{"/run/agenthost/shared"}
	}
	arg, _ := json.Marshal(targets)
	r := startSelf(t, "escape", string(arg), Policy{}, spec, true)
	if r.err != nil {
		t.Fatalf("plugin: %v\n%s", r.err, &r.out)
	}
	results := escapeResults(t, r.out.Bytes())
	if len(results) < 20 {
		t.Fatalf("only %d attempts ran", len(results))
	}
	for _, res := range results {
		t.Log(res)
	}
	if esc := sandboxtest.Escaped(results); len(esc) > 0 {
		t.Errorf("escaped: %v", esc)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the host's servers got %d requests from the sandbox", n)
	}
	for _, d := range []string{dir, shared} {
		if m, _ := filepath.Glob(filepath.Join(d, "escape-*")); len(m) > 0 {
			t.Errorf("the plugin wrote %v", m)
		}
	}
}

// The same attempts from an uncontained plugin succeed: the escape test
// detects holes.
func TestLevelNoneContainsNothing(t *testing.T) {
	targets, hits, _ := hostTargets(t)
	targets.TCP = targets.TCP[:1]
	arg, _ := json.Marshal(targets)
	r := startSelf(t, "escape", string(arg), Policy{Level: LevelNone}, Spec{}, true)
	if r.err != nil {
		t.Fatalf("plugin: %v\n%s", r.err, &r.out)
	}
	escaped := map[string]bool{}
	for _, res := range sandboxtest.Escaped(escapeResults(t, r.out.Bytes())) {
		escaped[res.Attempt] = true
	}
	for _, want := range []string{"read file", "write file", "signal the host", "connect to a host socket",
		"open a TCP connection", "read the host's environment", "list processes beyond the sandbox"} {
		if !escaped[want] {
			t.Errorf("%q did not succeed without a sandbox", want)
		}
	}
	if hits.Load() == 0 {
		t.Error("the uncontained plugin reached no server")
	}
	if got := r.p.Protections(); got.Level != LevelNone || got.String() != "none: not contained" {
		t.Errorf("protections = %+v", got)
	}
}

func TestStrictAllowsWhatThePolicyGrants(t *testing.T) {
	requireStrict(t)
	dir := t.TempDir()
	readable := filepath.Join(dir, "ro", "model.txt")
	if err := os.MkdirAll(filepath.Dir(readable), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readable, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	writable := filepath.Join(dir, "rw")
	if err := os.Mkdir(writable, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "wl.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A model served on the host's loopback, and another service.
	model, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	go func() {
		for {
			c, err := model.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "model here")
			c.Close()
		}
	}()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := model.Addr().(*net.TCPAddr).Port
	denied := other.Addr().(*net.TCPAddr).Port
	arg, _ := json.Marshal(allowedChecks{Read: readable, Write: "/run/agenthost/rw", Socket: "/run/agenthost/wl.sock", Port: port, Denied: denied})
	r := startSelf(t, "allowed", string(arg),
		Policy{ReadOnlyPaths: []string{filepath.Dir(readable)}, LoopbackPorts: []uint16{uint16(port)}},
		Spec{Sockets: []Bind{{sock, "/run/agenthost/wl.sock"}}, WritableDirs: []Bind{{writable, "/run/agenthost/rw"}}}, true)
	if r.err != nil {
		t.Fatalf("plugin: %v\n%s", r.err, &r.out)
	}
	var got map[string]string
	if err := json.Unmarshal(r.out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, &r.out)
	}
	want := map[string]string{"read": "ok:weights", "write": "ok", "socket": "ok", "port": "ok", "port said": "model here"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(got["write into read-only"], "read-only file system") {
		t.Errorf("write into a read-only path: %q", got["write into read-only"])
	}
	if got["denied port"] == "ok" {
		t.Error("a port that is not forwarded was reachable")
	}
	if b, err := os.ReadFile(filepath.Join(writable, "from-sandbox")); err != nil || string(b) != "hello" {
		t.Errorf("file written in the writable directory: %q, %v", b, err)
	}
}

func TestProcessLimit(t *testing.T) {
	requireStrict(t)
	r := startSelf(t, "fork", "", Policy{Processes: 64}, Spec{}, true)
	var n int
	var msg string
	if _, err := fmt.Sscanf(r.out.String(), "%d %s", &n, &msg); err != nil {
		t.Fatalf("output %q: %v", &r.out, err)
	}
	if n >= 64 || !strings.Contains(r.out.String(), "resource temporarily unavailable") {
		t.Fatalf("started %d processes: %s", n, &r.out)
	}
}

func TestMemoryLimit(t *testing.T) {
	requireStrict(t)
	// Under the race detector the helper's runtime needs more before it
	// reports its start (its shadow memory grows with the heap), and a
	// 256 MiB limit under load could end it first; the limit is still
	// what stops the allocation.
	limit := int64(256 << 20)
	if raceEnabled {
		limit = 512 << 20
	}
	r := startSelf(t, "alloc", "", Policy{Memory: limit}, Spec{}, true)
	if exitCode(r.err) == 0 {
		t.Fatalf("the allocating plugin exited cleanly: %s", &r.out)
	}
	out := r.out.String()
	oom := strings.Contains(out, "out of memory") ||
		raceEnabled && strings.Contains(out, "ThreadSanitizer failed to allocate")
	if !oom {
		t.Fatalf("no out-of-memory failure: %v\n%s", r.err, lastLines(out, 5))
	}
	if strings.Contains(out, "allocated MiB 256\n") {
		t.Errorf("allocated 256 MiB under a 256 MiB limit")
	}
}

func TestExitStatusAndSignals(t *testing.T) {
	requireStrict(t)
	if r := startSelf(t, "exit", "3", Policy{}, Spec{}, true); exitCode(r.err) != 3 {
		t.Errorf("exit status = %v, want 3", r.err)
	}
	r := startSelf(t, "sigterm", "", Policy{}, Spec{}, false)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.out.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Wait(); exitCode(err) != 7 {
		t.Errorf("after SIGTERM: %v, want exit status 7", err)
	}
}

// A host killed with SIGKILL leaves no plugin process behind.
func TestDiesWithHost(t *testing.T) {
	requireStrict(t)
	owner := "dies-" + strconv.Itoa(os.Getpid())
	host := exec.Command("/proc/self/exe")
	host.Env = []string{testModeEnv + "=host", testArgEnv + "=" + owner}
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	host.Stderr = &stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.Process.Kill(); _ = host.Wait() }()
	var helper int
	if _, err := fmt.Fscan(stdout, &helper); err != nil {
		t.Fatalf("host: %v %s", err, &stderr)
	}
	plugin := waitChild(t, helper)
	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	for _, pid := range []int{helper, plugin} {
		if !sandboxtest.Gone(pid, 5*time.Second) {
			t.Errorf("pid %d outlived the host", pid)
		}
	}
	// The next host of the same owner removes what is left (the empty
	// control groups).
	if _, err := Sweep(owner); err != nil {
		t.Fatal(err)
	}
	if m, _ := hostCgroups(); m != nil {
		for _, parent := range m.parents {
			if left, _ := filepath.Glob(filepath.Join(parent, cgroupPrefix+cgroupTag(owner)+"-*")); len(left) > 0 {
				t.Errorf("control groups left: %v", left)
			}
		}
	}
}

// Sweep ends a sandbox tagged with its owner.
func TestSweep(t *testing.T) {
	requireStrict(t)
	owner := "sweep-" + strconv.Itoa(os.Getpid())
	r := startSelf(t, "sleep", "", Policy{}, Spec{Owner: owner}, false)
	plugin := waitChild(t, r.p.PID())
	if n, err := Sweep("another-owner"); err != nil || n != 0 {
		t.Fatalf("Sweep(another owner) = %d, %v", n, err)
	}
	n, err := Sweep(owner)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	select {
	case <-r.p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the swept sandbox is still running")
	}
	if !sandboxtest.Gone(plugin, 5*time.Second) {
		t.Errorf("the plugin (pid %d) survived", plugin)
	}
	if _, err := Sweep(""); !errors.Is(err, ErrConfig) {
		t.Errorf("Sweep(\"\") = %v", err)
	}
}

func TestStartRefusals(t *testing.T) {
	exe, _ := os.Executable()
	bin, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	text := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(text, []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	textFile, err := os.Open(text)
	if err != nil {
		t.Fatal(err)
	}
	defer textFile.Close()
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	base := Spec{Path: exe, Binary: bin, Stdout: devnull, Stderr: devnull}
	tests := []struct {
		name   string
		spec   func(Spec) Spec
		policy Policy
		want   error
		text   string
	}{
		{name: "relative path", spec: func(s Spec) Spec { s.Path = "plugin"; return s }, want: ErrConfig},
		{name: "no binary", spec: func(s Spec) Spec { s.Binary = nil; return s }, want: ErrConfig},
		{name: "relative read-only path", spec: func(s Spec) Spec { return s }, policy: Policy{ReadOnlyPaths: []string{"data"}}, want: ErrConfig},
		{name: "root as read-only path", spec: func(s Spec) Spec { return s }, policy: Policy{ReadOnlyPaths: []string{"/"}}, want: ErrConfig},
		{name: "unknown level", spec: func(s Spec) Spec { return s }, policy: Policy{Level: "loose"}, want: ErrConfig},
		{name: "not a program", spec: func(s Spec) Spec { s.Path, s.Binary = text, textFile; return s }, want: ErrConfig, text: "neither an ELF program nor a script"},
		{name: "missing read-only path", spec: func(s Spec) Spec { return s }, policy: Policy{ReadOnlyPaths: []string{"/nonexistent/models"}},
			want: ErrSetup, text: "open /nonexistent/models: no such file or directory"},
		{name: "ports without a writable directory", spec: func(s Spec) Spec { return s }, policy: Policy{LoopbackPorts: []uint16{8080}}, want: ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == ErrSetup {
				requireStrict(t)
			}
			p, err := Start(tt.spec(base), tt.policy)
			if err == nil {
				p.Kill()
				_ = p.Wait()
			}
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("Start = %v, want %v with %q", err, tt.want, tt.text)
			}
		})
	}
}

// What runs is the file the caller checked and passed open, not whatever
// the path names by the time the process starts.
func TestStartRunsTheCheckedFile(t *testing.T) {
	exe, _ := os.Executable()
	bin, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	// The path now names another file (the binary was replaced).
	other := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(other, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	spec := Spec{Path: other, Binary: bin, Env: []string{testModeEnv + "=exit", testArgEnv + "=3"}, Stdout: devnull, Stderr: devnull}

	// Uncontained, the open file is what is executed.
	p, err := Start(spec, Policy{Level: LevelNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); exitCode(err) != 3 {
		t.Errorf("level none ran something else than the checked binary: %v", err)
	}

	// Contained, the path is bound into the sandbox, so it must still
	// name the checked file.
	requireStrict(t)
	p, err = Start(spec, Policy{})
	if err == nil {
		p.Kill()
		_ = p.Wait()
	}
	if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "was replaced after it was checked") {
		t.Fatalf("Start with a replaced binary = %v", err)
	}
}

func TestProbe(t *testing.T) {
	prot := requireStrict(t)
	t.Logf("%s; missing: %v", prot, prot.Missing)
	if prot.Level != LevelStrict || !prot.Seccomp || !prot.NoCapabilities || !prot.NoNewPrivs || !prot.DiesWithHost ||
		len(prot.Namespaces) < 6 {
		t.Fatalf("Probe = %+v", prot)
	}
	if !strings.HasPrefix(prot.String(), "strict: namespaces user,mount,pid,network,ipc,uts") {
		t.Errorf("String = %q", prot)
	}
}

// The helper started outside a sandbox of its own (here by hand, under its
// name) does nothing but refuse.
func TestHelperRefusesToRunOutsideItsNamespaces(t *testing.T) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{helperArg0, "by-hand"}
	out, err := cmd.CombinedOutput()
	if exitCode(err) != exitSetup || !strings.Contains(string(out), "runs only as the first process of a new PID namespace") {
		t.Fatalf("helper by hand: %v\n%s", err, out)
	}
}

// Where the kernel refuses user namespaces, Probe fails with
// ErrUnsupported and says which setting to change.
func TestProbeExplainsMissingUserNamespaces(t *testing.T) {
	requireStrict(t)
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{testModeEnv + "=probe-without-userns"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("%s", out)
	for _, want := range []string{"true sandbox: not supported here", "user.max_user_namespaces is 0 (raise it)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Probe without user namespaces: %s; want %q", out, want)
		}
	}
}

func TestSeccompPolicyAssembles(t *testing.T) {
	policy, err := seccompPolicy()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := policy.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < len(deniedSyscalls) {
		t.Fatalf("%d instructions for %d denied calls", len(prog), len(deniedSyscalls))
	}
}

// waitChild returns the first child of pid, waiting for it to appear.
func waitChild(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if kids := sandboxtest.Children(pid); len(kids) > 0 {
			return kids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d has no child", pid)
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
