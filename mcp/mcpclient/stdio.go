package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
)

// StdioConfig configures a client of a local MCP server the host runs as
// a command, speaking MCP over its stdin and stdout.
type StdioConfig struct {
	// Command is the absolute path of the server's executable (no PATH
	// lookup).
	Command string
	Args    []string
	// Env is the command's whole environment ("NAME=value"); the host's
	// own environment is never passed on.
	Env    []string
	Logger *slog.Logger
}

// StdioClient calls a local MCP server. The process is the host's: it
// gets no token (there is no network hop to protect); the host has
// authenticated and authorized every caller before it calls the server.
// The process starts on first use and is shared by every caller.
type StdioClient struct {
	cfg    StdioConfig
	log    *slog.Logger
	ctx    context.Context // the process lives until Close
	cancel context.CancelFunc

	mu     sync.Mutex
	mc     *mcpgoclient.Client
	closed bool
}

// NewStdio checks cfg; the process starts on first use.
func NewStdio(cfg StdioConfig) (*StdioClient, error) {
	if cfg.Command == "" || !filepath.IsAbs(cfg.Command) {
		return nil, fmt.Errorf("mcpclient: stdio command %q must be an absolute path", cfg.Command)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &StdioClient{cfg: cfg, log: log, ctx: ctx, cancel: cancel}, nil
}

// client starts the process and the MCP session once; a failed start is
// tried again by the next call.
func (c *StdioClient) client(ctx context.Context) (*mcpgoclient.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.mc != nil {
		return c.mc, nil
	}
	env := append([]string(nil), c.cfg.Env...)
	t := mcpgotransport.NewStdioWithOptions(c.cfg.Command, env, c.cfg.Args,
		mcpgotransport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Env = env // exactly the configured environment
			return cmd, nil
		}),
		mcpgotransport.WithCommandLogger(c.log))
	if err := t.Start(c.ctx); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrProtocol, filepath.Base(c.cfg.Command), err)
	}
	mc := mcpgoclient.NewClient(t)
	init := mcpgoInitialize()
	if _, err := mc.Initialize(ctx, init); err != nil {
		_ = mc.Close()
		return nil, fmt.Errorf("%w: initialize: %w", ErrProtocol, err)
	}
	c.mc = mc
	return mc, nil
}

// ListTools lists the server's tools; subject is ignored (see
// StdioClient).
func (c *StdioClient) ListTools(ctx context.Context, _ Subject) ([]Tool, error) {
	mc, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	return listTools(ctx, mc)
}

// CallTool calls the tool name with args; subject is ignored (see
// StdioClient).
func (c *StdioClient) CallTool(ctx context.Context, _ Subject, name string, args json.RawMessage) (Result, error) {
	req, err := callRequest(name, args)
	if err != nil {
		return Result{}, err
	}
	mc, err := c.client(ctx)
	if err != nil {
		return Result{}, err
	}
	return callTool(ctx, mc, req)
}

// Close stops the process.
func (c *StdioClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.mc != nil {
		err = c.mc.Close()
	}
	c.cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mcpclient: close stdio server: %w", err)
	}
	return nil
}
