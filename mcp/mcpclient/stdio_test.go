package mcpclient_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agenthost/agenthost/mcp/mcpclient"
)

const stdioServerEnv = "MCPCLIENT_TEST_STDIO_SERVER"

// TestMain turns the test binary into a stdio MCP server when the stdio
// test starts it as one.
func TestMain(m *testing.M) {
	if os.Getenv(stdioServerEnv) == "1" {
		s := server.NewMCPServer("stdio-test", "1.0.0")
		s.AddTool(mcp.NewTool("env", mcp.WithDescription("Reports what it can see of its environment")),
			func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("secret=" + os.Getenv("HOST_ONLY_SECRET") + " n=" + string(rune('0'+len(os.Environ())))), nil
			})
		if err := server.ServeStdio(s); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestStdioServer(t *testing.T) {
	t.Setenv("HOST_ONLY_SECRET", "hunter2")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := mcpclient.NewStdio(mcpclient.StdioConfig{Command: exe, Env: []string{stdioServerEnv + "=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	tools, err := c.ListTools(ctx, mcpclient.Subject{})
	if err != nil || len(tools) != 1 || tools[0].Name != "env" {
		t.Fatalf("tools/list: %+v %v", tools, err)
	}
	res, err := c.CallTool(ctx, mcpclient.Subject{}, "env", json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	// The server sees exactly the configured environment: one variable,
	// and no host secret.
	if res.Text != "secret= n=1" {
		t.Fatalf("the stdio server saw %q", res.Text)
	}
	if _, err := mcpclient.NewStdio(mcpclient.StdioConfig{Command: "relative/path"}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("relative command: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallTool(ctx, mcpclient.Subject{}, "env", nil); err == nil {
		t.Fatal("call after Close")
	}
}
