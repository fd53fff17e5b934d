package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// instrumentationName names the tracer of the host's spans.
const instrumentationName = "github.com/agenthost/agenthost/runtime/telemetry"

// DefaultTracesPath is the path spans are posted to when the endpoint has
// none (the OTLP/HTTP default).
const DefaultTracesPath = "/v1/traces"

// OTLPConfig says where spans go: an OpenTelemetry collector (or any
// OTLP/HTTP receiver).
type OTLPConfig struct {
	// Endpoint is the receiver's URL, https unless Insecure; with no path,
	// DefaultTracesPath is posted to ("https://collector:4318" posts to
	// https://collector:4318/v1/traces).
	Endpoint string
	// Headers are sent with every export (an Authorization header, say).
	Headers map[string]string
	// Insecure allows an http Endpoint: spans and Headers then cross the
	// network unencrypted.
	Insecure bool
}

// TracesURL is the URL spans are posted to, checked.
func (c OTLPConfig) TracesURL() (string, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", errors.New("telemetry: the OTLP endpoint is not an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.Insecure:
	case u.Scheme == "http":
		return "", errors.New("telemetry: the OTLP endpoint is http: spans and headers would cross the network unencrypted (set insecure to allow it)")
	default:
		return "", fmt.Errorf("telemetry: the OTLP endpoint's scheme %q is neither https nor http", u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("telemetry: the OTLP endpoint must have no user information, query or fragment")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = DefaultTracesPath
	}
	return u.String(), nil
}

func newOTLPExporter(ctx context.Context, c OTLPConfig, hc *http.Client) (sdktrace.SpanExporter, error) {
	endpoint, err := c.TracesURL()
	if err != nil {
		return nil, err
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	if len(c.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
	}
	if hc != nil {
		opts = append(opts, otlptracehttp.WithHTTPClient(hc))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, nil
}

// newTracerProvider is the host's tracer provider: every span sampled
// (nothing is recorded without an exporter), processed by proc.
func newTracerProvider(version string, proc sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "agenthost"),
		attribute.String("service.version", version),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(proc, sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))), nil
}

// loggingExporter logs a failed export itself, rather than hand the error
// to OpenTelemetry's process-wide error handler.
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger
}

func (e loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.log.WarnContext(ctx, "exporting spans failed", slog.Int("spans", len(spans)), slog.Any("error", err))
	}
	return nil
}

// ParseHeaders reads export headers written as OTEL_EXPORTER_OTLP_HEADERS
// is: comma-separated key=value pairs, values percent-encoded where they
// need it ("Authorization=Bearer%20x,X-Tenant=a"; a plain space is kept
// too). Its errors never quote a value, which may be a secret.
func ParseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || !validHeaderName(k) {
			return nil, fmt.Errorf("telemetry: header %d is not name=value with a header name", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil || strings.ContainsAny(dv, "\r\n\x00") {
			return nil, fmt.Errorf("telemetry: the value of header %s is not a valid percent-encoded header value", k)
		}
		out[http.CanonicalHeaderKey(k)] = dv
	}
	if len(out) == 0 {
		return nil, errors.New("telemetry: no headers")
	}
	return out, nil
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 §5.1:
// a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
