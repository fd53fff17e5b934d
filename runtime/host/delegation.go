package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

// Delegation on every outbound hop. A task started with a user's own
// access token (usertasks.go) calls a remote MCP server for that user:
// the host exchanges a token of the user's for a token to the server at
// the server's authorization server (RFC 8693), so the server sees sub =
// the user and act = the agent, nested through the agents that delegated
// the task. The token chain, for a user's token T (aud = the host's task
// resource, scope tasks:run) and a task of research that the assistant
// delegated:
//
//  1. The host's authorization server issues the user's token for the
//     task's first agent, in process (authserver.Server.IssueAgentToken): U
//     = {sub alice, aud assistant, the assistant's scopes, no act}, expiring
//     no later than T; revoking T revokes it. T with tasks:run is the
//     user's consent that the host's agents act for them, each within its
//     own scopes. T itself goes nowhere: its audience is the host's task
//     API and its scope means nothing to another server.
//  2. Each delegation is a token exchange at the host's authorization
//     server, made by the delegating agent: client and actor_token = the
//     assistant's JWT-SVID, subject_token = U, resource = research (every
//     agent is a resource of that server) → D = {sub alice, act {sub
//     assistant}, aud research, scope ≤ U's and both agents' scopes}. A
//     longer chain repeats this step; the server nests act.
//  3. The calling agent exchanges the last token at the remote's
//     authorization server (discovered by RFC 9728 and RFC 8414, in
//     mcpclient): client and actor_token = research's JWT-SVID,
//     subject_token = D (U when the task was not delegated), resource =
//     the remote → {sub alice, act {sub research, act {sub assistant}}}.
//     That server must trust the host's issuer (a TrustedIssuer of an
//     embedded one) and take tokens addressed to the client presenting
//     them; its refusal fails the call with an error naming the remote and
//     the server, and is never answered with the agent's own authority.
//
// Only the last step's token is ever sent to the remote; outside the host
// only the remote's authorization server sees U or D. The user's token T
// is kept here, by the task's transaction (which the tasks it delegates
// share), while the task that was started with it runs; the tokens
// derived from it are cached until shortly before they expire: U by (T's
// SHA-256, agent), D by the host's token client of the delegating agent,
// the remote's token by mcpclient per (remote, T's SHA-256 and the chain,
// agent). The MCP sessions opened for T end when no task holds it. A
// plugin never sees any of these tokens. A remote
// whose acting_as is "agent", and any task without a user's token (the
// operator's --for names a user but is no credential), use the agent's own
// authority as before.

// delegation holds the users' tokens of running tasks and the tokens the
// host derived from them.
type delegation struct {
	h *Host

	mu sync.Mutex
	// users are the tokens tasks were started with, by transaction;
	// holders counts the transactions holding each token, by its key.
	users   map[string]*heldUser
	holders map[string]int
	// agentTokens are the users' tokens for agents (step 1), by
	// heldUser.key and agent name.
	agentTokens map[string]agentToken
	// clients exchange tokens at the host's authorization server for
	// each agent (step 2), by agent name. Their tokens are bearer tokens
	// (no DPoP keys): each is only a subject_token for the next exchange,
	// never presented to a resource, and an authorization server refuses
	// a sender-constrained subject_token (exchanging it would shed the
	// binding).
	clients map[string]*oauth.Client
}

// heldUser is the user's access token a task was started with.
type heldUser struct {
	token   string
	subject string
	// key is the token's SHA-256 (hex, audit.TokenRef): what the derived
	// tokens are kept by, never the token.
	key string
	// tasks counts the tasks holding it.
	tasks int
}

// agentToken is a user's token for an agent.
type agentToken struct {
	token   string
	subject string
	agent   string
	expires time.Time
}

// agentTokenMargin: a cached user's token for an agent is not used this
// close to its expiry.
const agentTokenMargin = 30 * time.Second

func newDelegation(h *Host) *delegation {
	return &delegation{h: h, users: map[string]*heldUser{}, holders: map[string]int{}, agentTokens: map[string]agentToken{},
		clients: map[string]*oauth.Client{}}
}

// holdUserToken keeps token, the verified access token of subject that a
// task in transaction txn was started with, until the returned release
// is called (when the task ends).
func (h *Host) holdUserToken(txn, subject, token string) (release func()) {
	if txn == "" || token == "" {
		return func() {}
	}
	d := h.delegation
	key := audit.TokenRef(token)
	d.mu.Lock()
	u, ok := d.users[txn]
	if !ok {
		u = &heldUser{token: token, subject: subject, key: key}
		d.users[txn] = u
		d.holders[u.key]++
	}
	u.tasks++
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		last := false
		if u.tasks--; u.tasks <= 0 && d.users[txn] == u {
			delete(d.users, txn)
			if d.holders[u.key]--; d.holders[u.key] <= 0 {
				delete(d.holders, u.key)
				last = true
			}
		}
		d.mu.Unlock()
		if last {
			// No task holds the token any more: the MCP sessions opened
			// for it end (ending one may talk to its server: not on the
			// task's way out). The tokens derived from it stay cached
			// until they expire.
			go h.endSessions(u.key)
		}
	}
}

