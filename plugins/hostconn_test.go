package plugins

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// legacyAgent is an agent plugin as built before the Host service was
// offered at Describe: it ignores that offer and dials the broker id of
// each task.
type legacyAgent struct {
	pluginpb.UnimplementedAgentServer
	broker *plugin.GRPCBroker
}

func (legacyAgent) Describe(context.Context, *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	return &pluginpb.DescribeResponse{Name: "legacy"}, nil
}

func (a legacyAgent) Run(req *pluginpb.RunRequest, stream grpc.ServerStreamingServer[pluginpb.RunEvent]) error {
	if req.GetHostBrokerId() == 0 {
		return errors.New("no host service offered for the task")
	}
	conn, err := a.broker.Dial(req.GetHostBrokerId())
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := pluginpb.NewHostClient(conn).CallTool(stream.Context(), &pluginpb.CallToolRequest{
		TaskId: req.GetTaskId(), Tool: "docs/search", ArgumentsJson: `{"q":"x"}`})
	if err != nil {
		return err
	}
	return stream.Send(&pluginpb.RunEvent{Event: &pluginpb.RunEvent_Final{Final: &pluginpb.FinalResult{
		Text: "legacy: " + res.GetContent()[0].GetText()}}})
}

type legacyPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (legacyPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterAgentServer(s, legacyAgent{broker: b})
	return nil
}

func (legacyPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("not a client")
}

func serveLegacy() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginpb.PluginName: legacyPlugin{}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// TestHostConnectionAtDescribe: a plugin built with the SDK takes the Host
// service offered at Describe and every task uses that one connection; a
// plugin that does not take it still gets the service for each task.
func TestHostConnectionAtDescribe(t *testing.T) {
	for _, tt := range []struct {
		mode, want string
		connected  bool
	}{
		{"ok", "final: tool said: A results", true},
		{"legacy", "final: legacy: A results", false},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			host := &recordingHost{name: "A"}
			p := launch(t, tt.mode, host)
			d, err := p.Describe(context.Background())
			if err != nil || d.GetHostConnected() != tt.connected || p.connected.Load() != tt.connected {
				t.Fatalf("Describe = %v, %v; connected %v", d, err, p.connected.Load())
			}
			for i := range 3 {
				events, err := run(t, p, "task", "q")
				if err != nil || len(events) == 0 || events[len(events)-1] != tt.want {
					t.Fatalf("task %d: %q, %v", i, events, err)
				}
			}
			// A second Describe offers nothing new and keeps the state.
			if _, err := p.Describe(context.Background()); err != nil || p.connected.Load() != tt.connected {
				t.Fatalf("second Describe: %v, connected %v", err, p.connected.Load())
			}
			if len(host.calls) != 3 || !strings.HasPrefix(host.calls[2], "task docs/search") {
				t.Fatalf("host calls = %q", host.calls)
			}
		})
	}
}

// TestHostConnectionOfferedAgain: when a Describe fails on the host's side
// after the plugin took the offer (the host then stops that service), the
// next Describe offers the service again and the plugin takes the new
// offer instead of keeping its dead connection.
func TestHostConnectionOfferedAgain(t *testing.T) {
	host := &recordingHost{name: "A"}
	p := launch(t, "ok", host)
	ctx := context.Background()
	id := p.broker.NextId()
	stop := p.serveHost(id)
	d, err := p.agent.Describe(ctx, &pluginpb.DescribeRequest{ProtocolVersion: pluginpb.ProtocolVersion, HostBrokerId: id})
	if err != nil || !d.GetHostConnected() {
		t.Fatalf("Describe = %v, %v", d, err)
	}
	stop() // as Describe does when the call failed on the host's side
	if d, err := p.Describe(ctx); err != nil || !d.GetHostConnected() || !p.connected.Load() {
		t.Fatalf("Describe = %v, %v", d, err)
	}
	for i := range 2 {
		events, err := run(t, p, "task", "q")
		if err != nil || len(events) == 0 || events[len(events)-1] != "final: tool said: A results" {
			t.Fatalf("task %d: %q, %v", i, events, err)
		}
	}
}
