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
// Other packages never construct their collaborators: they receive them here
// through their Config structs.
package host
