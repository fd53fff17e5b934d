package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// ToolSet is what a tool plugin offers: its name and version, and its tools.
type ToolSet struct {
	Name    string
	Version string
	Tools   []Tool
}

// Tool is one tool of a [ToolSet].
type Tool struct {
	// Name is the MCP tool name: letters, digits, '_', '-' and '.', no
	// '/'. The host serves it as "<plugin>/<name>".
	Name        string
	Description string
	// InputSchema is the JSON Schema of the arguments object; nil means
	// any object.
	InputSchema json.RawMessage
	// ReadOnly says the tool changes nothing, so a caller needs only the
	// server's read scope.
	ReadOnly bool
	// Handler runs the tool. An error is reported to the caller as a
	// failed tool call (IsError), with the error's text.
	Handler func(ctx context.Context, c Caller, args json.RawMessage) (string, error)
}

// Caller is who a tool call is made for, as the host verified it before
// making the call. It holds no credential.
type Caller struct {
	// Agent is the hosted agent making the call; empty for an MCP client.
	Agent string
	// ClientID is the calling workload's SPIFFE ID or OAuth client_id.
	ClientID string
	// Subject is the user the call is made for, when there is one.
	Subject string
	// Scopes the call was authorized with, if any.
	Scopes []string
	TaskID string
	// Chain lists the agents that delegated to this task, outermost first.
	Chain []string
}

// ServeTools serves ts as a tool plugin over go-plugin's gRPC protocol. It
// is called from main and returns when the host ends the plugin.
func ServeTools(ts ToolSet) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginpb.ToolsPluginName: &toolsPlugin{set: ts}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// ToolServer returns the ToolProvider service of ts, for tests that serve
// it without a plugin process.
func ToolServer(ts ToolSet) pluginpb.ToolProviderServer {
	s := &toolServer{set: ts, byName: map[string]Tool{}}
	for _, t := range ts.Tools {
		s.byName[t.Name] = t
	}
	return s
}

type toolsPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	set ToolSet
}

func (p *toolsPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterToolProviderServer(s, ToolServer(p.set))
	return nil
}

func (p *toolsPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the tool plugin does not dial the host")
}

type toolServer struct {
	pluginpb.UnimplementedToolProviderServer
	set    ToolSet
	byName map[string]Tool
}

func (s *toolServer) ListTools(_ context.Context, req *pluginpb.ListProvidedToolsRequest) (*pluginpb.ListProvidedToolsResponse, error) {
	if v := req.GetProtocolVersion(); v != 0 && v != pluginpb.ProtocolVersion {
		return nil, status.Errorf(codes.FailedPrecondition, "sdk: host speaks plugin protocol %d, this plugin %d", v, pluginpb.ProtocolVersion)
	}
	resp := &pluginpb.ListProvidedToolsResponse{Name: s.set.Name, Version: s.set.Version}
	for _, t := range s.set.Tools {
		schema := string(t.InputSchema)
		if schema == "" {
			schema = `{"type":"object"}`
		}
		resp.Tools = append(resp.Tools, &pluginpb.ProvidedTool{
			Definition: &pluginpb.ToolDefinition{Name: t.Name, Description: t.Description, InputSchemaJson: schema},
			ReadOnly:   t.ReadOnly,
		})
	}
	return resp, nil
}

func (s *toolServer) CallTool(ctx context.Context, req *pluginpb.CallProvidedToolRequest) (*pluginpb.CallToolResponse, error) {
	t, ok := s.byName[req.GetTool()]
	if !ok || t.Handler == nil {
		return nil, status.Errorf(codes.NotFound, "sdk: no tool %q", req.GetTool())
	}
	args := json.RawMessage(req.GetArgumentsJson())
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
		return &pluginpb.CallToolResponse{IsError: true, Content: []*pluginpb.Content{{Text: "arguments must be a JSON object"}}}, nil
	}
	c := req.GetCaller()
	out, err := t.Handler(ctx, Caller{
		Agent: c.GetAgent(), ClientID: c.GetClientId(), Subject: c.GetSubject(), Scopes: c.GetScopes(),
		TaskID: c.GetTaskId(), Chain: c.GetChain(),
	}, args)
	if err != nil {
		return &pluginpb.CallToolResponse{IsError: true, Content: []*pluginpb.Content{{Text: fmt.Sprint(err)}}}, nil
	}
	return &pluginpb.CallToolResponse{Content: []*pluginpb.Content{{Text: out}}}, nil
}
