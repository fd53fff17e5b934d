package authserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// AgentTokenRequest asks [Server.IssueAgentToken] for a user's access
// token for a hosted agent.
type AgentTokenRequest struct {
	// SubjectToken is the user's access token, issued by this server: its
	// aud must contain Resource and its scope must include Scope; it must
	// name a signed-in user (auth_time), not someone acting for them (act),
	// and not be sender-constrained (cnf).
	SubjectToken string
	// Resource and Scope are what the subject token must be for: the
	// host's task resource and the scope that lets the host's agents act
	// for the user.
	Resource string
	Scope    string
	// Agent is the hosted agent (an agent client of this server) the
	// user's task runs on.
	Agent credentials.Identity
}

// IssueAgentToken issues the user's access token for a hosted agent: sub
// = the user, aud = the agent (every agent is a resource of this server),
// scope = the agent's scopes, client_id = the agent, auth_time of the
// subject token, and no act: the user's own authority, addressed to the
// agent. It expires no later than the subject token, and revoking the
// subject token (or the user) revokes it.
//
// It is an in-process step of the composition root, which verified the
// subject token as the resource server of its task API before starting a
// task on the agent: a token for Resource with Scope is the user's consent
// that the host's agents act for them, each within its own scopes. The
// agent then acts by token exchange (RFC 8693) with this token as the
// subject_token, here or at an authorization server that trusts this one
// (see TrustedIssuer), and the act claims record it and every agent it
// delegates to.
func (s *Server) IssueAgentToken(ctx context.Context, r AgentTokenRequest) (string, time.Time, error) {
	if r.Resource == "" || r.Scope == "" || r.Agent.IsZero() {
		return "", time.Time{}, errors.New("authserver: an agent token needs a resource, a scope and an agent")
	}
	c, err := s.VerifyAccessToken(ctx, r.SubjectToken, r.Resource)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authserver: agent token: %w", err)
	}
	scopes, err := oauth.ParseScope(c.Scope)
	switch {
	case err != nil || !slices.Contains(scopes, r.Scope):
		return "", time.Time{}, fmt.Errorf("authserver: agent token: the subject token lacks the scope %s", r.Scope)
	case c.AuthTime == 0:
		return "", time.Time{}, errors.New("authserver: agent token: the subject token was not issued to a signed-in user")
	case c.Actor != nil:
		return "", time.Time{}, errors.New("authserver: agent token: the subject token was issued to someone acting for the user")
	case c.Confirmation != nil:
		return "", time.Time{}, errors.New("authserver: agent token: the subject token is sender-constrained")
	}
	id := r.Agent.String()
	agent, err := s.clients.lookup(ctx, id)
	if err != nil || agent.Kind != kindAgent {
		return "", time.Time{}, fmt.Errorf("authserver: agent token: %s is not a hosted agent", id)
	}
	res, ok := s.resources[id]
	if !ok {
		return "", time.Time{}, fmt.Errorf("authserver: agent token: %s is not a resource", id)
	}
	it, err := s.issueAccessToken(ctx, nil, accessGrant{
		Subject:  c.Subject,
		ClientID: id,
		Scopes:   slices.Clone(res.Scopes),
		Audience: []string{id},
		AuthTime: time.Unix(c.AuthTime, 0),
		Parent:   c.ID,
		NotAfter: time.Unix(c.ExpiresAt, 0),
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return it.Token, it.ExpiresAt, nil
}
