package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Actions of the records of hosted MCP servers' tools/call.
const (
	// actionMCPToolCall: a host tool (built in or from a tool plugin).
	actionMCPToolCall = "mcp.tools.call"
	// actionMCPGatewayCall: a tool of the upstream a gateway fronts.
	actionMCPGatewayCall = "mcp.gateway.call"
)

// mcpCallTool is one tool of a hosted MCP server and the names its calls
// are audited under. Its Handler runs the tool and nothing else:
// [Host.audited] makes it an MCP tool.
type mcpCallTool struct {
	mcpserver.Tool
	action   string // actionMCPToolCall or actionMCPGatewayCall
	resource string // the host's name of the tool ("notes/add", "docs/whoami")
	policy   string // what allowed the call
	// tool is the host tool the call runs (nil for a gateway's): its
	// declared business fields go into the call's Txn-Token.
	tool mediator.Tool
}

// audited turns ct into the tool a hosted MCP server offers: every call
// goes through [auditedCall], in the mediator's order, and carries a
// Txn-Token the host obtains for it on the caller's access token.
func (h *Host) audited(ct mcpCallTool) mcpserver.Tool {
	t, run := ct.Tool, ct.Handler
	t.Handler = func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (res mcpserver.Result, err error) {
		// Observed like a mediated call (metrics, a span): allowed, or
		// allowed with approval, then its outcome.
		decision := mediator.DecisionAllow
		if obs := h.mediatorObserver(); obs != nil {
			began := h.now()
			ctx = obs.CallStarted(ctx, ct.action)
			defer func() {
				if err != nil && errors.Is(err, errAuditUnavailable) {
					decision = mediator.DecisionError
				}
				obs.CallEnded(ctx, mediator.CallEnd{Action: ct.action, Resource: ct.resource, Decision: decision, Err: err,
					Caller:   mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID},
					Duration: h.now().Sub(began)})
			}()
		}
		at, _ := ctx.Value(callerTokenKey{}).(string)
		call := mcpCall{caller: caller, action: ct.action, resource: ct.resource, policy: ct.policy, args: args,
			txnToken: func(ctx context.Context, txn string) (string, error) {
				return h.mcpTxnToken(ctx, txn, at, caller, ct.resource, ct.tool, args)
			}}
		if reason, ok := mcpserver.ApprovalRequired(ctx); ok {
			// Policy allows the call only with the user's approval
			// (mcp_approvals.go): an elicitation until they approve.
			a, err := h.mcpApprove(ctx, caller, ct.action, ct.resource, args, reason)
			if err != nil {
				return mcpserver.Result{}, err
			}
			if a.refusal != nil {
				return *a.refusal, nil
			}
			call.policy += " + approval"
			decision = mediator.DecisionApprovalRequired
			call.approvalID, call.approver = a.granted.ID, a.granted.Approver
		}
		return auditedCall(ctx, h.audit, h.now, h.log, call, func(ctx context.Context) (mcpserver.Result, error) {
			// The access token was kept for the Txn-Token only.
			return run(context.WithValue(ctx, callerTokenKey{}, ""), caller, args)
		})
	}
	return t
}

// mcpCall is one tools/call on a hosted MCP server that the server's
// checks (token, scope, policy) allowed.
type mcpCall struct {
	caller   *resource.Caller
	action   string
	resource string
	policy   string
	args     json.RawMessage
	// txnToken obtains the call's Txn-Token for transaction txn; nil: the
	// call carries none.
	txnToken func(ctx context.Context, txn string) (string, error)
	// approvalID and approver name the approval the call needed, if any.
	approvalID, approver string
}

// auditedCall runs one allowed tools/call of a hosted MCP server in the
// mediator's order (mediator.RecordAllowed): it records the allow decision (outcome
// not known yet) and runs the tool only once that record is durable; a
// call whose decision cannot be recorded is refused and its tool never
// runs. Then it records the outcome. Both records carry the same
// transaction id, one per call (the txn of the call's Txn-Token), as the
// mediator's carry their task's, so `audit trace` and `audit check` pair
// them. A host killed while the tool runs leaves the decision in the log,
// never an effect without one. A call whose Txn-Token cannot be obtained
// is refused before its decision, and the refusal is recorded.
func auditedCall(ctx context.Context, a mediator.Auditor, now func() time.Time, log *slog.Logger, c mcpCall,
	run func(context.Context) (mcpserver.Result, error)) (mcpserver.Result, error) {
	txn, err := newID("mcp-")
	if err != nil {
		return mcpserver.Result{}, err
	}
	base := mediator.Record{
		Txn: txn, Agent: "mcp:" + c.caller.Subject, Identity: c.caller.ClientID, Subject: c.caller.Subject,
		TokenJTI: c.caller.TokenID, Action: c.action, Resource: c.resource, Policy: c.policy,
		ApprovalID: c.approvalID, Approver: c.approver,
	}
	if c.approver != "" {
		base.Reason = "approved by " + c.approver
	}
	if c.txnToken != nil {
		// Minted when the tool takes it: a tool that checks none costs no
		// signature. A tool that needs one and cannot get it fails the
		// call, and that is its audited outcome.
		mintCtx := ctx
		ctx = mediator.WithTxnTokenFunc(ctx, func() (string, error) {
			tok, err := c.txnToken(mintCtx, txn)
			if err != nil {
				log.WarnContext(mintCtx, "no Txn-Token for an MCP tool call", "tool", c.resource, "txn", txn, "err", err)
			}
			return tok, err
		})
	}
	outcome, err := mediator.RecordAllowed(ctx, a, now, base, c.args)
	if err != nil {
		log.ErrorContext(ctx, "audit of an MCP tool call's decision failed; call refused", "tool", c.resource, "err", err)
		return mcpserver.Result{}, fmt.Errorf("%w, %s refused: %w", errAuditUnavailable, c.resource, err)
	}
	res, callErr := run(ctx)
	if err := outcome(callErr); err != nil {
		log.ErrorContext(ctx, "audit of an MCP tool call's outcome failed", "tool", c.resource, "txn", txn, "err", err)
	}
	return res, callErr
}

// errAuditUnavailable: the audit log did not take a call's record, so the
// call was refused.
var errAuditUnavailable = errors.New("host: audit unavailable")

// newID returns a fresh identifier: prefix and 12 random bytes in hex. It
// names each task ("task-…") and each MCP tools/call's transaction
// ("mcp-…").
func newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("host: new %sid: %w", prefix, err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// auditRefused records a tools/call the policy hook refused; its tool
// never ran. (Calls refused for their token or scope never reach the MCP
// layer; auditDenied records those.)
func (h *Host) auditRefused(ctx context.Context, caller *resource.Caller, tool string, err error) {
	if obs := h.mediatorObserver(); obs != nil {
		obs.CallEnded(obs.CallStarted(ctx, actionMCPToolCall), mediator.CallEnd{Action: actionMCPToolCall, Resource: tool,
			Decision: mediator.DecisionDeny, Err: err,
			Caller: mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID}})
	}
	if aerr := h.audit.Record(ctx, mediator.Record{
		Time: h.now().UTC(), Agent: "mcp:" + caller.Subject, Identity: caller.ClientID, Subject: caller.Subject,
		TokenJTI: caller.TokenID, Action: actionMCPToolCall, Resource: tool, Decision: "deny",
		Policy: "policy", Reason: strings.TrimPrefix(err.Error(), mcpserver.ErrDenied.Error()+": "), Outcome: "denied",
	}); aerr != nil {
		h.log.ErrorContext(ctx, "audit of a denied MCP tool call failed", "err", aerr)
	}
}
