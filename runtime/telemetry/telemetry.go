package telemetry

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agenthost/agenthost/runtime/mediator"
)

// Config configures [New].
type Config struct {
	// Version is the host's version, the service.version of its spans.
	Version string
	// Agents are the configured agents: their restart counters exist
	// (at zero) from the start.
	Agents []string
	// ToolPlugins are the configured tool plugins: their restart
	// counters exist (at zero) from the start.
	ToolPlugins []string
	// OTLP, when set, exports every mediated call's span to a collector.
	// Nil records no spans, and nothing leaves the host.
	OTLP *OTLPConfig
	// HTTPClient posts spans to the collector; nil means the exporter's
	// own client (10 s timeout).
	HTTPClient *http.Client
	// Now is the clock of the spans' times; nil means time.Now.
	Now func() time.Time
	// Logger receives span export failures; nil means silent.
	Logger *slog.Logger

	// exporter, when set (by tests), receives each span as it ends,
	// instead of an OTLP exporter.
	exporter sdktrace.SpanExporter
}

// Telemetry holds the host's metrics and tracer. Its methods are the
// hooks the observed packages call; they are safe for concurrent use and
// do nothing on a nil *Telemetry.
type Telemetry struct {
	now    func() time.Time
	log    *slog.Logger
	m      *metrics
	tp     *sdktrace.TracerProvider // nil: no tracing
	tracer trace.Tracer
}

var _ mediator.Observer = (*Telemetry)(nil)

// New builds the metrics registry and, with cfg.OTLP, the tracer provider
// and its exporter (which connects on the first export, not here).
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{now: cfg.Now, log: cfg.Logger, m: newMetrics(cfg.Agents, cfg.ToolPlugins)}
	if t.now == nil {
		t.now = time.Now
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	var err error
	switch {
	case cfg.exporter != nil:
		t.tp, err = newTracerProvider(cfg.Version, sdktrace.WithSyncer(cfg.exporter))
	case cfg.OTLP != nil:
		var exp sdktrace.SpanExporter
		if exp, err = newOTLPExporter(ctx, *cfg.OTLP, cfg.HTTPClient); err != nil {
			return nil, err
		}
		t.tp, err = newTracerProvider(cfg.Version, sdktrace.WithBatcher(loggingExporter{SpanExporter: exp, log: t.log}))
	}
	if err != nil {
		return nil, err
	}
	if t.tp != nil {
		t.tracer = t.tp.Tracer(instrumentationName)
	}
	return t, nil
}

// Handler serves the metrics in the Prometheus text format (the host's
// /metrics).
func (t *Telemetry) Handler() http.Handler {
	if t == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(t.m.reg, promhttp.HandlerOpts{
		// A scrape costs a little; a few at once are plenty.
		MaxRequestsInFlight: 4,
		ErrorHandling:       promhttp.ContinueOnError,
	})
}

// Tracing reports whether mediated calls are recorded as spans.
func (t *Telemetry) Tracing() bool { return t != nil && t.tp != nil }

// Shutdown exports the spans still batched and stops the tracer provider,
// waiting at most until ctx ends. Metrics need no shutdown.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}

// Span attribute keys of a mediated call.
const (
	AttrTxn      = "agenthost.txn"
	AttrTask     = "agenthost.task"
	AttrAgent    = "agenthost.agent"
	AttrResource = "agenthost.resource"
	AttrDecision = "agenthost.decision"
)

// CallStarted implements [mediator.Observer]: it notes when the call
// began; its span is made when it ends, once its transaction is known.
func (t *Telemetry) CallStarted(ctx context.Context, action string) context.Context {
	if t == nil || t.tracer == nil {
		return ctx
	}
	return context.WithValue(ctx, callBeganKey{}, t.now())
}

type callBeganKey struct{}

