package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/llm"
	llmoffline "github.com/agenthost/agenthost/llm/offline"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// recordingObserver is an Observer that keeps what it is told and marks
// the context it returns.
type recordingObserver struct {
	mu       sync.Mutex
	started  []string
	ended    []CallEnd
	marked   []bool // whether CallEnded got the context CallStarted returned
	policies map[string]int
}

type markKey struct{}

func (o *recordingObserver) CallStarted(ctx context.Context, action string) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, action)
	return context.WithValue(ctx, markKey{}, action)
}

func (o *recordingObserver) CallEnded(ctx context.Context, e CallEnd) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = append(o.ended, e)
	o.marked = append(o.marked, ctx.Value(markKey{}) == e.Action)
}

func (o *recordingObserver) PolicyEvaluated(_ context.Context, action string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if took <= 0 {
		action += " (no time)"
	}
	o.policies[action]++
}

// policyFunc is a Policy made of a function.
type policyFunc func(ctx context.Context, r Request) (Decision, error)

func (f policyFunc) Decide(ctx context.Context, r Request) (Decision, error) { return f(ctx, r) }

// ctxTool is a tool that answers whether its context is the call's, as
// the Observer made it.
type ctxTool struct{}

func (ctxTool) Definition() llm.Tool {
	return llm.Tool{Name: "probe/ctx", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (ctxTool) Call(ctx context.Context, _ Caller, _ json.RawMessage) (ToolResult, error) {
	return ToolResult{Text: fmt.Sprint(ctx.Value(markKey{}))}, nil
}

// failingAuditor refuses every record once fail is set.
type failingAuditor struct {
	Auditor
	fail *bool
}

func (a failingAuditor) Record(ctx context.Context, r Record) error {
	if *a.fail {
		return errors.New("audit log unavailable")
	}
	return a.Auditor.Record(ctx, r)
}

// TestObserver: every Host call is observed once, with its action,
// resource, caller and the decision made on it (allow, deny,
// approval_required, error), in a context the Observer made, which the
// call itself runs in; every policy evaluation is observed with its time.
func TestObserver(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { // a millisecond per reading
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	grants := AllowList{"research": {Tools: []string{"clock/now", "probe/ctx", "notes/search", "notes/add"}, Models: []string{"default"}}}
	obs := &recordingObserver{policies: map[string]int{}}
	auditFails := false
	tools := stubTools("clock/now", "notes/search", "notes/add")
	tools["probe/ctx"] = ctxTool{}
	m, err := New(Config{
		Models: map[string]llm.Model{"default": llmoffline.New(llmoffline.Config{})},
		Tools:  tools,
		Policy: policyFunc(func(ctx context.Context, r Request) (Decision, error) {
			switch r.Resource {
			case "notes/add":
				return Decision{ApprovalRequired: true, Reason: "writes need approval", Policy: "p"}, nil
			case "notes/search":
				return Decision{}, errors.New("policy store unreachable")
			}
			return grants.Decide(ctx, r)
		}),
		Auditor:  failingAuditor{Auditor: StoreAuditor{Log: st}, fail: &auditFails},
		Now:      clock,
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "research", "t1")
	h := m.HostFor("research")
	ctx := context.Background()
	callTool := func(task, tool, args string) (string, error) {
		res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: task, Tool: tool, ArgumentsJson: args})
		if err != nil {
			return "", err
		}
		return res.GetContent()[0].GetText(), nil
	}
	if out, err := callTool("t1", "probe/ctx", `{}`); err != nil || out != ActionCallTool {
		t.Fatalf("the tool ran in context %q (%v), want the Observer's", out, err)
	}
	_, _ = callTool("t1", "clock/nope", `{}`)
	_, _ = callTool("t1", "notes/add", `{"text":"x"}`)
	_, _ = callTool("t1", "notes/search", `{"query":"x"}`)
	_, _ = callTool("task-x", "clock/now", `{}`)
	_, _ = callTool("t1", "clock/now", `{not json`)
	if _, err := h.Complete(ctx, &pluginpb.CompleteRequest{TaskId: "t1",
		Messages: []*pluginpb.Message{{Role: pluginpb.Role_ROLE_USER, Text: "hello"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListTools(ctx, &pluginpb.ListToolsRequest{TaskId: "t1"}); err != nil {
		t.Fatal(err)
	}
	auditFails = true
	if _, err := callTool("t1", "clock/now", `{}`); err == nil {
		t.Fatal("a call whose decision could not be recorded ran")
	}

	var got []string
	for i, e := range obs.ended {
		got = append(got, strings.Join([]string{e.Action, e.Resource, e.Caller.Agent, e.Caller.TaskID, e.Caller.Txn,
			e.Decision, fmt.Sprint(e.Err != nil)}, " "))
		if !obs.marked[i] {
			t.Errorf("call %d ended in a context the Observer did not make", i)
		}
		if e.Duration <= 0 {
			t.Errorf("call %d took %v", i, e.Duration)
		}
	}
	want := []string{
		"tool.call probe/ctx research t1 t1 allow false",
		"tool.call clock/nope research t1 t1 deny true",
		"tool.call notes/add research t1 t1 approval_required true",
		"tool.call notes/search research t1 t1 error true",
		"tool.call clock/now research task-x  deny true",
		"tool.call  research t1  error true",
		"llm.complete model:default research t1 t1 allow false",
		"tool.list * research t1 t1 allow false",
		"tool.call clock/now research t1 t1 error true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("observed calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(obs.started) != len(want) {
		t.Errorf("%d calls started, %d ended", len(obs.started), len(want))
	}
	// One evaluation per decided call (the task-x one and the malformed
	// one never reach the policy), plus one per tool of the tool list.
	wantPolicies := map[string]int{ActionCallTool: 5 + len(tools), ActionComplete: 1, ActionListTools: 1}
	if fmt.Sprint(obs.policies) != fmt.Sprint(wantPolicies) {
		t.Errorf("policy evaluations %v, want %v", obs.policies, wantPolicies)
	}
}

// TestNoObserver: without an Observer a plugin gets the mediator's own
// Host service.
func TestNoObserver(t *testing.T) {
	m, _ := newTestMediator(t)
	if _, ok := m.HostFor("research").(*hostServer); !ok {
		t.Fatalf("HostFor without an Observer = %T", m.HostFor("research"))
	}
	m.cfg.Observer = &recordingObserver{}
	if _, ok := m.HostFor("research").(observedHost); !ok {
		t.Fatalf("HostFor with an Observer = %T", m.HostFor("research"))
	}
}
