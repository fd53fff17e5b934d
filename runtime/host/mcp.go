package host

import (
	"fmt"
	"net/http"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mcphost"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

// PathMCP is where hosted MCP servers are served: PathMCP + name.
const PathMCP = mcphost.PathPrefix

// mcpResources resolves the mcp section against the host's tools
// (runtime/mcphost): every tool must be a host tool, every gateway's
// upstream a remote. The servers' resources and scopes are registered
// with the authorization server.
func (h *Host) mcpResources(issuer string, tools map[string]mediator.Tool) ([]mcphost.Server, error) {
	upstreams := map[string]mcphost.Upstream{}
	for _, r := range h.remotes.Servers() {
		upstreams[r.Config().Name] = gatewayUpstream{r}
	}
	servers, err := mcphost.Resolve(mcphost.ResolveConfig{
		Issuer: issuer, Servers: h.cfg.MCP.Servers, Tools: tools, ReadOnly: h.readOnly, Upstreams: upstreams,
		Remote: remotetools.IsTool,
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return servers, nil
}

// mountMCP serves the hosted MCP servers (runtime/mcphost) on mux, their
// tools from tools: tokens verified against the embedded authorization
// server and the trusted issuers, a hosted agent's token only with its
// workload proof, every call audited, the policy and approvals the
// host's.
func (h *Host) mountMCP(mux *http.ServeMux, servers []mcphost.Server, tools map[string]mediator.Tool) error {
	// A WIT and its proof are checked whenever a request presents them.
	wv, err := h.workloadVerifier()
	if err != nil {
		return err
	}
	cfg := mcphost.Config{
		Servers:              servers,
		Tools:                tools,
		ReadOnly:             h.readOnly,
		AuthServer:           h.as,
		Issuers:              h.resourceIssuers(),
		AuthorizationServers: h.authorizationServers(),
		CheckCaller:          h.checkWorkloadProof,
		Workload:             wv,
		Replay:               storeReplayCache{kv: h.store, now: h.now},
		Auditor:              h.audit,
		HostID:               h.hostID,
		WrapServer:           newOriginGuard(h.as.Issuer(), h.cfg.MCP.AllowedOrigins).wrap,
		WrapMetadata:         allowCORS,
		Observer:             h.mediatorObserver(),
		Version:              h.opts.Version,
		Now:                  h.now,
		Logger:               h.log,
	}
	if h.pdp != nil {
		cfg.Authorizer = h.mcpAuthorizer
	}
	if h.requests != nil {
		cfg.Approvals = h.requests
	}
	b, err := mcphost.New(cfg)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	b.Mount(mux)
	return nil
}

// gatewayUpstream is a remote server as the upstream of a gateway: the
// host reaches it as itself (runtime/remotetools), exchanging each
// caller's token.
type gatewayUpstream struct{ r *remotetools.Server }

var _ mcphost.Upstream = gatewayUpstream{}

// Remote implements mcphost.Upstream.
func (u gatewayUpstream) Remote() config.MCPRemoteConfig { return u.r.Config() }

// ClientFor implements mcphost.Upstream.
func (u gatewayUpstream) ClientFor(id credentials.Identity, scopes ...string) (mcphost.UpstreamClient, error) {
	c, err := u.r.ClientFor(id, scopes...)
	if err != nil {
		return nil, err
	}
	return c, nil
}
