package host

// Remote A2A agents (config a2a.remotes): an agent calls one exactly as
// it calls a hosted agent, by the name the config gives it, and the
// mediator decides the call the same way (agent.call, call_agents). The
// host then makes the call over A2A (a2a/a2aremote):
//
//  1. The card: fetched under the outbound-fetch rules on the first call
//     and kept for an hour (fetched again sooner after a failure). With a
//     trust bundle configured, its signature is verified with the bundle
//     of the remote's trust domain: a signature carrying an x5c chain
//     must chain to the bundle's X.509 authorities with a leaf whose SPIFFE
//     ID is of that trust domain; one without a chain must be by one of
//     the bundle's JWT authorities (kid). require_signed_card (the default
//     with a bundle) refuses an unsigned card.
//  2. The token, for the card's endpoint (the remote's resource
//     identifier), at the remote's authorization server, found from the
//     endpoint's RFC 9728 metadata (its well-known URL; the
//     resource_metadata of a 401 challenge when the remote answers one,
//     after which the call is made once more) and that server's RFC 8414
//     metadata. Acting as the task's user, the calling agent exchanges the
//     user's token along the delegation chain (delegation.go: the remote
//     sees sub = the user, act = the calling agent, nested through the
//     agents that delegated the task); acting as the agent, it uses its own
//     client credentials. Either way the client assertion is the agent's
//     JWT-SVID. The token is a bearer token sent to the endpoint only; no
//     Txn-Token or WIT leaves the trust domain.
//  3. The task, sent with message/stream. An auth-required update is
//     surfaced as an approval event on the stream of the task that began
//     the transaction, with the remote's URL; a task that stops in
//     auth-required is waited for (polled with tasks/get) while the user
//     acts there. input-required fails the call: the host has no prompt
//     channel for delegated tasks yet.
//
// The agent.call decision and outcome are recorded by the mediator; the
// remote task's id and final state go into a record of their own
// (actionRemoteTask), with the SHA-256 of the token the call carried,
// never a token. The plugin gets the answer, or an error naming the
// remote and why; never a token.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// remoteCardTTL is how long a remote agent's card is used before it is
// fetched again.
const remoteCardTTL = time.Hour

// actionRemoteTask is the audit action of a remote agent's task: its id
// and the state it ended in, beside the mediator's agent.call records.
const actionRemoteTask = "agent.call.remote"

// remoteAuthPoll and remoteAuthWait: a remote task that stopped in
// auth-required is polled this often, for at most this long (and no
// longer than the calling task may run).
var (
	remoteAuthPoll = 2 * time.Second
	remoteAuthWait = 10 * time.Minute
)

// remoteAgent is one configured remote A2A agent.
type remoteAgent struct {
	h   *Host
	cfg config.A2ARemoteConfig
	// client fetches the card and calls the agent; err is why it could
	// not be made (every call then fails with it).
	client *a2aremote.Client
	err    error
	// fetcher reads the endpoint's and its authorization server's
	// metadata; bundles reads bundle_url.
	fetcher *fetch.Fetcher
	// bundle verifies the card (nil without a configured bundle).
	bundle *a2aremote.Bundle

	mu     sync.Mutex
	card   *a2aremote.Card
	cardAt time.Time
	// server is the authorization server of endpoint, as discovered.
	server   *oauth.ServerMetadata
	endpoint string
	// tokens are the calling agents' token clients, by agent name.
	tokens map[string]*oauth.Client
}

