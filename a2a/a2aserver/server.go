package a2aserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
	"github.com/a2aproject/a2a-go/a2asrv/limiter"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// Paths. An agent named n is served at PathPrefix+n, its card at
// PathPrefix+n+CardPath, and its RFC 9728 metadata at
// /.well-known/oauth-protected-resource+PathPrefix+n.
const (
	PathPrefix = "/a2a/"
	CardPath   = a2asrv.WellKnownAgentCardPath
)

// Defaults of [Config].
const (
	// DefaultMaxBodyBytes caps a JSON-RPC request body.
	DefaultMaxBodyBytes int64 = 1 << 20
	// DefaultMaxConcurrentTasks caps the runs in progress at one agent.
	DefaultMaxConcurrentTasks = 64
	// DefaultMaxTasksPerCaller caps the runs in progress at one agent for
	// one caller (issuer, subject, client).
	DefaultMaxTasksPerCaller = 8
)

// ErrInvalidConfig is returned by [New] and [Server.SetAgents] for an
// unusable Config or agent.
var ErrInvalidConfig = errors.New("a2aserver: invalid config")

// Authenticator authenticates the access token of a request to one agent.
// *resource.Verifier implements it; its errors are *resource.Challenge,
// which the server writes as they are (401 with WWW-Authenticate naming
// resource_metadata, 400, 403). Any other error is answered with 500. The
// server also requires the returned Caller's Audience to hold the agent's
// URL, so an authenticator built for another resource fails closed.
type Authenticator interface {
	Authenticate(r *http.Request) (*resource.Caller, error)
}

// StepUpper is the optional capability of an [Authenticator] to build the
// 403 insufficient_scope challenge for a caller that lacks needed scopes
// (*resource.Verifier has it). Without it the server builds a plain one.
type StepUpper interface {
	StepUp(caller *resource.Caller, needed ...string) *resource.Challenge
}

