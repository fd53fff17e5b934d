package pluginpb

// The Transaction Token a tool call carries (CallProvidedToolRequest's
// txn_token; see plugin.proto) names the call in its tctx and the caller in
// its rctx. These are the member names, shared by the host that writes them
// and the plugin SDK that reads them.
const (
	// TctxTool holds the tool's name as the host serves it:
	// "<plugin_name>/<tool>" for a tool plugin's tool.
	TctxTool = "tool"
	// TctxArgsSHA256 holds the lowercase hex SHA-256 of the canonical JSON
	// of the call's arguments (credentials/txntoken.ArgsDigest).
	TctxArgsSHA256 = "args_sha256"

	// RctxAgent holds the name of the hosted agent making the call; it is
	// absent for a call from an MCP client.
	RctxAgent = "agent"
	// RctxClientID holds the calling workload's SPIFFE ID (an agent) or
	// the OAuth client_id of an MCP client.
	RctxClientID = "client_id"
	// RctxTask holds the id of the task the call is made in, if any.
	RctxTask = "task"
	// RctxChain holds the agents that delegated to the task, outermost
	// first, as a JSON array of names.
	RctxChain = "chain"
	// RctxScopes holds, for a call from an MCP client, the OAuth scopes
	// its access token carried, as a JSON array.
	RctxScopes = "scopes"
)

// TxnTokenType is the JOSE typ header of a Transaction Token (SPECS.md
// X.1); a verifier compares it case-insensitively and also accepts it with
// the "application/" prefix.
const TxnTokenType = "txntoken+jwt"
