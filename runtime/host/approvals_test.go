package host

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/consent/consenttest"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// transfererAgent calls payments/transfer with the task (a JSON object) as
// its arguments and answers with what the tool said.
type transfererAgent struct{}

func (transfererAgent) Describe() sdk.Description { return sdk.Description{Name: "payer"} }

func (transfererAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	var args map[string]any
	if err := json.Unmarshal([]byte(t.Input), &args); err != nil {
		return "", err
	}
	res, err := t.CallTool(ctx, "payments/transfer", args)
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", errors.New(res.Text)
	}
	return res.Text, nil
}

const approvalPolicy = `
@id("baseline")
permit (principal, action, resource);

@id("big-transfers")
@approval("required")
@reason("transfers above 100.00 need the user's approval")
permit (principal, action == Action::"tool.call", resource == Tool::"payments/transfer")
when { context has args && context.args has amount && context.args.amount > 100 };
`

func approvalConfig(t *testing.T) *config.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	for _, u := range []string{"alice", "bob"} {
		hash, err := userauth.HashPassword(u + "-test-password")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Auth.Users = append(cfg.Auth.Users, config.UserConfig{Name: u, PasswordHash: hash})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(approvalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Policy.Dir = dir
	cfg.Agents = []config.AgentConfig{{Name: "payer", Path: exe, Tools: []string{"payments/transfer"},
		Env: map[string]string{testAgentEnv: "transferer"}}}
	return cfg
}

// taskRun is a task running in the background, its approval requests and
// its end.
type taskRun struct {
	approvals chan localapi.TaskEvent
	done      chan struct{}
	final     string
	failure   string
	task      string
	err       error
}

func startTransfer(ctx context.Context, h *Host, subject, args string) *taskRun {
	r := &taskRun{approvals: make(chan localapi.TaskEvent, 4), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = h.RunTask(ctx, localapi.TaskRequest{Agent: "payer", Input: args, Subject: subject}, func(ev localapi.TaskEvent) error {
			switch ev.Type {
			case "approval":
				r.approvals <- ev
			case "final":
				r.final, r.task = ev.Text, ev.TaskID
			case "error":
				r.failure, r.task = ev.Text, ev.TaskID
			}
			return nil
		})
	}()
	return r
}

func (r *taskRun) approval(t *testing.T) localapi.TaskEvent {
	t.Helper()
	select {
	case ev := <-r.approvals:
		return ev
	case <-r.done:
		t.Fatalf("the task ended without asking for approval: final %q, failure %q, %v", r.final, r.failure, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no approval request")
	}
	return localapi.TaskEvent{}
}

func (r *taskRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the task did not end")
	}
}

// toolRecords are the tool.call records of task.
func toolRecords(t *testing.T, h *Host, task string) []audit.Record {
	t.Helper()
	entries, err := h.AuditRead(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, e := range entries {
		if e.Record.Task == task && e.Record.Action == audit.ActionToolCall {
			out = append(out, e.Record)
		}
	}
	return out
}

// TestApprovalRequired: a transfer policy says needs approval becomes a
// CIBA request for the task's user, surfaced on the task's stream with the
// approval page; approved there by the user, the call runs once and the
// task completes, audited with the approval and the approver. Denied,
// expired or approved by another user, the task fails and nothing moves.
// The same call again needs a new approval; the used one is not accepted
// twice. A task for nobody is refused: approval needs a user.
func TestApprovalRequired(t *testing.T) {
	cibaInterval, cibaExpiry = time.Second, 6*time.Second
	defer func() { cibaInterval, cibaExpiry = 0, 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := runHost(t, approvalConfig(t), filepath.Join(t.TempDir(), "data"))
	if _, err := h.sup.WaitFor(ctx, "payer", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	alice := consenttest.NewBrowser("alice", "alice-test-password")
	bob := consenttest.NewBrowser("bob", "bob-test-password")
	const big = `{"from":"alice","to":"bob","amount":500}`

	// A small transfer needs no approval.
	r := startTransfer(ctx, h, "alice", `{"from":"alice","to":"carol","amount":5}`)
	r.wait(t)
	if r.err != nil || !strings.Contains(r.final, "transferred 5.00") {
		t.Fatalf("small transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
	}

	// Approved by alice: runs once.
	r = startTransfer(ctx, h, "alice", big)
	ev := r.approval(t)
	if ev.Text != "agenthost: payments/transfer 500 to bob" || !strings.HasPrefix(ev.URL, h.Issuer()+"/approve/") {
		t.Fatalf("approval event %+v", ev)
	}
	pending, err := h.PendingApprovals(ctx, "alice", "")
	if err != nil || len(pending) != 1 || pending[0].URL != ev.URL || pending[0].BindingMessage != ev.Text {
		t.Fatalf("alice's pending approvals: %+v, %v", pending, err)
	}
	if p, err := h.PendingApprovals(ctx, "bob", ""); err != nil || len(p) != 0 {
		t.Fatalf("bob's pending approvals: %+v, %v", p, err)
	}
	if _, err := alice.Approve(ctx, ev.URL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.err != nil || r.failure != "" || !strings.Contains(r.final, "transferred 500.00 from alice to bob") {
		t.Fatalf("approved transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
	}
	recs := toolRecords(t, h, r.task)
	var approvalID string
	ran := 0
	for _, rec := range recs {
		if rec.Decision == audit.DecisionAllow && rec.Outcome == audit.OutcomeOK {
			ran++
			approvalID = rec.ApprovalID
			if rec.Approver != "alice" || rec.ApprovalID == "" || !strings.Contains(rec.Reason, "approved by alice") {
				t.Errorf("the call's record: %+v", rec)
			}
		}
	}
	if ran != 1 || !strings.HasSuffix(ev.URL, "/"+approvalID) {
		t.Fatalf("%d runs of the approved call (approval %q, page %s): %+v", ran, approvalID, ev.URL, recs)
	}
	// The approval is used: the host does not take it again.
	if err := (hostApprovals{h}).Claim(ctx, approvalID, mediator.Caller{TaskID: "again"}); !errors.Is(err, mediator.ErrApprovalUsed) {
		t.Fatalf("claim of a used approval: %v", err)
	}

	// The same call again: a new approval is needed; denied, it fails.
	r = startTransfer(ctx, h, "alice", big)
	ev2 := r.approval(t)
	if ev2.URL == ev.URL {
		t.Fatal("the second run reused the first approval")
	}
	if _, err := alice.Deny(ctx, ev2.URL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.final != "" || !strings.Contains(r.failure, "alice denied the approval") {
		t.Fatalf("denied transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
	}
	assertRefused(t, h, r.task, "denied")

	// Bob cannot approve alice's request; it expires; nothing runs.
	r = startTransfer(ctx, h, "alice", big)
	ev3 := r.approval(t)
	if _, err := bob.Approve(ctx, ev3.URL); err == nil {
		t.Fatal("bob approved alice's request")
	}
	r.wait(t)
	if r.final != "" || !strings.Contains(r.failure, "expired") {
		t.Fatalf("expired transfer: final %q, failure %q, %v", r.final, r.failure, r.err)
	}
	assertRefused(t, h, r.task, "expired")

	// A task for nobody: refused, saying approval needs a user.
	r = startTransfer(ctx, h, "", big)
	r.wait(t)
	if r.final != "" || !strings.Contains(r.failure, "approval needs a user") {
		t.Fatalf("transfer for nobody: final %q, failure %q, %v", r.final, r.failure, r.err)
	}
	assertRefused(t, h, r.task, "approval needs a user")
}

// assertRefused checks that task's transfer was refused with reason and
// never ran.
func assertRefused(t *testing.T, h *Host, task, reason string) {
	t.Helper()
	refused := false
	for _, rec := range toolRecords(t, h, task) {
		if rec.Decision == audit.DecisionAllow {
			t.Errorf("the refused call ran: %+v", rec)
		}
		refused = refused || rec.Decision == audit.DecisionDeny && strings.Contains(rec.Reason, reason)
	}
	if !refused {
		t.Errorf("no refusal %q audited for task %s: %+v", reason, task, toolRecords(t, h, task))
	}
}

// TestApprovalSurvivesRestart: a request pending when the host stops is
// still pending after it starts again; the same call made again (the task
// run anew) waits for that request instead of asking twice, and once the
// user approves it the call runs exactly once. The next such call asks
// anew.
func TestApprovalSurvivesRestart(t *testing.T) {
	cibaInterval = time.Second
	defer func() { cibaInterval = 0 }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := approvalConfig(t)
	cfg.Listen.Address = config.Address(addr)
	dataDir := filepath.Join(t.TempDir(), "data")
	start := func() (*Host, func()) {
		hctx, stop := context.WithCancel(context.Background())
		h, err := New(hctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard, Version: "test"})
		if err != nil {
			stop()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(hctx) }()
		var once sync.Once
		halt := func() {
			once.Do(func() {
				stop()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		t.Cleanup(halt)
		if _, err := h.sup.WaitFor(ctx, "payer", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
		return h, halt
	}
	const big = `{"from":"alice","to":"bob","amount":500}`

	h1, stop1 := start()
	r := startTransfer(ctx, h1, "alice", big)
	ev := r.approval(t)
	stop1()
	r.wait(t)
	if r.final != "" {
		t.Fatalf("the transfer ran with nobody approving: %q", r.final)
	}

	h2, _ := start()
	pending, err := h2.PendingApprovals(ctx, "alice", "")
	if err != nil || len(pending) != 1 || pending[0].URL != ev.URL {
		t.Fatalf("after the restart, alice's pending approvals: %+v, %v (want %s)", pending, err, ev.URL)
	}
	// The task run again waits for the same request.
	r = startTransfer(ctx, h2, "alice", big)
	if again := r.approval(t); again.URL != ev.URL {
		t.Fatalf("the call made again asked anew: %s, not %s", again.URL, ev.URL)
	}
	if _, err := consenttest.NewBrowser("alice", "alice-test-password").Approve(ctx, ev.URL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.err != nil || r.failure != "" || !strings.Contains(r.final, "transferred 500.00 from alice to bob") {
		t.Fatalf("approved after the restart: final %q, failure %q, %v", r.final, r.failure, r.err)
	}
	ran := 0
	for _, rec := range toolRecords(t, h2, r.task) {
		if rec.Decision == audit.DecisionAllow && rec.Outcome == audit.OutcomeOK {
			ran++
			if !strings.HasSuffix(ev.URL, "/"+rec.ApprovalID) || rec.Approver != "alice" {
				t.Errorf("the call's record: %+v", rec)
			}
		}
	}
	if ran != 1 {
		t.Fatalf("%d runs of the approved call", ran)
	}

	// Decided and used: the next such call asks anew.
	r = startTransfer(ctx, h2, "alice", big)
	if next := r.approval(t); next.URL == ev.URL {
		t.Fatal("a used approval's request was waited for again")
	} else if _, err := consenttest.NewBrowser("alice", "alice-test-password").Deny(ctx, next.URL); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.final != "" || !strings.Contains(r.failure, "alice denied the approval") {
		t.Fatalf("denied: final %q, failure %q", r.final, r.failure)
	}
}
