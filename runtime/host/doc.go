// Package host is agenthost's composition root: the only package that builds
// the whole world.
//
// [New] prepares everything that can fail before serving: it creates or
// checks the data directory (0700), takes its lock so that two hosts never
// share one state, opens the store, loads or creates the trust-domain CA, binds
// the HTTP listener and creates the Workload API sockets. [Host.Run] then runs
// every long-running part as a [Task] under [RunTasks]: the first failure stops
// them all, a panic is recovered into an error, and cancellation (SIGINT or
// SIGTERM in the CLI) is a clean exit that completes within 5 seconds.
//
// Every agent and tool plugin runs in a sandbox (plugins/sandbox) whose
// level and limits come from the config; at start the host ends the
// sandboxes a crashed host left on its data directory and probes what the
// kernel can give, refusing a plugin whose required level it cannot. Its
// own doors (the admin socket, each agent's Workload API socket) check the
// peer process of every connection, and audit what they refuse.
//
// It also joins the governance parts: every record goes to the
// tamper-evident audit log (runtime/audit; its signing key kept in its own
// file, never in the store it signs, and its checkpoints also kept outside
// the host when configured); the
// mediator's policy is the agents' grants narrowed by Cedar policies or an
// AuthZEN PDP (runtime/policy), which the hosted MCP servers ask too; and
// CAEP events from Shared Signals transmitters (runtime/signals) revoke a
// user's credentials, drop the tokens held for them, stop their tasks,
// raise their risk or quarantine an agent, each audited with its cause.
//
// A task started with a user's own access token acts for that user on
// every outbound hop: a call to a remote MCP server carries a token the
// remote's authorization server issued by token exchange, with the user
// as sub and the calling agent (then each agent that delegated the task)
// nested in act, unless the remote's acting_as says agent. The token chain
// is described in delegation.go; the user's token stays in the host, by
// the task's transaction, while the task runs.
//
// Every request that begins a transaction (a task, a hosted MCP server's
// tools/call) gets a Transaction Token from the embedded authorization
// server, its Transaction Token Service; a task keeps its own, and each call
// it makes into a host tool or a tool plugin, and each task it delegates,
// carries a replacement bound to that call (txntokens.go). The txn is the
// transaction of every audit record of the request.
//
// The hosted MCP servers are runtime/mcphost's: the host resolves them
// against its tools, registers their resources with its authorization
// server and mounts them with its verifiers, auditor, policy hook and
// approvals (mcp.go); a gateway reaches its upstream as the host itself.
//
// The tools of remote MCP servers (mcp.remotes) are runtime/remotetools':
// each agent calls a remote with its own OAuth and MCP clients and DPoP
// keys, which that package holds. The host gives it what is the host's
// (remote.go): each workload's token client (its JWT-SVID, or the client
// identity cimd.go resolves), whom a call is made for (delegation.go,
// chaining.go) and the transport to a federated peer (svidtls.go).
//
// Other packages never construct their collaborators: they receive them here
// through their Config structs.
package host
