package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// remoteServer calls one remote MCP server for the agents: each agent has
// its own OAuth client (its JWT-SVID is its client assertion, or the
// identity cimd.go resolves at a server that does not trust the trust
// domain, and in a token exchange its actor token) and its own MCP
// client, created on first use. A call carries the authority the remote's acting_as names:
// the task's user, by token exchange along the delegation chain
// (delegation.go), or the agent's own. Tokens stay here; the plugin gets
// the tool's result only.
//
// Tokens are sender-constrained where both sides allow it: when the
// remote's authorization server advertises
// dpop_signing_alg_values_supported and the remote says it takes
// DPoP-bound tokens (a DPoP challenge or DPoP in its metadata), the token
// is bound to the calling workload's DPoP key (outboundKeys; ES256 when
// the server lists it) and every request to the remote carries a proof
// signed with it (mcpclient); otherwise it is a bearer token.
type remoteServer struct {
	h       *Host
	cfg     config.MCPRemoteConfig
	fetcher *fetch.Fetcher
	// fetcherPrivate: the remote is on a loopback address (development).
	fetcherPrivate bool
	// stdio is set for a local server run as a command: one process for
	// every caller, no token.
	stdio *mcpclient.StdioClient

	mu      sync.Mutex
	clients map[string]*mcpclient.Client // by workload identity

	// defs are the server's tool definitions, learned from its tools/list
	// the first time an agent calls one of its tools.
	defs atomic.Pointer[map[string]mcpclient.Tool]
}

// learn fetches the server's tool definitions once, as the caller c for
// subject (the authority of the call that needs them: never the agent's
// own in place of the user's).
func (r *remoteServer) learn(ctx context.Context, c toolCaller, subject mcpclient.Subject) {
	if r.defs.Load() != nil {
		return
	}
	tools, err := c.ListTools(ctx, subject)
	if err != nil {
		r.h.log.Debug("remote tools/list failed", "remote", r.cfg.Name, "err", err)
		return
	}
	defs := make(map[string]mcpclient.Tool, len(tools))
	for _, t := range tools {
		defs[t.Name] = t
	}
	r.defs.Store(&defs)
}

// toolCaller is what calls a remote tool: an HTTP MCP client acting as one
// workload, or the local stdio server.
type toolCaller interface {
	ListTools(ctx context.Context, subject mcpclient.Subject) ([]mcpclient.Tool, error)
	CallTool(ctx context.Context, subject mcpclient.Subject, name string, args json.RawMessage) (mcpclient.Result, error)
}

func (h *Host) newRemote(rc config.MCPRemoteConfig) (*remoteServer, error) {
	if len(rc.Command) > 0 {
		env := make([]string, 0, len(rc.Env))
		for k, v := range rc.Env {
			env = append(env, k+"="+v)
		}
		sc, err := mcpclient.NewStdio(mcpclient.StdioConfig{Command: rc.Command[0], Args: rc.Command[1:], Env: env,
			Logger: h.log.With("component", "mcpclient", "remote", rc.Name)})
		if err != nil {
			return nil, fmt.Errorf("host: remote %s: %w", rc.Name, err)
		}
		return &remoteServer{h: h, cfg: rc, stdio: sc, clients: map[string]*mcpclient.Client{}}, nil
	}
	// A remote the operator configured on a loopback address is a
	// development setup: its metadata may be fetched over plain HTTP from
	// that address. Everything else gets the default refusals.
	u, _ := url.Parse(rc.URL)
	local := isLoopbackHost(u.Hostname())
	return &remoteServer{h: h, cfg: rc, clients: map[string]*mcpclient.Client{}, fetcherPrivate: local,
		fetcher: fetch.New(fetch.Config{AllowHTTP: local, AllowPrivate: local, Logger: h.log.With("component", "fetch")})}, nil
}

// client returns the caller acting as agent.
func (r *remoteServer) client(agent string) (toolCaller, error) {
	if r.stdio != nil {
		return r.stdio, nil
	}
	id, err := credentials.AgentIdentity(r.h.cfg.TrustDomain, agent)
	if err != nil {
		return nil, err
	}
	return r.clientFor(id)
}

