package mediator

import (
	"context"
	"encoding/json"
	"errors"
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
	m, err := New(Config{
		Models:      map[string]llm.Model{"default": llmoffline.New(llmoffline.Config{})},
		AgentModels: map[string]string{"research": "default"},
		Tools:       BuiltinTools(st, func() time.Time { return t0 }),
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

func begin(t *testing.T, m *Mediator, agent, task string) {
	t.Helper()
	end, err := m.BeginTask(agent, credentials.MustParseIdentity("spiffe://test.local/agent/"+agent), task)
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
	if _, dup := m.BeginTask("research", credentials.Identity{}, "task-r"); dup == nil {
		t.Fatal("a running task id was registered twice")
	}
}

func TestPolicyAndAudit(t *testing.T) {
	m, st := newTestMediator(t)
	begin(t, m, "research", "t1")
	h := m.HostFor("research")
	ctx := context.Background()

	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "clock/now", ArgumentsJson: `{}`})
	if err != nil || res.GetContent()[0].GetText() != "Fri, 01 May 2026 12:00:00 UTC" {
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
		"tool.call clock/now allow started", "tool.call clock/now allow ok",
		"tool.call notes/add deny denied",
		"tool.list * allow started", "tool.list * allow ok",
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

func TestNotesAreStoredPerAgent(t *testing.T) {
	m, _ := newTestMediator(t)
	begin(t, m, "payments", "t")
	h := m.HostFor("payments")
	ctx := context.Background()
	if _, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t", Tool: "notes/add", ArgumentsJson: `{"text":"invoice 42 paid"}`}); err != nil {
		t.Fatal(err)
	}
	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t", Tool: "notes/search", ArgumentsJson: `{"query":"Invoice 42"}`})
	if err != nil || res.GetContent()[0].GetText() != "invoice 42 paid" {
		t.Fatalf("search = %v, %v", res, err)
	}
	begin(t, m, "research", "r")
	res, err = m.HostFor("research").CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "r", Tool: "notes/search", ArgumentsJson: `{"query":"invoice"}`})
	if err != nil || !strings.HasPrefix(res.GetContent()[0].GetText(), "no notes match") {
		t.Fatalf("another agent's search = %v, %v", res, err)
	}
}

func TestNewRequiresPolicyAndAuditor(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("a mediator without policy and auditor was built")
	}
}
