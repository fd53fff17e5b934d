package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// runBackend is a host with one agent, "research", for the run command.
type runBackend struct {
	mu sync.Mutex
	// states are the agent's state at each look, the last one staying.
	states  []string
	lastErr string
	// events are what a task emits; each gets the task id task-abc.
	events []localapi.TaskEvent
	// pause is how long the task pauses after its first event.
	pause time.Duration
	input string
	runs  int
	// txn, when set, is the transaction every event names.
	txn string
}

func (b *runBackend) state() string {
	if len(b.states) == 0 {
		return localapi.StateRunning
	}
	return b.states[0]
}

func (b *runBackend) Agents(context.Context) []localapi.AgentInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := localapi.AgentInfo{Name: "research", State: b.state(), LastError: b.lastErr}
	if len(b.states) > 1 {
		b.states = b.states[1:]
	}
	return []localapi.AgentInfo{a}
}

func (b *runBackend) RunTask(_ context.Context, req localapi.TaskRequest, emit func(localapi.TaskEvent) error) error {
	b.mu.Lock()
	b.runs++
	b.input = req.Input
	state := b.state()
	b.mu.Unlock()
	if req.Agent != "research" {
		return errors.New("supervisor: unknown agent: " + req.Agent)
	}
	if state != localapi.StateRunning {
		return errors.New("supervisor: agent is not running: research")
	}
	for i, ev := range b.events {
		ev.TaskID, ev.Txn = "task-abc", b.txn
		if err := emit(ev); err != nil {
			return err
		}
		if i == 0 {
			time.Sleep(b.pause)
		}
	}
	return nil
}

func (b *runBackend) Quarantine(context.Context, string, string) error { return nil }
func (b *runBackend) Release(context.Context, string, string) error    { return nil }

func (b *runBackend) got() (input string, runs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.input, b.runs
}

