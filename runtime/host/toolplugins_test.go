package host

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// testToolSet is what the test binary serves as a tool plugin.
var testToolSet = sdk.ToolSet{Name: "kit", Version: "1", Tools: []sdk.Tool{
	{
		Name: "whoami", Description: "Says who the call is for.", ReadOnly: true,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"echo":{"type":"string"}}}`),
		Handler: func(ctx context.Context, c sdk.Caller, args json.RawMessage) (string, error) {
			// Everything the plugin was given, to show it holds no token.
			return strings.Join([]string{c.Agent, c.ClientID, c.Subject, strings.Join(c.Scopes, " "), c.TaskID, string(args),
				strings.Join(os.Environ(), ";")}, "|"), nil
		},
	},
	{
		Name: "exit", Description: "Ends the plugin process.",
		Handler: func(context.Context, sdk.Caller, json.RawMessage) (string, error) {
			os.Exit(2)
			return "", nil
		},
	},
	{
		Name: "txn", Description: "Says what the call's Txn-Token holds.", ReadOnly: true, TxnFields: []string{"echo"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{"echo":{"type":"string"}}}`),
		Handler: func(_ context.Context, c sdk.Caller, _ json.RawMessage) (string, error) {
			b, err := json.Marshal(map[string]any{"sub": c.Subject, "agent": c.Agent, "task": c.TaskID, "chain": c.Chain,
				"txn": c.Txn.Txn, "req_wl": c.Txn.RequestingWorkload, "scope": c.Txn.Scope,
				"tctx": c.Txn.TransactionContext, "rctx": c.Txn.RequestContext})
			return string(b), err
		},
	},
}}

func toolPluginConfig(t *testing.T) *config.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := userauth.HashPassword("alice-test-password")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Plugins = []config.MCPPluginConfig{{Name: "kit", Path: exe, Env: map[string]string{testAgentEnv: "tools"}}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "kit", Tools: []string{"kit/whoami", "kit/exit"}}}
	return cfg
}

// TestToolPluginOverMCP: a tool plugin's tools are served on a hosted MCP
// server. A read-only tool needs the read scope only; the plugin gets the
// verified caller and never the token; a plugin that dies is started
// again on the next call.
func TestToolPluginOverMCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t.Setenv("AGENTHOST_HOST_ONLY_SECRET", "s3cret-host-value")
	h := runHost(t, toolPluginConfig(t), filepath.Join(t.TempDir(), "data"))
	endpoint := h.Issuer() + "/mcp/kit"

	session := sdkSession(t, ctx, endpoint, "alice", "alice-test-password", []string{"kit:read"})
	defer session.Close()
	list, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Tools) != 1 || list.Tools[0].Name != "whoami" || !strings.Contains(string(mustJSON(t, list.Tools[0].InputSchema)), "echo") {
		t.Fatalf("read-only caller sees %+v", list.Tools)
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{"echo": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call: %v %+v", err, res)
	}
	got := res.Content[0].(*mcp.TextContent).Text
	parts := strings.Split(got, "|")
	if parts[0] != "" || parts[1] == "" || parts[2] != "alice" || parts[3] != "kit:read" || parts[5] != `{"echo":"hi"}` {
		t.Fatalf("plugin saw caller %q", got)
	}
	if strings.Contains(got, "eyJ") || strings.Contains(got, "s3cret-host-value") || strings.Contains(got, "AGENTHOST_HOST_ONLY_SECRET") {
		t.Fatalf("the plugin holds a token or the host's environment: %q", got)
	}
	// Only its configured variable and go-plugin's own handshake ones.
	for _, kv := range strings.Split(parts[6], ";") {
		name, _, _ := strings.Cut(kv, "=")
		if name != testAgentEnv && name != "AGENTHOST_PLUGIN" && !strings.HasPrefix(name, "PLUGIN_") {
			t.Fatalf("plugin environment holds %q", name)
		}
	}

	// An agent's call carries the agent and its task, in the call's
	// Txn-Token; without one the plugin refuses the call.
	tool := h.tools["kit/whoami"]
	if _, err := tool.Call(ctx, mediator.Caller{Agent: "research", TaskID: "task-1"}, json.RawMessage(`{}`)); !errors.Is(err, mediator.ErrTxnToken) {
		t.Fatalf("agent call without a Txn-Token: %v", err)
	}
	r, err := callPluginTool(ctx, t, h, "kit/whoami", mediator.Caller{Agent: "research", TaskID: "task-1"}, `{}`)
	if err != nil || !strings.HasPrefix(r.Text, "research||alice||task-1|") {
		t.Fatalf("agent call: %+v %v", r, err)
	}

	// The plugin dies; the next call starts it again (and sends it the
	// keys again).
	if _, err := callPluginTool(ctx, t, h, "kit/exit", mediator.Caller{Agent: "research"}, `{}`); err == nil {
		t.Fatal("a call whose plugin exited reported success")
	}
	r, err = callPluginTool(ctx, t, h, "kit/whoami", mediator.Caller{Agent: "research"}, `{}`)
	if err != nil || !strings.HasPrefix(r.Text, "research|") {
		t.Fatalf("after the plugin exited: %+v %v", r, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestToolPluginRefusals: a plugin whose name is already a tool prefix, or
// whose binary does not match its pinned digest, stops the host at start
// with an error naming it.
func TestToolPluginRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"prefix taken", func(c *config.Config) { c.MCP.Plugins[0].Name = "notes"; c.MCP.Servers = nil }, "tool plugin notes: the host already has tools named notes/"},
		{"digest", func(c *config.Config) { c.MCP.Plugins[0].SHA256 = strings.Repeat("0", 64) }, "the config pins 0000"},
		{"agent binary", func(c *config.Config) { c.MCP.Plugins[0].Env = map[string]string{testAgentEnv: "recorder"} }, "is not a tool plugin"},
		{"unknown tool", func(c *config.Config) { c.MCP.Servers[0].Tools = []string{"kit/nope"} }, `no host tool "kit/nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := toolPluginConfig(t)
			tc.edit(cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			h, err := New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: os.Stderr})
			if err == nil {
				h.close()
				t.Fatal("host started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
