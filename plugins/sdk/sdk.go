package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// Agent is implemented by an agent author.
type Agent interface {
	// Describe says what the agent is and what it needs.
	Describe() Description
	// Run performs one task and returns its final answer. Returning an
	// error fails the task with that error's text.
	Run(ctx context.Context, t *Task) (string, error)
}

// Description is what [Agent.Describe] returns.
type Description struct {
	Name        string
	Description string
	Version     string
	Skills      []Skill
	// Tools the agent wants to call ("server/tool").
	Tools []string
	// Models the agent wants to use (aliases from the host's config).
	Models []string
}

// Skill is one capability the agent advertises.
type Skill struct {
	ID, Name, Description string
	Tags, Examples        []string
}

// Handshake is the go-plugin handshake shared by the host and every agent
// plugin.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginpb.ProtocolVersion,
	MagicCookieKey:   pluginpb.MagicCookieKey,
	MagicCookieValue: pluginpb.MagicCookieValue,
}

// Serve serves a as an agent plugin over go-plugin's gRPC protocol. It is
// called from main and returns when the host ends the plugin.
func Serve(a Agent) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginpb.PluginName: &grpcPlugin{agent: a}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// grpcPlugin is the plugin half of the go-plugin binding.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	agent Agent
}

func (p *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterAgentServer(s, &agentServer{agent: p.agent, broker: broker})
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: the agent plugin does not dial the host's agent service")
}

type agentServer struct {
	pluginpb.UnimplementedAgentServer
	agent  Agent
	broker *plugin.GRPCBroker

	mu sync.Mutex
	// conn is the connection to the Host service the host offered at
	// Describe, kept for every task; nil until then. host is its client.
	conn *grpc.ClientConn
	host pluginpb.HostClient
}

func (s *agentServer) Describe(_ context.Context, req *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	if v := req.GetProtocolVersion(); v != 0 && v != pluginpb.ProtocolVersion {
		return nil, fmt.Errorf("sdk: host speaks plugin protocol %d, this agent %d", v, pluginpb.ProtocolVersion)
	}
	d := s.agent.Describe()
	resp := &pluginpb.DescribeResponse{
		Name: d.Name, Description: d.Description, Version: d.Version,
		Tools: d.Tools, Models: d.Models,
	}
	for _, sk := range d.Skills {
		resp.Skills = append(resp.Skills, &pluginpb.Skill{
			Id: sk.ID, Name: sk.Name, Description: sk.Description, Tags: sk.Tags, Examples: sk.Examples,
		})
	}
	// The host's service for the plugin's whole life: one connection (and
	// one TLS handshake) instead of one per task. The host offers it again
	// only when it did not count an earlier offer as taken (that Describe
	// failed on its side) and has stopped serving it, so the latest offer
	// replaces any connection held.
	if id := req.GetHostBrokerId(); id != 0 {
		conn, err := s.broker.Dial(id)
		if err != nil {
			return nil, fmt.Errorf("sdk: dial the host service: %w", err)
		}
		s.mu.Lock()
		old := s.conn
		s.conn, s.host = conn, pluginpb.NewHostClient(conn)
		s.mu.Unlock()
		if old != nil {
			old.Close()
		}
		resp.HostConnected = true
	}
	return resp, nil
}

func (s *agentServer) Run(req *pluginpb.RunRequest, stream grpc.ServerStreamingServer[pluginpb.RunEvent]) error {
	t := &Task{ID: req.GetTaskId(), Input: req.GetInput(), Metadata: req.GetMetadata(), send: stream.Send}
	if id := req.GetHostBrokerId(); id != 0 {
		// The host offers its service for this task on a broker id of its
		// own; the connection ends with the task.
		conn, err := s.broker.Dial(id)
		if err != nil {
			return fmt.Errorf("sdk: dial the host service: %w", err)
		}
		defer conn.Close()
		t.host = pluginpb.NewHostClient(conn)
	} else {
		s.mu.Lock()
		t.host = s.host
		s.mu.Unlock()
	}
	out, err := s.agent.Run(stream.Context(), t)
	if err != nil {
		return stream.Send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Error{Error: &pluginpb.RunError{Code: "agent_error", Message: err.Error()}}})
	}
	return stream.Send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Final{Final: &pluginpb.FinalResult{Text: out}}})
}

