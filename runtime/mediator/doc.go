// Package mediator is the single path every Host call of an agent plugin
// takes (DESIGN §4):
//
//  1. Who: the caller is the agent the plugin connection belongs to (each
//     plugin has its own Host service, built by [Mediator.HostFor]); the
//     task id in the request must name a task the host started for that
//     agent and that is still running, else PermissionDenied.
//  2. Decide: the [Policy] hook (the host gives it the agents' grants,
//     narrowed by Cedar policies or an AuthZEN PDP when configured)
//     allows, denies or asks for approval of the action on the resource.
//  3. Token: for a [RemoteTool] the [TokenSource] acquires a token for the
//     tool's resource and this caller; the tool gets it, the plugin never
//     does. Host tools and models (which hold their own API keys) need none.
//  4. Bind: a call into a host tool or a tool plugin, and a delegated task,
//     carries a Transaction Token from the [TxnTokenSource]: a replacement
//     of the task's own, in the same transaction, whose tctx binds the
//     tool, the SHA-256 of the arguments and the fields the tool declares
//     ([TxnBinder]). A tool reads it from its context
//     ([TxnTokenFromContext]) and checks it ([CheckTxnToken]); the host's
//     payments/transfer (runtime/hosttools) refuses a call whose arguments
//     or amount differ from its token's. Remote tools get none.
//  5. Approve: a tool call policy says needs approval waits for the
//     task's user ([Approvals], the host asking its authorization server
//     by OpenID CIBA; a task without a user is refused,
//     [ErrApprovalNeedsUser]). The request, surfaced by
//     [Config.OnApproval], is polled at the server's interval (slow_down
//     adds five seconds) until decided, expired or the task ends. An
//     approval counts only if the user approved it and its granted
//     authorization_details are exactly this call (tool and argument
//     digest); it is claimed durably before the call runs, so it runs the
//     call once. The request, the refusal or the call is audited with the
//     approval ID and the approver.
//  6. Call the model ([llm.Model]) or the tool ([Tool]).
//  7. Audit: every decision and its outcome is one [Record] given to the
//     [Auditor] before the result goes back. ListTools lists only the tools
//     the caller may call; each tool its grants name but policy forbids is
//     a record of its own (action tool.list, the tool as resource, the
//     deciding policy and its reason).
//
// A delegated task (CallAgent) that is refused or fails is an error for the
// delegating plugin, never an answer.
//
// The plugin receives results only: model replies and tool output, never a
// credential.
//
// The mediator holds no tools of its own: it is given them
// (Config.Tools). The host's built-in tools are runtime/hosttools, each a
// [Tool]; the host adds the remote servers' and tool plugins' beside them.
//
// An [Observer] (Config.Observer) is told of every Host call as it starts
// and ends, with the decision made on it, and of every policy evaluation;
// the host turns that into metrics and spans (runtime/telemetry), and the
// mediator imports no metrics or tracing library.
package mediator
