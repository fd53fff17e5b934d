package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/llm"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// memoryAuditor keeps records in memory; it is durable enough for a test.
type memoryAuditor struct {
	mu   sync.Mutex
	recs []mediator.Record
}

func (a *memoryAuditor) Record(_ context.Context, r mediator.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

// echoTool answers its arguments, or fails when asked to.
type echoTool struct{}

func (echoTool) Definition() llm.Tool {
	return llm.Tool{Name: "echo/say", Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (echoTool) Call(_ context.Context, _ mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	if string(args) == `{"fail":true}` {
		return mediator.ToolResult{}, errors.New("echo failed")
	}
	return mediator.ToolResult{Text: string(args)}, nil
}

// discardAuditor takes every record and keeps none.
type discardAuditor struct{}

func (discardAuditor) Record(context.Context, mediator.Record) error { return nil }

// newMediator is a mediator observed by obs (none when nil), auditing to
// a, with one running task t1 of agent research, whose grants name
// echo/say only.
func newMediator(t testing.TB, obs mediator.Observer, a mediator.Auditor) pluginpb.HostServer {
	t.Helper()
	m, err := mediator.New(mediator.Config{
		Tools:    map[string]mediator.Tool{"echo/say": echoTool{}, "echo/other": echoTool{}},
		Policy:   mediator.AllowList{"research": {Tools: []string{"echo/say"}}},
		Auditor:  a,
		Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	end, err := m.BeginTask(mediator.Caller{Agent: "research", TaskID: "t1", Txn: "txn-1",
		Identity: credentials.MustParseIdentity("spiffe://test.local/agent/research")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(end)
	return m.HostFor("research")
}

// TestSpanPerCall: every mediated call is one span, named by its action,
// carrying the transaction, task, agent, resource and decision, with an
// error status when the call failed; the metrics count the same calls.
func TestSpanPerCall(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := newTest(t, Config{Version: "test", exporter: exp})
	h := newMediator(t, tel, &memoryAuditor{})
	ctx := context.Background()
	calls := []struct {
		tool, args string
		decision   string
		failed     bool
	}{
		{"echo/say", `{"x":1}`, "allow", false},
		{"echo/say", `{"fail":true}`, "allow", true},
		{"echo/other", `{}`, "deny", true},
	}
	for _, c := range calls {
		_, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: c.tool, ArgumentsJson: c.args})
		if (err != nil) != c.failed {
			t.Fatalf("%s %s: %v", c.tool, c.args, err)
		}
	}
	if _, err := h.ListTools(ctx, &pluginpb.ListToolsRequest{TaskId: "t1"}); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != len(calls)+1 {
		t.Fatalf("%d spans for %d calls", len(spans), len(calls)+1)
	}
	for i, c := range calls {
		s := spans[i]
		attrs := map[attribute.Key]string{}
		for _, kv := range s.Attributes {
			attrs[kv.Key] = kv.Value.AsString()
		}
		want := map[attribute.Key]string{AttrTxn: "txn-1", AttrTask: "t1", AttrAgent: "research", AttrResource: c.tool,
			AttrDecision: c.decision}
		if s.Name != mediator.ActionCallTool || len(attrs) != len(want) {
			t.Errorf("span %d: %s %v", i, s.Name, attrs)
		}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("span %d: %s = %q, want %q", i, k, attrs[k], v)
			}
		}
		if failed := s.Status.Code == codes.Error; failed != c.failed {
			t.Errorf("span %d: status %v, want failed %v", i, s.Status, c.failed)
		}
		if s.SpanContext.TraceID() != TraceIDOf("txn-1") || s.Parent.SpanID() != rootSpanIDOf("txn-1") || !s.Parent.IsRemote() {
			t.Errorf("span %d: trace %s parent %s, want the transaction's trace %s", i, s.SpanContext.TraceID(), s.Parent.SpanID(), TraceIDOf("txn-1"))
		}
		if s.EndTime.Before(s.StartTime) || s.EndTime.IsZero() {
			t.Errorf("span %d not ended: %v – %v", i, s.StartTime, s.EndTime)
		}
		if got := s.Resource.Set(); got.Len() == 0 {
			t.Errorf("span %d has no resource", i)
		} else if v, _ := got.Value("service.name"); v.AsString() != "agenthost" {
			t.Errorf("span %d: service.name %q", i, v.AsString())
		}
	}
	if TraceIDOf("txn-1") == TraceIDOf("txn-2") || !TraceIDOf("txn-2").IsValid() {
		t.Error("two transactions share a trace ID")
	}
	if s := spans[len(calls)]; s.Name != mediator.ActionListTools {
		t.Errorf("the tool list's span is named %q", s.Name)
	}
	if got := sample(t, tel, MetricMediatorDecisions, map[string]string{"action": "tool.call", "outcome": "allow"}); got != 2 {
		t.Errorf("allowed tool calls counted: %v, want 2", got)
	}
	if got := sample(t, tel, MetricMediatorDecisions, map[string]string{"action": "tool.call", "outcome": "deny"}); got != 1 {
		t.Errorf("denied tool calls counted: %v, want 1", got)
	}
}

// TestOTLPExport: with an OTLP endpoint configured, the spans reach it as
// OTLP/HTTP posts to /v1/traces with the configured headers, at the
// latest when Shutdown flushes them.
func TestOTLPExport(t *testing.T) {
	type post struct {
		path, auth, contentType string
		size                    int
	}
	got := make(chan post, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- post{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), len(body)}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	ctx := context.Background()
	tel, err := New(ctx, Config{Version: "test", HTTPClient: collector.Client(), OTLP: &OTLPConfig{
		Endpoint: collector.URL, Insecure: true, Headers: map[string]string{"Authorization": "Bearer collector-token"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Tracing() {
		t.Fatal("no tracing with an OTLP endpoint")
	}
	h := newMediator(t, tel, &memoryAuditor{})
	if _, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "echo/say", ArgumentsJson: `{}`}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.path != DefaultTracesPath || p.auth != "Bearer collector-token" || p.contentType != "application/x-protobuf" || p.size == 0 {
			t.Fatalf("export: %+v", p)
		}
	default:
		t.Fatal("Shutdown returned and the collector received nothing")
	}
}
