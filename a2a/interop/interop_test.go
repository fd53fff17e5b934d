// Package interop_test calls agents agenthost serves with A2A clients nobody
// here wrote (issue 17): the A2A JS SDK's client (npm @a2a-js/sdk, A2A 0.3,
// pinned in js/package.json) fetches an agent's card and calls the agent with
// a token from `agenthost token`, as any outside system would.
//
// The test needs Node.js 18 or later and the SDK installed: run
// `make interop-deps` (npm ci in a2a/interop/js) once; without them it skips
// and says so. Like the README's tests it uses the binaries `make build`
// leaves in bin/ and builds nothing: it starts the quickstart host on a free
// port, gets a token with bin/agenthost token and runs js/client.mjs.
package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// quickstartConfig is the config make run starts the host on,
	// relative to the repository root.
	quickstartConfig = "examples/quickstart/agenthost.yaml"
	// quickstartAddr is its listen address, replaced by a free port.
	quickstartAddr = "127.0.0.1:8420"
	// jsDir holds the JS client and its pinned dependencies, relative to
	// this package's directory.
	jsDir = "js"
	// howToEnable is what a skipped run says.
	howToEnable = "run make interop-deps (npm ci in a2a/interop/js) to include it"

	readyTimeout  = 60 * time.Second
	tokenTimeout  = 30 * time.Second
	clientTimeout = 60 * time.Second
	stopTimeout   = 15 * time.Second

	// question is the message sent; the quickstart's research agent
	// answers it with the clock/now tool.
	question   = "What time is it now?"
	wantAnswer = "The clock/now tool returned"
)

// summary is what js/client.mjs prints.
type summary struct {
	Card struct {
		Name               string `json:"name"`
		URL                string `json:"url"`
		ProtocolVersion    string `json:"protocolVersion"`
		PreferredTransport string `json:"preferredTransport"`
		Signatures         int    `json:"signatures"`
	} `json:"card"`
	LastResponse struct {
		Status          int    `json:"status"`
		WWWAuthenticate string `json:"wwwAuthenticate"`
	} `json:"lastResponse"`
	Send *struct {
		Kind   string `json:"kind"`
		TaskID string `json:"taskId"`
		State  string `json:"state"`
		Answer string `json:"answer"`
	} `json:"send"`
	Get *struct {
		TaskID string `json:"taskId"`
		State  string `json:"state"`
		Answer string `json:"answer"`
	} `json:"get"`
	Stream *struct {
		Events []string `json:"events"`
		TaskID string   `json:"taskId"`
		State  string   `json:"state"`
		Answer string   `json:"answer"`
	} `json:"stream"`
	FailedAt   string `json:"failedAt"`
	Error      string `json:"error"`
	HTTPStatus int    `json:"httpStatus"`
}