// newA2ARemotes prepares the configured remote agents, by name. Nothing
// is fetched yet: each card is fetched on the remote's first call.
func (h *Host) newA2ARemotes() map[string]*remoteAgent {
	out := make(map[string]*remoteAgent, len(h.cfg.A2A.Remotes))
	for _, rc := range h.cfg.A2A.Remotes {
		ra := &remoteAgent{h: h, cfg: rc, tokens: map[string]*oauth.Client{}}
		log := h.log.With("component", "a2aremote", "remote", rc.Name)
		// A remote on a loopback address, with auth.allow_private_fetch
		// set, is a development setup: it may be reached over plain HTTP
		// there, as a remote MCP server on loopback is. Everything else
		// gets the default refusals.
		dev := h.cfg.Auth.AllowPrivateFetch
		local := dev && urlIsLoopback(rc.URL)
		ra.fetcher = fetch.New(fetch.Config{AllowHTTP: local, AllowPrivate: local, Logger: log})
		bundleLocal := dev && urlIsLoopback(rc.BundleURL)
		cc := a2aremote.Config{AllowHTTP: local, AllowPrivate: local, RequireSignedCards: rc.SignedCardRequired(), Logger: log}
		if rc.HasBundle() {
			ra.bundle, ra.err = a2aremote.NewBundle(a2aremote.BundleConfig{TrustDomain: rc.TrustDomain, File: rc.BundleFile,
				URL: rc.BundleURL, Now: h.now,
				Fetcher: fetch.New(fetch.Config{AllowHTTP: bundleLocal, AllowPrivate: bundleLocal, Logger: log})})
			if ra.bundle != nil {
				cc.CardVerify = ra.bundle.VerifyOptions
			}
		}
		if rc.WorkloadProof {
			// The calling agent's WIT and a proof of it on every call
			// (not on the card fetch).
			cc.WrapCalls = func(base http.RoundTripper) http.RoundTripper {
				t, err := wimse.NewTransport(wimse.TransportConfig{Base: base, Credential: h.hopCredential,
					Mode: h.proofMode(), Clock: h.now})
				if err != nil {
					return failingTransport{err}
				}
				return t
			}
		}
		if ra.err == nil {
			ra.client, ra.err = a2aremote.New(cc)
		}
		if ra.err != nil {
			h.log.Error("remote agent unusable", slog.String("remote", rc.Name), slog.Any("error", ra.err))
		}
		out[rc.Name] = ra
	}
	return out
}

// urlIsLoopback reports whether raw is a URL on a loopback host.
func urlIsLoopback(raw string) bool {
	u, err := url.Parse(raw)
	return raw != "" && err == nil && isLoopbackHost(u.Hostname())
}

// call runs input as a task of the remote agent for parent (the
// delegating task) and returns its answer.
func (ra *remoteAgent) call(ctx context.Context, input string, parent mediator.Caller) (string, error) {
	if ra.err != nil {
		return "", fmt.Errorf("%w: remote agent %s: %w", pluginpb.ErrUnavailable, ra.cfg.Name, ra.err)
	}
	card, err := ra.currentCard(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: remote agent %s: its card at %s is refused: %w", pluginpb.ErrUnavailable,
			ra.cfg.Name, a2aremote.CardURL(ra.cfg.URL), err)
	}
	subject, err := ra.subject(parent)
	if err != nil {
		return "", fmt.Errorf("%w: %w", pluginpb.ErrPermissionDenied, err)
	}
	// The calling agent, for its workload proof (workload_proof).
	ctx = context.WithValue(ctx, hopKey{}, hop{agent: parent.Agent})
	out := remoteOutcome{ra: ra, parent: parent, endpoint: card.Endpoint}
	res, err := ra.send(ctx, card, subject, input, &out)
	var auth *a2aremote.AuthRequiredError
	if errors.As(err, &auth) {
		out.taskID = auth.TaskID
		ra.surfaceApproval(ctx, parent, auth.TaskID, auth.Message, auth.URL)
		res, err = ra.awaitAuthorized(ctx, card, subject, auth, &out)
	}
	out.record(ctx, res, err)
	if err != nil {
		return "", ra.callError(err)
	}
	return res.Text, nil
}

