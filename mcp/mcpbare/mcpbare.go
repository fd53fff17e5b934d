package mcpbare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ToolName is the server's only tool. It takes no arguments and returns
// the current time (UTC, RFC 1123) as one text content.
const ToolName = "now"

// shutdownTimeout bounds how long [Serve] waits for calls in flight once
// its context ends.
const shutdownTimeout = 5 * time.Second

// Handler returns the server's Streamable HTTP handler, stateless: every
// request stands alone, so a client may send tools/call without
// initializing first. It answers at any path it is mounted on.
func Handler() http.Handler {
	ms := server.NewMCPServer("mcpbare", "1.0.0", server.WithToolCapabilities(false))
	ms.AddTool(mcp.NewTool(ToolName, mcp.WithDescription("The current time, UTC.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(time.Now().UTC().Format(time.RFC1123)), nil
		})
	return server.NewStreamableHTTPServer(ms, server.WithStateLess(true))
}

// Serve serves [Handler] on ln until ctx ends, then shuts down, waiting
// up to 5 seconds for calls in flight. It closes ln. It returns nil after
// a shutdown ctx asked for, and the serving error otherwise.
func Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("mcpbare: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("mcpbare: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("mcpbare: serve: %w", err)
	}
	return nil
}
