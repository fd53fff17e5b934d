package mcphost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/httpaudit"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// PathPrefix is where hosted MCP servers are served: PathPrefix + name.
const PathPrefix = "/mcp/"

// Actions of the audit records of hosted MCP servers.
const (
	// ActionToolCall: a tools/call of a host tool (built in or from a
	// tool plugin).
	ActionToolCall = "mcp.tools.call"
	// ActionGatewayCall: a tools/call of a tool of the upstream a gateway
	// fronts.
	ActionGatewayCall = "mcp.gateway.call"
	// ActionRequest: a request refused before it reached a tool.
	ActionRequest = "mcp.request"
)

// ToolScope is the OAuth scope a caller needs for a host tool over MCP:
// "<server>:read" for tools that change nothing (readOnly),
// "<server>:write" otherwise, where <server> is the tool's prefix
// ("notes/add" → notes:write).
func ToolScope(name string, readOnly bool) string {
	prefix, _, _ := strings.Cut(name, "/")
	if readOnly {
		return prefix + ":read"
	}
	return prefix + ":write"
}

// Server is one configured MCP server, resolved against the host's tools
// by [Resolve].
type Server struct {
	// Name is the server's name (mcp.servers[].name) and path segment.
	Name string
	// Resource is its resource identifier: issuer + PathPrefix + Name.
	Resource string
	// Tools are the host tools it offers, or for a gateway the upstream's
	// tools.
	Tools []string
	// Scopes are its scopes (RFC 9728 scopes_supported), registered with
	// the authorization server.
	Scopes []string
	// Challenge is what a 401 names (resource.Config.ChallengeScopes):
	// the read scopes, so a client starts with the least and steps up to
	// the rest; nil (every scope) when there is no read scope.
	Challenge []string
	// Upstream is set for a gateway: the remote server it fronts.
	Upstream Upstream
}

// Upstream is a remote MCP server that a gateway fronts, as the host
// reaches it.
type Upstream interface {
	// Remote is the upstream's configuration (mcp.remotes): its name, URL
	// and tools.
	Remote() config.MCPRemoteConfig
	// ClientFor returns a client of the upstream acting as workload id
	// (for a gateway, the host itself), asking for scopes only.
	ClientFor(id credentials.Identity, scopes ...string) (UpstreamClient, error)
}

// UpstreamClient calls an upstream's tools for a subject, whose token the
// client exchanges for one to the upstream.
type UpstreamClient interface {
	CallTool(ctx context.Context, subject mcpclient.Subject, name string, args json.RawMessage) (mcpclient.Result, error)
}

// ResolveConfig is what [Resolve] resolves the configured servers with.
type ResolveConfig struct {
	// Issuer is the host's issuer: each server's resource is Issuer +
	// PathPrefix + name. Required when there are servers.
	Issuer string
	// Servers are the configured servers (mcp.servers).
	Servers []config.MCPServerConfig
	// Tools are the host's tools by name.
	Tools map[string]mediator.Tool
	// ReadOnly are the tools that change nothing ([ToolScope]).
	ReadOnly map[string]bool
	// Remote reports whether a tool is a remote server's: hosted servers
	// offer host tools only. Nil: none is.
	Remote func(mediator.Tool) bool
	// Upstreams are the remote servers a gateway may front, by name.
	Upstreams map[string]Upstream
}

// Resolve resolves the configured servers: every tool of a server must be
// a host tool, and the upstream of a gateway a known remote. The host
// registers the servers' resources and scopes with its authorization
// server, then serves them with [New].
func Resolve(cfg ResolveConfig) ([]Server, error) {
	if len(cfg.Servers) > 0 && cfg.Issuer == "" {
		return nil, errors.New("mcphost: Issuer is required")
	}
	var out []Server
	for _, s := range cfg.Servers {
		hs := Server{Name: s.Name, Resource: cfg.Issuer + PathPrefix + s.Name}
		if s.Upstream != "" {
			hs.Upstream = cfg.Upstreams[s.Upstream]
			if hs.Upstream == nil {
				return nil, fmt.Errorf("mcphost: mcp server %s: no remote %q", s.Name, s.Upstream)
			}
			hs.Tools = hs.Upstream.Remote().Tools
			hs.Scopes = s.Scopes
			for _, sc := range s.Scopes {
				if strings.HasSuffix(sc, ":read") {
					hs.Challenge = append(hs.Challenge, sc)
				}
			}
			out = append(out, hs)
			continue
		}
		for _, t := range s.Tools {
			tool, ok := cfg.Tools[t]
			if !ok {
				return nil, fmt.Errorf("mcphost: mcp server %s: no host tool %q", s.Name, t)
			}
			if cfg.Remote != nil && cfg.Remote(tool) {
				return nil, fmt.Errorf("mcphost: mcp server %s: %q is a remote tool; hosted servers offer host tools only", s.Name, t)
			}
			hs.Tools = append(hs.Tools, t)
			sc := ToolScope(t, cfg.ReadOnly[t])
			if !slices.Contains(hs.Scopes, sc) {
				hs.Scopes = append(hs.Scopes, sc)
			}
			if cfg.ReadOnly[t] && !slices.Contains(hs.Challenge, sc) {
				hs.Challenge = append(hs.Challenge, sc)
			}
		}
		out = append(out, hs)
	}
	return out, nil
}

