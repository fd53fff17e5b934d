package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
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
			return c.Agent + "|" + c.ClientID + "|" + c.Subject + "|" + strings.Join(c.Scopes, " ") + "|" + c.TaskID + "|" +
				strings.Join(c.Chain, ",") + "|" + c.Txn.Txn, nil
		},
	},
	{
		Name: "pay", Description: "Pays an amount.", TxnFields: []string{"amount"},
		Handler: func(_ context.Context, c sdk.Caller, args json.RawMessage) (string, error) {
			return "paid " + string(c.Txn.TransactionContext["amount"]), nil
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

func launchTools(t *testing.T, keys func() TxnKeys) *ToolPlugin {
	t.Helper()
	exe, sum := selfDigest(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := LaunchTools(ctx, Config{Name: "testtools", Path: exe, SHA256: sum, Env: []string{agentModeEnv + "=tools"}, TxnKeys: keys})
	if err != nil {
		t.Fatalf("LaunchTools: %v", err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestToolPluginListAndCall(t *testing.T) {
	t.Setenv("AGENTHOST_TEST_SECRET", "host-only")
	tts := newTestTTS(t, "k1")
	p := launchTools(t, tts.keys)
	ctx := context.Background()
	list, err := p.ListTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list.GetName() != "testtools" || len(list.GetTools()) != 4 {
		t.Fatalf("ListTools = %v", list)
	}
	if d := list.GetTools()[0]; d.GetDefinition().GetName() != "whoami" || !d.GetReadOnly() || d.GetDefinition().GetInputSchemaJson() != `{"type":"object"}` {
		t.Fatalf("first tool = %v", d)
	}
	if d := list.GetTools()[1]; d.GetReadOnly() || strings.Join(d.GetTxnFields(), ",") != "amount" {
		t.Fatalf("pay is listed as %v", d)
	}
	call := func(tool, args string) (*pluginpb.CallToolResponse, error) {
		return p.CallTool(ctx, tool, args, tts.token(t, "testtools/"+tool, args, nil))
	}

	// Who the call is for comes from the verified token.
	res, err := call("whoami", `{}`)
	if err != nil || res.GetIsError() || res.GetContent()[0].GetText() != "research|spiffe://test.local/agent/research|alice|notes:read|task-1|assistant|txn-1" {
		t.Fatalf("whoami = %v, %v", res, err)
	}
	res, err = call("fail", `{}`)
	if err != nil || !res.GetIsError() || res.GetContent()[0].GetText() != "disk full" {
		t.Fatalf("fail = %v, %v", res, err)
	}
	res, err = call("whoami", `[1,2]`)
	if err != nil || !res.GetIsError() || !strings.Contains(res.GetContent()[0].GetText(), "JSON object") {
		t.Fatalf("array arguments = %v, %v", res, err)
	}
	_, err = call("nope", `{}`)
	if status.Code(errors.Unwrap(err)) != codes.NotFound {
		t.Fatalf("unknown tool: err = %v, want NotFound", err)
	}
	// A declared field is checked against tctx.
	args := `{"amount": 12.50, "to": "bob"}`
	res, err = p.CallTool(ctx, "pay", args, tts.token(t, "testtools/pay", args, map[string]any{"amount": 12.5}))
	if err != nil || res.GetIsError() || res.GetContent()[0].GetText() != "paid 12.5" {
		t.Fatalf("pay = %v, %v", res, err)
	}
	// A call without a token, or with one for other arguments, is refused.
	if _, err := p.CallTool(ctx, "whoami", `{}`, ""); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no transaction token") {
		t.Fatalf("call without a token: %v", err)
	}
	if _, err := p.CallTool(ctx, "pay", `{"amount":900,"to":"bob"}`, tts.token(t, "testtools/pay", args, map[string]any{"amount": 12.5})); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "arguments differ") {
		t.Fatalf("call with changed arguments: %v", err)
	}
	// The host's environment is not passed on.
	res, err = call("environ", `{}`)
	if err != nil || strings.Contains(res.GetContent()[0].GetText(), "AGENTHOST_TEST_SECRET") {
		t.Fatalf("plugin environment holds the host's: %v, %v", res, err)
	}
}

// TestToolPluginGetsRotatedKeys: when the authorization server's keys
// change, the plugin is sent the new set before the next call, so tokens
// signed with the new key verify and those of a key no longer published do
// not. A plugin started before the host had keys gets them on its first
// call.
func TestToolPluginGetsRotatedKeys(t *testing.T) {
	first, second := newTestTTS(t, "k1"), newTestTTS(t, "k2")
	var mu sync.Mutex
	keys := TxnKeys{}
	p := launchTools(t, func() TxnKeys {
		mu.Lock()
		defer mu.Unlock()
		return keys
	})
	set := func(k TxnKeys) {
		mu.Lock()
		keys = k
		mu.Unlock()
	}
	ctx := context.Background()
	if _, err := p.CallTool(ctx, "whoami", `{}`, first.token(t, "testtools/whoami", `{}`, nil)); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "sent no keys") {
		t.Fatalf("call before the host had keys: %v", err)
	}
	set(first.keys())
	if res, err := p.CallTool(ctx, "whoami", `{}`, first.token(t, "testtools/whoami", `{}`, nil)); err != nil || res.GetIsError() {
		t.Fatalf("call with the first key: %v, %v", res, err)
	}
	set(second.keys())
	if res, err := p.CallTool(ctx, "whoami", `{}`, second.token(t, "testtools/whoami", `{}`, nil)); err != nil || res.GetIsError() {
		t.Fatalf("call after the rotation: %v, %v", res, err)
	}
	if _, err := p.CallTool(ctx, "whoami", `{}`, first.token(t, "testtools/whoami", `{}`, nil)); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "not a key the host sent") {
		t.Fatalf("a token of the retired key: %v", err)
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
