package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// PathMCP is where hosted MCP servers are served: PathMCP + name.
const PathMCP = "/mcp/"

// toolScope is the OAuth scope a caller needs for a host tool over MCP:
// "<server>:read" for tools that change nothing, "<server>:write"
// otherwise, where <server> is the tool's prefix ("notes/add" →
// notes:write).
func (h *Host) toolScope(name string) string {
	prefix, _, _ := strings.Cut(name, "/")
	if h.readOnly[name] {
		return prefix + ":read"
	}
	return prefix + ":write"
}

// hostedMCP is one configured MCP server, resolved against the host's
// tools.
type hostedMCP struct {
	name     string
	resource string
	tools    []string
	scopes   []string
	// challenge is what a 401 names (resource.Config.ChallengeScopes):
	// the read scopes, so a client starts with the least and steps up to
	// the rest; nil (every scope) when there is no read scope.
	challenge []string
	// upstream is set for a gateway.
	upstream *remoteServer
}

// mcpResources resolves the mcp section: every tool must be a host tool.
// The servers' resources and scopes are registered with the authorization
// server.
func (h *Host) mcpResources(issuer string, tools map[string]mediator.Tool) ([]hostedMCP, error) {
	var out []hostedMCP
	for _, s := range h.cfg.MCP.Servers {
		hs := hostedMCP{name: s.Name, resource: issuer + PathMCP + s.Name}
		if s.Upstream != "" {
			hs.upstream = h.remotes[s.Upstream]
			if hs.upstream == nil {
				return nil, fmt.Errorf("host: mcp server %s: no remote %q", s.Name, s.Upstream)
			}
			hs.tools = hs.upstream.cfg.Tools
			hs.scopes = s.Scopes
			for _, sc := range s.Scopes {
				if strings.HasSuffix(sc, ":read") {
					hs.challenge = append(hs.challenge, sc)
				}
			}
			out = append(out, hs)
			continue
		}
		for _, t := range s.Tools {
			tool, ok := tools[t]
			if !ok {
				return nil, fmt.Errorf("host: mcp server %s: no host tool %q", s.Name, t)
			}
			if _, remote := tool.(remoteTool); remote {
				return nil, fmt.Errorf("host: mcp server %s: %q is a remote tool; hosted servers offer host tools only", s.Name, t)
			}
			hs.tools = append(hs.tools, t)
			sc := h.toolScope(t)
			if !slices.Contains(hs.scopes, sc) {
				hs.scopes = append(hs.scopes, sc)
			}
			if h.readOnly[t] && !slices.Contains(hs.challenge, sc) {
				hs.challenge = append(hs.challenge, sc)
			}
		}
		out = append(out, hs)
	}
	return out, nil
}

// mountMCP serves each hosted MCP server with its RFC 9728 metadata.
// Tokens are verified locally against the embedded authorization
// server's keys and revocations; tool handlers get the verified caller,
// never the token. A 401 names the server's read scopes only (least
// privilege: MCP clients ask for the challenged scope first) while the
// metadata lists every scope; a 403 names what a call lacks, so a client
// steps up to write when it needs to.
func (h *Host) mountMCP(mux *http.ServeMux, servers []hostedMCP, tools map[string]mediator.Tool) error {
	guard := newOriginGuard(h.as.Issuer(), h.cfg.MCP.AllowedOrigins)
	// A WIT and its proof are checked whenever a request presents them.
	wv, err := h.workloadVerifier()
	if err != nil {
		return err
	}
	for _, hs := range servers {
		mdPath, err := resource.MetadataPath(hs.resource)
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		issuerURL := h.as.Issuer()
		dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: storeReplayCache{kv: h.store, now: h.now}, Now: h.now})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		v, err := resource.New(resource.Config{
			Resource:        hs.resource,
			MetadataURL:     issuerURL + mdPath,
			Issuer:          issuerURL,
			Keys:            h.as.Keys(),
			Revoked:         h.as.Revoked,
			SubjectRevoked:  h.as.SubjectRevoked,
			Issuers:         h.resourceIssuers(),
			ScopesSupported: hs.scopes,
			ChallengeScopes: hs.challenge,
			CheckCaller:     h.checkWorkloadProof,
			DPoP:            dv,
			Now:             h.now,
			Logger:          h.log.With("component", "mcp", "server", hs.name),
		})
		if err != nil {
			return fmt.Errorf("host: mcp server %s: %w", hs.name, err)
		}
		var list []mcpserver.Tool
		names := map[string]string{} // MCP tool name → host tool name
		for _, name := range hs.tools {
			var ct mcpCallTool
			if hs.upstream != nil {
				ct = h.gatewayTool(hs, name)
			} else {
				ct = h.mcpTool(name, tools[name])
			}
			names[ct.Name] = ct.resource
			// Every tool of a hosted server runs through the audited
			// path; there is no other way in.
			list = append(list, h.audited(ct))
		}
		srv, err := mcpserver.New(mcpserver.Config{
			Name: hs.name, Title: "agenthost " + hs.name, Version: h.opts.Version, Tools: list, Verifier: v,
			Logger: h.log.With("component", "mcp", "server", hs.name),
			// Only a gateway's handlers get the caller's token, to
			// exchange it; host tools never do.
			KeepSubjectToken: hs.upstream != nil,
			Authorize:        h.mcpAuthorizer(names),
			OnDenied: func(ctx context.Context, caller *resource.Caller, tool string, err error) {
				h.auditRefused(ctx, caller, names[tool], err)
			},
		})
		if err != nil {
			return fmt.Errorf("host: mcp server %s: %w", hs.name, err)
		}
		mux.Handle(PathMCP+hs.name, guard.wrap(h.auditDenied(hs.name, wv.Middleware(keepCallerToken(srv.Handler())))))
		mux.Handle(mdPath, allowCORS(resource.MetadataHandler(oauth.ResourceMetadata{
			Resource:                      hs.resource,
			AuthorizationServers:          h.authorizationServers(),
			ScopesSupported:               hs.scopes,
			BearerMethodsSupported:        []string{"header"},
			ResourceName:                  "agenthost " + hs.name,
			DPoPSigningAlgValuesSupported: algNames(dv),
		})))
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

