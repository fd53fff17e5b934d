package remotetools

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Config configures [New]: the remotes and what the host provides.
type Config struct {
	// Remotes are the remote MCP servers (mcp.remotes), as
	// runtime/config validated them: each has a URL or a Command.
	Remotes []config.MCPRemoteConfig
	// TrustDomain names the agents: agent a calls a remote as
	// credentials.AgentIdentity(TrustDomain, a). Required.
	TrustDomain string
	// TokenClient makes the token client a workload gets its tokens to a
	// remote with: the host's (its JWT-SVID as client assertion, the
	// client identity the remote's authorization server knows it by).
	// It is asked when a workload first calls a remote, and again after
	// [Set.ForgetWorkload]. Required.
	TokenClient func(TokenClientRequest) (*oauth.Client, error)
	// Subject is whom an agent's call to the remote is made for, in the
	// task c: the task's user (a delegated mcpclient.Subject) or the zero
	// Subject, the agent's own authority. It is asked for the remotes
	// reached over HTTP only (a stdio server gets no token). An error
	// fails the call; one that wraps [ErrNoUser] is permission denied.
	// Required.
	Subject func(remote config.MCPRemoteConfig, c mediator.Caller) (mcpclient.Subject, error)
	// Transport is the round tripper of workload id's outbound calls:
	// http.DefaultTransport itself, or another for a workload that
	// reaches a federated domain's peer with its own SVID (its MCP
	// traffic, its metadata and its authorization server's). Nil means
	// http.DefaultTransport for every workload.
	Transport func(id credentials.Identity) (http.RoundTripper, error)
	// Now is the clock of DPoP proofs; nil means time.Now.
	Now func() time.Time
	// Logger receives diagnostics; nil discards them. Tokens are never
	// logged.
	Logger *slog.Logger
}

// TokenClientRequest is what [Config.TokenClient] makes a token client
// for.
type TokenClientRequest struct {
	// Remote is the remote whose authorization server the client gets
	// tokens from (discovered from the remote, in mcpclient).
	Remote config.MCPRemoteConfig
	// Workload is whom the client acts as: an agent, or the host itself
	// for a gateway.
	Workload credentials.Identity
	// HTTPClient carries the client's requests; nil means the default
	// client.
	HTTPClient *http.Client
	// DPoPKeys are the workload's DPoP keys ([Set.DPoPKeys]), the same for
	// every remote: the client binds its tokens to them wherever the
	// server allows.
	DPoPKeys *dpop.Keys
	// Loopback reports a remote on a loopback address (a development
	// setup): its metadata is fetched over plain HTTP, and its
	// authorization server may be reached over plain HTTP too.
	Loopback bool
}

// Set is the remote servers of a [Config], with the DPoP keys of the
// workloads that call them. It is safe for concurrent use.
type Set struct {
	servers []*Server
	byName  map[string]*Server
	// keys are each workload's DPoP keys, shared by every remote.
	keys workloadKeys
}

