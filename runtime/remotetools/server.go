package remotetools

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Server is one remote MCP server, called for the host's workloads:
// each has its own OAuth client and its own MCP client, made on first use.
// A remote run as a command is one process for every caller, with no
// token.
type Server struct {
	cfg    *Config
	remote config.MCPRemoteConfig
	keys   *workloadKeys
	// fetcher fetches the remote's metadata and its authorization
	// server's; loopback: the remote is on a loopback address
	// (development).
	fetcher  *fetch.Fetcher
	loopback bool
	// stdio is set for a local server run as a command.
	stdio *mcpclient.StdioClient

	mu      sync.Mutex
	clients map[string]*mcpclient.Client // by workload identity

	// defs are the server's tool definitions, learned from its tools/list
	// the first time a workload calls one of its tools.
	defs atomic.Pointer[map[string]mcpclient.Tool]
}

// Client calls a remote's tools: an HTTP MCP client acting as one
// workload, or the local stdio server.
type Client interface {
	ListTools(ctx context.Context, subject mcpclient.Subject) ([]mcpclient.Tool, error)
	CallTool(ctx context.Context, subject mcpclient.Subject, name string, args json.RawMessage) (mcpclient.Result, error)
}

var (
	_ Client = (*mcpclient.Client)(nil)
	_ Client = (*mcpclient.StdioClient)(nil)
)

// Config returns the remote's configuration (mcp.remotes).
func (r *Server) Config() config.MCPRemoteConfig { return r.remote }

// Client returns the client acting as agent.
func (r *Server) Client(agent string) (Client, error) {
	if r.stdio != nil {
		return r.stdio, nil
	}
	id, err := credentials.AgentIdentity(r.cfg.TrustDomain, agent)
	if err != nil {
		return nil, err
	}
	return r.ClientFor(id)
}

// ClientFor returns the client acting as workload id: an agent, or the
// host itself for a gateway, which asks for scopes only. The first call
// for id makes it; later ones return the same client, whatever their
// scopes.
func (r *Server) ClientFor(id credentials.Identity, scopes ...string) (Client, error) {
	if r.stdio != nil {
		return r.stdio, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[id.String()]; ok {
		return c, nil
	}
	// A remote on a federated domain's peer is reached with the
	// workload's own SVID: its MCP traffic, its metadata and its
	// authorization server's.
	var hc *http.Client
	fetcher := r.fetcher
	if rt, err := r.cfg.Transport(id); err != nil {
		return nil, err
	} else if rt != http.DefaultTransport {
		hc = &http.Client{Transport: rt, Timeout: mcpclient.DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		fetcher = fetch.New(fetch.Config{Client: hc, AllowHTTP: false, AllowPrivate: r.loopback,
			Logger: r.cfg.Logger.With("component", "fetch")})
	}
	tokens, err := r.TokenClient(id, hc)
	if err != nil {
		return nil, err
	}
	c, err := mcpclient.New(mcpclient.Config{URL: r.remote.URL, Tokens: tokens, Fetcher: fetcher, HTTPClient: hc, Scopes: scopes,
		Logger: r.cfg.Logger.With("component", "mcpclient", "remote", r.remote.Name, "as", id.String()), Now: r.cfg.Now})
	if err != nil {
		return nil, err
	}
	r.clients[id.String()] = c
	return c, nil
}

// TokenClient returns a new token client of workload id for this remote
// (the one [Server.ClientFor] gives id's MCP client), with id's DPoP keys;
// hc nil means the default HTTP client.
func (r *Server) TokenClient(id credentials.Identity, hc *http.Client) (*oauth.Client, error) {
	return r.cfg.TokenClient(TokenClientRequest{Remote: r.remote, Workload: id, HTTPClient: hc,
		DPoPKeys: r.keys.of(id), Loopback: r.loopback})
}

// subject is whom c's call is made for: the host's choice for a remote
// over HTTP, the zero Subject (no token) for a stdio server.
func (r *Server) subject(c mediator.Caller) (mcpclient.Subject, error) {
	if r.stdio != nil {
		return mcpclient.Subject{}, nil
	}
	return r.cfg.Subject(r.remote, c)
}

// learn fetches the server's tool definitions once, as the caller c for
// subject (the authority of the call that needs them: never the agent's
// own in place of the user's).
func (r *Server) learn(ctx context.Context, c Client, subject mcpclient.Subject) {
	if r.defs.Load() != nil {
		return
	}
	tools, err := c.ListTools(ctx, subject)
	if err != nil {
		r.cfg.Logger.Debug("remote tools/list failed", "remote", r.remote.Name, "err", err)
		return
	}
	defs := make(map[string]mcpclient.Tool, len(tools))
	for _, t := range tools {
		defs[t.Name] = t
	}
	r.defs.Store(&defs)
}

// close stops the stdio server and closes every client.
func (r *Server) close() {
	if r.stdio != nil {
		_ = r.stdio.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.clients {
		_ = c.Close()
	}
}

// tool is one tool of a remote server, as agents see it.
type tool struct {
	server *Server
	name   string
}

var _ mediator.Tool = tool{}

// Definition is the remote's own description and input schema once they
// are known (after the first call), a generic one before.
func (t tool) Definition() llm.Tool {
	remote := t.server.remote.Name
	name := remote + "/" + t.name
	if defs := t.server.defs.Load(); defs != nil {
		if d, ok := (*defs)[t.name]; ok {
			return llm.Tool{Name: name, Description: d.Description, Parameters: d.InputSchema}
		}
	}
	return llm.Tool{Name: name, Description: fmt.Sprintf("Tool %q of the remote MCP server %s", t.name, remote),
		Parameters: json.RawMessage(`{"type":"object"}`)}
}

// Call calls the tool as the calling agent, for whom [Config.Subject]
// names. The result holds the tool's text only.
func (t tool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	cl, err := t.server.Client(c.Agent)
	if err != nil {
		return mediator.ToolResult{}, err
	}
	subject, err := t.server.subject(c)
	if err != nil {
		return mediator.ToolResult{}, callError(t.server.remote.Name, err)
	}
	t.server.learn(ctx, cl, subject)
	res, err := cl.CallTool(ctx, subject, t.name, args)
	if err != nil {
		return mediator.ToolResult{}, callError(t.server.remote.Name, err)
	}
	return mediator.ToolResult{Text: res.Text, IsError: res.IsError}, nil
}