// endSessions ends the remote MCP sessions opened for the user's token
// whose key is key, unless a task holds it again.
func (h *Host) endSessions(key string) {
	d := h.delegation
	d.mu.Lock()
	held := d.holders[key] > 0
	d.mu.Unlock()
	if held {
		return
	}
	h.remotes.EndSessions(key + "|")
}

// errNoUser: a remote that acts as the user was called in a task that has
// no user's token (remotetools.ErrNoUser: the call is refused as
// permission denied).
var errNoUser = fmt.Errorf("host: %w", remotetools.ErrNoUser)

// remoteSubject is whom an agent's call to the remote r is made for, in
// the task c (remotetools.Config.Subject): the task's user by token
// exchange (see above), or the zero Subject, the agent's own authority.
// r is a remote MCP server reached over HTTP, or a remote A2A agent (its
// name and acting_as).
func (h *Host) remoteSubject(r config.MCPRemoteConfig, c mediator.Caller) (mcpclient.Subject, error) {
	if r.ActingAs == config.ActingAsAgent {
		return mcpclient.Subject{}, nil
	}
	d := h.delegation
	d.mu.Lock()
	u, ok := d.users[c.Txn]
	var key, subject string
	if ok {
		key, subject = u.key, u.subject
	}
	d.mu.Unlock()
	switch {
	case !ok && r.ActingAs == config.ActingAsUser:
		return mcpclient.Subject{}, fmt.Errorf("%w: remote %s acts as the user (acting_as: user); start the task with the user's own token (agenthost login, then run)",
			errNoUser, r.Name)
	case !ok:
		return mcpclient.Subject{}, nil
	case subject != c.Subject:
		return mcpclient.Subject{}, fmt.Errorf("host: task %s acts for %q, its transaction's token names %q", c.TaskID, c.Subject, subject)
	}
	agents := append(slices.Clone(c.Chain), c.Agent)
	txn := c.Txn
	if r.Chaining == config.ChainingIDJAG {
		return mcpclient.Subject{
			Key:   key + "|" + strings.Join(agents, ">") + "|id-jag",
			Name:  subject,
			Grant: d.idjagGrant(r.URL, txn, agents),
		}, nil
	}
	return mcpclient.Subject{
		Key:  key + "|" + strings.Join(agents, ">"),
		Name: subject,
		// The source looks the user's token up when it is needed, so a
		// session kept past the task holds no user's token.
		Source: func(ctx context.Context) (string, error) { return d.subjectToken(ctx, txn, agents) },
	}, nil
}

// subjectToken is the token the last of agents presents as subject_token
// at a remote's authorization server, for the user of transaction txn:
// the user's token for agents[0], exchanged along the delegation chain
// (steps 1 and 2 above).
func (d *delegation) subjectToken(ctx context.Context, txn string, agents []string) (string, error) {
	d.mu.Lock()
	u, ok := d.users[txn]
	var user heldUser
	if ok {
		user = *u
	}
	d.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w: its task has ended", errNoUser)
	}
	tok, err := d.agentToken(ctx, user, agents[0])
	if err != nil {
		return "", err
	}
	for i := 1; i < len(agents); i++ {
		if tok, err = d.exchange(ctx, user.subject, agents[i-1], tok, agents[i]); err != nil {
			return "", err
		}
	}
	return tok, nil
}

// agentToken is the user's token for agent (step 1), cached.
func (d *delegation) agentToken(ctx context.Context, user heldUser, agent string) (string, error) {
	key := user.key + "|" + agent
	now := d.h.now()
	d.mu.Lock()
	at, ok := d.agentTokens[key]
	d.mu.Unlock()
	if ok && now.Add(agentTokenMargin).Before(at.expires) {
		return at.token, nil
	}
	id, ok := d.h.agentIDs[agent]
	if !ok {
		return "", fmt.Errorf("host: no agent %q", agent)
	}
	tok, exp, err := d.h.as.IssueAgentToken(ctx, authserver.AgentTokenRequest{SubjectToken: user.token,
		Resource: d.h.taskResource(), Scope: ScopeTasksRun, Agent: id})
	if err != nil {
		return "", fmt.Errorf("host: the user's token for %s at %s: %w", agent, d.h.Issuer(), err)
	}
	d.mu.Lock()
	for k, e := range d.agentTokens {
		if !now.Before(e.expires) {
			delete(d.agentTokens, k)
		}
	}
	d.agentTokens[key] = agentToken{token: tok, subject: user.subject, agent: agent, expires: exp}
	d.mu.Unlock()
	return tok, nil
}

