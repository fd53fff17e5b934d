package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Metric names.
const (
	MetricMediatorDecisions    = "agenthost_mediator_decisions_total"
	MetricMediatorCallDuration = "agenthost_mediator_call_duration_seconds"
	MetricPolicyEvaluation     = "agenthost_policy_evaluation_duration_seconds"
	MetricTokenCacheHits       = "agenthost_token_cache_hits_total"
	MetricTokenCacheMisses     = "agenthost_token_cache_misses_total"
	MetricTokenRequests        = "agenthost_authserver_token_requests_total"
	MetricPluginRestarts       = "agenthost_plugin_restarts_total"
	MetricToolPluginRestarts   = "agenthost_tool_plugin_restarts_total"
	MetricApprovalWait         = "agenthost_approval_wait_seconds"
	MetricAuditAppend          = "agenthost_audit_append_duration_seconds"
)

// Label names.
const (
	labelAction    = "action"
	labelOutcome   = "outcome"
	labelGrantType = "grant_type"
	labelResult    = "result"
	labelAgent     = "agent"
	labelPlugin    = "plugin"
)

// actions are the mediator's actions, decisions its decisions and
// approvalOutcomes the outcomes of an approval request: the label values
// the metrics start with (at zero), so that every series exists from the
// first scrape.
var (
	actions          = []string{mediator.ActionComplete, mediator.ActionListTools, mediator.ActionCallTool, mediator.ActionCallAgent}
	decisions        = []string{mediator.DecisionAllow, mediator.DecisionDeny, mediator.DecisionApprovalRequired, mediator.DecisionError}
	approvalOutcomes = []string{consent.OutcomeApproved, consent.OutcomeDenied, consent.OutcomeExpired}
)

// Histogram buckets, in seconds.
var (
	// callBuckets: a mediated call, from a cached tool call (well under a
	// millisecond) to a model's answer or a call waiting for approval.
	callBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	// policyBuckets: a Cedar evaluation takes microseconds; an external
	// AuthZEN PDP a round trip.
	policyBuckets = []float64{.000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .01, .05, .25, 1}
	// approvalBuckets: a user deciding, up to a CIBA request's expiry.
	approvalBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
	// appendBuckets: a durable append is about one fsync.
	appendBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// metrics are the host's metrics, in a registry of their own.
type metrics struct {
	reg          *prometheus.Registry
	decisions    *prometheus.CounterVec
	callDuration *prometheus.HistogramVec
	policy       *prometheus.HistogramVec
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	tokens       *prometheus.CounterVec
	restarts     *prometheus.CounterVec
	toolRestarts *prometheus.CounterVec
	approvalWait *prometheus.HistogramVec
	auditAppend  prometheus.Histogram

	// The series of the mediator's known actions and decisions, looked up
	// once: a mediated call then costs no label hashing.
	decided   map[[2]string]prometheus.Counter
	durations map[string]prometheus.Observer
	policies  map[string]prometheus.Observer
}

// decision is the counter of action and decision.
func (m *metrics) decision(action, decision string) prometheus.Counter {
	if c, ok := m.decided[[2]string{action, decision}]; ok {
		return c
	}
	return m.decisions.WithLabelValues(action, decision)
}

// callDurationOf is the histogram of action's call durations.
func (m *metrics) callDurationOf(action string) prometheus.Observer {
	if o, ok := m.durations[action]; ok {
		return o
	}
	return m.callDuration.WithLabelValues(action)
}

// policyOf is the histogram of action's policy evaluations.
func (m *metrics) policyOf(action string) prometheus.Observer {
	if o, ok := m.policies[action]; ok {
		return o
	}
	return m.policy.WithLabelValues(action)
}

func newMetrics(agents, toolPlugins []string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricMediatorDecisions,
			Help: "Mediated Host calls of agent plugins, by action and the decision made on the call."},
			[]string{labelAction, labelOutcome}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricMediatorCallDuration,
			Help:    "Time of a mediated Host call in the mediator (approval, target and audit included), in seconds.",
			Buckets: callBuckets}, []string{labelAction}),
		policy: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricPolicyEvaluation,
			Help: "Time of one policy evaluation, in seconds.", Buckets: policyBuckets}, []string{labelAction}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricTokenCacheHits,
			Help: "Token requests of the host's token clients answered from their cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricTokenCacheMisses,
			Help: "Token requests of the host's token clients that needed a request to an authorization server."}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTokenRequests,
			Help: "Requests to the embedded authorization server's token endpoint, by grant type and result (issued, or the OAuth error code)."},
			[]string{labelGrantType, labelResult}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPluginRestarts,
			Help: "Restarts of agent plugins, by agent."}, []string{labelAgent}),
		toolRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricToolPluginRestarts,
			Help: "Restarts of tool plugins (started again on the call after an exit), by plugin."}, []string{labelPlugin}),
		approvalWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricApprovalWait,
			Help:    "Time an approval request waited for the user's decision, in seconds, by outcome.",
			Buckets: approvalBuckets}, []string{labelOutcome}),
		auditAppend: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricAuditAppend,
			Help:    "Time of a durable audit log append, until the record is committed, in seconds.",
			Buckets: appendBuckets}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.decisions, m.callDuration, m.policy, m.cacheHits, m.cacheMisses, m.tokens, m.restarts, m.toolRestarts,
		m.approvalWait, m.auditAppend,
	)
	m.decided = map[[2]string]prometheus.Counter{}
	m.durations = map[string]prometheus.Observer{}
	m.policies = map[string]prometheus.Observer{}
	for _, a := range actions {
		for _, d := range decisions {
			m.decided[[2]string{a, d}] = m.decisions.WithLabelValues(a, d)
		}
		m.durations[a] = m.callDuration.WithLabelValues(a)
		m.policies[a] = m.policy.WithLabelValues(a)
	}
	for _, g := range authserver.TokenGrants() {
		m.tokens.WithLabelValues(g, authserver.TokenIssued)
	}
	for _, a := range agents {
		m.restarts.WithLabelValues(a)
	}
	for _, p := range toolPlugins {
		m.toolRestarts.WithLabelValues(p)
	}
	for _, o := range approvalOutcomes {
		m.approvalWait.WithLabelValues(o)
	}
	return m
}