// clientFor returns the caller acting as workload id (an agent, or the
// host itself for a gateway, which asks for scopes only).
func (r *remoteServer) clientFor(id credentials.Identity, scopes ...string) (toolCaller, error) {
	if r.stdio != nil {
		return r.stdio, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[id.String()]; ok {
		return c, nil
	}
	// A remote on a federated domain's peer is reached with the
	// workload's own SVID (svidtls.go): its MCP traffic, its metadata and
	// its authorization server's.
	var hc *http.Client
	fetcher := r.fetcher
	if rt, err := r.h.peerTransport(id); err != nil {
		return nil, err
	} else if rt != http.DefaultTransport {
		hc = &http.Client{Transport: rt, Timeout: mcpclient.DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		fetcher = fetch.New(fetch.Config{Client: hc, AllowHTTP: false, AllowPrivate: r.fetcherPrivate,
			Logger: r.h.log.With("component", "fetch")})
	}
	tokens, err := r.tokenClient(id, hc)
	if err != nil {
		return nil, err
	}
	c, err := mcpclient.New(mcpclient.Config{URL: r.cfg.URL, Tokens: tokens, Fetcher: fetcher, HTTPClient: hc, Scopes: scopes,
		Logger: r.h.log.With("component", "mcpclient", "remote", r.cfg.Name, "as", id.String()), Now: r.h.now})
	if err != nil {
		return nil, err
	}
	r.clients[id.String()] = c
	return c, nil
}

// outboundKeys are the DPoP key pairs of the host's workloads for the
// tokens they present to remote servers: one set per workload (each
// agent, and the host itself for its gateways), the same for every remote
// it calls, so an agent's token is bound to that agent's key and no
// other workload's proofs make it usable. The host makes each key the
// first time it is needed and holds it in this process only; no plugin
// ever gets one.
//
// The keys are not kept across restarts on purpose. Everything bound to
// them is in memory too: the tokens the host obtains are cached only
// until the process ends, and no refresh token is kept (oauth.Client
// drops them), so a new key after a restart invalidates nothing that
// would survive anyway; keeping them would put private keys at rest
// beside the data for no gain.
type outboundKeys struct {
	mu   sync.Mutex
	keys map[string]*dpop.Keys
}

// of returns the keys of workload id, an empty set the first time.
func (k *outboundKeys) of(id credentials.Identity) *dpop.Keys {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = map[string]*dpop.Keys{}
	}
	keys, ok := k.keys[id.String()]
	if !ok {
		keys = dpop.NewKeys()
		k.keys[id.String()] = keys
	}
	return keys
}

func (r *remoteServer) close() {
	if r.stdio != nil {
		_ = r.stdio.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		_ = c.Close()
	}
}

// remoteTool is one tool of a remote server, as agents see it.
type remoteTool struct {
	server *remoteServer
	name   string
}

// Definition is the remote's own description and input schema once they
// are known (after the first call), a generic one before.
func (t remoteTool) Definition() llm.Tool {
	name := t.server.cfg.Name + "/" + t.name
	if defs := t.server.defs.Load(); defs != nil {
		if d, ok := (*defs)[t.name]; ok {
			return llm.Tool{Name: name, Description: d.Description, Parameters: d.InputSchema}
		}
	}
	return llm.Tool{Name: name, Description: fmt.Sprintf("Tool %q of the remote MCP server %s", t.name, t.server.cfg.Name),
		Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (t remoteTool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	cl, err := t.server.client(c.Agent)
	if err != nil {
		return mediator.ToolResult{}, err
	}
	subject, err := t.server.h.remoteSubject(t.server, c)
	if err != nil {
		return mediator.ToolResult{}, callError(t.server.cfg.Name, err)
	}
	t.server.learn(ctx, cl, subject)
	res, err := cl.CallTool(ctx, subject, t.name, args)
	if err != nil {
		return mediator.ToolResult{}, callError(t.server.cfg.Name, err)
	}
	return mediator.ToolResult{Text: res.Text, IsError: res.IsError}, nil
}

// callError is a failed remote call as the calling plugin gets it: with
// the Host error kind permission denied when authority was refused (the
// remote's authorization server refused the token request, the remote
// refused the token, or the task has no user to act for), unavailable
// otherwise. The message names the remote and, for a refused token
// request, its authorization server and the OAuth error, first (the
// plugin may show only the start of it); it never holds a token. The
// whole cause stays in the chain.
func callError(remote string, err error) error {
	var (
		te *mcpclient.TokenError
		oe *oauth.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("host: remote %s: %w", remote, err)
	case errors.As(err, &te) && errors.As(te.Err, &oe):
		grant := "client_credentials request"
		if te.Exchange {
			grant = "token exchange"
		}
		return &remoteError{kind: pluginpb.ErrPermissionDenied, cause: err,
			msg: fmt.Sprintf("remote %s: its authorization server %s refused the %s: %s", remote, te.Issuer, grant, strings.TrimPrefix(oe.Error(), "oauth: "))}
	case errors.Is(err, errNoUser), errors.Is(err, mcpclient.ErrUnauthorized), errors.Is(err, mcpclient.ErrInsufficientScope):
		return fmt.Errorf("%w: remote %s: %w", pluginpb.ErrPermissionDenied, remote, err)
	}
	return fmt.Errorf("%w: remote %s: %w", pluginpb.ErrUnavailable, remote, err)
}

// remoteError is a failed remote call with a message of its own.
type remoteError struct {
	kind, cause error
	msg         string
}

func (e *remoteError) Error() string   { return e.kind.Error() + ": " + e.msg }
func (e *remoteError) Unwrap() []error { return []error{e.kind, e.cause} }

// addRemoteTools adds every configured remote tool to tools as
// "<remote>/<tool>".
func (h *Host) addRemoteTools(tools map[string]mediator.Tool) error {
	h.remotes = map[string]*remoteServer{}
	for _, rc := range h.cfg.MCP.Remotes {
		srv, err := h.newRemote(rc)
		if err != nil {
			return err
		}
		h.remotes[rc.Name] = srv
		h.closers = append(h.closers, srv.close)
		for _, name := range rc.Tools {
			tools[rc.Name+"/"+name] = remoteTool{server: srv, name: name}
		}
	}
	return nil
}
