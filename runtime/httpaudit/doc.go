// Package httpaudit audits the requests a protected HTTP endpoint refuses:
// [Denials.Wrap] records every request its handler answers with a 4xx or
// 5xx status as a denied decision in the host's audit log (a
// [mediator.Auditor]), with the status and the reason: the OAuth or WIMSE
// error code of the answer's WWW-Authenticate challenge, or what a handler
// inside said with [SetReason].
//
// The hosted MCP servers (runtime/mcphost) and the A2A endpoint of the
// hosted agents (runtime/host) both put it around their verifiers, so a
// request refused for its token, its workload proof or its body leaves a
// record as a refused tool call does.
package httpaudit
