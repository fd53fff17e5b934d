package host

// Metrics and traces (runtime/telemetry): the host builds one Telemetry
// from the telemetry section and gives its hooks to the parts it observes
// (the mediator, the agents' token clients, the authorization server's
// token endpoint, the supervisor, the approval requests and the audit
// log), each in that part's own constructor. It serves the metrics at
// /metrics on its listener when config.Config.MetricsServed says so (a
// loopback listener, or telemetry.metrics_public), and flushes the spans
// still batched when it stops.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/telemetry"
)

// PathMetrics serves the host's metrics in the Prometheus text format.
const PathMetrics = "/metrics"

// telemetryFlushTimeout bounds the export of the last spans when the host
// stops.
const telemetryFlushTimeout = 2 * time.Second

// newTelemetry builds the host's metrics and, with telemetry.otlp, its
// tracer and exporter. With neither metrics nor traces there is nothing
// to observe: h.telemetry stays nil, and its hooks do nothing.
func (h *Host) newTelemetry(ctx context.Context) error {
	tc := h.cfg.Telemetry
	if !tc.MetricsEnabled() && tc.OTLP == nil {
		return nil
	}
	cfg := telemetry.Config{Version: h.opts.Version, Now: h.now, Logger: h.log.With("component", "telemetry")}
	for _, a := range h.cfg.Agents {
		cfg.Agents = append(cfg.Agents, a.Name)
	}
	for _, p := range h.cfg.MCP.Plugins {
		cfg.ToolPlugins = append(cfg.ToolPlugins, p.Name)
	}
	if o := tc.OTLP; o != nil {
		cfg.OTLP = &telemetry.OTLPConfig{Endpoint: o.Endpoint, Insecure: o.Insecure}
		if o.HeadersEnv != "" {
			v := os.Getenv(o.HeadersEnv)
			if v == "" {
				return fmt.Errorf("host: telemetry.otlp.headers_env: the environment variable %s is not set", o.HeadersEnv)
			}
			headers, err := telemetry.ParseHeaders(v)
			if err != nil {
				return fmt.Errorf("host: telemetry.otlp.headers_env %s: %w", o.HeadersEnv, err)
			}
			cfg.OTLP.Headers = headers
		}
	}
	t, err := telemetry.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.telemetry = t
	h.closers = append(h.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), telemetryFlushTimeout)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			h.log.Warn("exporting the last spans failed", slog.Any("error", err))
		}
	})
	if cfg.OTLP != nil {
		h.log.InfoContext(ctx, "exporting traces", slog.String("endpoint", cfg.OTLP.Endpoint))
	}
	return nil
}

// mediatorObserver is the mediator's Observer: none without telemetry, so
// that a host that observes nothing pays nothing per call.
func (h *Host) mediatorObserver() mediator.Observer {
	if h.telemetry == nil {
		return nil
	}
	return h.telemetry
}

// mountMetrics serves /metrics on mux when the config says so.
func (h *Host) mountMetrics(mux *http.ServeMux) {
	switch {
	case h.cfg.MetricsServed():
		mux.Handle(PathMetrics, h.telemetry.Handler())
	case h.cfg.Telemetry.MetricsEnabled():
		h.log.Info("metrics are not served: the listener is not a loopback one (set telemetry.metrics_public to serve them there)")
	}
}
