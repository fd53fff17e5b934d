package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdkmcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// The test binary doubles as a stdio MCP server (see TestMain).
const testStdioServerEnv = "AGENTHOST_HOST_TEST_MCP_STDIO"

// serveStdioMCP serves one tool that reports what the process can see of
// its environment.
func serveStdioMCP() {
	s := server.NewMCPServer("stdio-test", "1.0.0")
	s.AddTool(mcp.NewTool("env", mcp.WithDescription("Reports what the process sees")), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("secret=" + os.Getenv("HOST_ONLY_SECRET") + " mode=" + os.Getenv("MODE")), nil
	})
	_ = server.ServeStdio(s)
}

// TestGatewayToStdioServer: a gateway fronts a local MCP server the host
// runs as a command; the caller is authenticated by the host, the process
// gets exactly its configured environment and no token.
func TestGatewayToStdioServer(t *testing.T) {
	t.Setenv("HOST_ONLY_SECRET", "hunter2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := userauth.HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.Users = []config.UserConfig{{Name: "alice", PasswordHash: hash}}
	cfg.Auth.DynamicRegistration = true
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "local", Command: []string{exe},
		Env: map[string]string{testStdioServerEnv: "1", "MODE": "demo"}, Tools: []string{"env"}}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "local-gw", Upstream: "local", Scopes: []string{"local:read"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))

	session := sdkSession(t, ctx, h.Issuer()+"/mcp/local-gw", "alice", "pw", []string{"local:read"})
	defer session.Close()
	res, err := session.CallTool(ctx, &sdkmcp.CallToolParams{Name: "env", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("%v %+v", err, res)
	}
	text := res.Content[0].(*sdkmcp.TextContent).Text
	if text != "secret= mode=demo" {
		t.Fatalf("the stdio server saw %q", text)
	}
	if strings.Contains(text, "hunter2") {
		t.Fatal("the host's environment reached the stdio server")
	}
}

// TestRemoteToolLearnsItsDefinition: before the first call an agent sees a
// generic definition of a remote tool; after it, the server's own.
func TestRemoteToolLearnsItsDefinition(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.MCP.Remotes = []config.MCPRemoteConfig{{Name: "local", Command: []string{exe},
		Env: map[string]string{testStdioServerEnv: "1"}, Tools: []string{"env"}}}
	h := runHost(t, cfg, filepath.Join(t.TempDir(), "data"))
	tool := h.tools["local/env"]
	if d := tool.Definition(); !strings.Contains(d.Description, "remote MCP server local") {
		t.Fatalf("before: %+v", d)
	}
	if _, err := tool.Call(context.Background(), mediator.Caller{Agent: "any"}, nil); err != nil {
		t.Fatal(err)
	}
	if d := tool.Definition(); d.Description != "Reports what the process sees" || !strings.Contains(string(d.Parameters), `"type":"object"`) {
		t.Fatalf("after: %+v %s", d, d.Parameters)
	}
}