// TestJSSDKClient runs the A2A JS SDK's client against the quickstart's
// research agent: with a token for it (card, message/send, tasks/get,
// message/stream), with none (401), and against another agent (401).
func TestJSSDKClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a host and runs Node.js; run without -short to include it")
	}
	requireNode(t)
	repo := repoRoot(t)
	requireBinaries(t, repo)

	start := time.Now()
	addr := freeLoopbackAddr(t)
	work := workDir(t, repo, addr)
	dataDir := filepath.Join(work, "data")
	startHost(t, work, dataDir, addr)
	t.Logf("host ready on %s in %v", addr, time.Since(start).Round(time.Millisecond))

	origin := "http://" + addr
	research := origin + "/a2a/research"
	token := agentToken(t, work, dataDir, research)

	t.Run("with token", func(t *testing.T) {
		s, status := runClient(t, research, token)
		if status != 0 {
			t.Fatalf("client exited %d: failed at %s: %s", status, s.FailedAt, s.Error)
		}
		if s.Card.Name != "research" || s.Card.URL != research {
			t.Errorf("card: name %q, url %q; want research, %s", s.Card.Name, s.Card.URL, research)
		}
		if !strings.HasPrefix(s.Card.ProtocolVersion, "0.3") || s.Card.PreferredTransport != "JSONRPC" {
			t.Errorf("card: protocolVersion %q, preferredTransport %q; want 0.3.x, JSONRPC", s.Card.ProtocolVersion, s.Card.PreferredTransport)
		}
		if s.Card.Signatures == 0 {
			t.Error("card has no signatures")
		}
		if s.Send == nil || s.Send.Kind != "task" || s.Send.State != "completed" || !strings.Contains(s.Send.Answer, wantAnswer) {
			t.Errorf("message/send: %+v; want a completed task whose answer contains %q", s.Send, wantAnswer)
		}
		if s.Get == nil || s.Send == nil || s.Get.TaskID != s.Send.TaskID || s.Get.State != "completed" || !strings.Contains(s.Get.Answer, wantAnswer) {
			t.Errorf("tasks/get: %+v; want the sent task, completed, its answer containing %q", s.Get, wantAnswer)
		}
		if s.Stream == nil || s.Stream.State != "completed" || !strings.Contains(s.Stream.Answer, wantAnswer) {
			t.Errorf("message/stream: %+v; want a task that completes, its answer containing %q", s.Stream, wantAnswer)
		}
	})

	t.Run("without token", func(t *testing.T) {
		s, status := runClient(t, research, "")
		if status != 1 {
			t.Fatalf("client exited %d, want 1 (the call refused)", status)
		}
		if s.Card.Name != "research" {
			t.Errorf("card name %q, want research (the card is public)", s.Card.Name)
		}
		want401(t, s)
		if want := `resource_metadata="` + origin + "/.well-known/oauth-protected-resource/a2a/research"; !strings.Contains(s.LastResponse.WWWAuthenticate, want) {
			t.Errorf("WWW-Authenticate %q, want it to name %s…", s.LastResponse.WWWAuthenticate, want)
		}
	})

	t.Run("token for another agent", func(t *testing.T) {
		s, status := runClient(t, origin+"/a2a/payments", token)
		if status != 1 {
			t.Fatalf("client exited %d, want 1 (the call refused)", status)
		}
		want401(t, s)
		if !strings.Contains(s.LastResponse.WWWAuthenticate, "invalid_token") {
			t.Errorf("WWW-Authenticate %q, want error=\"invalid_token\"", s.LastResponse.WWWAuthenticate)
		}
	})
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// want401 checks that the client failed at message/send with the SDK's
// error naming HTTP status 401.
func want401(t *testing.T, s summary) {
	t.Helper()
	if s.FailedAt != "message/send" || s.HTTPStatus != http.StatusUnauthorized || !strings.Contains(s.Error, "401") {
		t.Errorf("failed at %q with status %d, error %q; want message/send refused with 401", s.FailedAt, s.HTTPStatus, s.Error)
	}
	if s.LastResponse.Status != http.StatusUnauthorized {
		t.Errorf("last HTTP status %d, want 401", s.LastResponse.Status)
	}
}

var nodeVersion = regexp.MustCompile(`^v(\d+)\.`)

// requireNode skips the test unless Node.js 18 or later and the client's
// dependencies are installed.
func requireNode(t *testing.T) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node is not installed: install Node.js 18 or later and %s", howToEnable)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		t.Skipf("node --version: %v; install Node.js 18 or later and %s", err, howToEnable)
	}
	v := strings.TrimSpace(string(out))
	if m := nodeVersion.FindStringSubmatch(v); m == nil {
		t.Skipf("node --version says %q; install Node.js 18 or later and %s", v, howToEnable)
	} else if major, _ := strconv.Atoi(m[1]); major < 18 {
		t.Skipf("node is %s, the SDK needs 18 or later; install a newer Node.js and %s", v, howToEnable)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "@a2a-js", "sdk", "package.json")); err != nil {
		t.Skipf("a2a/interop/js/node_modules has no @a2a-js/sdk: %s", howToEnable)
	}
}

