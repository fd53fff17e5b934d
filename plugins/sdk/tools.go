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
	// SkipTxnTokenCheck leaves the Transaction Token check to the
	// handlers: the SDK then runs a handler without checking the call's
	// token, and the handler must call [Caller.VerifyCall] before it acts
	// (its Caller holds nothing else until then). Leave it false: by
	// default every call is checked before its handler runs, and a call
	// without a valid token for exactly these arguments is refused.
	SkipTxnTokenCheck bool
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
	// TxnFields are the business fields the tool acts on (say "amount"):
	// top-level members of its arguments that the host copies into the
	// call's Transaction Token (tctx) and the check compares. Neither
	// "tool" nor "args_sha256".
	TxnFields []string
	// Handler runs the tool. An error is reported to the caller as a
	// failed tool call (IsError), with the error's text.
	Handler func(ctx context.Context, c Caller, args json.RawMessage) (string, error)
}

// Caller is who a tool call is made for, read from the call's verified
// Transaction Token (its sub, and the caller the host wrote into its
// rctx). It holds no credential.
type Caller struct {
	// Agent is the hosted agent making the call; empty for an MCP client.
	Agent string
	// ClientID is the calling workload's SPIFFE ID or OAuth client_id.
	ClientID string
	// Subject is the user the call is made for: the token's sub (the
	// host's SPIFFE ID for a task no user started).
	Subject string
	// Scopes the call was authorized with, if any: the OAuth scopes of an
	// MCP client's token.
	Scopes []string
	TaskID string
	// Chain lists the agents that delegated to this task, outermost first.
	Chain []string
	// Txn holds the verified claims of the call's Transaction Token: the
	// transaction id, sub, scope, req_wl, tctx and rctx. It is nil only
	// in a handler of a ToolSet with SkipTxnTokenCheck, until VerifyCall.
	Txn *TxnClaims

	token string
	v     *txnVerifier
}

// VerifyCall checks the call's Transaction Token and that it was issued
// for a call of tool (the name the plugin lists it under) with args: the
// signature with the keys the host sent at ListTools (ES256), typ
// txntoken+jwt, aud equal to the host's trust domain, exp, iat and the
// required claims, then tctx's tool ("<plugin>/<tool>"), the SHA-256 of the
// canonical JSON of args, and the tool's declared TxnFields. On success it
// fills c from the token and returns the claims. A call without a token
// (or a host that sent no keys) wraps [ErrNoTxnToken]; a token that does
// not verify, [ErrTxnTokenInvalid]; one for another call,
// [ErrTxnCallMismatch].
//
// ServeTools calls it before every handler unless the ToolSet says
// SkipTxnTokenCheck; a handler may call it again, say with the arguments
// as it will act on them.
func (c *Caller) VerifyCall(tool string, args json.RawMessage) (*TxnClaims, error) {
	if c.v == nil {
		return nil, fmt.Errorf("%w: the caller was not built by the SDK for a call", ErrNoTxnToken)
	}
	claims, err := c.v.verifyCall(c.token, tool, args)
	if err != nil {
		return nil, err
	}
	c.Txn, c.Subject = claims, claims.Subject
	rc := claims.RequestContext
	c.Agent, _ = stringMember(rc, pluginpb.RctxAgent)
	c.ClientID, _ = stringMember(rc, pluginpb.RctxClientID)
	c.TaskID, _ = stringMember(rc, pluginpb.RctxTask)
	c.Chain, c.Scopes = stringsMember(rc, pluginpb.RctxChain), stringsMember(rc, pluginpb.RctxScopes)
	return claims, nil
}

// stringsMember reads a JSON array of strings; nil when absent or not one.
func stringsMember(m map[string]json.RawMessage, name string) []string {
	var out []string
	if raw, ok := m[name]; ok && json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
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
	s := &toolServer{set: ts, byName: map[string]Tool{}, txn: &txnVerifier{fields: map[string][]string{}}}
	for _, t := range ts.Tools {
		s.byName[t.Name] = t
		s.txn.fields[t.Name] = t.TxnFields
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
	txn    *txnVerifier
}

// ListTools answers with the plugin's tools and keeps the keys the host
// sends to check Transaction Tokens with (again at every call: the host
// calls it anew when its keys rotate).
func (s *toolServer) ListTools(_ context.Context, req *pluginpb.ListProvidedToolsRequest) (*pluginpb.ListProvidedToolsResponse, error) {
	if v := req.GetProtocolVersion(); v != 0 && v != pluginpb.ProtocolVersion {
		return nil, status.Errorf(codes.FailedPrecondition, "sdk: host speaks plugin protocol %d, this plugin %d", v, pluginpb.ProtocolVersion)
	}
	if err := s.txn.setKeys(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
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
			TxnFields:  t.TxnFields,
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
	// The unsigned caller of older hosts (req.Caller) is not used: who
	// the call is for comes from the verified token. A call the token does
	// not cover is refused before anything else is looked at.
	c := Caller{token: req.GetTxnToken(), v: s.txn}
	if !s.set.SkipTxnTokenCheck {
		if _, err := c.VerifyCall(t.Name, args); err != nil {
			return nil, status.Errorf(codes.PermissionDenied, "%s: call refused: %v", t.Name, err)
		}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil || obj == nil {
		return &pluginpb.CallToolResponse{IsError: true, Content: []*pluginpb.Content{{Text: "arguments must be a JSON object"}}}, nil
	}
	out, err := t.Handler(ctx, c, args)
	if err != nil {
		return &pluginpb.CallToolResponse{IsError: true, Content: []*pluginpb.Content{{Text: fmt.Sprint(err)}}}, nil
	}
	return &pluginpb.CallToolResponse{Content: []*pluginpb.Content{{Text: out}}}, nil
}
