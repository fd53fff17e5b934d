package host

// Human approval of hosted MCP tool calls (DESIGN §4.5, SPECS §4): a
// tools/call that policy allows only with approval becomes a CIBA request
// (in process) for the access token's subject, surfaced to the MCP client
// as a URL-mode elicitation pointing at the approval page. The client
// retries the same call; once the user has approved at the authorization
// server, the retry redeems the approval, checks it names exactly this
// call and this user, claims it (an approval runs its call once), and the
// call runs.
//
// The pending request is found again by the call itself: its key is a
// digest of (subject, client, host tool, arguments digest), so a retry of
// the same call finds it and a call with other arguments does not. It is
// kept in the host's store, so a restart keeps it pending. The
// elicitationId is the approval ID (the SHA-256 of the auth_req_id, the
// last segment of the page's URL): unique per request, and never the
// auth_req_id itself.
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
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
)

// nsMCPApprovals holds the pending approval of each hosted MCP call
// waiting for one, by mcpApprovalKey.
const nsMCPApprovals = "host.mcp.approvals"

// mcpPendingApproval is a stored pending approval of a hosted MCP call.
type mcpPendingApproval struct {
	// AuthReqID is the CIBA auth_req_id, a secret of the host.
	AuthReqID string    `json:"auth_req_id"`
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Message   string    `json:"message"`
	Expires   time.Time `json:"expires"`
}

// mcpApprovalKey names the pending approval of a call: subject, client,
// host tool and arguments digest.
func mcpApprovalKey(caller *resource.Caller, tool, digest string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{caller.Subject, caller.ClientID, tool, digest}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// mcpApproval is the outcome of the approve step of a hosted MCP call:
// either the call may run (granted), or the client gets refusal (a tool
// error result) or err (an elicitation to complete, or a failure).
type mcpApproval struct {
	granted  *mediator.GrantedApproval
	refusal  *mcpserver.Result
	approval string // the approval ID, for the refusal's record
}

// mcpApprove runs the approve step for caller's call of the host tool
// with args, which policy allows only with approval (reason).
func (h *Host) mcpApprove(ctx context.Context, caller *resource.Caller, action, tool string, args json.RawMessage, reason string) (mcpApproval, error) {
	refuse := func(approvalID, why string) (mcpApproval, error) {
		_ = h.auditMCPApproval(ctx, caller, action, tool, args, "deny", "denied", approvalID, "", why)
		return mcpApproval{refusal: &mcpserver.Result{IsError: true, Text: "not done: " + why}, approval: approvalID}, nil
	}
	if caller.Subject == "" {
		return refuse("", mediator.ErrApprovalNeedsUser.Error())
	}
	digest, err := txntoken.ArgsDigest(args)
	if err != nil {
		return refuse("", "the arguments cannot be bound to an approval: "+err.Error())
	}
	key := mcpApprovalKey(caller, tool, digest)
	rec, err := h.store.Get(ctx, nsMCPApprovals, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return h.mcpRequestApproval(ctx, caller, action, tool, args, digest, key, reason)
	case err != nil:
		return mcpApproval{}, fmt.Errorf("host: pending approvals: %w", err)
	}
	var p mcpPendingApproval
	if err := json.Unmarshal(rec.Value, &p); err != nil {
		return mcpApproval{}, fmt.Errorf("host: pending approval %s: %w", key, err)
	}
	g, err := hostApprovals{h}.Redeem(ctx, mediator.PendingApproval{AuthReqID: p.AuthReqID, ID: p.ID})
	if errors.Is(err, mediator.ErrApprovalPending) || errors.Is(err, mediator.ErrApprovalSlowDown) {
		return mcpApproval{}, p.elicitation()
	}
	// Decided one way or the other: the next call of the same arguments
	// needs a new request.
	if derr := h.store.Delete(ctx, nsMCPApprovals, key, store.IfVersion(rec.Version)); derr != nil && !errors.Is(derr, store.ErrNotFound) {
		if errors.Is(derr, store.ErrConflict) {
			// Another retry of the same call got there first.
			return refuse(p.ID, "the approval is being used by another call")
		}
		return mcpApproval{}, fmt.Errorf("host: pending approvals: %w", derr)
	}
	switch {
	case err == nil:
	case errors.Is(err, mediator.ErrApprovalDenied):
		return refuse(p.ID, caller.Subject+" denied the approval")
	case errors.Is(err, mediator.ErrApprovalExpired):
		return refuse(p.ID, "the approval request expired before "+caller.Subject+" decided; call again to ask anew")
	default:
		return refuse(p.ID, "the approval could not be collected: "+err.Error())
	}
	if g.Approver != caller.Subject {
		return refuse(g.ID, fmt.Sprintf("approved by %q, not by the caller's user", g.Approver))
	}
	if err := mediator.MatchesCall(g.AuthorizationDetails, tool, digest); err != nil {
		return refuse(g.ID, "the approval does not match the call: "+err.Error())
	}
	if err := (hostApprovals{h}).Claim(ctx, g.ID, mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject,
		ClientID: caller.ClientID}); err != nil {
		return refuse(g.ID, "the approval cannot be used: "+err.Error())
	}
	return mcpApproval{granted: &g}, nil
}

