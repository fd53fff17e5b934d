package host

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/telemetry"
)

// scrape reads the host's /metrics: the value of every series, by its
// name and labels as written ("name{a=\"b\"}").
func scrape(t *testing.T, h *Host) map[string]float64 {
	t.Helper()
	resp, err := http.Get(h.Issuer() + PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", PathMetrics, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: unreadable line %q", PathMetrics, line)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the series of name whose labels contain every one of labels.
func sum(m map[string]float64, name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(series, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// TestTelemetryQuickstart: the quickstart host serves /metrics on its
// loopback listener; running tasks (one that delegates to another agent,
// whose token comes from the host's authorization server) moves the
// mediator's decisions, the token endpoint's requests and the token
// cache, and the audit appends.
func TestTelemetryQuickstart(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := quickstartConfig(t)
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	waitAllRunning(ctx, t, dir, len(cfg.Agents))

	before := scrape(t, h)
	for _, name := range []string{telemetry.MetricMediatorDecisions, telemetry.MetricTokenRequests, telemetry.MetricPluginRestarts,
		telemetry.MetricApprovalWait + "_count", "go_goroutines"} {
		if !hasSeries(before, name) {
			t.Errorf("%s lacks %s", PathMetrics, name)
		}
	}
	for _, s := range []struct{ agent, input, want string }{
		{"research", "What time is it now?", "The clock/now tool returned: "},
		{"assistant", "what is the balance of account: bob", "payments says: The payments/balance tool returned: "},
	} {
		final, failure, err := taskAnswer(ctx, h, s.agent, s.input)
		if err != nil || failure != "" || !strings.HasPrefix(final, s.want) {
			t.Fatalf("run %s %q = %q %q %v", s.agent, s.input, final, failure, err)
		}
	}
	// A hosted MCP server's tools/call is observed like a mediated call.
	session := sdkSession(t, ctx, h.Issuer()+"/mcp/notes", "alice", "alice-demo-password", []string{"notes:read"})
	if _, err := callMCP(ctx, session, "search", map[string]any{"query": "anything"}); err != nil {
		t.Fatalf("notes/search over MCP: %v", err)
	}
	after := scrape(t, h)

	grew := []struct {
		what   string
		name   string
		labels []string
		min    float64
	}{
		{"model calls allowed", telemetry.MetricMediatorDecisions, []string{`action="llm.complete"`, `outcome="allow"`}, 3},
		{"tool calls allowed", telemetry.MetricMediatorDecisions, []string{`action="tool.call"`, `outcome="allow"`}, 2},
		{"delegations allowed", telemetry.MetricMediatorDecisions, []string{`action="agent.call"`, `outcome="allow"`}, 1},
		{"hosted MCP tool calls allowed", telemetry.MetricMediatorDecisions, []string{`action="mcp.tools.call"`, `outcome="allow"`}, 1},
		{"tokens issued", telemetry.MetricTokenRequests, []string{`result="issued"`}, 1},
		{"token cache misses", telemetry.MetricTokenCacheMisses, nil, 1},
		{"mediated call durations", telemetry.MetricMediatorCallDuration + "_count", nil, 6},
		{"policy evaluations", telemetry.MetricPolicyEvaluation + "_count", nil, 6},
		{"audit appends", telemetry.MetricAuditAppend + "_count", nil, 6},
	}
	for _, g := range grew {
		if d := sum(after, g.name, g.labels...) - sum(before, g.name, g.labels...); d < g.min {
			t.Errorf("%s: %s%v grew by %v, want at least %v", g.what, g.name, g.labels, d, g.min)
		}
	}
	if d := sum(after, telemetry.MetricMediatorDecisions, `outcome="error"`) - sum(before, telemetry.MetricMediatorDecisions, `outcome="error"`); d != 0 {
		t.Errorf("%v mediated calls ended in error", d)
	}
}

func hasSeries(m map[string]float64, name string) bool {
	for series := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			return true
		}
	}
	return false
}

// TestTelemetryMetricsOff: with telemetry.metrics false (and no traces)
// the host serves no /metrics and observes nothing.
func TestTelemetryMetricsOff(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg := testConfig(t)
		cfg.Telemetry.Metrics = &on
		h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
		resp, err := http.Get(h.Issuer() + PathMetrics)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := resp.StatusCode == http.StatusOK && strings.Contains(string(body), telemetry.MetricMediatorDecisions)
		if served != on {
			t.Errorf("metrics %v: %s answers %d", on, PathMetrics, resp.StatusCode)
		}
		// Without metrics or traces nothing observes the mediated calls.
		if observed := h.mediatorObserver() != nil; observed != on {
			t.Errorf("metrics %v: the mediator is observed: %v", on, observed)
		}
	}
}

