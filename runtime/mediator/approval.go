package mediator

// The approve step (DESIGN §4.5): a tool call whose decision is approval
// required is made only with an approval the authorization server granted
// for exactly that call, once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/txntoken"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// Errors of an [Approvals] source: the request is still pending (poll
// again after the interval), the poll was too early (add
// SlowDownIncrement to the interval), the user denied it, it expired, or
// (Claim) the approval's call already ran. They are package consent's.
var (
	ErrApprovalPending  = consent.ErrPending
	ErrApprovalSlowDown = consent.ErrSlowDown
	ErrApprovalDenied   = consent.ErrDenied
	ErrApprovalExpired  = consent.ErrExpired
	ErrApprovalUsed     = consent.ErrUsed
)

// ApprovalCall is the call an approval is asked for.
type ApprovalCall struct {
	// Tool is the host's name of the tool ("payments/transfer").
	Tool string
	// Arguments are the call's arguments, a JSON object.
	Arguments json.RawMessage
	// ArgsDigest is txntoken.ArgsDigest of Arguments.
	ArgsDigest string
	// Reason is why policy asks for approval.
	Reason string
}

// PendingApproval is an approval request the authorization server
// accepted; GrantedApproval a redeemed one (who approved, and the RFC
// 9396 authorization_details the server granted).
type (
	PendingApproval = consent.Pending
	GrantedApproval = consent.Grant
)

// Approvals is the mediator's CIBA client (the host, asking its
// authorization server).
type Approvals interface {
	// Request asks c.Subject to approve call, with a CIBA backchannel
	// request carrying call as one authorization detail of type
	// agenthost_tool_call, or returns the request already waiting for
	// the same call of the same caller (Resumed), so that a call made
	// again (after a restart, say) waits for the request the user may
	// already have answered instead of asking twice.
	Request(ctx context.Context, c Caller, call ApprovalCall) (PendingApproval, error)
	// Redeem polls p once: the granted approval (redeemed: a second
	// Redeem of it fails), or ErrApprovalPending, ErrApprovalSlowDown,
	// ErrApprovalDenied, ErrApprovalExpired or another error.
	Redeem(ctx context.Context, p PendingApproval) (GrantedApproval, error)
	// Claim durably marks the approval with id as used for a call of c,
	// before the call runs: ErrApprovalUsed if it was marked before, so
	// that no approval runs a call twice, across retries and restarts.
	Claim(ctx context.Context, id string, c Caller) error
}

// SlowDownIncrement is what a slow_down adds to the polling interval
// (CIBA Core §11).
const SlowDownIncrement = consent.SlowDownIncrement

// ErrApprovalNeedsUser is the refusal of a call that needs approval in a
// task that acts for no user.
var ErrApprovalNeedsUser = errors.New("approval needs a user: the task acts for no one (start it signed in, or with --for USER)")

// approve runs the approve step for c's call of tool with args, which
// policy decided (base, d) needs approval: a CIBA request for c.Subject,
// surfaced to the user, polled until decided, expired, or ctx ends; then
// the granted authorization_details must be exactly this call, and the
// approval is claimed. It returns the allow decision to record (with the
// approval and approver) or the error the plugin gets, the refusal
// audited.
func (m *Mediator) approve(ctx context.Context, c Caller, base Record, tool string, args []byte) (Record, error) {
	refuse := func(reason string, p *PendingApproval, kind error) (Record, error) {
		r := base
		r.Decision, r.Outcome, r.Reason = "deny", "denied", reason
		if p != nil {
			r.ApprovalID = p.ID
		}
		if err := m.audit(context.WithoutCancel(ctx), r, args); err != nil {
			return Record{}, fmt.Errorf("%w: audit unavailable; call refused", pluginpb.ErrUnavailable)
		}
		return Record{}, fmt.Errorf("%w: %s on %s: %s", kind, ActionCallTool, tool, reason)
	}
	if c.Subject == "" {
		return refuse(ErrApprovalNeedsUser.Error(), nil, pluginpb.ErrPermissionDenied)
	}
	digest, err := txntoken.ArgsDigest(json.RawMessage(args))
	if err != nil {
		return refuse("the arguments cannot be bound to an approval: "+err.Error(), nil, pluginpb.ErrInvalidArgument)
	}
	p, err := m.cfg.Approvals.Request(ctx, c, ApprovalCall{Tool: tool, Arguments: args, ArgsDigest: digest, Reason: base.Reason})
	if err != nil {
		return refuse("the approval request failed: "+err.Error(), nil, pluginpb.ErrUnavailable)
	}
	// The request, durable before anyone can approve it.
	asked := base
	asked.Outcome, asked.ApprovalID = "", p.ID
	if err := m.audit(ctx, asked, args); err != nil {
		return Record{}, fmt.Errorf("%w: audit unavailable; call refused", pluginpb.ErrUnavailable)
	}
	if m.cfg.OnApproval != nil {
		m.cfg.OnApproval(ctx, c, p)
	}
	m.log.InfoContext(ctx, "approval requested", slog.String("task", c.TaskID), slog.String("tool", tool),
		slog.String("approval_id", p.ID), slog.String("user", c.Subject), slog.Bool("resumed", p.Resumed))
	interval := max(p.Interval, time.Second)
	var g GrantedApproval
	for {
		wait := interval
		if left := time.Until(p.Expires); left < wait {
			wait = max(left, 0) + 10*time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return refuse("the task ended while waiting for approval: "+context.Cause(ctx).Error(), &p, pluginpb.ErrUnavailable)
		case <-t.C:
		}
		g, err = m.cfg.Approvals.Redeem(ctx, p)
		switch {
		case err == nil:
		case errors.Is(err, ErrApprovalPending):
			continue
		case errors.Is(err, ErrApprovalSlowDown):
			interval += SlowDownIncrement
			continue
		case errors.Is(err, ErrApprovalDenied):
			return refuse(c.Subject+" denied the approval", &p, pluginpb.ErrPermissionDenied)
		case errors.Is(err, ErrApprovalExpired):
			return refuse("the approval request expired before "+c.Subject+" decided", &p, pluginpb.ErrPermissionDenied)
		default:
			return refuse("the approval could not be collected: "+err.Error(), &p, pluginpb.ErrPermissionDenied)
		}
		break
	}
	if g.Approver != c.Subject {
		return refuse(fmt.Sprintf("approved by %q, not by the task's user", g.Approver), &p, pluginpb.ErrPermissionDenied)
	}
	if err := MatchesCall(g.AuthorizationDetails, tool, digest); err != nil {
		return refuse("the approval does not match the call: "+err.Error(), &p, pluginpb.ErrPermissionDenied)
	}
	if err := m.cfg.Approvals.Claim(ctx, g.ID, c); err != nil {
		return refuse("the approval cannot be used: "+err.Error(), &p, pluginpb.ErrPermissionDenied)
	}
	r := base
	r.ApprovalID, r.Approver = g.ID, g.Approver
	r.Reason = "approved by " + g.Approver
	return r, nil
}

// MatchesCall checks that the granted authorization_details are exactly
// one tool-call detail for tool with the arguments' digest.
func MatchesCall(granted json.RawMessage, tool, digest string) error {
	return consent.MatchesCall(granted, tool, digest)
}