// CallEnded implements [mediator.Observer]: the decision and duration
// metrics, and the call's span. The span belongs to the trace of its
// transaction (TraceIDOf): every call of a task, and of the tasks it
// delegated, which share its transaction, is in one trace, with no
// context to carry across the plugin boundary.
func (t *Telemetry) CallEnded(ctx context.Context, e mediator.CallEnd) {
	if t == nil {
		return
	}
	t.m.decision(e.Action, e.Decision).Inc()
	t.m.callDurationOf(e.Action).Observe(e.Duration.Seconds())
	if t.tracer == nil {
		return
	}
	end := t.now()
	began, ok := ctx.Value(callBeganKey{}).(time.Time)
	if !ok {
		began = end.Add(-e.Duration)
	}
	if e.Caller.Txn != "" {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: TraceIDOf(e.Caller.Txn), SpanID: rootSpanIDOf(e.Caller.Txn), TraceFlags: trace.FlagsSampled, Remote: true}))
	}
	_, span := t.tracer.Start(ctx, e.Action, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(began))
	span.SetAttributes(
		attribute.String(AttrTxn, e.Caller.Txn),
		attribute.String(AttrTask, e.Caller.TaskID),
		attribute.String(AttrAgent, e.Caller.Agent),
		attribute.String(AttrResource, e.Resource),
		attribute.String(AttrDecision, e.Decision),
	)
	if e.Err != nil {
		span.SetStatus(codes.Error, e.Err.Error())
	}
	span.End(trace.WithTimestamp(end))
}

// TraceIDOf is the trace ID of transaction txn's spans: the first 16
// bytes of the SHA-256 of "agenthost txn " and txn. Anyone holding a txn
// (an audit record's, say) finds its trace.
func TraceIDOf(txn string) trace.TraceID {
	sum := sha256.Sum256([]byte("agenthost txn " + txn))
	var id trace.TraceID
	copy(id[:], sum[:16])
	return id
}

// rootSpanIDOf is the span ID a transaction's call spans name as their
// parent: the transaction itself, of which no span is recorded.
func rootSpanIDOf(txn string) trace.SpanID {
	sum := sha256.Sum256([]byte("agenthost txn " + txn))
	var id trace.SpanID
	copy(id[:], sum[16:24])
	return id
}

// PolicyEvaluated implements [mediator.Observer].
func (t *Telemetry) PolicyEvaluated(_ context.Context, action string, took time.Duration) {
	if t == nil {
		return
	}
	t.m.policyOf(action).Observe(took.Seconds())
}

// TokenCache is the hook of a token client's cache (oauth.ClientConfig's
// OnCache).
func (t *Telemetry) TokenCache(hit bool) {
	if t == nil {
		return
	}
	if hit {
		t.m.cacheHits.Inc()
	} else {
		t.m.cacheMisses.Inc()
	}
}

// TokenRequest is the hook of the authorization server's token endpoint
// (authserver.Config's OnTokenRequest).
func (t *Telemetry) TokenRequest(_ context.Context, grant, result string) {
	if t == nil {
		return
	}
	t.m.tokens.WithLabelValues(grant, result).Inc()
}

// PluginRestarted is the supervisor's restart hook (supervisor.Config's
// OnRestart).
func (t *Telemetry) PluginRestarted(agent string) {
	if t == nil {
		return
	}
	t.m.restarts.WithLabelValues(agent).Inc()
}

// ToolPluginRestarted counts a tool plugin started again after it exited.
func (t *Telemetry) ToolPluginRestarted(plugin string) {
	if t == nil {
		return
	}
	t.m.toolRestarts.WithLabelValues(plugin).Inc()
}

// ApprovalDecided is the hook of the approval requests (consent's
// RequestsConfig.OnDecided).
func (t *Telemetry) ApprovalDecided(_ context.Context, outcome string, waited time.Duration) {
	if t == nil {
		return
	}
	t.m.approvalWait.WithLabelValues(outcome).Observe(waited.Seconds())
}

// AuditAppended is the audit log's hook (audit.Config's OnAppend).
func (t *Telemetry) AuditAppended(took time.Duration) {
	if t == nil {
		return
	}
	t.m.auditAppend.Observe(took.Seconds())
}
