package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/runtime/mediator"
)

func newTest(t testing.TB, cfg Config) *Telemetry {
	t.Helper()
	tel, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// sample is the value of the series of metric name with labels: a
// counter's value, or a histogram's count of observations; -1 when there
// is no such series.
func sample(t *testing.T, tel *Telemetry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := tel.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsAre(m, labels) {
				continue
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func labelsAre(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// TestHooksMoveMetrics: each hook moves its metric's series, and only
// that one.
func TestHooksMoveMetrics(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		fire   func(tel *Telemetry)
		metric string
		labels map[string]string
		// other is a series of the same metric the hook must leave alone.
		other map[string]string
	}{
		{"mediator decision", func(tel *Telemetry) {
			tel.CallEnded(tel.CallStarted(ctx, mediator.ActionCallTool), mediator.CallEnd{Action: mediator.ActionCallTool,
				Resource: "clock/now", Decision: mediator.DecisionDeny})
		}, MetricMediatorDecisions, map[string]string{"action": "tool.call", "outcome": "deny"},
			map[string]string{"action": "tool.call", "outcome": "allow"}},
		{"mediator call duration", func(tel *Telemetry) {
			tel.CallEnded(ctx, mediator.CallEnd{Action: mediator.ActionComplete, Decision: mediator.DecisionAllow, Duration: time.Millisecond})
		}, MetricMediatorCallDuration, map[string]string{"action": "llm.complete"}, map[string]string{"action": "tool.call"}},
		{"policy evaluation", func(tel *Telemetry) {
			tel.PolicyEvaluated(ctx, mediator.ActionCallAgent, 3*time.Microsecond)
		}, MetricPolicyEvaluation, map[string]string{"action": "agent.call"}, nil},
		{"token cache hit", func(tel *Telemetry) { tel.TokenCache(true) }, MetricTokenCacheHits, map[string]string{}, nil},
		{"token cache miss", func(tel *Telemetry) { tel.TokenCache(false) }, MetricTokenCacheMisses, map[string]string{}, nil},
		{"token issued", func(tel *Telemetry) {
			tel.TokenRequest(ctx, oauth.GrantTokenExchange, authserver.TokenIssued)
		}, MetricTokenRequests, map[string]string{"grant_type": oauth.GrantTokenExchange, "result": "issued"},
			map[string]string{"grant_type": oauth.GrantClientCredentials, "result": "issued"}},
		{"token refused", func(tel *Telemetry) {
			tel.TokenRequest(ctx, oauth.GrantClientCredentials, oauth.CodeInvalidClient)
		}, MetricTokenRequests, map[string]string{"grant_type": oauth.GrantClientCredentials, "result": "invalid_client"},
			map[string]string{"grant_type": oauth.GrantClientCredentials, "result": "issued"}},
		{"plugin restart", func(tel *Telemetry) { tel.PluginRestarted("research") }, MetricPluginRestarts,
			map[string]string{"agent": "research"}, map[string]string{"agent": "payments"}},
		{"tool plugin restart", func(tel *Telemetry) { tel.ToolPluginRestarted("textkit") }, MetricToolPluginRestarts,
			map[string]string{"plugin": "textkit"}, map[string]string{"plugin": "other"}},
		{"approval wait", func(tel *Telemetry) { tel.ApprovalDecided(ctx, consent.OutcomeDenied, 42*time.Second) },
			MetricApprovalWait, map[string]string{"outcome": "denied"}, map[string]string{"outcome": "approved"}},
		{"audit append", func(tel *Telemetry) { tel.AuditAppended(300 * time.Microsecond) }, MetricAuditAppend,
			map[string]string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTest(t, Config{Agents: []string{"research", "payments"}, ToolPlugins: []string{"textkit", "other"}})
			before := max(sample(t, tel, tt.metric, tt.labels), 0)
			var otherBefore float64
			if tt.other != nil {
				otherBefore = sample(t, tel, tt.metric, tt.other)
			}
			tt.fire(tel)
			tt.fire(tel)
			if got := sample(t, tel, tt.metric, tt.labels); got != before+2 {
				t.Errorf("%s%v = %v after two hooks, want %v", tt.metric, tt.labels, got, before+2)
			}
			if tt.other != nil {
				if got := sample(t, tel, tt.metric, tt.other); got != otherBefore {
					t.Errorf("%s%v moved: %v, was %v", tt.metric, tt.other, got, otherBefore)
				}
			}
		})
	}
}

// TestMetricsEndpoint: /metrics serves every metric of the host by name
// (the labelled ones from the start, at zero), the Go runtime's and the
// process's, and the names pass Prometheus's naming lint.
func TestMetricsEndpoint(t *testing.T) {
	tel := newTest(t, Config{Agents: []string{"research"}})
	tel.TokenCache(true)
	tel.AuditAppended(time.Millisecond)
	tel.PolicyEvaluated(context.Background(), mediator.ActionCallTool, time.Microsecond)
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		MetricMediatorDecisions + `{action="agent.call",outcome="approval_required"} 0`,
		MetricMediatorCallDuration + `_bucket{action="tool.list",le="0.001"} 0`,
		MetricPolicyEvaluation + `_count{action="tool.call"} 1`,
		MetricTokenCacheHits + " 1",
		MetricTokenCacheMisses + " 0",
		MetricTokenRequests + `{grant_type="client_credentials",result="issued"} 0`,
		MetricPluginRestarts + `{agent="research"} 0`,
		MetricApprovalWait + `_count{outcome="expired"} 0`,
		MetricAuditAppend + "_count 1",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(tel.m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "agenthost_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestNil: a nil Telemetry's hooks do nothing and its handler has
// nothing to serve.
func TestNil(t *testing.T) {
	var tel *Telemetry
	ctx := context.Background()
	if got := tel.CallStarted(ctx, mediator.ActionCallTool); got != ctx {
		t.Error("CallStarted of nil changed the context")
	}
	tel.CallEnded(ctx, mediator.CallEnd{})
	tel.PolicyEvaluated(ctx, "", 0)
	tel.TokenCache(true)
	tel.TokenRequest(ctx, "", "")
	tel.PluginRestarted("a")
	tel.ApprovalDecided(ctx, "", 0)
	tel.AuditAppended(0)
	if err := tel.Shutdown(ctx); err != nil || tel.Tracing() {
		t.Errorf("Shutdown = %v, Tracing = %v", err, tel.Tracing())
	}
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil handler: %d", rec.Code)
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"Authorization=Bearer%20x", map[string]string{"Authorization": "Bearer x"}, false},
		{"authorization=Bearer x, x-tenant = a ,", map[string]string{"Authorization": "Bearer x", "X-Tenant": "a"}, false},
		{"k=a=b", map[string]string{"K": "a=b"}, false},
		{"", nil, true},
		{"novalue", nil, true},
		{"bad name=x", nil, true},
		{"k=%zz", nil, true},
		{"k=a%0Db", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHeaders(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseHeaders = %v, %v", got, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseHeaders = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	// A secret in a malformed value is not repeated in the error.
	if _, err := ParseHeaders("Authorization=s3cret%"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v", err)
	}
}

func TestTracesURL(t *testing.T) {
	tests := []struct {
		endpoint string
		insecure bool
		want     string
		wantErr  bool
	}{
		{"https://collector:4318", false, "https://collector:4318/v1/traces", false},
		{"https://collector:4318/", false, "https://collector:4318/v1/traces", false},
		{"https://otel.example/custom/traces", false, "https://otel.example/custom/traces", false},
		{"http://127.0.0.1:4318", true, "http://127.0.0.1:4318/v1/traces", false},
		{"http://collector:4318", false, "", true},
		{"collector:4318", false, "", true},
		{"ftp://collector", true, "", true},
		{"https://u:p@collector", false, "", true},
		{"https://collector/?x=1", false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			got, err := OTLPConfig{Endpoint: tt.endpoint, Insecure: tt.insecure}.TracesURL()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("TracesURL = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestNoTracingByDefault: without OTLP nothing records spans: the
// context a call starts with is left as it is.
func TestNoTracingByDefault(t *testing.T) {
	tel := newTest(t, Config{})
	ctx := context.Background()
	if tel.Tracing() || tel.CallStarted(ctx, mediator.ActionCallTool) != ctx {
		t.Fatal("spans are recorded without an exporter")
	}
	if _, err := New(ctx, Config{OTLP: &OTLPConfig{Endpoint: "http://collector:4318"}}); err == nil {
		t.Fatal("an http endpoint was taken without insecure")
	}
}