// New checks cfg and returns its remotes. No remote is contacted and no
// command started until the first call.
func New(cfg Config) (*Set, error) {
	switch {
	case cfg.TrustDomain == "":
		return nil, errors.New("remotetools: TrustDomain is required")
	case cfg.TokenClient == nil:
		return nil, errors.New("remotetools: TokenClient is required")
	case cfg.Subject == nil:
		return nil, errors.New("remotetools: Subject is required")
	}
	if cfg.Transport == nil {
		cfg.Transport = func(credentials.Identity) (http.RoundTripper, error) { return http.DefaultTransport, nil }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{byName: make(map[string]*Server, len(cfg.Remotes))}
	for _, rc := range cfg.Remotes {
		if _, dup := s.byName[rc.Name]; dup || rc.Name == "" {
			s.Close()
			return nil, fmt.Errorf("remotetools: remote %q: a remote needs a name of its own", rc.Name)
		}
		srv, err := s.newServer(&cfg, rc)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.servers = append(s.servers, srv)
		s.byName[rc.Name] = srv
	}
	return s, nil
}

// newServer prepares the remote rc.
func (s *Set) newServer(cfg *Config, rc config.MCPRemoteConfig) (*Server, error) {
	srv := &Server{cfg: cfg, remote: rc, keys: &s.keys, clients: map[string]*mcpclient.Client{}}
	switch {
	case len(rc.Command) > 0 && rc.URL != "":
		return nil, fmt.Errorf("remotetools: remote %s: both url and command are set", rc.Name)
	case len(rc.Command) > 0:
		env := make([]string, 0, len(rc.Env))
		for k, v := range rc.Env {
			env = append(env, k+"="+v)
		}
		sc, err := mcpclient.NewStdio(mcpclient.StdioConfig{Command: rc.Command[0], Args: rc.Command[1:], Env: env,
			Logger: cfg.Logger.With("component", "mcpclient", "remote", rc.Name)})
		if err != nil {
			return nil, fmt.Errorf("remotetools: remote %s: %w", rc.Name, err)
		}
		srv.stdio = sc
		return srv, nil
	}
	u, err := url.Parse(rc.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("remotetools: remote %s: url %q is not an absolute URL", rc.Name, rc.URL)
	}
	// A remote the operator configured on a loopback address is a
	// development setup: its metadata may be fetched over plain HTTP from
	// that address. Everything else gets the default refusals.
	srv.loopback = isLoopbackHost(u.Hostname())
	srv.fetcher = fetch.New(fetch.Config{AllowHTTP: srv.loopback, AllowPrivate: srv.loopback,
		Logger: cfg.Logger.With("component", "fetch")})
	return srv, nil
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Tools returns every configured tool of every remote, by the name agents
// are granted it as: "<remote>/<tool>".
func (s *Set) Tools() map[string]mediator.Tool {
	out := map[string]mediator.Tool{}
	if s == nil {
		return out
	}
	for _, srv := range s.servers {
		for _, name := range srv.remote.Tools {
			out[srv.remote.Name+"/"+name] = tool{server: srv, name: name}
		}
	}
	return out
}

// IsTool reports whether t is a remote server's tool (of [Set.Tools]).
func IsTool(t mediator.Tool) bool {
	_, ok := t.(tool)
	return ok
}

// Server returns the remote named name, or nil.
func (s *Set) Server(name string) *Server {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Servers returns the remotes in the order of the configuration.
func (s *Set) Servers() []*Server {
	if s == nil {
		return nil
	}
	return append([]*Server(nil), s.servers...)
}

// DPoPKeys returns the DPoP keys of workload id, the same for every
// remote: an empty set the first time, to which keys are added as
// servers ask for them.
func (s *Set) DPoPKeys(id credentials.Identity) *dpop.Keys {
	return s.keys.of(id)
}

// ForgetWorkload closes and drops the clients workload id has of every
// remote (its tokens and sessions), so that its next call starts afresh
// (after it was quarantined). Its DPoP keys stay: they are the
// workload's, not its grants'.
func (s *Set) ForgetWorkload(id credentials.Identity) {
	if s == nil {
		return
	}
	var ended []*mcpclient.Client
	for _, srv := range s.servers {
		srv.mu.Lock()
		if c, ok := srv.clients[id.String()]; ok {
			ended = append(ended, c)
			delete(srv.clients, id.String())
		}
		srv.mu.Unlock()
	}
	for _, c := range ended {
		_ = c.Close()
	}
}

// ForgetSubject ends every session opened for the user name and drops the
// tokens acquired for them, at every remote and for every workload
// (after the user's access was revoked). It returns how many sessions it
// ended.
func (s *Set) ForgetSubject(name string) int {
	n := 0
	// Ending sessions may talk to the servers: not under a lock.
	for _, c := range s.clients() {
		n += c.ForgetSubject(name)
	}
	return n
}

// EndSessions ends the sessions, at every remote and for every workload,
// of the subjects whose mcpclient.Subject.Key starts with keyPrefix; the
// tokens acquired for them stay cached. It returns how many it ended.
func (s *Set) EndSessions(keyPrefix string) int {
	n := 0
	for _, c := range s.clients() {
		n += c.EndSessions(keyPrefix)
	}
	return n
}

// clients are the MCP clients of every remote, for every workload.
func (s *Set) clients() []*mcpclient.Client {
	if s == nil {
		return nil
	}
	var out []*mcpclient.Client
	for _, srv := range s.servers {
		srv.mu.Lock()
		for _, c := range srv.clients {
			out = append(out, c)
		}
		srv.mu.Unlock()
	}
	return out
}

// Close stops every stdio server and closes every client, the last
// remote first.
func (s *Set) Close() {
	if s == nil {
		return
	}
	for i := len(s.servers) - 1; i >= 0; i-- {
		s.servers[i].close()
	}
}
