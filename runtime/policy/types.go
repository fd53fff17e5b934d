package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Actions a [Request] may name. They are the same strings the mediator and
// the audit log use.
const (
	ActionComplete  = "llm.complete"
	ActionCallTool  = "tool.call"
	ActionCallAgent = "agent.call"
	ActionListTools = "tool.list"
)

// Risk levels a [Request] may carry. The empty level means the caller did
// not assess risk; it is exposed to policies as risk "" and risk_score 0.
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// ErrInvalidRequest is wrapped by every error that reports a [Request] the
// engine cannot evaluate (unknown action, malformed resource, unsupported
// context value, ...). Such a request is always denied.
var ErrInvalidRequest = errors.New("policy: invalid request")

// Principal is the agent making a call.
type Principal struct {
	// Name is the agent's configured name.
	Name string `json:"name"`
	// SPIFFEID is the agent's workload identity, "" when unknown.
	SPIFFEID string `json:"spiffe_id,omitempty"`
}

// Request is what a [Decider] decides on.
type Request struct {
	// Principal is the calling agent.
	Principal Principal `json:"principal"`
	// Subject is the user on whose behalf the agent acts, "" when none.
	Subject string `json:"subject,omitempty"`
	// Action is one of ActionComplete, ActionCallTool, ActionCallAgent and
	// ActionListTools.
	Action string `json:"action"`
	// Resource names the target: "server/tool" for tool.call, "model:alias"
	// (or "alias") for llm.complete, the agent name for agent.call, and a
	// server name or "*" for tool.list.
	Resource string `json:"resource"`
	// Scopes are the OAuth scopes the call carries.
	Scopes []string `json:"scopes,omitempty"`
	// Attestation is the attestation state of the caller, e.g. "verified".
	Attestation string `json:"attestation,omitempty"`
	// BinarySHA256 is the measured SHA-256 (hex) of the caller's running
	// executable, "" when not measured.
	BinarySHA256 string `json:"binary_sha256,omitempty"`
	// Risk is a level: "", RiskLow, RiskMedium or RiskHigh.
	Risk string `json:"risk,omitempty"`
	// ArgsSHA256 is the hex SHA-256 digest of the call's arguments.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Chain lists the agents that delegated to this task, outermost first.
	Chain []string `json:"chain,omitempty"`
	// Context holds further attributes policies may test, such as a
	// numeric "amount". Values are strings, booleans, numbers, lists and
	// maps of those (see the package documentation for the mapping).
	Context map[string]any `json:"context,omitempty"`
}

// Effect is the outcome of a decision. Its zero value is Deny.
type Effect int

// Effects.
const (
	Deny Effect = iota
	Allow
	ApprovalRequired
)

// String returns "deny", "allow" or "approval_required".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case ApprovalRequired:
		return "approval_required"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("effect(%d)", int(e))
}

// MarshalText implements [encoding.TextMarshaler].
func (e Effect) MarshalText() ([]byte, error) {
	switch e {
	case Deny, Allow, ApprovalRequired:
		return []byte(e.String()), nil
	}
	return nil, fmt.Errorf("policy: unknown effect %d", int(e))
}

// UnmarshalText implements [encoding.TextUnmarshaler]; it accepts exactly
// the strings String returns.
func (e *Effect) UnmarshalText(b []byte) error {
	v, err := ParseEffect(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEffect parses "allow", "deny" or "approval_required".
func ParseEffect(s string) (Effect, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "deny":
		return Deny, nil
	case "approval_required":
		return ApprovalRequired, nil
	}
	return Deny, fmt.Errorf("policy: unknown effect %q (want allow, deny or approval_required)", s)
}

// PolicyError is a policy that failed to evaluate for a request.
type PolicyError struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
}

// Decision is the outcome of a [Decider].
type Decision struct {
	Effect Effect `json:"effect"`
	// Policies are the IDs of the policies that determined the effect,
	// sorted: the matching forbids of a Deny, the matching permits of an
	// Allow or ApprovalRequired, none when no policy matched.
	Policies []string `json:"policies,omitempty"`
	// Reason explains the decision for logs and audit.
	Reason string `json:"reason,omitempty"`
	// Errors lists the policies that failed to evaluate.
	Errors []PolicyError `json:"errors,omitempty"`
	// Version identifies the policy set that decided ("sha256:<hex>").
	Version string `json:"version,omitempty"`
}

// Allowed reports whether the call may proceed without approval.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// Decider decides whether a request may proceed. Implementations fail
// closed: when they return an error the decision is a Deny.
type Decider interface {
	Decide(ctx context.Context, r Request) (Decision, error)
}

// validActions is the set of actions a request may name.
var validActions = []string{ActionComplete, ActionCallTool, ActionCallAgent, ActionListTools}

// ValidAction reports whether a is one of the four actions.
func ValidAction(a string) bool { return slices.Contains(validActions, a) }

// riskScore maps a risk level to the number policies may compare.
func riskScore(level string) (int64, error) {
	switch level {
	case "":
		return 0, nil
	case RiskLow:
		return 1, nil
	case RiskMedium:
		return 2, nil
	case RiskHigh:
		return 3, nil
	}
	return 0, fmt.Errorf("%w: unknown risk level %q (want low, medium or high)", ErrInvalidRequest, level)
}