// AuthServer is what the servers need of the host's authorization server
// (a *authserver.Server): its tokens are verified against its keys and
// revocations, and it mints each call's Txn-Token.
type AuthServer interface {
	Issuer() string
	Keys() jose.KeyFunc
	Revoked(ctx context.Context, jti string) (bool, error)
	SubjectRevoked(ctx context.Context, subject string, issuedAt time.Time) (bool, error)
	IssueTxnToken(ctx context.Context, r authserver.TxnTokenRequest) (string, *txntoken.Claims, error)
}

var _ AuthServer = (*authserver.Server)(nil)

// WorkloadVerifier checks a WIT and its proof whenever a request presents
// them (a *wimse.Verifier), putting the verified peer in the request's
// context.
type WorkloadVerifier interface {
	Middleware(next http.Handler) http.Handler
}

// Approvals asks users to approve calls (a *consent.Requests): a CIBA
// request to the authorization server, found again by the call itself.
type Approvals interface {
	Ask(ctx context.Context, call consent.Call) (consent.Pending, error)
	Collect(ctx context.Context, p consent.Pending) (consent.Grant, error)
	Claim(ctx context.Context, id string, note map[string]any) error
}

var _ Approvals = (*consent.Requests)(nil)

// Config configures [New]: what the host provides.
type Config struct {
	// Servers are the servers to serve, as [Resolve] returned them.
	Servers []Server
	// Tools are the host tools the servers' tools run, by name; ReadOnly
	// those that change nothing ([ToolScope]).
	Tools    map[string]mediator.Tool
	ReadOnly map[string]bool
	// AuthServer is the host's authorization server. Required.
	AuthServer AuthServer
	// Issuers are further authorization servers whose access tokens the
	// servers accept (resource.Config.Issuers).
	Issuers []resource.Issuer
	// AuthorizationServers are the issuers each server names in its
	// metadata; nil means AuthServer's issuer only.
	AuthorizationServers []string
	// CheckCaller is what a request needs beyond a valid token
	// (resource.Config.CheckCaller): a workload proof by the token's
	// client, say. Nil: nothing.
	CheckCaller func(r *http.Request, c *resource.Caller) error
	// Workload checks a WIT and its proof whenever a request presents
	// them. Required.
	Workload WorkloadVerifier
	// Replay makes DPoP proofs single-use (across every host sharing it).
	// Required.
	Replay dpop.ReplayCache
	// Auditor takes every decision's record. Required.
	Auditor mediator.Auditor
	// Authorizer, when set, returns the servers' policy hook, given a
	// server's MCP tool names mapped to the host's tool names; a tool's
	// audited policy then reads "scope … + policy". Nil: scopes alone
	// decide.
	Authorizer func(tools map[string]string) mcpserver.Authorizer
	// Approvals, when set, asks the caller's user about a call the policy
	// allows only with approval. Nil: approvals are off, such a call is
	// refused.
	Approvals Approvals
	// HostID is the host's workload identity: req_wl of each call's
	// Txn-Token, and the workload a gateway acts as. Required.
	HostID credentials.Identity
	// WrapServer, when set, wraps each server's endpoint, outermost (the
	// host's Origin check and CORS).
	WrapServer func(http.Handler) http.Handler
	// WrapMetadata, when set, wraps each server's metadata endpoint (the
	// host's CORS).
	WrapMetadata func(http.Handler) http.Handler
	// Observer, when set, observes each tools/call as a mediated call
	// (metrics, a span).
	Observer mediator.Observer
	// Version is the servers' implementation version.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Bridge is the hosted MCP servers, ready to mount.
type Bridge struct {
	cfg      Config
	handlers []mount
}

// mount is one handler and its path.
type mount struct {
	path    string
	handler http.Handler
}

// New checks cfg and builds every server of cfg.Servers.
func New(cfg Config) (*Bridge, error) {
	switch {
	case cfg.AuthServer == nil:
		return nil, errors.New("mcphost: AuthServer is required")
	case cfg.Workload == nil:
		return nil, errors.New("mcphost: Workload is required")
	case cfg.Replay == nil:
		return nil, errors.New("mcphost: Replay is required")
	case cfg.Auditor == nil:
		return nil, errors.New("mcphost: Auditor is required")
	case cfg.HostID.IsZero():
		return nil, errors.New("mcphost: HostID is required")
	}
	for _, s := range cfg.Servers {
		for _, t := range s.Tools {
			if _, ok := cfg.Tools[t]; !ok && s.Upstream == nil {
				return nil, fmt.Errorf("mcphost: mcp server %s: no host tool %q", s.Name, t)
			}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WrapServer == nil {
		cfg.WrapServer = func(h http.Handler) http.Handler { return h }
	}
	if cfg.WrapMetadata == nil {
		cfg.WrapMetadata = func(h http.Handler) http.Handler { return h }
	}
	if cfg.AuthorizationServers == nil {
		cfg.AuthorizationServers = []string{cfg.AuthServer.Issuer()}
	}
	b := &Bridge{cfg: cfg}
	if err := b.build(); err != nil {
		return nil, err
	}
	return b, nil
}

// Mount serves each server at PathPrefix + name, and its RFC 9728
// metadata, on mux.
func (b *Bridge) Mount(mux *http.ServeMux) {
	for _, m := range b.handlers {
		mux.Handle(m.path, m.handler)
	}
}

// build makes each server's handlers. Tokens are verified locally against
// the authorization server's keys and revocations; tool handlers get the
// verified caller, never the token. A 401 names the server's read scopes
// only (least privilege: MCP clients ask for the challenged scope first)
// while the metadata lists every scope; a 403 names what a call lacks, so
// a client steps up to write when it needs to.
func (b *Bridge) build() error {
	cfg := b.cfg
	denials, err := httpaudit.New(httpaudit.Config{Auditor: cfg.Auditor, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("mcphost: %w", err)
	}
	issuerURL := cfg.AuthServer.Issuer()
	for _, hs := range cfg.Servers {
		mdPath, err := resource.MetadataPath(hs.Resource)
		if err != nil {
			return fmt.Errorf("mcphost: %w", err)
		}
		dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: cfg.Replay, Now: cfg.Now})
		if err != nil {
			return fmt.Errorf("mcphost: %w", err)
		}
		v, err := resource.New(resource.Config{
			Resource:        hs.Resource,
			MetadataURL:     issuerURL + mdPath,
			Issuer:          issuerURL,
			Keys:            cfg.AuthServer.Keys(),
			Revoked:         cfg.AuthServer.Revoked,
			SubjectRevoked:  cfg.AuthServer.SubjectRevoked,
			Issuers:         cfg.Issuers,
			ScopesSupported: hs.Scopes,
			ChallengeScopes: hs.Challenge,
			CheckCaller:     cfg.CheckCaller,
			DPoP:            dv,
			Now:             cfg.Now,
			Logger:          cfg.Logger.With("component", "mcp", "server", hs.Name),
		})
		if err != nil {
			return fmt.Errorf("mcphost: mcp server %s: %w", hs.Name, err)
		}
		var list []mcpserver.Tool
		names := map[string]string{} // MCP tool name → host tool name
		for _, name := range hs.Tools {
			var ct callTool
			if hs.Upstream != nil {
				ct = b.gatewayTool(hs, name)
			} else {
				ct = b.hostTool(name, cfg.Tools[name])
			}
			names[ct.Name] = ct.resource
			// Every tool of a hosted server runs through the audited
			// path; there is no other way in.
			list = append(list, b.audited(ct))
		}
		var authorize mcpserver.Authorizer
		if cfg.Authorizer != nil {
			authorize = cfg.Authorizer(names)
		}
		srv, err := mcpserver.New(mcpserver.Config{
			Name: hs.Name, Title: "agenthost " + hs.Name, Version: cfg.Version, Tools: list, Verifier: v,
			Logger: cfg.Logger.With("component", "mcp", "server", hs.Name),
			// Only a gateway's handlers get the caller's token, to
			// exchange it; host tools never do.
			KeepSubjectToken: hs.Upstream != nil,
			Authorize:        authorize,
			OnDenied: func(ctx context.Context, caller *resource.Caller, tool string, err error) {
				b.auditRefused(ctx, caller, names[tool], err)
			},
		})
		if err != nil {
			return fmt.Errorf("mcphost: mcp server %s: %w", hs.Name, err)
		}
		// Every request refused before it reaches a tool (no or bad
		// token, too little scope, a malformed or oversized body) is
		// audited as a denied decision.
		server := hs.Name
		b.handlers = append(b.handlers,
			mount{PathPrefix + hs.Name, cfg.WrapServer(denials.Wrap(ActionRequest, func(*http.Request) string { return server },
				cfg.Workload.Middleware(keepCallerToken(srv.Handler()))))},
			mount{mdPath, cfg.WrapMetadata(resource.MetadataHandler(oauth.ResourceMetadata{
				Resource:                      hs.Resource,
				AuthorizationServers:          cfg.AuthorizationServers,
				ScopesSupported:               hs.Scopes,
				BearerMethodsSupported:        []string{"header"},
				ResourceName:                  "agenthost " + hs.Name,
				DPoPSigningAlgValuesSupported: algNames(dv),
			}))})
	}
	return nil
}

func algNames(v *dpop.Verifier) []string {
	var out []string
	for _, a := range v.Algorithms() {
		out = append(out, string(a))
	}
	return out
}
