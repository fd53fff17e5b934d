// Package mcphost serves the host's tools as MCP servers with OAuth built
// in (DESIGN §5, "Tools"): the bridge between the servers configured under
// mcp.servers and the tools the host runs.
//
// # Two steps
//
// [Resolve] works out what each configured server offers, before the
// authorization server exists: the host tools it serves (or, for a
// gateway, the tools of the remote server it fronts), its resource
// identifier (issuer + [PathPrefix] + name) and its scopes. The host
// registers those resources and scopes with its authorization server.
//
// [New] then builds the servers from the resolved list and what the host
// provides in a [Config] (the authorization server, the WIMSE verifier,
// the auditor, the policy hook, approvals, the clock, the logger), and
// [Bridge.Mount] serves each at PathPrefix + name, with its RFC 9728
// metadata at /.well-known/oauth-protected-resource/mcp/<name>.
//
// # Scopes
//
// A host tool needs <server>:read when it changes nothing and
// <server>:write otherwise ([ToolScope]). A 401 names the server's read
// scopes only, so a client starts with the least, while the metadata
// lists every scope; a 403 names what a call lacks, and the client steps
// up.
//
// # Every call audited
//
// A tools/call allowed by its token, scope and policy is recorded as an
// allow decision before its tool runs, and the tool runs only once that
// record is durable; then its outcome is recorded in the same transaction
// (one per call, "mcp-…", the txn of the call's Txn-Token). A call policy
// allows only with the user's approval becomes a CIBA request surfaced as
// a URL-mode elicitation. Requests refused before a tool (no or bad
// token, too little scope, a bad body) and calls the policy refuses are
// recorded as denied.
//
// A tool never gets the caller's access token: it is kept only to obtain
// the call's Txn-Token, which the tool takes from its context. Only a
// gateway's handler sees the token, to exchange it (RFC 8693) for a token
// to its upstream, with the host as the actor.
package mcphost
