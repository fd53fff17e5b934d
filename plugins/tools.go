package plugins

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
)

// ErrUnavailable: the plugin process could not be reached (it exited or
// its connection broke).
var ErrUnavailable = errors.New("plugins: plugin unavailable")

// ErrRefused: a tool plugin refused a call (PermissionDenied): the call's
// Transaction Token was missing, did not verify or did not match the call.
var ErrRefused = errors.New("plugins: call refused by the tool plugin")

// ToolPlugin is a launched tool plugin: a process that offers tools and
// serves nothing else. It gets no Host service, so it cannot call out
// through the host; whatever it needs comes in the call.
type ToolPlugin struct {
	name    string
	client  *plugin.Client
	proc    *sandbox.Process
	tools   pluginpb.ToolProviderClient
	listing *pluginpb.ListProvidedToolsResponse
	keys    func() TxnKeys

	// mu serializes sending keys; sent is what the plugin holds.
	mu   sync.Mutex
	sent TxnKeys
}

// TxnKeys is what a tool plugin checks Transaction Tokens with: the
// authorization server's public keys as a JWK Set (JSON) and the trust
// domain, the aud of every token. It holds no secret.
type TxnKeys struct {
	JWKS        string
	TrustDomain string
}

// LaunchTools starts a tool plugin and completes the handshake; cfg.Host is
// not used. ctx bounds the start only. On any error the process is killed
// before LaunchTools returns.
func LaunchTools(ctx context.Context, cfg Config) (*ToolPlugin, error) {
	st, err := start(ctx, cfg, pluginpb.ToolsPluginName, toolsPlugin{})
	if err != nil {
		return nil, err
	}
	client := st.client
	p := &ToolPlugin{name: cfg.Name, client: client, proc: st.proc, tools: st.raw.(pluginpb.ToolProviderClient), keys: cfg.TxnKeys}
	if p.keys == nil {
		p.keys = func() TxnKeys { return TxnKeys{} }
	}
	// go-plugin dispenses gRPC plugins on the host side only, so ask for
	// the tool list now: a binary that is not a tool plugin fails here and
	// not on a user's first call.
	if p.listing, err = p.ListTools(ctx); err != nil {
		client.Kill()
		if status.Code(errors.Unwrap(err)) == codes.Unimplemented {
			return nil, fmt.Errorf("%w: plugin %s (%s) is not a tool plugin", ErrConfig, cfg.Name, cfg.Path)
		}
		return nil, err
	}
	return p, nil
}

// Listing is what the plugin listed at launch.
func (p *ToolPlugin) Listing() *pluginpb.ListProvidedToolsResponse { return p.listing }

// Name is the plugin's name.
func (p *ToolPlugin) Name() string { return p.name }

// PID is the id of the process the host started for the plugin (see
// [Plugin.PID]); 0 once it has exited.
func (p *ToolPlugin) PID() int { return livePID(p.proc) }

// Sandbox says which protections contain the plugin process.
func (p *ToolPlugin) Sandbox() sandbox.Protections { return p.proc.Protections() }

// Exited reports whether the plugin process has exited.
func (p *ToolPlugin) Exited() bool { return p.client.Exited() }

// Kill ends the plugin process.
func (p *ToolPlugin) Kill() { p.client.Kill() }

// ListTools asks the plugin which tools it offers, and sends it the keys
// Config.TxnKeys returns now.
func (p *ToolPlugin) ListTools(ctx context.Context) (*pluginpb.ListProvidedToolsResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listLocked(ctx, p.keys())
}

func (p *ToolPlugin) listLocked(ctx context.Context, k TxnKeys) (*pluginpb.ListProvidedToolsResponse, error) {
	r, err := p.tools.ListTools(ctx, &pluginpb.ListProvidedToolsRequest{ProtocolVersion: pluginpb.ProtocolVersion,
		TxnTokenJwks: k.JWKS, TrustDomain: k.TrustDomain, PluginName: p.name})
	if err != nil {
		return nil, fmt.Errorf("plugins: %s: list tools: %w", p.name, err)
	}
	p.sent = k
	return r, nil
}

// syncKeys sends the plugin the current keys when they are not what it
// holds (the authorization server rotated its keys, or had none when the
// plugin started), by calling ListTools again.
func (p *ToolPlugin) syncKeys(ctx context.Context) error {
	k := p.keys()
	p.mu.Lock()
	defer p.mu.Unlock()
	if k == p.sent {
		return nil
	}
	_, err := p.listLocked(ctx, k)
	return err
}

// CallTool calls one of the plugin's tools with the call's Transaction
// Token (see plugin.proto: the plugin checks it, and takes who the call is
// for from it). An error is a transport or plugin failure, or the plugin's
// refusal of the token; a tool that ran and failed reports IsError.
func (p *ToolPlugin) CallTool(ctx context.Context, tool, argsJSON, txnToken string) (*pluginpb.CallToolResponse, error) {
	if err := p.syncKeys(ctx); err != nil {
		if status.Code(errors.Unwrap(err)) == codes.Unavailable {
			return nil, fmt.Errorf("%w: %s: send keys: %v", ErrUnavailable, p.name, err)
		}
		return nil, err
	}
	r, err := p.tools.CallTool(ctx, &pluginpb.CallProvidedToolRequest{Tool: tool, ArgumentsJson: argsJSON, TxnToken: txnToken})
	switch status.Code(err) {
	case codes.Unavailable:
		return nil, fmt.Errorf("%w: %s: call %s: %v", ErrUnavailable, p.name, tool, err)
	case codes.PermissionDenied:
		return nil, fmt.Errorf("%w: %s: call %s: %s", ErrRefused, p.name, tool, status.Convert(err).Message())
	}
	if err != nil {
		return nil, fmt.Errorf("plugins: %s: call %s: %w", p.name, tool, err)
	}
	return r, nil
}

// toolsPlugin is the host half of a tool plugin's go-plugin binding.
type toolsPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (toolsPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("plugins: the host does not serve the tool provider service")
}

func (toolsPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return pluginpb.NewToolProviderClient(conn), nil
}
