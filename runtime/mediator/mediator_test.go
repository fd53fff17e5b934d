package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/llm"
	llmoffline "github.com/agenthost/agenthost/llm/offline"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newTestMediator(t *testing.T) (*Mediator, *memstore.Store) {
	t.Helper()
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	m, err := New(Config{
		Models:      map[string]llm.Model{"default": llmoffline.New(llmoffline.Config{})},
		AgentModels: map[string]string{"research": "default"},
		Tools:       stubTools("clock/now", "notes/search", "notes/add"),
		TxnTokens:   txn,
		Policy: AllowList{
			"research": {Tools: []string{"clock/now", "notes/search"}, Models: []string{"default"}},
			"payments": {Tools: []string{"notes/*"}},
		},
		Auditor: StoreAuditor{Log: st},
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

// stubTool is a host tool for the mediator's tests: it answers "ran" and
// its name, whatever the arguments. The host's own tools are tested in
// runtime/hosttools.
type stubTool struct{ name string }

func (s stubTool) Definition() llm.Tool {
	return llm.Tool{Name: s.name, Description: "stub " + s.name, Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (s stubTool) Call(context.Context, Caller, json.RawMessage) (ToolResult, error) {
	return ToolResult{Text: "ran " + s.name}, nil
}

// stubTools returns a stubTool for each name.
func stubTools(names ...string) map[string]Tool {
	tools := make(map[string]Tool, len(names))
	for _, n := range names {
		tools[n] = stubTool{name: n}
	}
	return tools
}

func begin(t *testing.T, m *Mediator, agent, task string) {
	t.Helper()
	end, err := m.BeginTask(Caller{Agent: agent, Identity: credentials.MustParseIdentity("spiffe://test.local/agent/" + agent), TaskID: task})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(end)
}

func auditRecords(t *testing.T, st *memstore.Store) []Record {
	t.Helper()
	es, err := st.Read(context.Background(), AuditLog, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, e := range es {
		var r Record
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestTaskOwnership(t *testing.T) {
	m, st := newTestMediator(t)
	begin(t, m, "research", "task-r")
	begin(t, m, "payments", "task-p")
	research := m.HostFor("research")
	ctx := context.Background()
	tests := []struct {
		name string
		task string
	}{
		{"unknown task", "task-x"},
		{"another agent's task", "task-p"},
		{"empty task id", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := research.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: tt.task, Tool: "clock/now"})
			if !errors.Is(err, pluginpb.ErrPermissionDenied) {
				t.Fatalf("error = %v, want ErrPermissionDenied", err)
			}
		})
	}
	recs := auditRecords(t, st)
	if len(recs) != 3 || recs[0].Decision != "deny" || recs[0].Policy != "task-ownership" {
		t.Fatalf("audit = %+v", recs)
	}
	if _, dup := m.BeginTask(Caller{Agent: "research", TaskID: "task-r"}); dup == nil {
		t.Fatal("a running task id was registered twice")
	}
}

func TestPolicyAndAudit(t *testing.T) {
	m, st := newTestMediator(t)
	begin(t, m, "research", "t1")
	h := m.HostFor("research")
	ctx := context.Background()

	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "clock/now", ArgumentsJson: `{}`})
	if err != nil || res.GetContent()[0].GetText() != "ran clock/now" {
		t.Fatalf("clock/now = %v, %v", res, err)
	}
	// notes/add is not granted to research.
	_, err = h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "notes/add", ArgumentsJson: `{"text":"secret plan"}`})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) {
		t.Fatalf("denied tool: %v", err)
	}
	_, err = h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "clock/now", ArgumentsJson: `{not json`})
	if !errors.Is(err, pluginpb.ErrInvalidArgument) {
		t.Fatalf("bad JSON: %v", err)
	}
	list, err := h.ListTools(ctx, &pluginpb.ListToolsRequest{TaskId: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.GetTools() {
		names = append(names, tl.GetName())
	}
	if strings.Join(names, ",") != "clock/now,notes/search" {
		t.Fatalf("ListTools = %v, want only the granted tools", names)
	}

	recs := auditRecords(t, st)
	var outcomes []string
	for _, r := range recs {
		outcomes = append(outcomes, r.Action+" "+r.Resource+" "+r.Decision+" "+r.Outcome)
		if strings.Contains(string(mustJSON(r)), "secret plan") {
			t.Fatal("an audit record holds tool arguments in clear")
		}
		if r.Identity != "" && r.Identity != "spiffe://test.local/agent/research" {
			t.Fatalf("audit identity = %q", r.Identity)
		}
	}
	want := []string{
		"tool.call clock/now allow ", "tool.call clock/now allow ok",
		"tool.call notes/add deny denied",
		"tool.list * allow ", "tool.list * allow ok",
	}
	if strings.Join(outcomes, "|") != strings.Join(want, "|") {
		t.Fatalf("audit outcomes:\n%s\nwant:\n%s", strings.Join(outcomes, "\n"), strings.Join(want, "\n"))
	}
	if recs[2].ArgsSHA256 == "" {
		t.Fatal("denied call has no argument digest")
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestCompleteWithOfflineModelChoosesTool(t *testing.T) {
	m, _ := newTestMediator(t)
	begin(t, m, "research", "t1")
	h := m.HostFor("research")
	resp, err := h.Complete(context.Background(), &pluginpb.CompleteRequest{
		TaskId:   "t1",
		Messages: []*pluginpb.Message{{Role: pluginpb.Role_ROLE_USER, Text: "what time is it now?"}},
		Tools:    []*pluginpb.ToolDefinition{{Name: "clock/now", Description: "Current date and time", InputSchemaJson: `{"type":"object"}`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStopReason() != "tool_use" || len(resp.GetMessage().GetToolCalls()) != 1 || resp.GetMessage().GetToolCalls()[0].GetName() != "clock/now" {
		t.Fatalf("Complete = %v", resp)
	}
	// payments has no model grant.
	begin(t, m, "payments", "t2")
	_, err = m.HostFor("payments").Complete(context.Background(), &pluginpb.CompleteRequest{
		TaskId: "t2", Messages: []*pluginpb.Message{{Role: pluginpb.Role_ROLE_USER, Text: "hi"}}})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) {
		t.Fatalf("ungranted model: %v", err)
	}
}

func TestNewRequiresPolicyAndAuditor(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("a mediator without policy and auditor was built")
	}
}

func TestCallAgent(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	var gotChain []string
	m, err := New(Config{
		Policy: AllowList{
			"assistant": {Agents: []string{"research", "payments", "broken"}},
			"research":  {Agents: []string{"assistant"}},
		},
		Auditor: StoreAuditor{Log: st},
		Agents: func(_ context.Context, agent, input string, parent Caller) (string, error) {
			gotChain = append(append([]string(nil), parent.Chain...), parent.Agent)
			switch agent {
			case "research":
				return "research says: " + input, nil
			case "payments":
				return "", fmt.Errorf("%w: agent payments is quarantined", pluginpb.ErrPermissionDenied)
			}
			return "", errors.New("the agent's task failed: boom")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "assistant", "a1")
	ctx := context.Background()
	resp, err := m.HostFor("assistant").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "a1", Agent: "research", Input: "q"})
	if err != nil || resp.GetState() != "completed" || resp.GetOutput() != "research says: q" || strings.Join(gotChain, ",") != "assistant" {
		t.Fatalf("CallAgent = %v, %v (chain %v)", resp, err, gotChain)
	}
	// A delegation that is refused or fails is an error for the caller,
	// never an answer, and its outcome is audited as an error.
	for _, tt := range []struct {
		agent string
		kind  error
		text  string
	}{
		{"payments", pluginpb.ErrPermissionDenied, "agent payments is quarantined"},
		{"broken", pluginpb.ErrUnavailable, "the task delegated to broken failed: the agent's task failed: boom"},
	} {
		resp, err := m.HostFor("assistant").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "a1", Agent: tt.agent, Input: "q"})
		if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.text) || resp != nil {
			t.Errorf("CallAgent(%s) = %v, %v; want an error %v with %q", tt.agent, resp, err, tt.kind, tt.text)
		}
		recs := auditRecords(t, st)
		if last := recs[len(recs)-1]; last.Resource != tt.agent || last.Decision != "allow" || last.Outcome != "error" {
			t.Errorf("CallAgent(%s) audited as %+v", tt.agent, last)
		}
	}
	// Not granted.
	begin(t, m, "research", "r0")
	_, err = m.HostFor("research").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "r0", Agent: "payments", Input: "q"})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("ungranted agent: %v", err)
	}
	// A delegated task calling back up the chain is refused as a loop.
	end, err := m.BeginTask(Caller{Agent: "research", TaskID: "r1", Chain: []string{"assistant"}})
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	_, err = m.HostFor("research").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "r1", Agent: "assistant", Input: "q"})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("delegation loop: %v", err)
	}
	// Too deep.
	end2, err := m.BeginTask(Caller{Agent: "assistant", TaskID: "deep", Chain: []string{"x", "y", "z"}})
	if err != nil {
		t.Fatal(err)
	}
	defer end2()
	_, err = m.HostFor("assistant").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "deep", Agent: "research", Input: "q"})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("deep chain: %v", err)
	}
	_, err = m.HostFor("assistant").CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "a1", Agent: "research"})
	if !errors.Is(err, pluginpb.ErrInvalidArgument) {
		t.Fatalf("empty input: %v", err)
	}
}