// mcpTool adapts a host tool (built in or from a tool plugin): the caller
// is the token's subject. Its handler only runs the tool; mountMCP wraps
// it in [Host.audited].
func (h *Host) mcpTool(name string, t mediator.Tool) mcpCallTool {
	def := t.Definition()
	// Inside the server the tool goes by its own name ("notes/search" is
	// "search" on the notes server; MCP tool names have no '/').
	_, short, _ := strings.Cut(name, "/")
	policyName := "scope " + h.toolScope(name)
	if h.pdp != nil {
		policyName += " + policy"
	}
	return mcpCallTool{
		Tool: mcpserver.Tool{
			Name:        strings.ReplaceAll(short, "/", "_"),
			Description: def.Description,
			InputSchema: def.Parameters,
			Scope:       h.toolScope(name),
			ReadOnly:    h.readOnly[name],
			Handler: func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (mcpserver.Result, error) {
				mc := mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID, Scopes: caller.Scopes}
				res, err := t.Call(ctx, mc, args)
				if err != nil {
					return mcpserver.Result{}, err
				}
				return mcpserver.Result{Text: res.Text, IsError: res.IsError}, nil
			},
		},
		action:   actionMCPToolCall,
		resource: name,
		policy:   policyName,
		tool:     t,
	}
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// reason, when a handler inside sets it (denyReason), says why the
	// request was refused, for the audit record.
	reason string
}

// denyReason tells the auditDeniedRequests around w why the request is
// refused; elsewhere it does nothing. The reason must hold no token.
func denyReason(w http.ResponseWriter, reason string) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.reason = reason
	}
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush lets streamed (SSE) responses through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// auditDenied records every request to a hosted MCP server that was
// refused before reaching a tool (no or bad token, too little scope, a
// malformed or oversized body) as a denied decision.
func (h *Host) auditDenied(server string, next http.Handler) http.Handler {
	return h.auditDeniedRequests("mcp.request", func(*http.Request) string { return server }, next)
}

// auditDeniedRequests records every request to next answered with a 4xx
// or 5xx as a denial of action on the resource resourceOf names, with the
// status and the OAuth or WIMSE error code.
func (h *Host) auditDeniedRequests(action string, resourceOf func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status < 400 {
			return
		}
		reason := http.StatusText(rec.status)
		if rec.reason != "" {
			reason += ": " + rec.reason
		}
		if ch := w.Header().Get("WWW-Authenticate"); ch != "" {
			if cs, err := oauth.ParseChallenges([]string{ch}); err == nil && len(cs) > 0 && cs[0].Param("error") != "" {
				reason = cs[0].Param("error")
			}
		}
		if err := h.audit.Record(r.Context(), mediator.Record{
			Time: h.now().UTC(), Action: action, Resource: resourceOf(r), Decision: "deny",
			Policy: "oauth", Reason: fmt.Sprintf("%d %s", rec.status, reason), Outcome: "denied",
		}); err != nil {
			h.log.Error("audit of a denied request failed", "action", action, "err", err)
		}
	})
}

// gatewayTool forwards a tool call to the gateway's upstream for the
// caller: the host exchanges the caller's token (RFC 8693; the host is the
// actor) for a token to the upstream, so each user reaches the upstream
// with their own delegated token and never a shared credential. Its
// handler only forwards; mountMCP wraps it in [Host.audited].
func (h *Host) gatewayTool(hs hostedMCP, name string) mcpCallTool {
	return mcpCallTool{
		Tool: mcpserver.Tool{
			Name:        name,
			Description: fmt.Sprintf("Tool %q of %s, called for you", name, hs.upstream.cfg.URL),
			InputSchema: json.RawMessage(`{"type":"object"}`),
			Handler: func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (mcpserver.Result, error) {
				subject, ok := mcpserver.SubjectToken(ctx)
				if !ok {
					return mcpserver.Result{}, errors.New("gateway: no subject token")
				}
				c, err := hs.upstream.clientFor(h.hostID, hs.scopes...)
				if err != nil {
					return mcpserver.Result{}, err
				}
				res, err := c.CallTool(ctx, mcpclient.Subject{Token: subject, Name: caller.Subject}, name, args)
				if err != nil {
					return mcpserver.Result{}, err
				}
				return mcpserver.Result{Text: res.Text, IsError: res.IsError}, nil
			},
		},
		action:   actionMCPGatewayCall,
		resource: hs.upstream.cfg.Name + "/" + name,
		policy:   "token exchange",
	}
}