// currentCard is the remote's card: the one fetched less than
// remoteCardTTL ago, or a fresh one. A card that cannot be fetched or
// verified is not kept, and neither is the bundle it was checked with,
// so the next call fetches both again.
func (ra *remoteAgent) currentCard(ctx context.Context) (*a2aremote.Card, error) {
	now := ra.h.now()
	ra.mu.Lock()
	if ra.card != nil && now.Before(ra.cardAt.Add(remoteCardTTL)) {
		c := ra.card
		ra.mu.Unlock()
		return c, nil
	}
	ra.mu.Unlock()
	card, err := ra.client.FetchCard(ctx, ra.cfg.URL)
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if err != nil {
		ra.card = nil
		if ra.bundle != nil {
			ra.bundle.Forget()
		}
		return nil, err
	}
	ra.card, ra.cardAt = card, now
	return card, nil
}

// forgetCard drops the cached card (a call to its endpoint failed), so
// the next call fetches it again.
func (ra *remoteAgent) forgetCard() {
	ra.mu.Lock()
	ra.card = nil
	ra.mu.Unlock()
}

// subject is whom a call of parent's is made for: the task's user, by
// token exchange along the chain, or (the zero Subject) the calling
// agent itself. The remote's acting_as decides exactly as a remote MCP
// server's does (remoteSubject, which is given a view of this remote).
func (ra *remoteAgent) subject(parent mediator.Caller) (mcpclient.Subject, error) {
	view := config.MCPRemoteConfig{Name: ra.cfg.Name, ActingAs: ra.cfg.ActingAs}
	return ra.h.remoteSubject(view, parent)
}

// send streams input to the remote and collects its progress, with a
// token for the card's endpoint. A 401 answer is retried once, with a
// token obtained afresh from the authorization server the challenge's
// metadata names (RFC 9728 §5.2: the remote may have changed it).
func (ra *remoteAgent) send(ctx context.Context, card *a2aremote.Card, subject mcpclient.Subject, input string, out *remoteOutcome) (*a2aremote.Result, error) {
	msg := a2aremote.NewTextMessage(input)
	metadataURL := ""
	for attempt := 0; ; attempt++ {
		tok, err := ra.token(ctx, out.parent.Agent, subject, card.Endpoint, metadataURL, attempt > 0)
		if err != nil {
			return nil, err
		}
		out.tokenRef = audit.TokenRef(tok)
		res, err := ra.client.Stream(ctx, card, func(_ context.Context, audience string) (string, error) {
			if audience != card.Endpoint {
				return "", fmt.Errorf("host: a token for %s asked for %s", card.Endpoint, audience)
			}
			return tok, nil
		}, msg, func(u a2aremote.Update) error {
			out.taskID = u.TaskID
			if u.Kind == a2aremote.UpdateApproval {
				ra.surfaceApproval(ctx, out.parent, u.TaskID, u.Text, u.URL)
			}
			return nil
		})
		var ue *a2aremote.UnauthorizedError
		switch {
		case err == nil:
			return res, nil
		case errors.As(err, &ue) && ue.Status == 401 && attempt == 0:
			metadataURL = ue.ResourceMetadata
			continue
		case isTaskOutcome(err):
		default:
			ra.forgetCard()
		}
		return nil, err
	}
}

// isTaskOutcome reports whether err is the remote task's own end (it
// needs input or authorization, or it failed), not a failure to reach
// the remote.
func isTaskOutcome(err error) bool {
	return errors.Is(err, a2aremote.ErrInputRequired) || errors.Is(err, a2aremote.ErrAuthRequired) ||
		errors.Is(err, a2aremote.ErrTaskFailed)
}

