// Package telemetry turns the host's observation hooks into Prometheus
// metrics and OpenTelemetry traces. It is the only package that imports
// the Prometheus client and OpenTelemetry: the packages it observes
// (runtime/mediator, credentials/oauth, credentials/authserver,
// runtime/supervisor, consent, runtime/audit) expose hooks in their
// Config and know nothing of either, and the composition root
// (runtime/host) connects the hooks to a [Telemetry].
//
// # Metrics
//
// [New] builds a Prometheus registry of its own (never the global one)
// with the Go runtime and process collectors and these metrics, whose
// names are the Metric… constants:
//
//   - agenthost_mediator_decisions_total{action,outcome}: every mediated
//     Host call by its action (llm.complete, tool.list, tool.call,
//     agent.call) and the decision made on it (allow, deny,
//     approval_required, error; see mediator.Decision…).
//   - agenthost_mediator_call_duration_seconds{action}: the time of a
//     mediated call in the mediator, approval, target and audit included.
//   - agenthost_policy_evaluation_duration_seconds{action}: one policy
//     evaluation.
//   - agenthost_token_cache_hits_total, agenthost_token_cache_misses_total:
//     token requests of the host's token clients that their cache
//     answered, and those that needed (or waited for) a token request.
//   - agenthost_authserver_token_requests_total{grant_type,result}: the
//     embedded authorization server's token endpoint, by grant type (the
//     wire value; empty for a request that named no known grant) and
//     result (issued, or the OAuth error code sent).
//   - agenthost_plugin_restarts_total{agent}: restarts of agent plugins.
//   - agenthost_approval_wait_seconds{outcome}: how long a call's approval
//     request waited for the user's decision (approved, denied, expired).
//   - agenthost_audit_append_duration_seconds: a durable audit append,
//     from the call until the record is committed.
//
// Every label takes values from a fixed set (the host's own actions,
// grant types, error codes and configured agents), never from what a
// caller sends. [Telemetry.Handler] serves the registry in the Prometheus
// text format; the host mounts it at /metrics.
//
// # Traces
//
// Each mediated call is a span named by its action, with the attributes
// agenthost.txn, agenthost.task, agenthost.agent, agenthost.resource and
// agenthost.decision, and an error status when the call failed. Spans
// leave the host only when [Config.OTLP] names a collector (OTLP over
// HTTP, batched); otherwise no tracer provider is built and nothing is
// recorded. [Telemetry.Shutdown] flushes the spans still batched.
//
// A nil *Telemetry is valid: its hooks do nothing.
package telemetry
