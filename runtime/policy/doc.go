// Package policy decides whether an agent may make a call, with Cedar
// policies. It is the only package that imports the Cedar library; the
// host adapts its own request type to [Request] and acts on [Decision].
//
// # Requests and decisions
//
// A [Request] names the calling agent (name and SPIFFE ID), the user it
// acts for (may be empty), one of four actions (llm.complete, tool.call,
// agent.call, tool.list), the resource, and what the host knows about the
// call: OAuth scopes, attestation state, risk level ("low", "medium",
// "high" or empty), the SHA-256 of the arguments, the delegation chain,
// and free-form attributes. A [Decision] has an [Effect] (Deny, Allow or
// ApprovalRequired; the zero value is Deny), the IDs of the determining
// policies, a reason, the policies that failed to evaluate, and the
// version of the policy set that decided, for audit.
//
// # Entity model
//
//	principal  Agent::"<name>"            attrs: name, spiffe_id (String, "" if unknown)
//	action     Action::"llm.complete" | Action::"tool.call" | Action::"agent.call" | Action::"tool.list"
//	resource   by action:
//	  tool.call     Tool::"<server>/<tool>" in Server::"<server>"   attrs: server, name
//	  tool.list     ToolList::"<server>" in Server::"<server>", or ToolList::"*" (every server; no parent)
//	  llm.complete  Model::"<alias>"       (the request's "model:" prefix is dropped)
//	  agent.call    Agent::"<name>"        (the called agent)
//
// So "resource in Server::\"notes\"" covers every tool of the notes server
// and the listing of its tools.
//
// The context record always holds:
//
//	subject      String        delegated user, "" when none
//	scopes       Set<String>   OAuth scopes
//	attestation  String        "verified" (the running plugin matched its
//	                           pinned digest), "unverified", "" for no plugin
//	binary_sha256 String       measured digest of the caller's executable
//	risk         String        "low" | "medium" | "high" | ""
//	risk_score   Long          1 | 2 | 3, 0 when risk is ""
//	args_sha256  String        hex digest of the arguments, "" when none
//	chain        Set<String>   delegating agents (order is not kept)
//	chain_depth  Long          length of the delegation chain
//
// plus the request's Context attributes, which may not reuse those names.
// Attribute values map as: string → String, bool → Boolean, integer (or
// an integral JSON number) → Long, other finite number → decimal (four
// fractional digits; compare with .greaterThan() and friends), list →
// Set, map → Record. null and other types, nesting deeper than 16 levels
// and more than 1024 values in all make the request invalid. Since
// a policy reading an absent attribute fails, test optional attributes
// with "has" first.
//
// # Policy files and decisions
//
// [Load] reads every *.cedar file of a directory (symbolic links are
// followed), in name order. A
// policy's ID is "<file>:<index>" (index counting from 0 within the file)
// unless an @id("...") annotation names it; IDs must be unique. Parse
// errors name the file, line and column. [Engine.Reload] re-reads the
// directory and replaces the set atomically; on error the old set stays.
// [Engine.Version] is "sha256:" over the file names and contents.
//
// Cedar decides: any matching forbid denies, else any matching permit
// allows, else deny. On top of that:
//
//   - If any determining permit carries @approval("required"), the effect
//     is ApprovalRequired, even when other determining permits carry no
//     annotation. A denial is never turned into ApprovalRequired.
//   - A forbid that fails to evaluate (Cedar would skip it) denies: a
//     guard the engine could not check does not let a call through.
//   - @reason("...") on a determining policy becomes the decision's
//     Reason.
//
// Example (file notes.cedar):
//
//	@id("notes-read")
//	permit (principal, action == Action::"tool.call", resource in Server::"notes")
//	when { context.scopes.contains("notes:read") && context.risk_score <= 2 };
//
//	@id("payments-approval")
//	@approval("required")
//	@reason("payments above 100 need a human")
//	permit (principal == Agent::"buyer", action == Action::"tool.call", resource == Tool::"payments/pay")
//	when { context has amount && context.amount > 100 };
//
//	@id("unattested-no-tools")
//	forbid (principal, action == Action::"tool.call", resource)
//	unless { context.attestation == "verified" };
//
// # Recorded cases
//
// [LoadCases] reads a JSON file of [Case] values (an array, or an object
// with a "cases" array) and [RunCases] checks a [Decider] against them:
//
//	[{"name": "reader may read",
//	  "request": {"principal": {"name": "reader"}, "action": "tool.call",
//	              "resource": "notes/read", "scopes": ["notes:read"],
//	              "attestation": "verified", "context": {"amount": 5}},
//	  "expect": "allow", "policies": ["notes-read"]}]
//
// The AuthZEN subpackage serves a [Decider] over the OpenID AuthZEN API and
// implements a Decider that asks an external decision point.
package policy
