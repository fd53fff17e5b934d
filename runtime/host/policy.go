package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/policy"
	"github.com/agenthost/agenthost/runtime/policy/authzen"
)

// newPolicy sets up the policy decision point the config names: local
// Cedar policies, an external AuthZEN PDP, or none (the agents' grants and
// the tokens' scopes alone).
func (h *Host) newPolicy() error {
	switch p := h.cfg.Policy; {
	case p.Dir != "":
		e, err := policy.New(policy.Config{Dir: p.Dir, Logger: h.log.With("component", "policy")})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		h.engine, h.pdp = e, e
		h.log.Info("policies loaded", "dir", p.Dir, "version", e.Version(), "policies", len(e.PolicyIDs()))
	case p.AuthZENEndpoint != "":
		c, err := authzen.NewClient(authzen.Config{Endpoint: p.AuthZENEndpoint, Logger: h.log.With("component", "authzen")})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		h.pdp = c
	}
	return nil
}

// signalState is what security signals told the host about subjects: their
// risk level and assurance, given to policy with every request.
type signalState struct {
	mu   sync.Mutex
	risk map[string]string // subject → low | medium | high
}

func (s *signalState) riskOf(subject string) string {
	if subject == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.risk[subject]
}

func (s *signalState) setRisk(subject, level string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.risk == nil {
		s.risk = map[string]string{}
	}
	if level == "" {
		delete(s.risk, subject)
		return
	}
	s.risk[subject] = level
}

// gatedPolicy is the mediator's policy: a quarantined calling agent is
// refused everything, then the agent's grants decide, then a delegation to
// a quarantined agent is refused, then, when one is configured, the policy
// decision point decides. A PDP can narrow the grants or ask for approval;
// it cannot widen them.
type gatedPolicy struct {
	grants mediator.AllowList
	h      *Host
}

var _ mediator.Policy = gatedPolicy{}

// Decide implements mediator.Policy.
func (g gatedPolicy) Decide(ctx context.Context, r mediator.Request) (mediator.Decision, error) {
	if g.h.isQuarantined(r.Caller.Agent) {
		return mediator.Decision{Policy: "quarantine", Reason: "agent " + r.Caller.Agent + " is quarantined"}, nil
	}
	d, err := g.grants.Decide(ctx, r)
	if err != nil || !d.Allow {
		return d, err
	}
	if r.Action == mediator.ActionCallAgent && g.h.isQuarantined(r.Resource) {
		return mediator.Decision{Policy: "quarantine", Reason: "agent " + r.Resource + " is quarantined"}, nil
	}
	if g.h.pdp == nil {
		return d, nil
	}
	c := r.Caller
	req := policy.Request{
		Principal: policy.Principal{Name: c.Agent, SPIFFEID: c.Identity.String()},
		Subject:   c.Subject, Action: r.Action, Resource: r.Resource, Chain: c.Chain, Scopes: c.Scopes,
		Risk: g.h.signals.riskOf(c.Subject), Attestation: c.Attestation, BinarySHA256: c.BinarySHA256,
	}
	if r.Args != nil {
		args, err := policyArgs(r.Args)
		if err != nil {
			return mediator.Decision{Policy: "policy", Reason: err.Error()}, nil
		}
		req.Context = map[string]any{"args": args}
	}
	return g.h.decide(ctx, req)
}

// policyArgs are a tool call's arguments as policy's context.args
// (numbers: Long when integral, else decimal). Arguments policy cannot
// read make the request invalid, so denied: never a way around a policy
// on them.
func policyArgs(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args any
	if err := dec.Decode(&args); err != nil {
		return nil, errors.New("the arguments are not JSON")
	}
	return args, nil
}

// isQuarantined reports whether the named agent is quarantined.
func (h *Host) isQuarantined(agent string) bool {
	return h.sup != nil && h.sup.Quarantined(agent)
}