// repoRoot is the directory of go.mod above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// requireBinaries fails the test when make build has not been run.
func requireBinaries(t *testing.T, repo string) {
	t.Helper()
	for _, p := range []string{"bin/agenthost", "bin/agents", "bin/toolplugins"} {
		if _, err := os.Stat(filepath.Join(repo, p)); err != nil {
			t.Fatalf("%s is missing: run `make build` first (make test does): %v", p, err)
		}
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port nothing listens
// on now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// workDir makes a directory laid out like the repository root for the host:
// bin and examples link to the repository's, except the quickstart config,
// a copy listening on addr (its agent paths are relative to its directory).
func workDir(t *testing.T, repo, addr string) string {
	t.Helper()
	work := t.TempDir()
	link := func(rel string) {
		if err := os.Symlink(filepath.Join(repo, rel), filepath.Join(work, rel)); err != nil {
			t.Fatal(err)
		}
	}
	link("bin")
	qs := filepath.Dir(quickstartConfig)
	if err := os.MkdirAll(filepath.Join(work, qs), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"examples", qs} {
		ents, err := os.ReadDir(filepath.Join(repo, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			rel := filepath.Join(dir, e.Name())
			if rel != qs && rel != filepath.FromSlash(quickstartConfig) {
				link(rel)
			}
		}
	}
	cfg, err := os.ReadFile(filepath.Join(repo, quickstartConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(quickstartAddr)) {
		t.Fatalf("%s does not listen on %s", quickstartConfig, quickstartAddr)
	}
	cfg = bytes.ReplaceAll(cfg, []byte(quickstartAddr), []byte(addr))
	if err := os.WriteFile(filepath.Join(work, quickstartConfig), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return work
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHost starts the quickstart host in work on dataDir and waits until
// /readyz answers 200. At the end of the test it sends SIGTERM, and kills
// the host if it has not stopped within stopTimeout.
func startHost(t *testing.T, work, dataDir, addr string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command("./bin/agenthost", "up", "--config", quickstartConfig, "--data-dir", dataDir)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // it stopped early, which was reported
		default:
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM to the host: %v", err)
		}
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("host exited with %v after SIGTERM; its output:\n%s", waitErr, out.String())
			}
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("host still running %v after SIGTERM; killed. Its output:\n%s", stopTimeout, out.String())
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			if strings.Contains(out.String(), "sandbox: not supported here") {
				t.Skipf("strict sandbox not available here, and the quickstart host needs it; enable unprivileged user namespaces to run this test. Host output:\n%s", out.String())
			}
			t.Fatalf("host exited before it was ready (%v); its output:\n%s", waitErr, out.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("host not ready within %v; its output:\n%s", readyTimeout, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentToken gets a token for audience from the host on dataDir with
// `agenthost token`, as the quickstart's client a2a-caller.
func agentToken(t *testing.T, work, dataDir, audience string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "./bin/agenthost", "--data-dir", dataDir, "token", "--audience", audience)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("agenthost token --audience %s: %v (ctx %v)\n%s", audience, err, ctx.Err(), stderr.String())
	}
	token := strings.TrimSpace(stdout.String())
	if token == "" || strings.ContainsAny(token, " \n") {
		t.Fatalf("agenthost token printed no single token; stderr:\n%s", stderr.String())
	}
	t.Logf("agenthost token: %s", strings.TrimSpace(stderr.String()))
	return token
}

// runClient runs js/client.mjs against agentURL, with token or (when it is
// empty) --no-token, and returns its summary and exit status.
func runClient(t *testing.T, agentURL, token string) (summary, int) {
	t.Helper()
	args := []string{filepath.Join(jsDir, "client.mjs"), "--message", question}
	if token == "" {
		args = append(args, "--no-token", agentURL)
	} else {
		args = append(args, agentURL, token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	err := cmd.Run()
	status := 0
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("node client.mjs did not finish within %v; stdout:\n%s\nstderr:\n%s", clientTimeout, stdout.String(), stderr.String())
	case errors.As(err, &exitErr):
		status = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("node client.mjs: %v", err)
	}
	t.Logf("node client.mjs %s (exit %d, %v):\n%s", describeArgs(agentURL, token), status, time.Since(begin).Round(time.Millisecond), stdout.String())
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	if status == 2 {
		t.Fatalf("client.mjs refused its arguments: %s", stderr.String())
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("client.mjs output is not its JSON summary: %v\n%s", err, stdout.String())
	}
	return s, status
}

// describeArgs is the client's command line for the log, the token elided.
func describeArgs(agentURL, token string) string {
	if token == "" {
		return fmt.Sprintf("--no-token %s", agentURL)
	}
	return fmt.Sprintf("%s <token>", agentURL)
}
