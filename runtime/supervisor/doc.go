// Package supervisor keeps agent plugins running: it launches each
// configured agent (through plugins.Launch), restarts a plugin that exits
// with exponential backoff, kills a plugin whose task outlives its deadline
// (a hung plugin) and restarts it, and quarantines an agent on request:
// stopped, refused restarts and tasks until released ([Supervisor.Release]).
// The supervisor holds quarantines in memory only: the host keeps them in
// its store and starts an agent quarantined from an earlier run with
// [AgentSpec.Quarantined], so it is never launched.
//
// A launch that fails because of the binary itself (checksum mismatch, bad
// path) is not retried: the agent is marked failed with the reason.
//
// Backoff delays and the reset of the restart count are pure functions of
// the restart count and the time, tested without sleeping.
package supervisor