// ErrNoHost is returned by Task methods that need the host when the task
// was started without a host connection.
var ErrNoHost = errors.New("sdk: task has no host connection")

// Task is one task being run, and the agent's only way to reach the outside
// world: every method calls the host, which mediates the call.
type Task struct {
	ID       string
	Input    string
	Metadata map[string]string

	host pluginpb.HostClient
	send func(*pluginpb.RunEvent) error
}

// Think reports an intermediate thought to whoever follows the task.
func (t *Task) Think(text string) error {
	return t.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Thought{Thought: &pluginpb.Thought{Text: text}}})
}

// Partial reports partial output.
func (t *Task) Partial(text string) error {
	return t.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Partial{Partial: &pluginpb.PartialOutput{Text: text}}})
}

// ToolResult is the result of [Task.CallTool].
type ToolResult struct {
	// Text is the concatenated text content.
	Text string
	// IsError reports that the tool ran and reported a failure.
	IsError bool
}

// ListTools lists the tools this agent may call in this task.
func (t *Task) ListTools(ctx context.Context) ([]*pluginpb.ToolDefinition, error) {
	if t.host == nil {
		return nil, ErrNoHost
	}
	resp, err := t.host.ListTools(ctx, &pluginpb.ListToolsRequest{TaskId: t.ID})
	if err != nil {
		return nil, fmt.Errorf("sdk: list tools: %w", err)
	}
	return resp.GetTools(), nil
}

// CallTool calls a tool through the host. args is encoded as a JSON object.
func (t *Task) CallTool(ctx context.Context, tool string, args any) (*ToolResult, error) {
	if t.host == nil {
		return nil, ErrNoHost
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode arguments of %s: %w", tool, err)
	}
	if err := t.send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_ToolCall{ToolCall: &pluginpb.ToolCallStarted{Tool: tool, ArgumentsJson: string(b)}}}); err != nil {
		return nil, err
	}
	resp, err := t.host.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: t.ID, Tool: tool, ArgumentsJson: string(b)})
	if err != nil {
		return nil, fmt.Errorf("sdk: call tool %s: %w", tool, err)
	}
	res := &ToolResult{IsError: resp.GetIsError()}
	for _, c := range resp.GetContent() {
		res.Text += c.GetText()
	}
	return res, nil
}

// Complete asks the host's model for the next message. The task id is
// filled in.
func (t *Task) Complete(ctx context.Context, req *pluginpb.CompleteRequest) (*pluginpb.CompleteResponse, error) {
	if t.host == nil {
		return nil, ErrNoHost
	}
	req.TaskId = t.ID
	resp, err := t.host.Complete(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sdk: complete: %w", err)
	}
	return resp, nil
}

// CallAgent delegates input to another agent and returns its answer.
func (t *Task) CallAgent(ctx context.Context, agent, input string) (string, error) {
	if t.host == nil {
		return "", ErrNoHost
	}
	resp, err := t.host.CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: t.ID, Agent: agent, Input: input})
	if err != nil {
		return "", fmt.Errorf("sdk: call agent %s: %w", agent, err)
	}
	return resp.GetOutput(), nil
}

// AskUser asks the task's user a question and returns the action (accept,
// decline or cancel) and the answer as JSON.
func (t *Task) AskUser(ctx context.Context, question string) (action, answerJSON string, err error) {
	if t.host == nil {
		return "", "", ErrNoHost
	}
	resp, err := t.host.AskUser(ctx, &pluginpb.AskUserRequest{TaskId: t.ID, Question: question})
	if err != nil {
		return "", "", fmt.Errorf("sdk: ask user: %w", err)
	}
	return resp.GetAction(), resp.GetContentJson(), nil
}

// IsRefused reports whether err is the host's refusal of a call (policy,
// a missing grant, an approval denied or expired): the task should not
// go on as if the call had been made.
func IsRefused(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if s, ok := status.FromError(err); ok && s.Code() == codes.PermissionDenied {
			return true
		}
	}
	return false
}