// token is the calling agent's bearer token for the remote endpoint, at
// the endpoint's authorization server: exchanged for subject when it
// names the user, else on the agent's own authority. rediscover, after
// the endpoint refused a token, finds the server again (from metadataURL
// when the challenge named it) and obtains a new token.
func (ra *remoteAgent) token(ctx context.Context, agent string, subject mcpclient.Subject, endpoint, metadataURL string, rediscover bool) (string, error) {
	md, err := ra.authServer(ctx, endpoint, metadataURL, rediscover)
	if err != nil {
		return "", err
	}
	c, err := ra.tokenClient(agent)
	if err != nil {
		return "", err
	}
	req := oauth.TokenRequest{Server: md, Resource: endpoint, Bearer: true}
	if subject.Source != nil {
		req.Subject, req.SubjectKey, req.SubjectTokenSource = subject.Name, subject.Key, subject.Source
	}
	if rediscover {
		c.Forget(req)
	}
	tok, err := c.Token(ctx, req)
	if err != nil {
		return "", &remoteTokenError{issuer: md.Issuer, exchange: subject.Source != nil, err: err}
	}
	return tok.AccessToken, nil
}

// remoteTokenError is a token request for a remote agent that failed.
type remoteTokenError struct {
	issuer   string
	exchange bool
	err      error
}

func (e *remoteTokenError) Error() string {
	grant := "client_credentials request"
	if e.exchange {
		grant = "token exchange"
	}
	if oe := (*oauth.Error)(nil); errors.As(e.err, &oe) {
		return fmt.Sprintf("its authorization server %s refused the %s: %s", e.issuer, grant, strings.TrimPrefix(oe.Error(), "oauth: "))
	}
	return fmt.Sprintf("the %s at its authorization server %s failed: %v", grant, e.issuer, e.err)
}

func (e *remoteTokenError) Unwrap() error { return e.err }

// authServer returns the authorization server of endpoint: from the
// endpoint's RFC 9728 metadata (metadataURL, when a challenge named it,
// else the well-known URL), then the server's own (RFC 8414), both under
// the outbound-fetch rules. It is discovered once per endpoint, and again
// when fresh is set.
func (ra *remoteAgent) authServer(ctx context.Context, endpoint, metadataURL string, fresh bool) (*oauth.ServerMetadata, error) {
	ra.mu.Lock()
	if md := ra.server; md != nil && ra.endpoint == endpoint && !fresh {
		ra.mu.Unlock()
		return md, nil
	}
	ra.mu.Unlock()
	prm, err := oauth.DiscoverResource(ctx, ra.fetcher, endpoint, metadataURL)
	if err != nil {
		return nil, fmt.Errorf("host: the protected resource metadata of %s: %w", endpoint, err)
	}
	md, err := oauth.DiscoverServer(ctx, ra.fetcher, prm.AuthorizationServers[0])
	if err != nil {
		return nil, fmt.Errorf("host: the authorization server of %s: %w", endpoint, err)
	}
	ra.mu.Lock()
	ra.server, ra.endpoint = md, endpoint
	ra.mu.Unlock()
	return md, nil
}

// tokenClient is agent's token client at remote authorization servers:
// its JWT-SVID is its client assertion and, in a token exchange, its
// actor token. Its tokens are bearer tokens: A2A calls carry no DPoP
// proof.
func (ra *remoteAgent) tokenClient(agent string) (*oauth.Client, error) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if c, ok := ra.tokens[agent]; ok {
		return c, nil
	}
	id, ok := ra.h.agentIDs[agent]
	if !ok {
		return nil, fmt.Errorf("host: no agent %q", agent)
	}
	c, err := ra.h.agentTokenClient(id, nil, nil)
	if err != nil {
		return nil, err
	}
	ra.tokens[agent] = c
	return c, nil
}

// surfaceApproval puts the remote's request for authorization on the
// stream of the task that began parent's transaction, as the host's own
// approvals are (onApproval): an approval event with the remote's text
// and URL. A URL that is not http(s) is left out.
func (ra *remoteAgent) surfaceApproval(ctx context.Context, parent mediator.Caller, remoteTask, text, rawURL string) {
	if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		rawURL = ""
	}
	h := ra.h
	h.approvalSinks.mu.Lock()
	emit := h.approvalSinks.m[parent.Txn]
	h.approvalSinks.mu.Unlock()
	h.log.InfoContext(ctx, "approval needed by a remote agent", slog.String("task", parent.TaskID), slog.String("user", parent.Subject),
		slog.String("remote", ra.cfg.Name), slog.String("remote_task", remoteTask), slog.String("url", rawURL))
	if emit != nil {
		_ = emit(localapi.TaskEvent{Type: "approval", Text: "remote agent " + ra.cfg.Name + ": " + text, URL: rawURL,
			TaskID: parent.TaskID, Txn: parent.Txn})
	}
}