// exchange is one delegation (step 2): agent from exchanges subjectToken
// at the host's authorization server, as client and actor, for a token
// whose audience is the agent to.
func (d *delegation) exchange(ctx context.Context, user, from, subjectToken, to string) (string, error) {
	c, err := d.client(from)
	if err != nil {
		return "", err
	}
	toID, ok := d.h.agentIDs[to]
	if !ok {
		return "", fmt.Errorf("host: no agent %q", to)
	}
	md := d.h.as.Metadata()
	tok, err := c.Token(ctx, oauth.TokenRequest{Server: &md, Resource: toID.String(), SubjectToken: subjectToken, Subject: user})
	if err != nil {
		return "", fmt.Errorf("host: the delegation from %s to %s at %s: %w", from, to, md.Issuer, err)
	}
	return tok.AccessToken, nil
}

// client is agent's token client at the host's authorization server. Its
// requests are served in process by the server's own handler.
func (d *delegation) client(agent string) (*oauth.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.clients[agent]; ok {
		return c, nil
	}
	id, ok := d.h.agentIDs[agent]
	if !ok {
		return nil, fmt.Errorf("host: no agent %q", agent)
	}
	c, err := d.h.agentTokenClient(id, &http.Client{Timeout: 10 * time.Second, Transport: handlerTransport{d.h.as.Handler()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil)
	if err != nil {
		return nil, err
	}
	d.clients[agent] = c
	return c, nil
}

// forget drops every token derived for user (their access was revoked).
func (d *delegation) forget(user string) {
	d.mu.Lock()
	for k, e := range d.agentTokens {
		if e.subject == user {
			delete(d.agentTokens, k)
		}
	}
	clients := make([]*oauth.Client, 0, len(d.clients))
	for _, c := range d.clients {
		clients = append(clients, c)
	}
	d.mu.Unlock()
	for _, c := range clients {
		c.ForgetSubject(user)
	}
}

// forgetAgent drops the tokens held for agent: the users' tokens for it
// and its token client (with its cached exchanges).
func (d *delegation) forgetAgent(agent string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.agentTokens {
		if e.agent == agent {
			delete(d.agentTokens, k)
		}
	}
	delete(d.clients, agent)
}

// agentTokenClient is a token client acting as the workload id: its
// client assertion and actor token are JWT-SVIDs the host mints for it
// (the host holds its keys, as a sidecar does), addressed to the
// authorization server's issuer alone. hc nil means the default client.
// With keys (the workload's, remotetools.Set.DPoPKeys), its tokens are
// DPoP-bound wherever the server advertises DPoP and the request does
// not ask for a bearer token; without, they are bearer tokens.
func (h *Host) agentTokenClient(id credentials.Identity, hc *http.Client, keys *dpop.Keys) (*oauth.Client, error) {
	cfg, err := h.agentClientConfig(id, hc, keys)
	if err != nil {
		return nil, err
	}
	return oauth.NewClient(cfg)
}

// agentClientConfig is the configuration of agentTokenClient.
func (h *Host) agentClientConfig(id credentials.Identity, hc *http.Client, keys *dpop.Keys) (oauth.ClientConfig, error) {
	sid, err := workloadapi.IDFromIdentity(id)
	if err != nil {
		return oauth.ClientConfig{}, err
	}
	return oauth.ClientConfig{
		ClientID: id.String(),
		Assertion: func(ctx context.Context, audience string) (string, error) {
			tok, _, err := h.ident.NewJWTSVID(ctx, sid, []string{audience})
			return tok, err
		},
		HTTPClient: hc,
		DPoPKeys:   keys,
		OnCache:    h.telemetry.TokenCache,
		Now:        h.now,
		Logger:     h.log.With("component", "oauth", "as", id.String()),
	}, nil
}

// handlerTransport serves requests with a handler in process, as the
// host's own authorization server answers the host.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &memoryResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if r.Body != nil {
		_ = r.Body.Close()
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: w.header, Body: io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()), Request: r}, nil
}

// memoryResponse is the http.ResponseWriter of handlerTransport.
type memoryResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memoryResponse) Header() http.Header { return w.header }

func (w *memoryResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// Flush implements http.Flusher (a stream is kept whole until the
// handler returns).
func (w *memoryResponse) Flush() {}

func (w *memoryResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