// decide asks the PDP and maps its answer onto a mediator decision. An
// approval the host has no channel for yet is a denial that says so.
func (h *Host) decide(ctx context.Context, req policy.Request) (mediator.Decision, error) {
	pd, err := h.pdp.Decide(ctx, req)
	name := "policy"
	if len(pd.Policies) > 0 {
		name = strings.Join(pd.Policies, ",")
	}
	if v := strings.TrimPrefix(pd.Version, "sha256:"); v != "" {
		name += "@" + v[:min(12, len(v))]
	}
	if err != nil {
		return mediator.Decision{Reason: "policy evaluation failed", Policy: name}, err
	}
	switch pd.Effect {
	case policy.Allow:
		return mediator.Decision{Allow: true, Policy: name, Reason: pd.Reason}, nil
	case policy.ApprovalRequired:
		reason := "approval required"
		if pd.Reason != "" {
			reason += ": " + pd.Reason
		}
		if h.consent == nil {
			reason += " (no approval channel is configured: the authorization server has no users; the call is refused)"
		}
		return mediator.Decision{ApprovalRequired: true, Policy: name, Reason: reason}, nil
	default:
		reason := pd.Reason
		if reason == "" {
			reason = "no policy permits it"
		}
		return mediator.Decision{Policy: name, Reason: reason}, nil
	}
}

// mcpAuthorizer is the hosted MCP servers' policy hook: with a PDP
// configured, each tool a caller would list or call must be permitted for
// the caller's client, subject and scopes (and, for a call, its
// arguments, as context.args). A call policy allows only with approval
// goes on to its handler, which asks the caller's user
// (runtime/mcphost). tools maps the server's MCP tool names to the
// host's tool names.
func (h *Host) mcpAuthorizer(tools map[string]string) mcpserver.Authorizer {
	if h.pdp == nil {
		return nil
	}
	return func(ctx context.Context, caller *resource.Caller, server, tool string) error {
		name := tools[tool]
		if name == "" {
			name = server + "/" + tool
		}
		p := policy.Principal{Name: caller.ClientID}
		if strings.HasPrefix(caller.ClientID, "spiffe://") {
			p.SPIFFEID = caller.ClientID
		}
		req := policy.Request{Principal: p, Subject: caller.Subject, Action: policy.ActionCallTool,
			Resource: name, Scopes: caller.Scopes, Risk: h.signals.riskOf(caller.Subject)}
		if raw, ok := mcpserver.CallArguments(ctx); ok {
			// A tools/call: policy sees its arguments, as the mediator's.
			args, err := policyArgs(raw)
			if err != nil {
				return fmt.Errorf("%w: %v", mcpserver.ErrDenied, err)
			}
			req.Context = map[string]any{"args": args}
		}
		d, err := h.decide(ctx, req)
		if err != nil {
			h.log.ErrorContext(ctx, "policy evaluation failed", "server", server, "tool", tool, "err", err)
			return fmt.Errorf("%w: policy evaluation failed", mcpserver.ErrDenied)
		}
		if d.ApprovalRequired && h.consent != nil {
			// The call runs once the caller's user approves it
			// (runtime/mcphost).
			return fmt.Errorf("%w: %s", mcpserver.ErrApprovalRequired, d.Reason)
		}
		if !d.Allow {
			return fmt.Errorf("%w: %s", mcpserver.ErrDenied, d.Reason)
		}
		return nil
	}
}

// PolicyReload implements localapi.AuditBackend.
func (h *Host) PolicyReload(ctx context.Context) (string, error) {
	if h.engine == nil {
		return "", errors.New("host: no policy directory is configured (policy.dir)")
	}
	if err := h.engine.Reload(ctx); err != nil {
		return "", err
	}
	v := h.engine.Version()
	h.log.InfoContext(ctx, "policies reloaded", "version", v)
	return v, nil
}

// PolicyDecide implements localapi.AuditBackend.
func (h *Host) PolicyDecide(ctx context.Context, r policy.Request) (policy.Decision, error) {
	if h.pdp == nil {
		return policy.Decision{}, errors.New("host: no policy is configured (policy.dir or policy.authzen_endpoint)")
	}
	return h.pdp.Decide(ctx, r)
}