// fakeHostDir makes a data directory look like a running host's (its lock
// held, its run info written) and returns it.
func fakeHostDir(t *testing.T, info host.RunInfo) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "agenthost.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	info.PID, info.Version, info.Started = os.Getpid(), "test", time.Now()
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, "host.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startRunHost serves the admin API of b on a data directory and returns
// the directory.
func startRunHost(t *testing.T, b localapi.Backend) string {
	t.Helper()
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local"})
	srv, err := localapi.Listen(filepath.Join(dir, localapi.SocketName), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return dir
}

// runCLI runs the command line with stdin and a terminal test.
func runCLI(t *testing.T, stdin io.Reader, isTerm func(io.Writer) bool, args ...string) (int, string, string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if isTerm == nil {
		isTerm = func(io.Writer) bool { return false }
	}
	var stdout, stderr bytes.Buffer
	code := execute(args, stdin, &stdout, &stderr, isTerm)
	return code, stdout.String(), stderr.String()
}

// hostile is an answer that would retitle the terminal, clear it, and hide
// text behind a carriage return, with a CRLF line end that is harmless.
const hostile = "\x1b]0;pwned\x07\x1b[2Jclean\r\nline\rfake\u202eevil\u009b31m"

// hostileEscaped is how run writes hostile.
const hostileEscaped = `\x1b]0;pwned\a\x1b[2Jclean` + "\r\n" + `line\rfake\u202eevil\u009b31m`

func TestRunOutput(t *testing.T) {
	allTerm := func(io.Writer) bool { return true }
	tests := []struct {
		name   string
		args   []string
		isTerm func(io.Writer) bool
		events []localapi.TaskEvent
		txn    string
		pause  time.Duration
		// wantLive is in the live line drawn on a terminal.
		wantLive   string
		wantCode   int
		wantStdout string
		// wantStderr are the lines of stderr, with DIR for the data
		// directory and the live line's own sequences removed.
		wantStderr []string
	}{
		{
			name:       "task id and trace command first",
			events:     []localapi.TaskEvent{{Type: "thought", Text: "thinking"}, {Type: "tool_call", Tool: "clock/now", Arguments: "{}"}, {Type: "final", Text: "answer"}},
			wantStdout: "answer\n",
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace task-abc)", "· thinking", "→ clock/now {}"},
		},
		{
			name:       "the transaction: traced, and on a line of its own",
			events:     []localapi.TaskEvent{{Type: "thought", Text: "thinking"}, {Type: "final", Text: "answer"}},
			txn:        "txn-5f0c",
			wantStdout: "answer\n",
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace txn-5f0c)", "txn txn-5f0c", "· thinking"},
		},
		{
			name:       "quiet prints only the answer",
			args:       []string{"--quiet"},
			events:     []localapi.TaskEvent{{Type: "thought", Text: "thinking"}, {Type: "final", Text: "answer"}},
			wantStdout: "answer\n",
		},
		{
			name:       "control characters escaped in a pipe",
			events:     []localapi.TaskEvent{{Type: "thought", Text: hostile}, {Type: "final", Text: hostile}},
			wantStdout: hostileEscaped + "\n",
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace task-abc)", "· " + hostileEscaped},
		},
		{
			name:       "control characters escaped on a terminal",
			isTerm:     allTerm,
			events:     []localapi.TaskEvent{{Type: "partial", Text: hostile}, {Type: "final", Text: hostile}},
			pause:      300 * time.Millisecond,
			wantLive:   " research running (",
			wantStdout: hostileEscaped + "\n",
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace task-abc)", "… " + hostileEscaped},
		},
		{
			name:       "raw writes the answer byte for byte, the events still escaped",
			args:       []string{"--raw"},
			isTerm:     allTerm,
			events:     []localapi.TaskEvent{{Type: "tool_call", Tool: "x\x1b[2J", Arguments: "{}"}, {Type: "final", Text: hostile}},
			wantStdout: hostile + "\n",
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace task-abc)", `→ x\x1b[2J {}`},
		},
		{
			name:       "a failed task",
			events:     []localapi.TaskEvent{{Type: "error", Text: "boom\x1b[2J"}},
			wantCode:   1,
			wantStderr: []string{"task task-abc (trace: agenthost --data-dir DIR audit trace task-abc)", `task task-abc failed: boom\x1b[2J`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := startRunHost(t, &runBackend{events: tt.events, pause: tt.pause, txn: tt.txn})
			args := append([]string{"run", "research", "what time is it?", "--data-dir", dir}, tt.args...)
			code, stdout, stderr := runCLI(t, nil, tt.isTerm, args...)
			var lines []string
			for l := range strings.Lines(withoutLiveLine(stderr)) {
				lines = append(lines, strings.ReplaceAll(strings.TrimSuffix(l, "\n"), dir, "DIR"))
			}
			if !strings.Contains(stderr, tt.wantLive) {
				t.Fatalf("stderr %q lacks the live line %q", stderr, tt.wantLive)
			}
			if code != tt.wantCode || stdout != tt.wantStdout || strings.Join(lines, "\n") != strings.Join(tt.wantStderr, "\n") {
				t.Fatalf("exit %d (want %d)\nstdout %q\n  want %q\nstderr %q\n  want %q", code, tt.wantCode, stdout, tt.wantStdout, lines, tt.wantStderr)
			}
		})
	}
}

// withoutLiveLine removes from stderr the live line a terminal gets: each
// line printed, and each redraw of the live line, starts with CR, ESC [K;
// the redraws are the pieces without a newline.
func withoutLiveLine(stderr string) string {
	var b strings.Builder
	for _, piece := range strings.Split(stderr, "\r\x1b[K") {
		if strings.HasSuffix(piece, "\n") {
			b.WriteString(piece)
		}
	}
	return b.String()
}

