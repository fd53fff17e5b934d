// Package localapi is the running host's admin API: HTTP over a unix socket
// in the data directory (mode 0600 in a 0700 directory, so only the owner
// can reach it). CLI commands given the same --data-dir use [Client] to talk
// to the host; nothing is exposed on the network.
//
// The file mode is not the only guard: processes of the host's own user
// include the plugins the host runs. Every connection's peer is read with
// SO_PEERCRED and must run as the host's effective uid, be visible in the
// host's pid namespace and pass [Config.PeerCheck] (the host refuses its
// plugin processes and their descendants there). Every request on a
// refused connection gets 403 with {"error": reason}, which the CLI prints,
// and [Config.OnRefuse] is told once per connection; a [Client] returns an
// error wrapping [ErrRefused].
//
//	GET  /v1/agents  every configured agent: identity, state, pid, restarts, SVID expiry
//	POST /v1/tasks   {"agent","input"} and the user as "subject" (named by the
//	                 operator) or "access_token" (the user's own, verified by
//	                 the host; 401 when refused): run a task; the response
//	                 streams its events as JSON lines until the final result
//	                 or error
//	POST /v1/agents/{name}/quarantine  {"reason"}: stop the agent for good
//
// A host whose [Backend] also implements [AuditBackend] serves its audit log
// and policy engine; otherwise these endpoints answer 501:
//
//	POST /v1/audit/verify              checkpoint, then verify the whole log: [AuditVerifyResult]
//	GET  /v1/audit/records?from=N&limit=M
//	                                   up to M (default 100, at most 10000) records from
//	                                   index N on, or the last -N when N < 0: [][AuditEntry]
//	GET  /v1/audit/export?from=N       records from index N on as JSON lines, exactly as hashed
//	GET  /v1/audit/trace/{id}          execution chain of a transaction or task: [AuditTraceResult]
//	POST /v1/audit/check               body: compliance rules (audit.ParseRules, at most 1 MiB);
//	                                   the violations found, as a JSON array
//	GET  /v1/audit/checkpoint          latest signed checkpoint and verifier key: [AuditCheckpointResult]
//	GET  /v1/audit/proof/inclusion?index=I&size=S     inclusion proof: [ProofResult]
//	GET  /v1/audit/proof/consistency?old=A&new=B      consistency proof: [ProofResult]
//	POST /v1/policy/reload             re-read the policies: [PolicyReloadResult]; 422 when
//	                                   they do not load (the previous set stays)
//	POST /v1/policy/decide             body: a policy.Request; the policy.Decision
//
// Errors are JSON objects {"error": "..."}: 400 for a malformed body or
// query parameter (the message names it), 403 for a refused caller, 404 for
// an unknown transaction, 500 with the host's message when the host failed.
package localapi
