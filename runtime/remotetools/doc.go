// Package remotetools makes the tools of remote MCP servers (config
// mcp.remotes) [mediator.Tool]s: the host calls them for its agents once
// the mediator has decided, bound and audited the call (DESIGN §4, §9).
// Where runtime/mcphost is the host as an MCP server, this is the host as
// an MCP client acting for each of its workloads.
//
// [New] builds a [Set] from a [Config]: the remotes, and what the host
// provides through narrow functions (the token client of a workload, whom
// a call is made for, the transport to a federated peer). [Set.Tools]
// gives every configured tool as "<remote>/<tool>"; [Server.ClientFor]
// is what a gateway of the host (runtime/mcphost) reaches its upstream
// with.
//
// # One client per workload
//
// Each agent calls a remote as itself: its own OAuth client (its
// JWT-SVID as client assertion, or the client identity the host resolves
// at a server that does not trust the trust domain) and its own MCP
// client, made on first use and kept until [Set.ForgetWorkload] or
// [Set.Close]. The host itself, for a gateway, is one more workload. No
// two workloads ever share a client, a token or a session.
//
// # DPoP keys per workload
//
// Tokens are sender-constrained where both sides allow it: when the
// remote's authorization server advertises
// dpop_signing_alg_values_supported and the remote says it takes
// DPoP-bound tokens (a DPoP challenge or DPoP in its metadata), the token
// is bound to the calling workload's DPoP key (ES256 when the server
// lists it) and every request to the remote carries a proof signed with
// it (mcpclient); otherwise it is a bearer token. Each workload has one
// set of keys, the same for every remote it calls ([Set.DPoPKeys]), so an
// agent's token is bound to that agent's key and no other workload's
// proofs make it usable. The keys are made on first use and held in this
// process only; no plugin ever gets one. They are not kept across
// restarts on purpose: everything bound to them is in memory too (the
// tokens are cached only until the process ends, and no refresh token is
// kept), so a new key after a restart invalidates nothing that would
// survive anyway, and keeping them would put private keys at rest for no
// gain.
//
// # Whose authority
//
// A call carries the authority the host's [Config.Subject] names for it:
// the task's user, by token exchange along the delegation chain or by
// identity chaining, or the zero subject, the agent's own. A remote run
// as a local command (stdio) gets no token, so its calls have no subject.
//
// # What the plugin gets
//
// The plugin gets the tool's result, never a token. A failed call is the
// Host error kind permission denied when authority was refused (the
// remote's authorization server refused the token request, the remote
// refused the token, or the task has no user to act for: [ErrNoUser]),
// unavailable otherwise, with a message that names the remote first.
//
// # Learned definitions
//
// An agent sees a remote tool with a generic definition until the first
// call to one of the remote's tools; that call also lists the remote's
// tools, once, with the caller's own authority for the call, and from
// then on each tool has the remote's description and input schema.
package remotetools
