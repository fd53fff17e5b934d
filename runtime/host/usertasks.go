package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// A user starts a task with their own authority: `agenthost login` signs
// them in at the embedded authorization server as the built-in public
// client CLIClientID (authorization code with PKCE, a loopback redirect URI
// on any port, RFC 8252 §7.3) and gets an access token for the host's task
// resource (TaskResource, scope ScopeTasksRun); `agenthost run` presents it
// with the task over the admin socket, and the host verifies it as any
// resource server does (the hosted MCP servers' checks) before the task
// acts for the token's sub. The token stays in the host, kept by the
// task's transaction while the task runs (never sent to a plugin): the
// task's calls to remote MCP servers act for the user by token exchange
// from it, through every agent the task is delegated to (delegation.go).

// CLIClientID is the client_id of the public client the host registers at
// its embedded authorization server for `agenthost login`.
const CLIClientID = "agenthost-cli"

// CLIRedirectURIs are the built-in client's redirect URIs: loopback IP
// literals whose port may vary (RFC 8252 §7.3), so the CLI listens on any
// free port.
var CLIRedirectURIs = []string{"http://127.0.0.1/callback", "http://[::1]/callback"}

// ScopeTasksRun is the scope a user's token needs to start a task.
const ScopeTasksRun = "tasks:run"

// CLIScopes are the scopes `agenthost login` asks the host's authorization
// server for: an ID token (openid, profile) for `agenthost whoami`, a
// refresh token (offline_access), and the task scope.
var CLIScopes = []string{"openid", "profile", "offline_access", ScopeTasksRun}

// TaskResource is the resource identifier (RFC 8707; the aud of the tokens
// the host takes with a task) of the task API of the host whose issuer is
// issuer: <issuer>/tasks. Its RFC 9728 metadata is served at
// /.well-known/oauth-protected-resource/tasks; the tasks themselves are
// started over the admin socket only.
func TaskResource(issuer string) string { return strings.TrimSuffix(issuer, "/") + "/tasks" }

// CLIClient is the built-in client as the host registers it: public (no
// secret), the authorization code grant with PKCE and refresh tokens,
// loopback redirect URIs, and at most CLIScopes.
func CLIClient() authserver.StaticClient {
	return authserver.StaticClient{
		ID:           CLIClientID,
		Name:         "agenthost CLI",
		AuthMethod:   oauth.AuthNone,
		RedirectURIs: slices.Clone(CLIRedirectURIs),
		GrantTypes:   []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken},
		Scopes:       slices.Clone(CLIScopes),
	}
}

func (h *Host) taskResource() string { return TaskResource(h.Issuer()) }

// mountTasks prepares the verifier of the tokens users start tasks with
// and serves the task resource's metadata.
func (h *Host) mountTasks(mux *http.ServeMux) error {
	v, err := h.protectedAPI(mux, h.taskResource(), "agenthost tasks", ScopeTasksRun)
	if err != nil {
		return err
	}
	h.taskTokens = v
	return nil
}

// taskToken refers to the token a task was started with; never the token.
type taskToken struct {
	jti string
	ref string // audit.TokenRef
}

// taskCaller verifies the access token a user started a task on agent
// with: signature by this authorization server, typ at+jwt, iss, aud = the
// task resource, exp, revocation of the token and of its subject (the
// checks of credentials/oauth/resource), then scope tasks:run, a signed-in
// user (auth_time) who is a user of this authorization server, and no act
// claim (a task starts on the user's own token, not on one exchanged for
// someone acting for them). A refused token is audited (task.run, deny,
// subject_source token, the token's SHA-256) and the error wraps
// localapi.ErrTokenRefused.
func (h *Host) taskCaller(ctx context.Context, agent, token string) (*resource.Caller, error) {
	if h.taskTokens == nil {
		return nil, errors.New("host: the task resource is not ready")
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, h.taskResource(), nil)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	c, err := h.taskTokens.Authenticate(r)
	why := ""
	switch {
	case err != nil:
		var ch *resource.Challenge
		if errors.As(err, &ch) && ch.Status == http.StatusServiceUnavailable {
			// The check itself failed (the revocation lookup): refused,
			// as every check that cannot be made is.
			why = "the token could not be checked: " + ch.Description
		} else if errors.As(err, &ch) && ch.Description != "" {
			why = ch.Description
		} else {
			why = "the access token is invalid"
		}
		c = nil
	case !c.HasScope(ScopeTasksRun):
		why = fmt.Sprintf("the access token lacks the scope %s", ScopeTasksRun)
	case c.AuthTime.IsZero():
		why = "the access token was not issued to a signed-in user"
	case c.Actor != nil:
		why = "the access token was issued to someone acting for the user (act); a task starts on the user's own token"
	case !h.isUser(c.Subject):
		why = fmt.Sprintf("%q is not a user of the authorization server", c.Subject)
	}
	if why == "" {
		return c, nil
	}
	rec := audit.Record{Time: h.now().UTC(), Agent: agent, Action: "task.run", Resource: agent,
		Decision: audit.DecisionDeny, Outcome: audit.OutcomeDenied, Policy: "token", Reason: why,
		SubjectSource: audit.SubjectSourceToken, TokenSHA256: audit.TokenRef(token)}
	if id, ok := h.agentIDs[agent]; ok {
		rec.AgentID, rec.Resource = id.String(), id.String()
	}
	if c != nil {
		// Verified, but not enough to start a task: who it was is known.
		rec.Subject, rec.TokenJTI = c.Subject, c.TokenID
	}
	if aerr := h.audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		h.log.ErrorContext(ctx, "could not record a refused task token", slog.String("agent", agent), slog.Any("error", aerr))
	}
	h.log.WarnContext(ctx, "task token refused", slog.String("agent", agent), slog.String("reason", why))
	return nil, fmt.Errorf("%w: %s (this host takes tokens for %s with the scope %s)",
		localapi.ErrTokenRefused, why, h.taskResource(), ScopeTasksRun)
}