func TestRunReadsTheTask(t *testing.T) {
	big := strings.Repeat("what time is it?\n", localapi.MaxTaskInput/17)
	big += strings.Repeat("x", localapi.MaxTaskInput-len(big))
	file := writeFile(t, "task.txt", "from a file\n")
	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantCode  int
		wantInput string
		wantErr   string
	}{
		{name: "argument", args: []string{"research", "hi"}, wantInput: "hi"},
		{name: "standard input", args: []string{"research", "-"}, stdin: "from stdin\n", wantInput: "from stdin\n"},
		{name: "file", args: []string{"research", "--file", file}, wantInput: "from a file\n"},
		{name: "1 MiB from standard input", args: []string{"research", "-"}, stdin: big, wantInput: big},
		{
			name: "larger than the host takes", args: []string{"research", "-"}, stdin: big + "!",
			wantCode: 1, wantErr: "agenthost: the task is 1 MiB (1048577 bytes); a task may hold at most 1 MiB (1048576 bytes)\n",
		},
		{
			name: "far too large to read", args: []string{"research", "-"}, stdin: strings.Repeat(big, 4) + "!",
			wantCode: 2, wantErr: "agenthost: the task in standard input is larger than 4 MiB; the host takes tasks of up to 1 MiB\n",
		},
		{name: "empty standard input", args: []string{"research", "-"}, stdin: " \n", wantCode: 2, wantErr: "agenthost: the task in standard input is empty\n"},
		{name: "empty argument", args: []string{"research", ""}, wantCode: 2, wantErr: "agenthost: the task is empty\n"},
		{name: "not text", args: []string{"research", "-"}, stdin: "\xff\xfe", wantCode: 2, wantErr: "agenthost: the task in standard input is not UTF-8 text\n"},
		{name: "missing file", args: []string{"research", "--file", file + ".missing"}, wantCode: 2, wantErr: "no such file or directory"},
		{name: "file and argument", args: []string{"research", "hi", "--file", file}, wantCode: 2, wantErr: "--file takes AGENT only"},
		{name: "negative wait", args: []string{"research", "hi", "--wait", "-1s"}, wantCode: 2, wantErr: "--wait must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &runBackend{events: []localapi.TaskEvent{{Type: "final", Text: "done"}}}
			dir := startRunHost(t, b)
			args := append([]string{"run", "--quiet", "--data-dir", dir}, tt.args...)
			code, stdout, stderr := runCLI(t, strings.NewReader(tt.stdin), nil, args...)
			input, runs := b.got()
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
			if tt.wantCode == 0 && (stdout != "done\n" || input != tt.wantInput) {
				t.Fatalf("stdout %q; the host got %d bytes, want %d", stdout, len(input), len(tt.wantInput))
			}
			if tt.wantCode != 0 && runs != 0 {
				t.Fatalf("the host ran a task that was refused (%d bytes)", len(input))
			}
		})
	}
}

