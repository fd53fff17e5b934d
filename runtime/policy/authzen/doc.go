// Package authzen speaks the OpenID AuthZEN Authorization API 1.0 for the
// policy engine: [Server] serves a [policy.Decider] to policy enforcement
// points, and [Client] is a policy.Decider that asks an external decision
// point.
//
// # Server
//
// [Server] answers POST /access/v1/evaluation and POST
// /access/v1/evaluations under the path of the configured PDP identifier,
// and GET /.well-known/authzen-configuration followed by that path (the
// metadata document, served only when an identifier is configured). The
// host authenticates callers (typically with an OAuth bearer middleware)
// through the Authorize hook: an error wrapping [ErrUnauthenticated] is a
// 401, any other error a 403. An X-Request-ID header is echoed on every
// answer.
//
// Bodies must be application/json, at most 64 KiB by default, hold one
// JSON value and no member outside the AuthZEN model (properties and
// context are free-form but checked by the mapping below). Bad input is a
// 4xx with a body {"error": "..."}; a deny is a 200 with decision false.
//
// A batch's top-level subject, action, resource and context are defaults
// that an item's own member replaces whole (contexts are not merged). An
// empty or absent evaluations array makes it a single evaluation with the
// single-evaluation answer. options.evaluations_semantic is execute_all
// (default), deny_on_first_deny or permit_on_first_permit; the latter two
// stop after the first false or true decision and answer only the items
// evaluated. A failing item is decision false with context.error {status,
// message}.
//
// # Mapping
//
//	subject.type        "agent" (nothing else is accepted)
//	subject.id          agent name, or its SPIFFE ID; a SPIFFE ID of the form
//	                    spiffe://<domain>/agent/<name> names the agent, any
//	                    other needs subject.properties.name
//	subject.properties  name, spiffe_id (must agree with id), user (the
//	                    delegated user); no other key
//	action.name         llm.complete | tool.call | agent.call | tool.list
//	resource.type/id    tool "server/tool" (tool.call), tool_list "server" or
//	                    "*" (tool.list), model "alias" (llm.complete), agent
//	                    "name" (agent.call); the type must fit the action
//	context             scopes and chain (arrays of strings), attestation,
//	                    binary_sha256, risk ("low" | "medium" | "high") and
//	                    args_sha256 (strings) fill the request's fields; every other
//	                    member is a context attribute for the policies
//
// A decision is answered as
//
//	{"decision": true|false, "context": {"effect": "allow|deny|approval_required",
//	  "reason": "...", "policies": ["id", ...], "policy_set": "sha256:...",
//	  "approval_required": true}}
//
// where approval_required appears only when a human must approve; decision
// is then false, so an enforcement point unaware of the member denies.
//
// # Client
//
// [Client] sends [FromPolicy] of the request with a fresh X-Request-ID and
// reads the answer with [DecisionFrom]: context.approval_required true
// gives ApprovalRequired whatever the decision, otherwise decision true is
// Allow and false Deny; context.reason, policies and policy_set fill the
// decision. Any failure (transport, timeout, non-200 status, non-JSON
// answer, missing decision, mismatched X-Request-ID) is a Deny returned
// with the error.
package authzen
