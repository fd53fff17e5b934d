package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/runtime/host"
)

// lockedBuffer is a buffer written by the progress line's goroutine and
// read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressOnATerminal(t *testing.T) {
	var w lockedBuffer
	p := newProgress(&w, true, "verifying the audit log")
	log := p.writer(&w)
	io.WriteString(log, "a log line\n")
	io.WriteString(log, "half a line, ")
	p.set("still verifying")
	io.WriteString(log, "its end\n")
	p.set(strings.Repeat("long ", 20))
	p.set("almost done \x1b]0;title\x07")
	p.stop()
	p.stop() // a second stop does nothing
	io.WriteString(log, "after\n")
	out := w.String()

	// Drawn at once, with the spinner and the time elapsed.
	if !strings.HasPrefix(out, "\r\x1b[K⠋ verifying the audit log (") {
		t.Fatalf("the line was not drawn at once: %q", out)
	}
	// Lines written through it stay whole: the live line is cleared
	// before them and not drawn inside an unfinished one.
	if !strings.Contains(withoutLiveLine(out), "a log line\nhalf a line, its end\nafter\n") {
		t.Fatalf("the log lines were broken: %q", out)
	}
	if !strings.Contains(out, "almost done \\x1b]0;title\\a (") {
		t.Fatalf("the new text was not drawn escaped: %q", out)
	}
	// A long text is cut, so that the line fits on one row.
	if !strings.Contains(out, " "+strings.Repeat("long ", 13)+"lo… (") {
		t.Fatalf("the long text was not cut to %d characters: %q", progressWidth, out)
	}
	// Stopped: cleared, and the line after it is written as it is.
	if !strings.HasSuffix(out, "\r\x1b[Kafter\n") {
		t.Fatalf("the line was not cleared at stop: %q", out)
	}
}

func TestProgressOff(t *testing.T) {
	var w lockedBuffer
	p := newProgress(&w, false, "verifying the audit log")
	log := p.writer(&w)
	io.WriteString(log, "a log line\n")
	p.set("still verifying")
	p.stop()
	if got := w.String(); got != "a log line\n" {
		t.Fatalf("a progress that is off wrote %q", got)
	}
}

func TestWatchAgents(t *testing.T) {
	states := []host.Readiness{
		{Status: host.ReadyStatusStarting, Agents: 2, Starting: []host.AgentStarting{{Agent: "research", State: "stopped"}, {Agent: "pay", State: "stopped"}}},
		{Status: host.ReadyStatusStarting, Agents: 2, Running: 1, Starting: []host.AgentStarting{{Agent: "pay", State: "backoff"}}},
		{Status: host.ReadyStatusReady, Agents: 2, Running: 1, Down: 1},
	}
	var mu sync.Mutex
	readiness := func() host.Readiness {
		mu.Lock()
		defer mu.Unlock()
		rd := states[0]
		if len(states) > 1 {
			states = states[1:]
		}
		return rd
	}
	var w lockedBuffer
	p := newProgress(&w, true, "starting the host")
	watchAgents(context.Background(), p, &w, readiness)
	out := w.String()
	for _, want := range []string{
		" 0 of 2 agents running; waiting for research (stopped), pay (stopped) (",
		" 1 of 2 agents running; waiting for pay (backoff) (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the live line never said %q: %q", want, out)
		}
	}
	final := withoutLiveLine(out)
	if !strings.HasPrefix(final, "ready after ") ||
		!strings.HasSuffix(final, "s: 1 of 2 agents running, 1 failed or quarantined (see agenthost agents)\n") {
		t.Fatalf("the line after the live one: %q", final)
	}
}

func TestWatchAgentsNone(t *testing.T) {
	var w lockedBuffer
	p := newProgress(&w, true, "starting the host")
	watchAgents(context.Background(), p, &w, func() host.Readiness { return host.Readiness{Status: host.ReadyStatusReady} })
	if got := withoutLiveLine(w.String()); got != "" {
		t.Fatalf("a host without agents got the line %q", got)
	}
}

// TestAuditVerifyProgress: on a terminal audit verify draws a live line
// on stderr while it waits; in a pipe and with -o json it draws none.
func TestAuditVerifyProgress(t *testing.T) {
	dataDir, _ := startTestHost(t)
	stderrIsTerminal := func(w io.Writer) bool { _, ok := w.(*bytes.Buffer); return ok }
	tests := []struct {
		name     string
		args     []string
		isTerm   func(io.Writer) bool
		wantLine bool
	}{
		{"terminal", nil, stderrIsTerminal, true},
		{"pipe", nil, nil, false},
		{"json on a terminal", []string{"-o", "json"}, stderrIsTerminal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"audit", "verify", "--data-dir", dataDir}, tt.args...)
			code, stdout, stderr := runCLI(t, nil, tt.isTerm, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if got := strings.Contains(stderr, "\r\x1b[K⠋ verifying the audit log ("); got != tt.wantLine {
				t.Fatalf("live line drawn: %v, want %v; stderr %q", got, tt.wantLine, stderr)
			}
			if strings.Contains(stdout, "\x1b") || (!tt.wantLine && strings.Contains(stderr, "\x1b")) {
				t.Fatalf("an escape sequence where none belongs: stdout %q, stderr %q", stdout, stderr)
			}
			if !strings.Contains(withoutLiveLine(stderr), "verifier key ") {
				t.Fatalf("the note on stderr was lost: %q", stderr)
			}
		})
	}
}
