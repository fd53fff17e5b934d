package mcphost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// callTool is one tool of a hosted MCP server and the names its calls are
// audited under. Its Handler runs the tool and nothing else:
// [Bridge.audited] makes it an MCP tool.
type callTool struct {
	mcpserver.Tool
	action   string // ActionToolCall or ActionGatewayCall
	resource string // the host's name of the tool ("notes/add", "docs/whoami")
	policy   string // what allowed the call
	// tool is the host tool the call runs (nil for a gateway's): its
	// declared business fields go into the call's Txn-Token.
	tool mediator.Tool
}

// hostTool adapts a host tool (built in or from a tool plugin): the caller
// is the token's subject. Its handler only runs the tool; build wraps it
// in [Bridge.audited].
func (b *Bridge) hostTool(name string, t mediator.Tool) callTool {
	def := t.Definition()
	// Inside the server the tool goes by its own name ("notes/search" is
	// "search" on the notes server; MCP tool names have no '/').
	_, short, _ := strings.Cut(name, "/")
	scope := ToolScope(name, b.cfg.ReadOnly[name])
	policyName := "scope " + scope
	if b.cfg.Authorizer != nil {
		policyName += " + policy"
	}
	return callTool{
		Tool: mcpserver.Tool{
			Name:        strings.ReplaceAll(short, "/", "_"),
			Description: def.Description,
			InputSchema: def.Parameters,
			Scope:       scope,
			ReadOnly:    b.cfg.ReadOnly[name],
			Handler: func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (mcpserver.Result, error) {
				mc := mediator.Caller{Agent: "mcp:" + caller.Subject, Subject: caller.Subject, ClientID: caller.ClientID, Scopes: caller.Scopes}
				res, err := t.Call(ctx, mc, args)
				if err != nil {
					return mcpserver.Result{}, err
				}
				return mcpserver.Result{Text: res.Text, IsError: res.IsError}, nil
			},
		},
		action:   ActionToolCall,
		resource: name,
		policy:   policyName,
		tool:     t,
	}
}

// gatewayTool forwards a tool call to the gateway's upstream for the
// caller: the host exchanges the caller's token (RFC 8693; the host is the
// actor) for a token to the upstream, so each user reaches the upstream
// with their own delegated token and never a shared credential. Its
// handler only forwards; build wraps it in [Bridge.audited].
func (b *Bridge) gatewayTool(hs Server, name string) callTool {
	remote := hs.Upstream.Remote()
	return callTool{
		Tool: mcpserver.Tool{
			Name:        name,
			Description: fmt.Sprintf("Tool %q of %s, called for you", name, remote.URL),
			InputSchema: json.RawMessage(`{"type":"object"}`),
			Handler: func(ctx context.Context, caller *resource.Caller, args json.RawMessage) (mcpserver.Result, error) {
				subject, ok := mcpserver.SubjectToken(ctx)
				if !ok {
					return mcpserver.Result{}, errors.New("gateway: no subject token")
				}
				c, err := hs.Upstream.ClientFor(b.cfg.HostID, hs.Scopes...)
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
		action:   ActionGatewayCall,
		resource: remote.Name + "/" + name,
		policy:   "token exchange",
	}
}
