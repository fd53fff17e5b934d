package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// stateBackend has one agent, "research", whose state a test sets; it runs
// a task only while the agent is running, and answers with the input's
// size.
type stateBackend struct {
	mu    sync.Mutex
	state string
	last  string
	// next, if set, is the state after each call of Agents.
	next func(calls int) string
	// agentCalls counts Agents calls; runs counts RunTask calls.
	agentCalls, runs int
	input            string
}

func (b *stateBackend) Agents(context.Context) []AgentInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.agentCalls++
	a := AgentInfo{Name: "research", State: b.state, LastError: b.last}
	if b.next != nil {
		b.state = b.next(b.agentCalls)
	}
	return []AgentInfo{a}
}

func (b *stateBackend) RunTask(_ context.Context, req TaskRequest, emit func(TaskEvent) error) error {
	b.mu.Lock()
	b.runs++
	b.input = req.Input
	running := b.state == StateRunning
	b.mu.Unlock()
	if req.Agent != "research" {
		return fmt.Errorf("%w: %s", ErrUnknownAgent, req.Agent)
	}
	if !running {
		return errors.New("supervisor: agent is not running: research")
	}
	return emit(TaskEvent{Type: "final", Text: fmt.Sprint(len(req.Input)), TaskID: "task-1"})
}

func (b *stateBackend) Quarantine(context.Context, string, string) error { return nil }
func (b *stateBackend) Release(context.Context, string, string) error    { return nil }

func (b *stateBackend) counts() (runs int, input string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs, b.input
}

// serveTasks runs the admin API on b and returns a client for it.
func serveTasks(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := Listen(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	c := NewClient(path)
	c.retryEvery = 10 * time.Millisecond
	return c, path
}

func TestAgentSettled(t *testing.T) {
	for state, want := range map[string]bool{
		StateRunning: true, StateFailed: true, StateQuarantined: true,
		StateStarting: false, StateBackoff: false, StateStopped: false, "": false, "unheard-of": false,
	} {
		if got := AgentSettled(state); got != want {
			t.Errorf("AgentSettled(%q) = %v, want %v", state, got, want)
		}
	}
}

func TestRunTaskAgentStates(t *testing.T) {
	tests := []struct {
		name  string
		state string
		last  string
		next  func(calls int) string
		wait  time.Duration
		// wantErr is nil for a task that runs.
		wantErr  error
		wantMsg  string
		wantWait bool
		// wantRuns is how many times the backend was asked to run the task.
		wantRuns int
	}{
		{name: "running", state: StateRunning, wantRuns: 1},
		{
			name: "starting, then running: waited for", state: StateStarting, wait: 10 * time.Second,
			next: func(calls int) string {
				if calls >= 3 {
					return StateRunning
				}
				return StateStarting
			},
			wantWait: true, wantRuns: 1,
		},
		{
			name: "restarting, then running: waited for", state: StateBackoff, last: "plugin exited", wait: 10 * time.Second,
			next:     func(int) string { return StateRunning },
			wantWait: true, wantRuns: 1,
		},
		{
			name: "starting, not waited for", state: StateStarting,
			wantErr: ErrAgentStarting, wantMsg: "agent research is starting",
		},
		{
			name: "starting for longer than the wait", state: StateBackoff, last: "plugin exited", wait: 300 * time.Millisecond,
			wantErr: ErrAgentStarting, wantMsg: "localapi: agent research did not start within 300ms: agent research is restarting: plugin exited",
			wantWait: true,
		},
		{
			name: "failed: not waited for", state: StateFailed, last: "plugins: checksum mismatch", wait: 10 * time.Second,
			wantErr: ErrAgentUnavailable, wantMsg: "agent research failed to start and will not be restarted: plugins: checksum mismatch",
			wantRuns: 1,
		},
		{
			name: "quarantined: not waited for", state: StateQuarantined, last: "quarantined: compromised", wait: 10 * time.Second,
			wantErr: ErrAgentUnavailable, wantMsg: "agent research is quarantined: compromised",
			wantRuns: 1,
		},
		{
			name: "quarantined, no reason known", state: StateQuarantined,
			wantErr: ErrAgentUnavailable, wantMsg: "agent research is quarantined", wantRuns: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &stateBackend{state: tt.state, last: tt.last, next: tt.next}
			c, _ := serveTasks(t, b)
			var waited []*AgentStateError
			var events []TaskEvent
			err := c.RunTaskWait(context.Background(), TaskRequest{Agent: "research", Input: "q"},
				TaskWait{Timeout: tt.wait, OnWait: func(e *AgentStateError) { waited = append(waited, e) }},
				func(ev TaskEvent) { events = append(events, ev) })
			if tt.wantErr == nil {
				if err != nil || len(events) != 1 || events[0].Type != "final" {
					t.Fatalf("RunTaskWait: %v, events %+v", err, events)
				}
			} else {
				if !errors.Is(err, tt.wantErr) || err.Error() != tt.wantMsg {
					t.Fatalf("RunTaskWait error = %v, want %q wrapping %v", err, tt.wantMsg, tt.wantErr)
				}
				var se *AgentStateError
				if !errors.As(err, &se) || se.Agent != "research" || se.LastError != tt.last {
					t.Fatalf("error %v carries no state of agent research: %+v", err, se)
				}
			}
			if tt.wantWait != (len(waited) == 1) || len(waited) > 1 {
				t.Fatalf("OnWait called %d times, want it called once: %v", len(waited), tt.wantWait)
			}
			if tt.wantWait && (waited[0].State != tt.state || waited[0].Agent != "research") {
				t.Fatalf("OnWait got %+v", waited[0])
			}
			if runs, _ := b.counts(); runs != tt.wantRuns {
				t.Fatalf("the backend ran the task %d times, want %d", runs, tt.wantRuns)
			}
		})
	}
}

