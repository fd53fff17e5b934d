package mcphost

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

// audited turns ct into the tool a hosted MCP server offers: every call
// goes through [auditedCall], in the mediator's order, and carries a
// Txn-Token obtained for it on the caller's access token.
func (b *Bridge) audited(ct callTool) mcpserver.Tool {
	t, run := ct.Tool, ct.Handler
	t.Handler = func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (res mcpserver.Result, err error) {
		// Observed like a mediated call (metrics, a span): allowed, or
		// allowed with approval, then its outcome.
		decision := mediator.DecisionAllow
		if obs := b.cfg.Observer; obs != nil {
			began := b.cfg.Now()
			ctx = obs.CallStarted(ctx, ct.action)
			defer func() {
				if err != nil && errors.Is(err, errAuditUnavailable) {
					decision = mediator.DecisionError
				}
				obs.CallEnded(ctx, mediator.CallEnd{Action: ct.action, Resource: ct.resource, Decision: decision, Err: err,
					Caller:   mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID},
					Duration: b.cfg.Now().Sub(began)})
			}()
		}
		at, _ := ctx.Value(callerTokenKey{}).(string)
		c := call{caller: caller, action: ct.action, resource: ct.resource, policy: ct.policy, args: args,
			txnToken: func(ctx context.Context, txn string) (string, error) {
				return b.txnToken(ctx, txn, at, caller, ct.resource, ct.tool, args)
			}}
		if reason, ok := mcpserver.ApprovalRequired(ctx); ok {
			// Policy allows the call only with the user's approval
			// (approvals.go): an elicitation until they approve.
			a, err := b.approve(ctx, caller, ct.action, ct.resource, args, reason)
			if err != nil {
				return mcpserver.Result{}, err
			}
			if a.refusal != nil {
				return *a.refusal, nil
			}
			c.policy += " + approval"
			decision = mediator.DecisionApprovalRequired
			c.approvalID, c.approver = a.granted.ID, a.granted.Approver
		}
		return auditedCall(ctx, b.cfg.Auditor, b.cfg.Now, b.cfg.Logger, c, func(ctx context.Context) (mcpserver.Result, error) {
			// The access token was kept for the Txn-Token only.
			return run(context.WithValue(ctx, callerTokenKey{}, ""), caller, args)
		})
	}
	return t
}

// call is one tools/call on a hosted MCP server that the server's checks
// (token, scope, policy) allowed.
type call struct {
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
// mediator's order (mediator.RecordAllowed): it records the allow decision
// (outcome not known yet) and runs the tool only once that record is
// durable; a call whose decision cannot be recorded is refused and its
// tool never runs. Then it records the outcome. Both records carry the
// same transaction id, one per call (the txn of the call's Txn-Token), as
// the mediator's carry their task's, so `audit trace` and `audit check`
// pair them. A host killed while the tool runs leaves the decision in the
// log, never an effect without one. A call whose Txn-Token cannot be
// obtained is refused before its decision, and the refusal is recorded.
func auditedCall(ctx context.Context, a mediator.Auditor, now func() time.Time, log *slog.Logger, c call,
	run func(context.Context) (mcpserver.Result, error)) (mcpserver.Result, error) {
	txn, err := newTxnID()
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
var errAuditUnavailable = errors.New("mcphost: audit unavailable")

// newTxnID returns the transaction id of a tools/call: "mcp-" and 12
// random bytes in hex.
func newTxnID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mcphost: new transaction id: %w", err)
	}
	return "mcp-" + hex.EncodeToString(b[:]), nil
}

// auditRefused records a tools/call the policy hook refused; its tool
// never ran. (Calls refused for their token or scope never reach the MCP
// layer; the httpaudit middleware around each server records those.)
func (b *Bridge) auditRefused(ctx context.Context, caller *resource.Caller, tool string, err error) {
	if obs := b.cfg.Observer; obs != nil {
		obs.CallEnded(obs.CallStarted(ctx, ActionToolCall), mediator.CallEnd{Action: ActionToolCall, Resource: tool,
			Decision: mediator.DecisionDeny, Err: err,
			Caller: mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID}})
	}
	if aerr := b.cfg.Auditor.Record(ctx, mediator.Record{
		Time: b.cfg.Now().UTC(), Agent: "mcp:" + caller.Subject, Identity: caller.ClientID, Subject: caller.Subject,
		TokenJTI: caller.TokenID, Action: ActionToolCall, Resource: tool, Decision: "deny",
		Policy: "policy", Reason: strings.TrimPrefix(err.Error(), mcpserver.ErrDenied.Error()+": "), Outcome: "denied",
	}); aerr != nil {
		b.cfg.Logger.ErrorContext(ctx, "audit of a denied MCP tool call failed", "err", aerr)
	}
}
