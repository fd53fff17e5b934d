// Package localapi is the running host's admin API: HTTP over a unix socket
// in the data directory (mode 0600 in a 0700 directory, so only the owner
// can reach it). CLI commands given the same --data-dir use [Client] to talk
// to the host; nothing is exposed on the network.
//
//	GET  /v1/agents  every configured agent: identity, state, pid, restarts, SVID expiry
//	POST /v1/tasks   {"agent","input"}: run a task; the response streams its
//	                 events as JSON lines until the final result or error
//	POST /v1/agents/{name}/quarantine  {"reason"}: stop the agent for good
package localapi