// Config configures a [Server].
type Config struct {
	// BaseURL is the origin the host serves A2A at (scheme://host[:port],
	// no path): an agent named n has the A2A URL BaseURL/a2a/n, which is
	// also its resource identifier (the aud its tokens must carry).
	// Required.
	BaseURL string
	// Agents are the hosted agents; see also [Server.SetAgents].
	Agents []a2acard.AgentInfo
	// Runner runs the tasks. Required.
	Runner Runner
	// Authenticator returns the authenticator of one agent: a
	// resource.Verifier whose Resource is resourceURL (the agent's A2A
	// URL) and whose MetadataURL is metadataURL. It is called once per
	// agent by New and SetAgents. Required.
	Authenticator func(agent, resourceURL, metadataURL string) (Authenticator, error)
	// AuthServer is the authorization server's metadata: its issuer goes
	// into every agent's RFC 9728 metadata, its token endpoint (and
	// authorization endpoint, see AuthorizationCode) into the cards.
	// Required: Issuer and TokenEndpoint.
	AuthServer *oauth.ServerMetadata
	// OtherAuthServers are the issuers of further authorization servers
	// whose tokens the Authenticator accepts; they follow AuthServer in
	// each agent's RFC 9728 metadata.
	OtherAuthServers []string
	// AuthServerMetadataURL is the authorization server's metadata URL
	// named in the cards; empty means the RFC 8414 well-known URL of the
	// issuer.
	AuthServerMetadataURL string
	// AuthorizationCode declares the authorization code flow in the cards
	// (AuthServer.AuthorizationEndpoint must be set).
	AuthorizationCode bool
	// MutualTLS says the listener does TLS with client certificates: the
	// cards declare a mutualTLS scheme and the metadata says
	// certificate-bound tokens are accepted.
	MutualTLS bool
	// DPoPAlgorithms are the DPoP proof algorithms the authenticators
	// accept, for the metadata (dpop_signing_alg_values_supported).
	DPoPAlgorithms []string
	// CardKey returns the key an agent's card is signed with (the agent's
	// key in the trust domain). Nil serves unsigned cards.
	CardKey func(ctx context.Context, agent string) (a2acard.Key, error)
	// Provider is the organization named in the cards; optional.
	Provider *a2a.AgentProvider
	// VerifyTxnToken, when set, verifies a request's Txn-Token header; a
	// request whose token fails gets 400. Nil passes the header on
	// unverified (Request.TxnToken).
	VerifyTxnToken func(ctx context.Context, token string) (*txntoken.Claims, error)
	// MaxBodyBytes caps a JSON-RPC request body; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxTasks caps the tasks kept in memory; 0 means DefaultMaxTasks.
	MaxTasks int
	// TaskTTL is how long a task is kept after its last update; 0 means
	// DefaultTaskTTL.
	TaskTTL time.Duration
	// MaxConcurrentTasks caps the runs in progress at one agent; 0 means
	// DefaultMaxConcurrentTasks.
	MaxConcurrentTasks int
	// MaxTasksPerCaller caps the runs in progress at one agent for one
	// caller; 0 means DefaultMaxTasksPerCaller.
	MaxTasksPerCaller int
	// OnMalformed, when set, is told of each authenticated request
	// refused as malformed JSON-RPC (answered 200 with the JSON-RPC
	// error code), for the host's audit log; refusals with an HTTP error
	// status are the host's to see on the response.
	OnMalformed func(ctx context.Context, agent string, caller *resource.Caller, code int, reason string)
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves hosted agents over A2A (JSON-RPC binding), each as an
// OAuth protected resource. It is safe for concurrent use.
type Server struct {
	cfg     Config
	base    string
	runner  Runner
	log     *slog.Logger
	now     func() time.Time
	maxBody int64
	store   *taskStore

	closing   context.Context
	close     context.CancelFunc
	endpoints atomic.Pointer[map[string]*endpoint]

	mu       sync.Mutex // serializes SetAgents
	handlers map[string]http.Handler
}

// endpoint is one hosted agent as served.
type endpoint struct {
	info     a2acard.AgentInfo
	url      string
	mdURL    string
	auth     Authenticator
	card     *a2a.AgentCard
	cardJSON []byte
	metadata http.Handler
	rpc      http.Handler
}

// New checks cfg and builds a Server serving cfg.Agents; it signs their
// cards (so it may block on the CardKey signers).
func New(ctx context.Context, cfg Config) (*Server, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Runner == nil:
		return nil, fmt.Errorf("%w: Runner is required", ErrInvalidConfig)
	case cfg.Authenticator == nil:
		return nil, fmt.Errorf("%w: Authenticator is required", ErrInvalidConfig)
	case cfg.AuthServer == nil || cfg.AuthServer.Issuer == "" || cfg.AuthServer.TokenEndpoint == "":
		return nil, fmt.Errorf("%w: AuthServer with Issuer and TokenEndpoint is required", ErrInvalidConfig)
	case cfg.AuthorizationCode && cfg.AuthServer.AuthorizationEndpoint == "":
		return nil, fmt.Errorf("%w: AuthorizationCode needs AuthServer.AuthorizationEndpoint", ErrInvalidConfig)
	case cfg.MaxBodyBytes < 0 || cfg.MaxTasks < 0 || cfg.TaskTTL < 0 || cfg.MaxConcurrentTasks < 0 || cfg.MaxTasksPerCaller < 0:
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	if cfg.AuthServerMetadataURL == "" {
		urls, err := oauth.ServerMetadataURLs(cfg.AuthServer.Issuer)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		cfg.AuthServerMetadataURL = urls[0]
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxTasks == 0 {
		cfg.MaxTasks = DefaultMaxTasks
	}
	if cfg.TaskTTL == 0 {
		cfg.TaskTTL = DefaultTaskTTL
	}
	if cfg.MaxConcurrentTasks == 0 {
		cfg.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	}
	if cfg.MaxTasksPerCaller == 0 {
		cfg.MaxTasksPerCaller = DefaultMaxTasksPerCaller
	}
	s := &Server{
		cfg: cfg, base: base, runner: cfg.Runner, log: cfg.Logger, now: cfg.Now, maxBody: cfg.MaxBodyBytes,
		store:    newTaskStore(cfg.MaxTasks, cfg.TaskTTL, cfg.Now),
		handlers: map[string]http.Handler{},
	}
	s.closing, s.close = context.WithCancel(context.Background())
	empty := map[string]*endpoint{}
	s.endpoints.Store(&empty)
	if err := s.SetAgents(ctx, cfg.Agents); err != nil {
		return nil, err
	}
	return s, nil
}

// SetAgents replaces the set of hosted agents: an agent no longer listed
// is no longer served (its running tasks go on until they end), and every
// listed agent gets a fresh card (signed again, for a rotated key) and
// authenticator. Tasks are kept.
func (s *Server) SetAgents(ctx context.Context, agents []a2acard.AgentInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*endpoint, len(agents))
	for _, info := range agents {
		if !validName(info.Name) {
			return fmt.Errorf("%w: agent name %q is not a valid path segment", ErrInvalidConfig, info.Name)
		}
		if _, dup := next[info.Name]; dup {
			return fmt.Errorf("%w: duplicate agent %q", ErrInvalidConfig, info.Name)
		}
		ep, err := s.newEndpoint(ctx, info)
		if err != nil {
			return err
		}
		next[info.Name] = ep
	}
	s.endpoints.Store(&next)
	return nil
}

func (s *Server) newEndpoint(ctx context.Context, info a2acard.AgentInfo) (*endpoint, error) {
	ep := &endpoint{info: info, url: s.base + PathPrefix + info.Name}
	mdPath, err := resource.MetadataPath(ep.url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	ep.mdURL = s.base + mdPath
	if ep.auth, err = s.cfg.Authenticator(info.Name, ep.url, ep.mdURL); err != nil {
		return nil, fmt.Errorf("a2aserver: agent %s: authenticator: %w", info.Name, err)
	}
	if ep.auth == nil {
		return nil, fmt.Errorf("%w: agent %s: nil authenticator", ErrInvalidConfig, info.Name)
	}
	opts := a2acard.Options{
		URL: ep.url, TokenURL: s.cfg.AuthServer.TokenEndpoint, OAuthMetadataURL: s.cfg.AuthServerMetadataURL,
		MutualTLS: s.cfg.MutualTLS, Provider: s.cfg.Provider,
	}
	if s.cfg.AuthorizationCode {
		opts.AuthorizationURL = s.cfg.AuthServer.AuthorizationEndpoint
	}
	if ep.card, err = a2acard.New(info, opts); err != nil {
		return nil, fmt.Errorf("a2aserver: agent %s: %w", info.Name, err)
	}
	if s.cfg.CardKey != nil {
		key, err := s.cfg.CardKey(ctx, info.Name)
		if err != nil {
			return nil, fmt.Errorf("a2aserver: agent %s: card key: %w", info.Name, err)
		}
		if err := a2acard.Sign(ctx, ep.card, key); err != nil {
			return nil, fmt.Errorf("a2aserver: agent %s: %w", info.Name, err)
		}
	}
	if ep.cardJSON, err = json.Marshal(ep.card); err != nil {
		return nil, fmt.Errorf("a2aserver: agent %s: card: %w", info.Name, err)
	}
	ep.metadata = resource.MetadataHandler(oauth.ResourceMetadata{
		Resource:                              ep.url,
		AuthorizationServers:                  append([]string{s.cfg.AuthServer.Issuer}, s.cfg.OtherAuthServers...),
		ScopesSupported:                       slices.Clone(info.Scopes),
		BearerMethodsSupported:                []string{"header"},
		ResourceName:                          ep.card.Name,
		TLSClientCertificateBoundAccessTokens: s.cfg.MutualTLS,
		DPoPSigningAlgValuesSupported:         slices.Clone(s.cfg.DPoPAlgorithms),
	})
	ep.rpc = s.rpcHandler(info.Name)
	return ep, nil
}

// rpcHandler returns the a2a-go JSON-RPC handler of an agent, made once
// per agent name and kept across SetAgents, so that a running task stays
// reachable (tasks/cancel) after its agent's card or authenticator
// changed.
func (s *Server) rpcHandler(agent string) http.Handler {
	if h, ok := s.handlers[agent]; ok {
		return h
	}
	perCaller := s.cfg.MaxTasksPerCaller
	rh := a2asrv.NewHandler(&executor{srv: s, agent: agent},
		a2asrv.WithTaskStore(s.store),
		a2asrv.WithCallInterceptor(&guard{store: s.store, agent: agent}),
		a2asrv.WithLogger(s.log.With(slog.String("agent", agent))),
		a2asrv.WithConcurrencyConfig(limiter.ConcurrencyConfig{
			MaxExecutions:    s.cfg.MaxConcurrentTasks,
			GetMaxExecutions: func(string) int { return perCaller },
		}),
	)
	h := a2asrv.NewJSONRPCHandler(rh)
	s.handlers[agent] = h
	return h
}

func (s *Server) endpoint(name string) *endpoint {
	return (*s.endpoints.Load())[name]
}

// Handler returns an http.Handler serving every hosted agent's endpoint,
// card and metadata at the paths of [Server.Mount]. Mount it at the root
// of the host's origin (the metadata lives under /.well-known/).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Mount(mux)
	return mux
}

// Mount registers on mux, for every agent name n (agents added later by
// SetAgents included):
//
//	POST /a2a/n                                    JSON-RPC (A2A 0.3)
//	GET  /a2a/n/.well-known/agent-card.json        the agent card
//	GET  /.well-known/oauth-protected-resource/a2a/n  RFC 9728 metadata
func (s *Server) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathPrefix+"{agent}", s.serveRPC)
	mux.HandleFunc("GET "+PathPrefix+"{agent}"+CardPath, s.serveCard)
	mux.HandleFunc("OPTIONS "+PathPrefix+"{agent}"+CardPath, s.serveCard)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource"+PathPrefix+"{agent}", s.serveMetadata)
}