// mcpRequestApproval starts the CIBA request of a call, keeps it under
// key and answers with its elicitation. Of two first calls at once, one
// request is kept; the other call gets the kept one's elicitation.
func (h *Host) mcpRequestApproval(ctx context.Context, caller *resource.Caller, action, tool string, args json.RawMessage,
	digest, key, reason string) (mcpApproval, error) {
	c := mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID, Scopes: caller.Scopes}
	pa, err := hostApprovals{h}.Request(ctx, c, mediator.ApprovalCall{Tool: tool, Arguments: args, ArgsDigest: digest, Reason: reason})
	if err != nil {
		_ = h.auditMCPApproval(ctx, caller, action, tool, args, "deny", "denied", "", "", "the approval request failed: "+err.Error())
		return mcpApproval{refusal: &mcpserver.Result{IsError: true, Text: "not done: the approval request failed"}}, nil
	}
	p := mcpPendingApproval{AuthReqID: pa.AuthReqID, ID: pa.ID, URL: pa.URL, Expires: pa.Expires,
		Message: pa.BindingMessage + ": approve it at the authorization server, then call again"}
	v, err := json.Marshal(p)
	if err != nil {
		return mcpApproval{}, err
	}
	ttl := max(time.Until(pa.Expires), time.Second) + time.Minute
	if _, err := h.store.Put(ctx, nsMCPApprovals, key, v, store.PutOptions{Condition: store.IfAbsent, TTL: ttl}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			if rec, gerr := h.store.Get(ctx, nsMCPApprovals, key); gerr == nil && json.Unmarshal(rec.Value, &p) == nil {
				return mcpApproval{}, p.elicitation()
			}
		}
		return mcpApproval{}, fmt.Errorf("host: pending approvals: %w", err)
	}
	// The request, durable before anyone can approve it.
	if err := h.auditMCPApproval(ctx, caller, action, tool, args, "approval_required", "", pa.ID, "", reason); err != nil {
		return mcpApproval{}, fmt.Errorf("host: audit unavailable, %s refused: %w", tool, err)
	}
	h.log.InfoContext(ctx, "approval requested", "tool", tool, "approval_id", pa.ID, "user", caller.Subject,
		"client_id", caller.ClientID, "url", pa.URL)
	return mcpApproval{}, p.elicitation()
}

// elicitation is the URL-mode elicitation of p (SPECS §4.3).
func (p mcpPendingApproval) elicitation() error {
	return &mcpserver.ElicitationRequiredError{Elicitations: []mcpserver.URLElicitation{{ID: p.ID, URL: p.URL, Message: p.Message}}}
}

// auditMCPApproval records a step of a hosted MCP call's approval: the
// request (approval_required) or a refusal.
func (h *Host) auditMCPApproval(ctx context.Context, caller *resource.Caller, action, tool string, args json.RawMessage,
	decision, outcome, approvalID, approver, reason string) error {
	r := mediator.Record{
		Time: h.now().UTC(), Agent: "mcp:" + caller.Subject, Identity: caller.ClientID, Subject: caller.Subject,
		TokenJTI: caller.TokenID, Action: action, Resource: tool, Decision: decision, Policy: "policy + approval",
		Reason: reason, Outcome: outcome, ApprovalID: approvalID, Approver: approver,
	}
	if len(args) > 0 {
		sum := sha256.Sum256(args)
		r.ArgsSHA256 = hex.EncodeToString(sum[:])
	}
	err := h.audit.Record(context.WithoutCancel(ctx), r)
	if err != nil {
		h.log.ErrorContext(ctx, "audit of an MCP approval step failed", "tool", tool, "err", err)
	}
	return err
}