type fakeRemote struct{ gotToken *Token }

func (f *fakeRemote) Definition() llm.Tool {
	return llm.Tool{Name: "remote/echo", Parameters: json.RawMessage(`{"type":"object"}`)}
}
func (f *fakeRemote) Call(context.Context, Caller, json.RawMessage) (ToolResult, error) {
	return ToolResult{}, errors.New("Call must not be used for a remote tool")
}
func (f *fakeRemote) Resource() string { return "https://tools.example/mcp" }
func (f *fakeRemote) CallWithToken(_ context.Context, _ Caller, tok Token, args json.RawMessage) (ToolResult, error) {
	f.gotToken = &tok
	return ToolResult{Text: "echo " + string(args)}, nil
}

type fakeTokens struct{ calls []string }

func (f *fakeTokens) Token(_ context.Context, c Caller, resource string) (Token, error) {
	f.calls = append(f.calls, c.Agent+" "+resource)
	return Token{Type: "Bearer", Value: "at-secret-value"}, nil
}

func TestRemoteToolGetsTokenPluginDoesNot(t *testing.T) {
	st := memstore.New(nil)
	remote, tokens := &fakeRemote{}, &fakeTokens{}
	cfg := Config{
		Tools:   map[string]Tool{"remote/echo": remote},
		Policy:  AllowList{"research": {Tools: []string{"remote/*"}}},
		Auditor: StoreAuditor{Log: st},
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "research", "t")
	// Without a token source the remote tool is refused.
	_, err = m.HostFor("research").CallTool(context.Background(), &pluginpb.CallToolRequest{TaskId: "t", Tool: "remote/echo", ArgumentsJson: `{}`})
	if !errors.Is(err, pluginpb.ErrUnavailable) {
		t.Fatalf("remote tool without a token source: %v", err)
	}
	cfg.Tokens = tokens
	m, _ = New(cfg)
	begin(t, m, "research", "t")
	res, err := m.HostFor("research").CallTool(context.Background(), &pluginpb.CallToolRequest{TaskId: "t", Tool: "remote/echo", ArgumentsJson: `{"x":1}`})
	if err != nil {
		t.Fatal(err)
	}
	if remote.gotToken == nil || remote.gotToken.Value != "at-secret-value" || len(tokens.calls) != 1 || tokens.calls[0] != "research https://tools.example/mcp" {
		t.Fatalf("token step: tool got %+v, source calls %v", remote.gotToken, tokens.calls)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), "at-secret-value") {
		t.Fatal("the token reached the plugin's response")
	}
	recs, _ := st.Read(context.Background(), AuditLog, 0, 100)
	for _, r := range recs {
		if strings.Contains(string(r.Data), "at-secret-value") {
			t.Fatal("the token was written to the audit log")
		}
	}
}

