package mcphost

// Human approval of hosted MCP tool calls (DESIGN §4.5, SPECS §4): a
// tools/call that policy allows only with approval becomes a CIBA request
// (in process) for the access token's subject, surfaced to the MCP client
// as a URL-mode elicitation pointing at the approval page. The client
// retries the same call; once the user has approved at the authorization
// server, the retry redeems the approval, checks it names exactly this
// call and this user, claims it (an approval runs its call once), and the
// call runs.
//
// The pending request is found again by the call itself
// (consent.Requests keys it by user, client, host tool and arguments
// digest), so a retry of the same call finds it and a call with other
// arguments does not. It is kept in the host's store, so a restart keeps
// it pending. The elicitationId is the approval ID (the SHA-256 of the
// auth_req_id, the last segment of the page's URL): unique per request,
// and never the auth_req_id itself.
//
// Hosted MCP servers are stateless (no MCP session), so the optional
// notifications/elicitation/complete (SPECS §4.3) is not sent: the client
// retries on the user's word, or on its own schedule, and a retry before
// the decision gets the same elicitation again.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// approval is the outcome of the approve step of a hosted MCP call:
// either the call may run (granted), or the client gets refusal (a tool
// error result) or err (an elicitation to complete, or a failure).
type approval struct {
	granted  *mediator.GrantedApproval
	refusal  *mcpserver.Result
	approval string // the approval ID, for the refusal's record
}

// approve runs the approve step for caller's call of the host tool with
// args, which policy allows only with approval (reason).
func (b *Bridge) approve(ctx context.Context, caller *resource.Caller, action, tool string, args json.RawMessage, reason string) (approval, error) {
	refuse := func(approvalID, why string) (approval, error) {
		_ = b.auditApproval(ctx, caller, action, tool, args, "deny", "denied", approvalID, "", why)
		return approval{refusal: &mcpserver.Result{IsError: true, Text: "not done: " + why}, approval: approvalID}, nil
	}
	if caller.Subject == "" {
		return refuse("", mediator.ErrApprovalNeedsUser.Error())
	}
	requests := b.cfg.Approvals
	if requests == nil {
		return refuse("", "approvals are off: the authorization server has no users to approve")
	}
	digest, err := txntoken.ArgsDigest(args)
	if err != nil {
		return refuse("", "the arguments cannot be bound to an approval: "+err.Error())
	}
	p, err := requests.Ask(ctx, consent.Call{Subject: caller.Subject, Requester: "mcp:" + caller.Subject,
		ClientID: caller.ClientID, Tool: tool, Arguments: args, ArgsDigest: digest})
	if err != nil {
		_ = b.auditApproval(ctx, caller, action, tool, args, "deny", "denied", "", "", "the approval request failed: "+err.Error())
		return approval{refusal: &mcpserver.Result{IsError: true, Text: "not done: the approval request failed"}}, nil
	}
	if !p.Resumed {
		// The request, durable before anyone can approve it.
		if err := b.auditApproval(ctx, caller, action, tool, args, "approval_required", "", p.ID, "", reason); err != nil {
			return approval{}, fmt.Errorf("mcphost: audit unavailable, %s refused: %w", tool, err)
		}
		b.cfg.Logger.InfoContext(ctx, "approval requested", "tool", tool, "approval_id", p.ID, "user", caller.Subject,
			"client_id", caller.ClientID, "url", p.URL)
		return approval{}, elicitation(p)
	}
	g, err := requests.Collect(ctx, p)
	switch {
	case err == nil:
	case errors.Is(err, consent.ErrPending), errors.Is(err, consent.ErrSlowDown):
		return approval{}, elicitation(p)
	case errors.Is(err, consent.ErrDenied):
		return refuse(p.ID, caller.Subject+" denied the approval")
	case errors.Is(err, consent.ErrExpired):
		return refuse(p.ID, "the approval request expired before "+caller.Subject+" decided; call again to ask anew")
	default:
		return refuse(p.ID, "the approval could not be collected: "+err.Error())
	}
	if g.Approver != caller.Subject {
		return refuse(g.ID, fmt.Sprintf("approved by %q, not by the caller's user", g.Approver))
	}
	if err := consent.MatchesCall(g.AuthorizationDetails, tool, digest); err != nil {
		return refuse(g.ID, "the approval does not match the call: "+err.Error())
	}
	if err := requests.Claim(ctx, g.ID, map[string]any{"agent": "mcp:" + caller.Subject, "client_id": caller.ClientID}); err != nil {
		return refuse(g.ID, "the approval cannot be used: "+err.Error())
	}
	return approval{granted: &g}, nil
}

// elicitation is the URL-mode elicitation of p (SPECS §4.3): the
// elicitationId is the approval ID, never the auth_req_id.
func elicitation(p consent.Pending) error {
	return &mcpserver.ElicitationRequiredError{Elicitations: []mcpserver.URLElicitation{{ID: p.ID, URL: p.URL,
		Message: p.BindingMessage + ": approve it at the authorization server, then call again"}}}
}

// auditApproval records a step of a hosted MCP call's approval: the
// request (approval_required) or a refusal.
func (b *Bridge) auditApproval(ctx context.Context, caller *resource.Caller, action, tool string, args json.RawMessage,
	decision, outcome, approvalID, approver, reason string) error {
	r := mediator.Record{
		Time: b.cfg.Now().UTC(), Agent: "mcp:" + caller.Subject, Identity: caller.ClientID, Subject: caller.Subject,
		TokenJTI: caller.TokenID, Action: action, Resource: tool, Decision: decision, Policy: "policy + approval",
		Reason: reason, Outcome: outcome, ApprovalID: approvalID, Approver: approver,
	}
	if len(args) > 0 {
		sum := sha256.Sum256(args)
		r.ArgsSHA256 = hex.EncodeToString(sum[:])
	}
	err := b.cfg.Auditor.Record(context.WithoutCancel(ctx), r)
	if err != nil {
		b.cfg.Logger.ErrorContext(ctx, "audit of an MCP approval step failed", "tool", tool, "err", err)
	}
	return err
}
