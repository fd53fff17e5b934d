package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
)

// testTools is what the test binary serves in "tools" mode.
var testTools = sdk.ToolSet{Name: "testtools", Version: "1", Tools: []sdk.Tool{
	{
		Name: "whoami", Description: "Says who the call is for.", ReadOnly: true,
		Handler: func(_ context.Context, c sdk.Caller, _ json.RawMessage) (string, error) {
			return c.Agent + "|" + c.ClientID + "|" + c.Subject + "|" + strings.Join(c.Scopes, " ") + "|" + c.TaskID, nil
		},
	},
	{
		Name: "fail", Description: "Always fails.",
		Handler: func(context.Context, sdk.Caller, json.RawMessage) (string, error) {
			return "", errors.New("disk full")
		},
	},
	{
		Name: "environ", Description: "Lists the plugin's environment.", ReadOnly: true,
		Handler: func(context.Context, sdk.Caller, json.RawMessage) (string, error) {
			return strings.Join(os.Environ(), "\n"), nil
		},
	},
}}

func launchTools(t *testing.T) *ToolPlugin {
	t.Helper()
	exe, sum := selfDigest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := LaunchTools(ctx, Config{Name: "testtools", Path: exe, SHA256: sum, Env: []string{agentModeEnv + "=tools"}})
	if err != nil {
		t.Fatalf("LaunchTools: %v", err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestToolPluginListAndCall(t *testing.T) {
	t.Setenv("AGENTHOST_TEST_SECRET", "host-only")
	p := launchTools(t)
	ctx := context.Background()
	list, err := p.ListTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list.GetName() != "testtools" || len(list.GetTools()) != 3 {
		t.Fatalf("ListTools = %v", list)
	}
	if d := list.GetTools()[0]; d.GetDefinition().GetName() != "whoami" || !d.GetReadOnly() || d.GetDefinition().GetInputSchemaJson() != `{"type":"object"}` {
		t.Fatalf("first tool = %v", d)
	}
	if list.GetTools()[1].GetReadOnly() {
		t.Fatal("fail is listed read-only")
	}

	caller := &pluginpb.ToolCaller{Agent: "research", ClientId: "spiffe://td/agent/research", Subject: "alice", Scopes: []string{"notes:read"}, TaskId: "t1"}
	res, err := p.CallTool(ctx, caller, "whoami", `{}`)
	if err != nil || res.GetIsError() || res.GetContent()[0].GetText() != "research|spiffe://td/agent/research|alice|notes:read|t1" {
		t.Fatalf("whoami = %v, %v", res, err)
	}
	res, err = p.CallTool(ctx, caller, "fail", `{}`)
	if err != nil || !res.GetIsError() || res.GetContent()[0].GetText() != "disk full" {
		t.Fatalf("fail = %v, %v", res, err)
	}
	res, err = p.CallTool(ctx, caller, "whoami", `[1,2]`)
	if err != nil || !res.GetIsError() || !strings.Contains(res.GetContent()[0].GetText(), "JSON object") {
		t.Fatalf("array arguments = %v, %v", res, err)
	}
	_, err = p.CallTool(ctx, caller, "nope", `{}`)
	if status.Code(errors.Unwrap(err)) != codes.NotFound {
		t.Fatalf("unknown tool: err = %v, want NotFound", err)
	}
	// The host's environment is not passed on.
	res, err = p.CallTool(ctx, caller, "environ", `{}`)
	if err != nil || strings.Contains(res.GetContent()[0].GetText(), "AGENTHOST_TEST_SECRET") {
		t.Fatalf("plugin environment holds the host's: %v, %v", res, err)
	}
}

// A binary serves one kind: an agent plugin is refused as a tool plugin at
// launch, and a tool plugin does not answer as an agent.
func TestPluginKindMismatch(t *testing.T) {
	exe, sum := selfDigest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := LaunchTools(ctx, Config{Name: "agent-as-tools", Path: exe, SHA256: sum, Env: []string{agentModeEnv + "=ok"}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "is not a tool plugin") {
		t.Fatalf("agent launched as tool plugin: err = %v", err)
	}
	p, err := Launch(ctx, Config{Name: "tools-as-agent", Path: exe, SHA256: sum, Host: &recordingHost{}, Env: []string{agentModeEnv + "=tools"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if _, err := p.Describe(ctx); status.Code(errors.Unwrap(err)) != codes.Unimplemented {
		t.Fatalf("tool plugin described as agent: err = %v, want Unimplemented", err)
	}
	sum2 := strings.Repeat("0", 64)
	if _, err := LaunchTools(ctx, Config{Name: "bad-digest", Path: exe, SHA256: sum2, Env: []string{agentModeEnv + "=tools"}}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("checksum mismatch: err = %v", err)
	}
}