// TestTelemetryTracesExported: with telemetry.otlp the quickstart host
// sends the spans of its mediated calls to the collector, with the
// headers of the variable headers_env names, by the time it has stopped;
// a host whose variable is unset does not start.
func TestTelemetryTracesExported(t *testing.T) {
	requireSandbox(t)
	var mu sync.Mutex
	var posts []string
	var body bytes.Buffer
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, r.URL.Path+" "+r.Header.Get("Authorization"))
		body.Write(b)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()

	cfg := quickstartConfig(t)
	cfg.Telemetry.OTLP = &config.OTLPConfig{Endpoint: collector.URL, Insecure: true, HeadersEnv: "AGENTHOST_TEST_OTLP_HEADERS"}
	t.Setenv("AGENTHOST_TEST_OTLP_HEADERS", "")
	if _, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard}); err == nil ||
		!strings.Contains(err.Error(), "AGENTHOST_TEST_OTLP_HEADERS is not set") {
		t.Fatalf("a host whose headers variable is unset: %v", err)
	}
	t.Setenv("AGENTHOST_TEST_OTLP_HEADERS", "Authorization=Bearer%20collector-token")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	h, _, stop := startLogged(t, cfg, dir)
	waitAllRunning(ctx, t, dir, len(cfg.Agents))
	if final, failure, err := taskAnswer(ctx, h, "research", "What time is it now?"); err != nil || failure != "" ||
		!strings.HasPrefix(final, "The clock/now tool returned: ") {
		t.Fatalf("task: %q %q %v", final, failure, err)
	}
	// A delegation: the assistant's call and the payments task it starts
	// share a transaction, so their spans share one trace.
	if final, failure, err := taskAnswer(ctx, h, "assistant", "what is the balance of account: bob"); err != nil || failure != "" ||
		!strings.HasPrefix(final, "payments says: ") {
		t.Fatalf("delegation: %q %q %v", final, failure, err)
	}
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var delegationTxn string
	for _, e := range entries {
		if e.Record.Action == "agent.call" && e.Record.Agent == "assistant" {
			delegationTxn = e.Record.Txn
		}
	}
	delegated := slices.ContainsFunc(entries, func(e audit.Entry) bool {
		return e.Record.Agent == "payments" && e.Record.Action == "tool.call" && e.Record.Txn == delegationTxn
	})
	if delegationTxn == "" || !delegated {
		t.Fatalf("no delegation in one transaction in the audit log (txn %q)", delegationTxn)
	}
	stop()

	mu.Lock()
	defer mu.Unlock()
	if len(posts) == 0 {
		t.Fatal("the collector received no spans")
	}
	for _, p := range posts {
		if p != telemetry.DefaultTracesPath+" Bearer collector-token" {
			t.Errorf("export %q", p)
		}
	}
	trace := telemetry.TraceIDOf(delegationTxn)
	if n := bytes.Count(body.Bytes(), trace[:]); n < 3 {
		t.Errorf("the delegation's trace %s is on %d exported spans, want those of both agents", trace, n)
	}
	for _, want := range []string{"llm.complete", "tool.call", "clock/now", telemetry.AttrTxn, telemetry.AttrDecision, "research"} {
		if !bytes.Contains(body.Bytes(), []byte(want)) {
			t.Errorf("the exported spans lack %q", want)
		}
	}
}

// TestTelemetryToolPluginRestart: a tool plugin whose process is killed
// is started again on the next call, and counted once.
func TestTelemetryToolPluginRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := runHost(t, toolPluginConfig(t), filepath.Join(t.TempDir(), "data"))
	session := sdkSession(t, ctx, h.Issuer()+"/mcp/kit", "alice", "alice-test-password", []string{"kit:read"})
	defer session.Close()
	call := func() {
		t.Helper()
		res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{"echo": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("tools/call: %v %+v", err, res)
		}
	}
	series := telemetry.MetricToolPluginRestarts + `{plugin="kit"}`
	call()
	if got := scrape(t, h)[series]; got != 0 {
		t.Fatalf("%s = %v before any restart", series, got)
	}
	tp := h.tools["kit/whoami"].(pluginTool).plugin
	pid := tp.pid()
	if pid <= 0 {
		t.Fatal("the tool plugin has no process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for tp.pid() == pid {
		select {
		case <-ctx.Done():
			t.Fatal("the killed plugin was not seen to exit")
		case <-time.After(20 * time.Millisecond):
		}
	}
	call()
	if got := scrape(t, h)[series]; got != 1 {
		t.Errorf("%s = %v after one restart, want 1", series, got)
	}
}
