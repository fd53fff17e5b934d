// Package a2aserver serves the host's agents over A2A (protocol 0.3, the
// JSON-RPC binding, through github.com/a2aproject/a2a-go v0.3.3's a2asrv),
// each agent as an OAuth 2.0 protected resource.
//
// # Endpoints
//
// A [Server] serves, for every hosted agent n ([Server.Mount]):
//
//	POST /a2a/n                                         JSON-RPC: message/send, message/stream,
//	                                                    tasks/get, tasks/cancel, tasks/resubscribe
//	GET  /a2a/n/.well-known/agent-card.json             the agent card (a2acard), signed with
//	                                                    the agent's key when Config.CardKey is set
//	GET  /.well-known/oauth-protected-resource/a2a/n    RFC 9728 metadata of the agent
//
// The agent's A2A URL, Config.BaseURL + "/a2a/" + n, is its resource
// identifier: the metadata names it as resource, at the path RFC 9728 §3.1
// derives from it, with the authorization server's issuer.
//
// # Authentication and ownership
//
// Every JSON-RPC request passes the agent's [Authenticator] (a
// resource.Verifier built for the agent's URL by Config.Authenticator):
// a token that is missing, invalid, or issued for another audience gets
// 401 with a WWW-Authenticate challenge naming resource_metadata (RFC 6750
// §3, RFC 9728 §5.1); Bearer and, when the verifier accepts them, DPoP
// tokens. A token without the agent's scopes (a2acard.AgentInfo.Scopes)
// gets 403 insufficient_scope. A Txn-Token header is passed to the Runner
// (verified when Config.VerifyTxnToken is set). The Authorization, DPoP and
// Txn-Token headers are removed before a2a-go sees the request.
//
// A task belongs to the agent, issuer, subject and client of the token
// that created it. Any method naming a task of another owner (tasks/get,
// tasks/cancel, tasks/resubscribe, message/send to an existing task) fails
// with the A2A error task not found (-32001), exactly as for a task id
// that does not exist.
//
// # Bad input
//
// A body over Config.MaxBodyBytes gets HTTP 413 with the JSON-RPC error
// -32600; bytes that are not JSON get -32700; JSON that is not one
// JSON-RPC 2.0 request object (a batch, no id, a wrong jsonrpc, an unknown
// member) gets -32600; params that are not an object get -32602. Push
// notification methods get -32003 (not supported).
//
// # Running tasks
//
// The [Runner] runs each message of a task with a [Request] holding the
// verified caller, the Txn-Token, the message's text and, for a task that
// continues, its earlier turns. Its [Event]s become A2A events: answer
// chunks go into the task's "response" artifact, progress notes into
// working statuses, and an approval ([EventApproval], with the URL where a
// person approves) puts the task in auth-required with that message while
// the Runner waits. Its return ends the run: completed with the answer as
// the response artifact, input-required ([InputRequired]), auth-required
// ([AuthRequired]), or failed ([Failed] with a message for the client;
// any other error with a generic one). tasks/cancel cancels the Runner's
// context and the task ends canceled.
//
// # Task store
//
// Tasks live in memory, shared by the server's agents and kept across
// [Server.SetAgents]: at most Config.MaxTasks ([DefaultMaxTasks]), each
// dropped Config.TaskTTL ([DefaultTaskTTL]) after its last update whatever
// its state (a task waiting longer for input or approval is forgotten and
// its id then gives task not found). When the store is full, a new task
// replaces the least recently updated task in a final state (completed,
// failed, canceled, rejected); with none, message/send gets -32000 until
// room frees up. Runs in progress are capped per agent
// (Config.MaxConcurrentTasks) and per caller (Config.MaxTasksPerCaller). A
// restart loses every task.
package a2aserver