func TestRunTaskWaitStopsWithContext(t *testing.T) {
	c, _ := serveTasks(t, &stateBackend{state: StateStarting})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.RunTaskWait(ctx, TaskRequest{Agent: "research", Input: "q"}, TaskWait{Timeout: time.Minute}, func(TaskEvent) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunTaskWait = %v, want the context's error", err)
	}
}

func TestTaskSize(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{name: "1 MB", input: strings.Repeat("a", 1_000_000)},
		{name: "exactly the limit", input: strings.Repeat("what time is it?\n", MaxTaskInput/17) + strings.Repeat("x", MaxTaskInput%17)},
		{name: "the limit, every byte escaped by JSON", input: strings.Repeat("\x01", MaxTaskInput)},
		{name: "one byte over", input: strings.Repeat("a", MaxTaskInput+1),
			wantErr: "the task is 1 MiB (1048577 bytes); a task may hold at most 1 MiB (1048576 bytes)"},
		{name: "much larger", input: strings.Repeat("a", 5*MaxTaskInput/2),
			wantErr: "the task is 2.5 MiB (2621440 bytes); a task may hold at most 1 MiB (1048576 bytes)"},
	}
	b := &stateBackend{state: StateRunning}
	c, _ := serveTasks(t, b)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var final string
			err := c.RunTask(context.Background(), TaskRequest{Agent: "research", Input: tt.input}, func(ev TaskEvent) { final = ev.Text })
			if tt.wantErr != "" {
				if !errors.Is(err, ErrTaskTooLarge) || err.Error() != tt.wantErr {
					t.Fatalf("RunTask error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunTask: %v", err)
			}
			if _, got := b.counts(); got != tt.input || final != fmt.Sprint(len(tt.input)) {
				t.Fatalf("the backend got %d bytes (answer %q), want %d", len(got), final, len(tt.input))
			}
		})
	}
}

// TestTaskBodyTooLarge sends bodies over the limit as any client might,
// with and without a Content-Length: the answer is a 413 whose JSON error
// names the limit, not a decoding error.
func TestTaskBodyTooLarge(t *testing.T) {
	_, path := serveTasks(t, &stateBackend{state: StateRunning})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	body, _ := json.Marshal(TaskRequest{Agent: "research", Input: strings.Repeat("\x01", maxTaskBody/6+1)})
	tests := []struct {
		name string
		body io.Reader
	}{
		{"with a length", bytes.NewReader(body)},
		{"streamed", io.MultiReader(bytes.NewReader(body))}, // no length known: chunked
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://agenthost/v1/tasks", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error string `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("status %s, body: %v", resp.Status, err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge ||
				e.Error != "the task request is larger than 6.1 MiB; a task may hold at most 1 MiB (1048576 bytes)" {
				t.Fatalf("status %s, error %q", resp.Status, e.Error)
			}
		})
	}
}

// tokenBackend refuses every task's access token but "good".
type tokenBackend struct{ stateBackend }

func (b *tokenBackend) RunTask(ctx context.Context, req TaskRequest, emit func(TaskEvent) error) error {
	if req.AccessToken != "good" {
		return fmt.Errorf("%w: the access token is invalid: expired", ErrTokenRefused)
	}
	return b.stateBackend.RunTask(ctx, req, emit)
}

// TestTaskAccessToken: a refused token is 401 with the host's reason
// (ErrTokenRefused at the client); a task naming its user twice is 400
// before the host sees it.
func TestTaskAccessToken(t *testing.T) {
	b := &tokenBackend{stateBackend{state: StateRunning}}
	c, _ := serveTasks(t, b)
	ctx := context.Background()
	if err := c.RunTask(ctx, TaskRequest{Agent: "research", Input: "hi", AccessToken: "good"}, func(TaskEvent) {}); err != nil {
		t.Fatalf("good token: %v", err)
	}
	err := c.RunTask(ctx, TaskRequest{Agent: "research", Input: "hi", AccessToken: "stale"}, func(TaskEvent) {})
	if !errors.Is(err, ErrTokenRefused) || err.Error() != "the host refused the sign-in: the access token is invalid: expired" {
		t.Fatalf("refused token: %v", err)
	}
	runs, _ := b.counts()
	err = c.RunTask(ctx, TaskRequest{Agent: "research", Input: "hi", AccessToken: "good", Subject: "bob"}, func(TaskEvent) {})
	if err == nil || errors.Is(err, ErrTokenRefused) || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("subject and token: %v", err)
	}
	if n, _ := b.counts(); n != runs {
		t.Fatal("a task naming its user twice reached the host")
	}
}