// AgentURL returns the A2A URL of a hosted agent.
func (s *Server) AgentURL(agent string) (string, bool) {
	if ep := s.endpoint(agent); ep != nil {
		return ep.url, true
	}
	return "", false
}

// Agents lists the hosted agents' names, sorted.
func (s *Server) Agents() []string {
	m := *s.endpoints.Load()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Card returns a copy of a hosted agent's card as served.
func (s *Server) Card(agent string) (*a2a.AgentCard, bool) {
	ep := s.endpoint(agent)
	if ep == nil {
		return nil, false
	}
	var c a2a.AgentCard
	if err := json.Unmarshal(ep.cardJSON, &c); err != nil {
		return nil, false
	}
	return &c, true
}

// Close cancels every running task's Runner context; the tasks end
// canceled. Requests that arrive afterwards still get answers, but their
// runs are canceled at once.
func (s *Server) Close() error {
	s.close()
	return nil
}

// checkBaseURL returns the origin raw names, without a trailing slash.
func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: BaseURL %q must be an http(s) origin without path", ErrInvalidConfig, raw)
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// validName reports whether n is 1 to 64 characters from A-Z, a-z, 0-9,
// '_', '-' and '.', and not "." or "..".
func validName(n string) bool {
	if n == "" || len(n) > 64 || n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
