package telemetry

import (
	"context"
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
	log    *slog.Logger
	m      *metrics
	tp     *sdktrace.TracerProvider // nil: no tracing
	tracer trace.Tracer
}

var _ mediator.Observer = (*Telemetry)(nil)

// New builds the metrics registry and, with cfg.OTLP, the tracer provider
// and its exporter (which connects on the first export, not here).
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	t := &Telemetry{log: cfg.Logger, m: newMetrics(cfg.Agents, cfg.ToolPlugins)}
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

// CallStarted implements [mediator.Observer]: a span named by the action,
// when tracing.
func (t *Telemetry) CallStarted(ctx context.Context, action string) context.Context {
	if t == nil || t.tracer == nil {
		return ctx
	}
	ctx, _ = t.tracer.Start(ctx, action, trace.WithSpanKind(trace.SpanKindServer))
	return ctx
}

// CallEnded implements [mediator.Observer]: the decision and duration
// metrics, and the end of the call's span.
func (t *Telemetry) CallEnded(ctx context.Context, e mediator.CallEnd) {
	if t == nil {
		return
	}
	t.m.decision(e.Action, e.Decision).Inc()
	t.m.callDurationOf(e.Action).Observe(e.Duration.Seconds())
	if t.tracer == nil {
		return
	}
	span := trace.SpanFromContext(ctx)
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
	span.End()
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