// awaitAuthorized waits for a remote task that stopped in auth-required
// to go on once the user has acted at the remote's URL: it polls the task
// (tasks/get) until its state changes, remoteAuthWait passes or ctx ends.
// When it gives up it cancels the remote task, and the call fails with
// the remote's request (or ctx's error).
func (ra *remoteAgent) awaitAuthorized(ctx context.Context, card *a2aremote.Card, subject mcpclient.Subject, auth *a2aremote.AuthRequiredError, out *remoteOutcome) (*a2aremote.Result, error) {
	wctx, cancel := context.WithTimeout(ctx, remoteAuthWait)
	defer cancel()
	giveUp := func() error {
		ra.cancelTask(context.WithoutCancel(ctx), card, subject, out)
		if err := ctx.Err(); err != nil {
			return err
		}
		return auth
	}
	t := time.NewTicker(remoteAuthPoll)
	defer t.Stop()
	for {
		select {
		case <-wctx.Done():
			return nil, giveUp()
		case <-t.C:
		}
		res, err := ra.getTask(wctx, card, subject, auth.TaskID, out)
		switch {
		case errors.Is(err, a2aremote.ErrAuthRequired):
			// Still waiting for the user.
		case err != nil && wctx.Err() != nil:
			return nil, giveUp()
		default:
			return res, err
		}
	}
}

// getTask asks the remote for its task id (tasks/get), with the calling
// agent's token.
func (ra *remoteAgent) getTask(ctx context.Context, card *a2aremote.Card, subject mcpclient.Subject, id string, out *remoteOutcome) (*a2aremote.Result, error) {
	tok, err := ra.token(ctx, out.parent.Agent, subject, card.Endpoint, "", false)
	if err != nil {
		return nil, err
	}
	return ra.client.GetTask(ctx, card, func(context.Context, string) (string, error) { return tok, nil }, id)
}

// cancelTask cancels the remote task out names, best effort.
func (ra *remoteAgent) cancelTask(ctx context.Context, card *a2aremote.Card, subject mcpclient.Subject, out *remoteOutcome) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tok, err := ra.token(ctx, out.parent.Agent, subject, card.Endpoint, "", false)
	if err == nil {
		err = ra.client.CancelTask(ctx, card, func(context.Context, string) (string, error) { return tok, nil }, out.taskID)
	}
	if err != nil {
		ra.h.log.DebugContext(ctx, "remote task not canceled", slog.String("remote", ra.cfg.Name), slog.String("remote_task", out.taskID),
			slog.Any("error", err))
	}
}

// callError is a failed call as the calling plugin gets it: a message
// naming the remote and what happened first, with the Host error kind
// permission denied when authority was refused or is pending, unavailable
// otherwise. It holds no token.
func (ra *remoteAgent) callError(err error) error {
	name := ra.cfg.Name
	var (
		input *a2aremote.InputRequiredError
		auth  *a2aremote.AuthRequiredError
		task  *a2aremote.TaskError
		te    *remoteTokenError
		ue    *a2aremote.UnauthorizedError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("host: remote agent %s: %w", name, err)
	case errors.As(err, &input):
		return fmt.Errorf("%w: remote agent %s asked for input (remote task %s), and the host cannot prompt for a delegated task yet: %s",
			pluginpb.ErrUnavailable, name, input.TaskID, input.Message)
	case errors.As(err, &auth):
		return fmt.Errorf("%w: remote agent %s still needs authorization (remote task %s, at %s): %s",
			pluginpb.ErrPermissionDenied, name, auth.TaskID, auth.URL, auth.Message)
	case errors.As(err, &task):
		return fmt.Errorf("%w: remote agent %s: its task %s ended %s: %s", pluginpb.ErrUnavailable, name, task.TaskID, task.State, task.Message)
	case errors.As(err, &te), errors.Is(err, errNoUser):
		return fmt.Errorf("%w: remote agent %s: %w", pluginpb.ErrPermissionDenied, name, err)
	case errors.As(err, &ue):
		return fmt.Errorf("%w: remote agent %s refused the token: %w", pluginpb.ErrPermissionDenied, name, err)
	}
	return fmt.Errorf("%w: remote agent %s: %w", pluginpb.ErrUnavailable, name, err)
}

