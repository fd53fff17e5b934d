package mediator

// Observing the mediated calls: an [Observer] (the host's metrics and
// traces) is told of every Host call as it starts and ends, with the
// decision made on it, and of every policy evaluation. The mediator
// imports no metrics or tracing library.

import (
	"context"
	"time"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// Decisions on a mediated call, as an [Observer] is told them.
const (
	// DecisionAllow: the policy allowed the call.
	DecisionAllow = "allow"
	// DecisionDeny: the call was refused: the task is not the caller's,
	// or the grants or the policy refuse it.
	DecisionDeny = "deny"
	// DecisionApprovalRequired: the policy allows the call only with
	// the user's approval (whatever the user then decides; the approval
	// is observed on its own).
	DecisionApprovalRequired = "approval_required"
	// DecisionError: nothing was decided, or the decision could not be
	// recorded: the request was malformed, the policy evaluation failed,
	// or the audit log did not take the record (the call is refused).
	DecisionError = "error"
)

// Observer is told of the mediated calls. Its methods are called on the
// call's goroutine and must not block.
type Observer interface {
	// CallStarted is called as a Host call enters the mediator, with its
	// action (ActionComplete, ActionListTools, ActionCallTool,
	// ActionCallAgent); the context it returns is the call's from then on
	// (it may carry a span, say).
	CallStarted(ctx context.Context, action string) context.Context
	// CallEnded is called once for every started call, when it returns,
	// with the call's context.
	CallEnded(ctx context.Context, e CallEnd)
	// PolicyEvaluated is called after every evaluation of the [Policy],
	// with the action of the request and how long it took (by
	// Config.Now). A tool list evaluates once per tool.
	PolicyEvaluated(ctx context.Context, action string, took time.Duration)
}

// CallEnd is a mediated call as it ended.
type CallEnd struct {
	Action   string
	Resource string
	// Caller is who made the call: as resolved from the task, or only
	// the connection's agent and the requested task id when the task is
	// not the caller's.
	Caller Caller
	// Decision is one of the Decision… values.
	Decision string
	// Err is what the plugin got; nil when the call succeeded.
	Err error
	// Duration is the call's time in the mediator (by Config.Now),
	// approval, target and audit included.
	Duration time.Duration
}

// observation is what the mediator learns of a call while it runs, kept in
// the call's context.
type observation struct {
	end   CallEnd
	began time.Time
}

type observationKey struct{}

// observedHost is the Host service of an agent's plugin when the mediator
// has an Observer: each mediated call is observed around the mediator's
// own (h); calls the mediator does not serve pass through.
type observedHost struct {
	pluginpb.HostServer
	h *hostServer
}

func (o observedHost) Complete(ctx context.Context, req *pluginpb.CompleteRequest) (*pluginpb.CompleteResponse, error) {
	return observed(ctx, o.h, ActionComplete, req.GetTaskId(), req, o.h.Complete)
}

func (o observedHost) ListTools(ctx context.Context, req *pluginpb.ListToolsRequest) (*pluginpb.ListToolsResponse, error) {
	return observed(ctx, o.h, ActionListTools, req.GetTaskId(), req, o.h.ListTools)
}

func (o observedHost) CallTool(ctx context.Context, req *pluginpb.CallToolRequest) (*pluginpb.CallToolResponse, error) {
	return observed(ctx, o.h, ActionCallTool, req.GetTaskId(), req, o.h.CallTool)
}

func (o observedHost) CallAgent(ctx context.Context, req *pluginpb.CallAgentRequest) (*pluginpb.CallAgentResponse, error) {
	return observed(ctx, o.h, ActionCallAgent, req.GetTaskId(), req, o.h.CallAgent)
}

// observed runs call, a mediated call of action for task taskID, telling
// the Observer when it starts and ends.
func observed[Req, Resp any](ctx context.Context, h *hostServer, action, taskID string, req Req,
	call func(context.Context, Req) (Resp, error)) (Resp, error) {
	obs := h.m.cfg.Observer
	o := &observation{began: h.m.cfg.Now(),
		end: CallEnd{Action: action, Caller: Caller{Agent: h.agent, TaskID: taskID}}}
	ctx = context.WithValue(obs.CallStarted(ctx, action), observationKey{}, o)
	resp, err := call(ctx, req)
	o.end.Err, o.end.Duration = err, h.m.cfg.Now().Sub(o.began)
	if o.end.Decision == "" {
		// Refused before a decision (a malformed request).
		o.end.Decision = DecisionError
	}
	obs.CallEnded(ctx, o.end)
	return resp, err
}

// noteCall records, for the Observer, who made the call in ctx, on which
// resource, and the decision.
func (m *Mediator) noteCall(ctx context.Context, c Caller, resource, decision string) {
	if m.cfg.Observer == nil {
		return
	}
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		o.end.Caller, o.end.Resource, o.end.Decision = c, resource, decision
	}
}

// noteDecision replaces the decision recorded for the call in ctx.
func (m *Mediator) noteDecision(ctx context.Context, decision string) {
	if m.cfg.Observer == nil {
		return
	}
	if o, ok := ctx.Value(observationKey{}).(*observation); ok {
		o.end.Decision = decision
	}
}

// decisionOf is the Decision… value of a policy decision.
func decisionOf(d Decision) string {
	switch {
	case d.Policy == policyError:
		return DecisionError
	case d.Allow:
		return DecisionAllow
	case d.ApprovalRequired:
		return DecisionApprovalRequired
	default:
		return DecisionDeny
	}
}

// policyBegins is when a policy evaluation began, when there is an
// Observer (the zero time otherwise: the clock is not read).
func (m *Mediator) policyBegins() time.Time {
	if m.cfg.Observer == nil {
		return time.Time{}
	}
	return m.cfg.Now()
}

// policyEvaluated tells the Observer, if any, of an evaluation of action
// that began at began.
func (m *Mediator) policyEvaluated(ctx context.Context, action string, began time.Time) {
	if m.cfg.Observer != nil {
		m.cfg.Observer.PolicyEvaluated(ctx, action, m.cfg.Now().Sub(began))
	}
}

// policyError is the Policy of the denial a failed policy evaluation
// becomes.
const policyError = "error"
