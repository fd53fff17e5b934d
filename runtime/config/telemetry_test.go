package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

func TestTelemetry(t *testing.T) {
	plain, err := config.Parse("c.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !plain.Telemetry.MetricsEnabled() || plain.Telemetry.OTLP != nil || !plain.MetricsServed() {
		t.Fatalf("defaults: %+v, served %v", plain.Telemetry, plain.MetricsServed())
	}
	tests := []struct {
		name   string
		src    string
		served bool
		// same says the section is what the defaults say: the digest is
		// the one of a file without it.
		same bool
	}{
		{"empty section", "telemetry: {}", true, true},
		{"metrics written as the default", "telemetry: {metrics: true}", true, true},
		{"metrics off", "telemetry: {metrics: false}", false, false},
		{"public on loopback", "telemetry: {metrics_public: true}", true, false},
		{"otlp", "telemetry:\n  otlp: {endpoint: 'https://collector:4318', headers_env: OTEL_HEADERS}", true, false},
		{"otlp over http", "telemetry: {otlp: {endpoint: 'http://127.0.0.1:4318', insecure: true}}", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("c.yaml", []byte("version: 1\n"+tt.src+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsServed() != tt.served {
				t.Errorf("MetricsServed = %v, want %v", c.MetricsServed(), tt.served)
			}
			if same := c.Digest() == plain.Digest(); same != tt.same {
				t.Errorf("digest unchanged = %v, want %v", same, tt.same)
			}
			canon, _ := c.CanonicalJSON()
			if strings.Contains(string(canon), `"telemetry"`) == tt.same {
				t.Errorf("canonical form: %s", canon)
			}
		})
	}
	c, err := config.Parse("c.yaml", []byte("version: 1\ntelemetry:\n  otlp: {endpoint: 'https://collector:4318', headers_env: OTEL_HEADERS}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Telemetry.OTLP; o.Endpoint != "https://collector:4318" || o.HeadersEnv != "OTEL_HEADERS" || o.Insecure {
		t.Errorf("otlp: %+v", o)
	}
}

// TestTelemetryMetricsServed: on a listener that is not a loopback one,
// /metrics is served only with metrics_public.
func TestTelemetryMetricsServed(t *testing.T) {
	for _, tt := range []struct {
		public, metrics, want bool
	}{
		{false, true, false},
		{true, true, true},
		{true, false, false},
	} {
		c := config.Default()
		c.Listen.Address = "0.0.0.0:8443"
		c.Telemetry.MetricsPublic = tt.public
		c.Telemetry.Metrics = &tt.metrics
		if got := c.MetricsServed(); got != tt.want {
			t.Errorf("public %v, metrics %v: served %v, want %v", tt.public, tt.metrics, got, tt.want)
		}
	}
}

func TestTelemetryProblems(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no endpoint", "telemetry: {otlp: {headers_env: X}}", "telemetry.otlp.endpoint: is required"},
		{"http endpoint", "telemetry: {otlp: {endpoint: 'http://collector:4318'}}", "insecure: true"},
		{"relative endpoint", "telemetry: {otlp: {endpoint: 'collector:4318/v1/traces'}}", "not an absolute URL"},
		{"endpoint with user", "telemetry: {otlp: {endpoint: 'https://u:p@collector:4318'}}", "not an absolute URL"},
		{"endpoint with query", "telemetry: {otlp: {endpoint: 'https://collector:4318/?k=v'}}", "not an absolute URL"},
		{"other scheme", "telemetry: {otlp: {endpoint: 'grpc://collector:4317'}}", "must be https"},
		{"bad env name", "telemetry: {otlp: {endpoint: 'https://c', headers_env: 'A-B'}}", "not an environment variable name"},
		{"public without metrics", "telemetry: {metrics: false, metrics_public: true}", "has no effect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte("version: 1\n"+tt.src+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
		})
	}
	// Headers hold credentials: they are never written in the config.
	_, err := config.Parse("c.yaml", []byte("version: 1\ntelemetry: {otlp: {endpoint: 'https://c', headers: 'Authorization=Bearer x'}}\n"))
	if err == nil || !strings.Contains(err.Error(), "headers_env") || strings.Contains(err.Error(), "Bearer x") {
		t.Fatalf("headers in the config: %v", err)
	}
	// A typo is an unknown key, with its line.
	_, err = config.Parse("c.yaml", []byte("version: 1\ntelemetry:\n  metric: false\n"))
	if err == nil || !strings.Contains(err.Error(), "c.yaml:3") || !strings.Contains(err.Error(), "metric") {
		t.Fatalf("unknown key: %v", err)
	}
}