// remoteOutcome is what one call learned, for its record.
type remoteOutcome struct {
	ra       *remoteAgent
	parent   mediator.Caller
	endpoint string
	taskID   string
	tokenRef string
}

// record logs and audits the remote task's outcome: its id and final
// state, and the SHA-256 of the token the call carried.
func (o *remoteOutcome) record(ctx context.Context, res *a2aremote.Result, err error) {
	state := ""
	if res != nil {
		state = string(res.State)
		if res.Task != nil {
			o.taskID = string(res.Task.ID)
		}
		if res.Message != nil {
			state = "message"
		}
	}
	var (
		input *a2aremote.InputRequiredError
		auth  *a2aremote.AuthRequiredError
		task  *a2aremote.TaskError
	)
	switch {
	case errors.As(err, &input):
		o.taskID, state = input.TaskID, "input-required"
	case errors.As(err, &auth):
		o.taskID, state = auth.TaskID, "auth-required"
	case errors.As(err, &task):
		o.taskID, state = task.TaskID, string(task.State)
	}
	h, p := o.ra.h, o.parent
	h.log.InfoContext(ctx, "remote agent call ended", slog.String("task", p.TaskID), slog.String("remote", o.ra.cfg.Name),
		slog.String("endpoint", o.endpoint), slog.String("remote_task", o.taskID), slog.String("state", state), slog.Any("error", err))
	if o.taskID == "" && state == "" {
		// No remote task came of the call (no token, or the remote could
		// not be reached): the mediator's agent.call record has the error.
		return
	}
	rec := audit.Record{Time: h.now().UTC(), Agent: p.Agent, AgentID: p.Identity.String(), Subject: p.Subject,
		Action: actionRemoteTask, Resource: o.endpoint, Task: p.TaskID, Txn: p.Txn, ParentTask: p.ParentTask,
		Chain: p.Chain, Policy: "remote agent " + o.ra.cfg.Name, TokenSHA256: o.tokenRef, Outcome: audit.OutcomeOK,
		Reason: fmt.Sprintf("remote task %s %s", o.taskID, state)}
	if o.taskID == "" {
		rec.Reason = "the remote answered with a message, no task"
	}
	if err != nil {
		rec.Outcome, rec.Error = audit.OutcomeError, err.Error()
	}
	if aerr := h.audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		h.log.ErrorContext(ctx, "could not record a remote agent's task", slog.String("task", p.TaskID), slog.Any("error", aerr))
	}
}

// forgetAgent drops the token client agent holds for this remote (a
// quarantine): its cached tokens go with it.
func (ra *remoteAgent) forgetAgent(agent string) {
	ra.mu.Lock()
	delete(ra.tokens, agent)
	ra.mu.Unlock()
}

// forgetSubject drops the tokens held for user at this remote (the user's
// access was revoked).
func (ra *remoteAgent) forgetSubject(user string) {
	ra.mu.Lock()
	clients := make([]*oauth.Client, 0, len(ra.tokens))
	for _, c := range ra.tokens {
		clients = append(clients, c)
	}
	ra.mu.Unlock()
	for _, c := range clients {
		c.ForgetSubject(user)
	}
}

// failingTransport fails every request with err (a transport that could
// not be built).
type failingTransport struct{ err error }

func (t failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return nil, t.err
}