// forbidTool narrows an allow-list as a policy engine would: tool.call on
// one tool is denied.
type forbidTool struct {
	grants AllowList
	tool   string
}

func (f forbidTool) Decide(ctx context.Context, r Request) (Decision, error) {
	d, err := f.grants.Decide(ctx, r)
	if err != nil || !d.Allow {
		return d, err
	}
	if r.Action == ActionCallTool && r.Resource == f.tool {
		return Decision{Policy: "no-transfers", Reason: "transfers need a delegation"}, nil
	}
	return d, nil
}

// TestListToolsAuditsHiddenTools: a granted tool that policy forbids is left
// out of the tool list with a deny record naming it; tools outside the
// grants are left out without one.
func TestListToolsAuditsHiddenTools(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	m, err := New(Config{
		Tools:   stubTools("payments/transfer", "payments/balance"),
		Policy:  forbidTool{grants: AllowList{"payments": {Tools: []string{"payments/*"}}}, tool: "payments/transfer"},
		Auditor: StoreAuditor{Log: st},
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "payments", "p")
	list, err := m.HostFor("payments").ListTools(context.Background(), &pluginpb.ListToolsRequest{TaskId: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetTools()) != 1 || list.GetTools()[0].GetName() != "payments/balance" {
		t.Fatalf("ListTools = %v, want payments/balance only", list.GetTools())
	}
	var got []string
	for _, r := range auditRecords(t, st) {
		got = append(got, strings.Join([]string{r.Action, r.Resource, r.Decision, r.Outcome, r.Policy, r.Reason}, " | "))
	}
	want := []string{
		"tool.list | * | allow |  | allow-list | ",
		"tool.list | payments/transfer | deny | denied | no-transfers | hidden from the tool list: transfers need a delegation",
		"tool.list | * | allow | ok | allow-list | ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// failDenials is an Auditor whose store fails every denial.
type failDenials struct{ StoreAuditor }

func (a failDenials) Record(ctx context.Context, r Record) error {
	if r.Decision == "deny" {
		return errors.New("store unavailable")
	}
	return a.StoreAuditor.Record(ctx, r)
}

// TestListToolsRefusedWithoutHiddenRecord: a tool list whose hidden tool
// cannot be audited is refused, not returned without the record.
func TestListToolsRefusedWithoutHiddenRecord(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	m, err := New(Config{
		Tools:   stubTools("payments/transfer", "payments/balance"),
		Policy:  forbidTool{grants: AllowList{"payments": {Tools: []string{"payments/*"}}}, tool: "payments/transfer"},
		Auditor: failDenials{StoreAuditor{Log: st}},
		Now:     func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "payments", "p")
	list, err := m.HostFor("payments").ListTools(context.Background(), &pluginpb.ListToolsRequest{TaskId: "p"})
	if !errors.Is(err, pluginpb.ErrUnavailable) || list != nil {
		t.Fatalf("ListTools = %v, %v; want no list and ErrUnavailable", list, err)
	}
}

// queueAuditor tells records it was given to wait for (Record) from those
// it was given to queue (Queue).
type queueAuditor struct{ got []string }

func (a *queueAuditor) Record(_ context.Context, r Record) error {
	a.got = append(a.got, "record "+r.Decision+"/"+r.Outcome)
	return nil
}

func (a *queueAuditor) Queue(_ context.Context, r Record) error {
	a.got = append(a.got, "queue "+r.Decision+"/"+r.Outcome)
	return nil
}

// TestRecordAllowedQueuesOutcome: with a Queuer the decision is still
// waited for before the call runs; only the outcome is queued.
func TestRecordAllowedQueuesOutcome(t *testing.T) {
	a := &queueAuditor{}
	outcome, err := RecordAllowed(context.Background(), a, func() time.Time { return t0 }, Record{Action: "tool.call"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outcome(errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if want := "[record allow/ queue allow/error]"; fmt.Sprint(a.got) != want {
		t.Errorf("records %v, want %s", a.got, want)
	}
}
