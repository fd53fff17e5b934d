package pluginpb

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var update = flag.Bool("update", false, "rewrite testdata/contract_v1.golden from the generated code")

// describeContract lists every service method and every message field with
// its number, kind and cardinality: the parts of the contract that must not
// change incompatibly.
func describeContract(fd protoreflect.FileDescriptor) string {
	var lines []string
	lines = append(lines, "package "+string(fd.Package()))
	for i := 0; i < fd.Services().Len(); i++ {
		s := fd.Services().Get(i)
		for j := 0; j < s.Methods().Len(); j++ {
			m := s.Methods().Get(j)
			stream := ""
			if m.IsStreamingServer() {
				stream = "stream "
			}
			lines = append(lines, fmt.Sprintf("rpc %s.%s(%s) returns (%s%s)", s.Name(), m.Name(), m.Input().Name(), stream, m.Output().Name()))
		}
	}
	for i := 0; i < fd.Enums().Len(); i++ {
		e := fd.Enums().Get(i)
		for j := 0; j < e.Values().Len(); j++ {
			v := e.Values().Get(j)
			lines = append(lines, fmt.Sprintf("enum %s.%s = %d", e.Name(), v.Name(), v.Number()))
		}
	}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if md.IsMapEntry() {
			return
		}
		for j := 0; j < md.Fields().Len(); j++ {
			f := md.Fields().Get(j)
			typ := f.Kind().String()
			switch {
			case f.IsMap():
				typ = fmt.Sprintf("map<%s,%s>", f.MapKey().Kind(), f.MapValue().Kind())
			case f.Message() != nil:
				typ = string(f.Message().Name())
			case f.Enum() != nil:
				typ = string(f.Enum().Name())
			}
			card := ""
			if f.IsList() {
				card = "repeated "
			}
			oneof := ""
			if o := f.ContainingOneof(); o != nil {
				oneof = " oneof " + string(o.Name())
			}
			lines = append(lines, fmt.Sprintf("message %s.%s = %d %s%s%s", md.Name(), f.Name(), f.Number(), card, typ, oneof))
		}
		for j := 0; j < md.Messages().Len(); j++ {
			walk(md.Messages().Get(j))
		}
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		walk(fd.Messages().Get(i))
	}
	sort.Strings(lines[1:])
	return strings.Join(lines, "\n") + "\n"
}

// TestContractIsStable fails when a service, field number, type or
// cardinality of the v1 contract changes. Adding a field or method is
// compatible: run `go test ./plugins/proto -run TestContractIsStable -update`
// and commit the new golden file with the change.
func TestContractIsStable(t *testing.T) {
	got := describeContract(File_plugin_proto)
	golden := filepath.Join("testdata", "contract_v1.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	// Every line of the golden file must still be there: removing or
	// renumbering anything is a breaking change.
	have := map[string]bool{}
	for _, l := range strings.Split(got, "\n") {
		have[l] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		if !have[l] {
			t.Errorf("contract line removed or changed: %q", l)
		}
	}
	if t.Failed() {
		t.Logf("full diff (-golden +generated):\n%s", cmp.Diff(string(want), got))
	}
}

// fakeAgent streams a fixed sequence of events and calls back into the
// host's CallTool through the connection the test hands it.
type fakeAgent struct {
	UnimplementedAgentServer
	host HostClient
}

func (a *fakeAgent) Describe(_ context.Context, req *DescribeRequest) (*DescribeResponse, error) {
	if req.GetProtocolVersion() != ProtocolVersion {
		return nil, status.Errorf(codes.FailedPrecondition, "protocol version %d, want %d", req.GetProtocolVersion(), ProtocolVersion)
	}
	return &DescribeResponse{Name: "research", Tools: []string{"docs/search"}, Skills: []*Skill{{Id: "research", Name: "Research"}}}, nil
}

func (a *fakeAgent) Run(req *RunRequest, stream grpc.ServerStreamingServer[RunEvent]) error {
	send := func(e *RunEvent) error { return stream.Send(e) }
	if err := send(&RunEvent{Event: &RunEvent_Thought{Thought: &Thought{Text: "searching"}}}); err != nil {
		return err
	}
	res, err := a.host.CallTool(stream.Context(), &CallToolRequest{TaskId: req.GetTaskId(), Tool: "docs/search", ArgumentsJson: `{"q":"` + req.GetInput() + `"}`})
	if err != nil {
		return send(&RunEvent{Event: &RunEvent_Error{Error: &RunError{Code: "tool_error", Message: err.Error()}}})
	}
	return send(&RunEvent{Event: &RunEvent_Final{Final: &FinalResult{Text: res.GetContent()[0].GetText()}}})
}

type fakeHost struct {
	UnimplementedHostServer
	calls []*CallToolRequest
}

func (h *fakeHost) CallTool(_ context.Context, req *CallToolRequest) (*CallToolResponse, error) {
	h.calls = append(h.calls, proto.Clone(req).(*CallToolRequest))
	if req.GetTool() != "docs/search" {
		return nil, status.Errorf(codes.PermissionDenied, "tool %q not allowed", req.GetTool())
	}
	return &CallToolResponse{Content: []*Content{{Text: "found: " + req.GetArgumentsJson()}}}, nil
}

func serve(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestAgentAndHostRoundTrip runs both services over real gRPC connections:
// the plugin streams events while calling back into the host.
func TestAgentAndHostRoundTrip(t *testing.T) {
	ctx := context.Background()
	host := &fakeHost{}
	hostConn := serve(t, func(s *grpc.Server) { RegisterHostServer(s, host) })
	agentConn := serve(t, func(s *grpc.Server) { RegisterAgentServer(s, &fakeAgent{host: NewHostClient(hostConn)}) })
	agent := NewAgentClient(agentConn)

	desc, err := agent.Describe(ctx, &DescribeRequest{ProtocolVersion: ProtocolVersion})
	if err != nil || desc.GetName() != "research" || len(desc.GetSkills()) != 1 {
		t.Fatalf("Describe = %v, %v", desc, err)
	}
	if _, err := agent.Describe(ctx, &DescribeRequest{ProtocolVersion: 99}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Describe with a foreign protocol version: %v", err)
	}

	stream, err := agent.Run(ctx, &RunRequest{TaskId: "task-1", Input: "go-spiffe", HostBrokerId: 1})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var final string
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.GetEvent().(type) {
		case *RunEvent_Thought:
			kinds = append(kinds, "thought")
		case *RunEvent_Final:
			kinds = append(kinds, "final")
			final = e.Final.GetText()
		default:
			kinds = append(kinds, fmt.Sprintf("%T", e))
		}
	}
	if diff := cmp.Diff([]string{"thought", "final"}, kinds); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if final != `found: {"q":"go-spiffe"}` {
		t.Fatalf("final = %q", final)
	}
	if len(host.calls) != 1 || host.calls[0].GetTaskId() != "task-1" {
		t.Fatalf("host saw %v", host.calls)
	}

	// An unimplemented Host method is a clean Unimplemented status.
	if _, err := NewHostClient(hostConn).AskUser(ctx, &AskUserRequest{TaskId: "task-1"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("AskUser on a host that does not implement it: %v", err)
	}
}