// authzenHandler serves the host's policies as an AuthZEN PDP to callers
// holding an access token with the scope authzen:evaluate.
func (h *Host) authzenHandler(v *resource.Verifier) (http.Handler, error) {
	srv, err := authzen.NewServer(authzen.ServerConfig{
		Decider: h.pdp, Identifier: pdpIdentifier(h.Issuer()), Logger: h.log.With("component", "authzen"),
		// requireScope has authenticated the caller already.
		Authorize: func(r *http.Request) error {
			if _, err := callerOf(r); err != nil {
				return fmt.Errorf("%w: %v", authzen.ErrUnauthenticated, err)
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return srv, nil
}

// pdpResource is the resource identifier of the host's AuthZEN PDP.
func (h *Host) pdpResource() string { return h.Issuer() + "/access/v1" }

// mountAuthZEN serves the host's policies over AuthZEN when configured.
func (h *Host) mountAuthZEN(mux *http.ServeMux) error {
	if !h.cfg.Policy.ServeAuthZEN || h.pdp == nil {
		return nil
	}
	v, err := h.protectedAPI(mux, h.pdpResource(), "agenthost policy decision point", ScopeAuthZEN)
	if err != nil {
		return err
	}
	srv, err := h.authzenHandler(v)
	if err != nil {
		return err
	}
	mux.Handle(authzen.EvaluationPath, requireScope(v, ScopeAuthZEN, srv))
	mux.Handle(authzen.EvaluationsPath, requireScope(v, ScopeAuthZEN, srv))
	if strings.HasPrefix(h.Issuer(), "https://") {
		mux.Handle(authzen.MetadataPath, srv)
	}
	return nil
}

// ScopeAuthZEN is the scope a caller of the host's AuthZEN PDP needs.
const ScopeAuthZEN = "authzen:evaluate"

// pdpIdentifier is the AuthZEN PDP identifier: the issuer when it is https
// (the metadata document must name an https identifier), else none.
func pdpIdentifier(issuer string) string {
	if strings.HasPrefix(issuer, "https://") {
		return issuer
	}
	return ""
}

// protectedAPI returns the token verifier of one of the host's own APIs,
// a protected resource of the embedded authorization server, and serves
// its RFC 9728 metadata.
func (h *Host) protectedAPI(mux *http.ServeMux, uri, name string, scopes ...string) (*resource.Verifier, error) {
	mdPath, err := resource.MetadataPath(uri)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	v, err := resource.New(resource.Config{
		Resource: uri, Issuer: h.as.Issuer(), Keys: h.as.Keys(), Revoked: h.as.Revoked, SubjectRevoked: h.as.SubjectRevoked,
		Issuers:         h.resourceIssuers(),
		ScopesSupported: scopes, Now: h.now, MetadataURL: h.as.Issuer() + mdPath, Logger: h.log.With("component", "api"),
	})
	if err != nil {
		return nil, fmt.Errorf("host: %s: %w", name, err)
	}
	mux.Handle(mdPath, allowCORS(resource.MetadataHandler(oauth.ResourceMetadata{
		Resource: uri, AuthorizationServers: h.authorizationServers(), ScopesSupported: scopes,
		BearerMethodsSupported: []string{"header"}, ResourceName: name,
	})))
	return v, nil
}

// requireScope guards one of the host's own APIs: a request without a
// valid token for it gets 401 with the RFC 6750/9728 challenge naming its
// metadata, one whose token lacks scope gets 403 insufficient_scope, and
// next runs with the verified caller in the context (resource.CallerFrom)
// and the token removed from the request.
func requireScope(v *resource.Verifier, scope string, next http.Handler) http.Handler {
	return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := resource.CallerFrom(r.Context()); !ok || !c.HasScope(scope) {
			v.InsufficientScope(scope).Write(w)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// callerOf is the verified caller requireScope put in the request.
func callerOf(r *http.Request) (*resource.Caller, error) {
	c, ok := resource.CallerFrom(r.Context())
	if !ok {
		return nil, errors.New("no verified caller")
	}
	return c, nil
}
