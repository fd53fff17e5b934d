package authzen

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agenthost/agenthost/runtime/policy"
)

// Entity types of the mapping.
const (
	SubjectAgent     = "agent"
	ResourceTool     = "tool"
	ResourceToolList = "tool_list"
	ResourceModel    = "model"
	ResourceAgent    = "agent"
)

// Members of a decision's context this package writes and reads.
const (
	// ContextApprovalRequired is true when the decision needs a human's
	// approval; the decision itself is then false.
	ContextApprovalRequired = "approval_required"
	// ContextReason is a human-readable explanation (a string).
	ContextReason = "reason"
	// ContextEffect is "allow", "deny" or "approval_required".
	ContextEffect = "effect"
	// ContextPolicies lists the IDs of the determining policies.
	ContextPolicies = "policies"
	// ContextPolicySet is the version of the policy set that decided.
	ContextPolicySet = "policy_set"
	// ContextError is a per-evaluation error {status, message}.
	ContextError = "error"
)

// Subject is an AuthZEN subject.
type Subject struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Resource is an AuthZEN resource.
type Resource struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Action is an AuthZEN action.
type Action struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties,omitempty"`
}

// EvaluationRequest is the body of an Access Evaluation request, and one
// item of a batch.
type EvaluationRequest struct {
	Subject  *Subject       `json:"subject,omitempty"`
	Action   *Action        `json:"action,omitempty"`
	Resource *Resource      `json:"resource,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
}

// EvaluationResponse is a decision.
type EvaluationResponse struct {
	Decision bool           `json:"decision"`
	Context  map[string]any `json:"context,omitempty"`
}

// Options of a batch request.
type Options struct {
	// EvaluationsSemantic is one of the Semantic* constants; "" means
	// SemanticExecuteAll.
	EvaluationsSemantic string `json:"evaluations_semantic,omitempty"`
}

// Values of Options.EvaluationsSemantic.
const (
	SemanticExecuteAll          = "execute_all"
	SemanticDenyOnFirstDeny     = "deny_on_first_deny"
	SemanticPermitOnFirstPermit = "permit_on_first_permit"
)

// EvaluationsRequest is the body of an Access Evaluations (batch) request.
// Its top-level subject, action, resource and context are defaults that an
// item's own values replace.
type EvaluationsRequest struct {
	Subject     *Subject            `json:"subject,omitempty"`
	Action      *Action             `json:"action,omitempty"`
	Resource    *Resource           `json:"resource,omitempty"`
	Context     map[string]any      `json:"context,omitempty"`
	Evaluations []EvaluationRequest `json:"evaluations,omitempty"`
	Options     *Options            `json:"options,omitempty"`
}

// EvaluationsResponse answers a batch, in request order.
type EvaluationsResponse struct {
	Evaluations []EvaluationResponse `json:"evaluations"`
}

// Metadata is the PDP metadata document.
type Metadata struct {
	PolicyDecisionPoint       string   `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string   `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string   `json:"access_evaluations_endpoint,omitempty"`
	Capabilities              []string `json:"capabilities,omitempty"`
}

// errBadRequest marks mapping failures the server answers with 400.
var errBadRequest = errors.New("authzen: bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// resourceTypes maps each action to the resource type it takes.
var resourceTypes = map[string]string{
	policy.ActionCallTool:  ResourceTool,
	policy.ActionListTools: ResourceToolList,
	policy.ActionComplete:  ResourceModel,
	policy.ActionCallAgent: ResourceAgent,
}

// Context members that map onto fields of policy.Request.
const (
	ctxScopes      = "scopes"
	ctxAttestation = "attestation"
	ctxBinary      = "binary_sha256"
	ctxRisk        = "risk"
	ctxArgsSHA256  = "args_sha256"
	ctxChain       = "chain"
)

// ToPolicy maps an AuthZEN request to a policy request (see the package
// documentation for the mapping). Its errors are the caller's fault.
func ToPolicy(e EvaluationRequest) (policy.Request, error) {
	var r policy.Request
	switch {
	case e.Subject == nil:
		return r, badRequest("missing subject")
	case e.Action == nil:
		return r, badRequest("missing action")
	case e.Resource == nil:
		return r, badRequest("missing resource")
	case e.Subject.Type == "":
		return r, badRequest("missing subject.type")
	case e.Subject.ID == "":
		return r, badRequest("missing subject.id")
	case e.Action.Name == "":
		return r, badRequest("missing action.name")
	case e.Resource.Type == "":
		return r, badRequest("missing resource.type")
	case e.Resource.ID == "":
		return r, badRequest("missing resource.id")
	}
	if e.Subject.Type != SubjectAgent {
		return r, badRequest("subject.type %q is not supported (want %q)", e.Subject.Type, SubjectAgent)
	}
	props := e.Subject.Properties
	for k := range props {
		if k != "name" && k != "spiffe_id" && k != "user" {
			return r, badRequest("unknown subject property %q", k)
		}
	}
	name, err := stringProp(props, "name", "subject.properties")
	if err != nil {
		return r, err
	}
	spiffeID, err := stringProp(props, "spiffe_id", "subject.properties")
	if err != nil {
		return r, err
	}
	if r.Subject, err = stringProp(props, "user", "subject.properties"); err != nil {
		return r, err
	}
	if strings.HasPrefix(e.Subject.ID, "spiffe://") {
		if spiffeID != "" && spiffeID != e.Subject.ID {
			return r, badRequest("subject.properties.spiffe_id differs from subject.id")
		}
		spiffeID = e.Subject.ID
		if name == "" {
			rest := strings.TrimPrefix(e.Subject.ID, "spiffe://")
			_, path, _ := strings.Cut(rest, "/")
			n, ok := strings.CutPrefix(path, "agent/")
			if !ok || n == "" || strings.Contains(n, "/") {
				return r, badRequest("subject.id %q is not an agent SPIFFE ID and no subject.properties.name is given", e.Subject.ID)
			}
			name = n
		}
	} else {
		if name != "" && name != e.Subject.ID {
			return r, badRequest("subject.properties.name differs from subject.id")
		}
		name = e.Subject.ID
	}
	r.Principal = policy.Principal{Name: name, SPIFFEID: spiffeID}

	if len(e.Action.Properties) > 0 {
		return r, badRequest("action.properties are not supported")
	}
	if !policy.ValidAction(e.Action.Name) {
		return r, badRequest("unknown action.name %q", e.Action.Name)
	}
	r.Action = e.Action.Name

	if len(e.Resource.Properties) > 0 {
		return r, badRequest("resource.properties are not supported")
	}
	if want := resourceTypes[r.Action]; e.Resource.Type != want {
		return r, badRequest("resource.type %q does not fit action %s (want %q)", e.Resource.Type, r.Action, want)
	}
	r.Resource = e.Resource.ID
	if e.Resource.Type == ResourceModel {
		r.Resource = "model:" + strings.TrimPrefix(e.Resource.ID, "model:")
	}

	for k, v := range e.Context {
		switch k {
		case ctxScopes:
			r.Scopes, err = stringList(v, k)
		case ctxChain:
			r.Chain, err = stringList(v, k)
		case ctxAttestation:
			r.Attestation, err = stringProp(e.Context, k, "context")
		case ctxBinary:
			r.BinarySHA256, err = stringProp(e.Context, k, "context")
		case ctxRisk:
			r.Risk, err = stringProp(e.Context, k, "context")
		case ctxArgsSHA256:
			r.ArgsSHA256, err = stringProp(e.Context, k, "context")
		default:
			if r.Context == nil {
				r.Context = make(map[string]any, len(e.Context))
			}
			r.Context[k] = v
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// FromPolicy maps a policy request to an AuthZEN request, the inverse of
// [ToPolicy].
func FromPolicy(r policy.Request) EvaluationRequest {
	props := map[string]any{}
	if r.Principal.SPIFFEID != "" {
		props["spiffe_id"] = r.Principal.SPIFFEID
	}
	if r.Subject != "" {
		props["user"] = r.Subject
	}
	if len(props) == 0 {
		props = nil
	}
	res := r.Resource
	typ := resourceTypes[r.Action]
	if typ == ResourceModel {
		res = strings.TrimPrefix(res, "model:")
	}
	ctx := maps.Clone(r.Context)
	set := func(k string, v any, present bool) {
		if !present {
			return
		}
		if ctx == nil {
			ctx = map[string]any{}
		}
		ctx[k] = v
	}
	set(ctxScopes, slices.Clone(r.Scopes), len(r.Scopes) > 0)
	set(ctxChain, slices.Clone(r.Chain), len(r.Chain) > 0)
	set(ctxAttestation, r.Attestation, r.Attestation != "")
	set(ctxBinary, r.BinarySHA256, r.BinarySHA256 != "")
	set(ctxRisk, r.Risk, r.Risk != "")
	set(ctxArgsSHA256, r.ArgsSHA256, r.ArgsSHA256 != "")
	return EvaluationRequest{
		Subject:  &Subject{Type: SubjectAgent, ID: r.Principal.Name, Properties: props},
		Action:   &Action{Name: r.Action},
		Resource: &Resource{Type: typ, ID: res},
		Context:  ctx,
	}
}

// ResponseFor maps a decision to an AuthZEN response. ApprovalRequired is
// decision false with context.approval_required true, so a PEP that does
// not know the member denies.
func ResponseFor(d policy.Decision) EvaluationResponse {
	ctx := map[string]any{ContextEffect: d.Effect.String()}
	if d.Reason != "" {
		ctx[ContextReason] = d.Reason
	}
	if len(d.Policies) > 0 {
		ctx[ContextPolicies] = d.Policies
	}
	if d.Version != "" {
		ctx[ContextPolicySet] = d.Version
	}
	if d.Effect == policy.ApprovalRequired {
		ctx[ContextApprovalRequired] = true
	}
	return EvaluationResponse{Decision: d.Effect == policy.Allow, Context: ctx}
}

// DecisionFrom maps an AuthZEN response to a decision: approval_required
// true gives ApprovalRequired whatever the decision, else decision true
// gives Allow and false Deny.
func DecisionFrom(resp EvaluationResponse) policy.Decision {
	d := policy.Decision{Effect: policy.Deny}
	if resp.Decision {
		d.Effect = policy.Allow
	}
	if b, ok := resp.Context[ContextApprovalRequired].(bool); ok && b {
		d.Effect = policy.ApprovalRequired
	}
	if s, ok := resp.Context[ContextReason].(string); ok {
		d.Reason = s
	}
	if s, ok := resp.Context[ContextPolicySet].(string); ok {
		d.Version = s
	}
	switch ps := resp.Context[ContextPolicies].(type) {
	case []any:
		for _, p := range ps {
			if s, ok := p.(string); ok {
				d.Policies = append(d.Policies, s)
			}
		}
	case []string:
		d.Policies = slices.Clone(ps)
	}
	if d.Reason == "" {
		if e, ok := resp.Context[ContextError].(map[string]any); ok {
			if m, ok := e["message"].(string); ok {
				d.Reason = m
			}
		}
	}
	return d
}

func stringProp(m map[string]any, key, where string) (string, error) {
	v, ok := m[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badRequest("%s.%s must be a string", where, key)
	}
	return s, nil
}

func stringList(v any, key string) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return slices.Clone(x), nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, badRequest("context.%s must be an array of strings", key)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, badRequest("context.%s must be an array of strings", key)
}
