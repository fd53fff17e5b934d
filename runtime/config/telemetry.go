package config

import (
	"net/url"
	"strings"
)

// TelemetryConfig is the telemetry section: the host's Prometheus metrics
// and OpenTelemetry traces. Left out of the canonical form when it says
// what the defaults say (metrics served, no traces exported).
type TelemetryConfig struct {
	// Metrics serves the host's metrics at /metrics on its listener (in
	// the Prometheus text format). Default true; read it with
	// [TelemetryConfig.MetricsEnabled]. They are served only where
	// [Config.MetricsServed] says.
	Metrics *bool `json:"metrics,omitempty"`
	// MetricsPublic serves /metrics on a listener that is not a loopback
	// one too. The metrics reveal operational data (agents, the rate and
	// outcome of their calls, errors of the authorization server), so by
	// default they are served only on a loopback listener, where only
	// this machine reaches them. Default false.
	MetricsPublic bool `json:"metrics_public,omitempty"`
	// OTLP, when set, exports a span for every mediated call to an
	// OpenTelemetry collector over OTLP/HTTP. Unset: no span leaves the
	// host.
	OTLP *OTLPConfig `json:"otlp,omitempty"`
}

// OTLPConfig is where traces are exported.
type OTLPConfig struct {
	// Endpoint is the collector's OTLP/HTTP URL, such as
	// https://collector:4318 (spans are posted to /v1/traces when the URL
	// has no path). REQUIRED; https, or http with Insecure.
	Endpoint string `json:"endpoint"`
	// HeadersEnv names the environment variable holding the headers sent
	// with every export, as OTEL_EXPORTER_OTLP_HEADERS writes them
	// ("Authorization=Bearer%20x,X-Tenant=a"): they often hold a
	// credential, which the config never does. OPTIONAL.
	HeadersEnv string `json:"headers_env,omitempty"`
	// Insecure allows an http Endpoint: spans (and the headers) then
	// cross the network unencrypted. Default false.
	Insecure bool `json:"insecure,omitempty"`
}

// IsZero reports whether the section says what the defaults say (it is
// then left out of the canonical form).
func (t TelemetryConfig) IsZero() bool {
	return t.MetricsEnabled() && !t.MetricsPublic && t.OTLP == nil
}

// MetricsEnabled is the effective metrics: as written, else true.
func (t TelemetryConfig) MetricsEnabled() bool { return t.Metrics == nil || *t.Metrics }

// MetricsServed reports whether the host serves /metrics on its
// listener: telemetry.metrics is on, and the listener is a loopback one
// or telemetry.metrics_public allows another.
func (c *Config) MetricsServed() bool {
	return c.Telemetry.MetricsEnabled() && (c.Listen.IsLoopback() || c.Telemetry.MetricsPublic)
}

// msgOTLPHeaders explains why the headers of an OTLP export are not
// written in the config.
const msgOTLPHeaders = "the headers of an export often hold a credential, which is never written in the config: name the environment variable holding them with headers_env"

func (OTLPConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "headers", "token", "api_key", "authorization":
		return msgOTLPHeaders, true
	}
	return "", false
}

func (v *validator) telemetry() {
	t := v.c.Telemetry
	if t.MetricsPublic && !t.MetricsEnabled() {
		v.invalid("telemetry.metrics_public", "has no effect with metrics: false")
	}
	if t.OTLP == nil {
		return
	}
	const base = "telemetry.otlp"
	o := t.OTLP
	if o.Endpoint == "" {
		v.invalid(base+".endpoint", "is required: the collector's OTLP/HTTP URL, such as https://collector:4318")
	} else {
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			strings.Contains(o.Endpoint, "#"):
			v.invalid(base+".endpoint", "%s is not an absolute URL without user info, query or fragment", quoteValue(o.Endpoint))
		case u.Scheme == "http" && !o.Insecure:
			v.invalid(base+".endpoint", "is http: spans and headers would cross the network unencrypted; use https, or set insecure: true to allow it")
		case u.Scheme != "http" && u.Scheme != "https":
			v.invalid(base+".endpoint", "must be https (or http with insecure: true)")
		}
	}
	if o.HeadersEnv != "" && !validEnvName(o.HeadersEnv) {
		v.invalid(base+".headers_env", "%s is not an environment variable name", quoteValue(o.HeadersEnv))
	}
}