func TestRunWaitsForTheAgent(t *testing.T) {
	const waiting = "waiting for agent research to start…"
	tests := []struct {
		name     string
		states   []string
		lastErr  string
		args     []string
		wantCode int
		// wantWait: the waiting line is printed (once).
		wantWait bool
		wantErr  string
		// maxTime bounds how long the command may take.
		maxTime time.Duration
	}{
		{
			name:     "starting, then running",
			states:   []string{localapi.StateStopped, localapi.StateStarting, localapi.StateStarting, localapi.StateRunning},
			wantWait: true, maxTime: 10 * time.Second,
		},
		{
			name:   "failed: at once",
			states: []string{localapi.StateFailed}, lastErr: "plugins: checksum mismatch\x1b[2J",
			wantCode: 1, wantErr: `agenthost: agent research failed to start and will not be restarted: plugins: checksum mismatch\x1b[2J` + "\n",
			maxTime: 5 * time.Second,
		},
		{
			name:   "quarantined: at once",
			states: []string{localapi.StateQuarantined}, lastErr: "quarantined: compromised",
			wantCode: 1, wantErr: "agenthost: agent research is quarantined: compromised\n", maxTime: 5 * time.Second,
		},
		{
			name:   "not waited for with --wait 0",
			states: []string{localapi.StateStarting}, args: []string{"--wait", "0"},
			wantCode: 1, wantErr: "agenthost: agent research is starting\n", maxTime: 5 * time.Second,
		},
		{
			name:   "never starts",
			states: []string{localapi.StateBackoff}, lastErr: "plugin exited", args: []string{"--wait", "500ms"},
			wantCode: 1, wantWait: true, maxTime: 5 * time.Second,
			wantErr: "agenthost: localapi: agent research did not start within 500ms: agent research is restarting: plugin exited\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &runBackend{states: tt.states, lastErr: tt.lastErr, events: []localapi.TaskEvent{{Type: "final", Text: "done"}}}
			dir := startRunHost(t, b)
			args := append([]string{"run", "research", "hi", "--data-dir", dir}, tt.args...)
			t0 := time.Now()
			code, stdout, stderr := runCLI(t, nil, nil, args...)
			if d := time.Since(t0); d > tt.maxTime {
				t.Fatalf("took %s, want at most %s", d, tt.maxTime)
			}
			if code != tt.wantCode || !strings.HasSuffix(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to end with %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
			if n := strings.Count(stderr, waiting); (n == 1) != tt.wantWait || n > 1 {
				t.Fatalf("stderr has %d waiting lines (want one: %v): %q", n, tt.wantWait, stderr)
			}
			if tt.wantCode == 0 && stdout != "done\n" {
				t.Fatalf("stdout %q", stdout)
			}
		})
	}
}

func TestEscapeControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcödé, 日本語, emoji 👨‍👩‍👧", "plain text, ünïcödé, 日本語, emoji 👨‍👩‍👧"},
		{"lines\nand\ttabs\r\nkept", "lines\nand\ttabs\r\nkept"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"\x1b]0;title\x07", `\x1b]0;title\a`},
		{"hidden\rshown", `hidden\rshown`},
		{"trailing\r", `trailing\r`},
		{"\x00\x08\x7f", `\x00\b\x7f`},
		{"c1 \u009b2J", `c1 \u009b2J`},
		{"bidi \u202eevil\u2066", `bidi \u202eevil\u2066`},
		{"bad utf-8 \x9b2J \xff", `bad utf-8 \x9b2J \xff`},
		{"replacement char \ufffd kept", "replacement char \ufffd kept"},
	}
	for _, tt := range tests {
		if got := escapeControls(tt.in); got != tt.want {
			t.Errorf("escapeControls(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCommandPrefix(t *testing.T) {
	tests := []struct{ dataDir, want string }{
		{defaultDataDir, "agenthost"},
		{"/srv/agenthost", "agenthost --data-dir /srv/agenthost"},
		{"my dir", "agenthost --data-dir 'my dir'"},
		{"it's", `agenthost --data-dir 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := (&globalFlags{dataDir: tt.dataDir}).commandPrefix(); got != tt.want {
			t.Errorf("commandPrefix(%q) = %q, want %q", tt.dataDir, got, tt.want)
		}
	}
}

// TestAgentsEscapesLastError: an agent's last error may quote what its
// plugin printed (a handshake line it got wrong); agents shows it on one
// line with its control characters escaped.
func TestAgentsEscapesLastError(t *testing.T) {
	dir := startRunHost(t, &runBackend{states: []string{localapi.StateBackoff},
		lastErr: "plugins: start research: Unrecognized remote plugin message: " + hostile + "\nThis usually means…"})
	code, stdout, stderr := runCLI(t, nil, nil, "agents", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.ContainsAny(stdout, "\x1b\x07\r\u009b\u202e") {
		t.Fatalf("a control character from the plugin reached the output: %q", stdout)
	}
	want := `Unrecognized remote plugin message: \x1b]0;pwned\a\x1b[2Jclean\r\nline\rfake\u202eevil\u009b31m\nThis usually means…`
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], want) {
		t.Fatalf("agents output %q, want the header and one line ending with %q", stdout, want)
	}
}
