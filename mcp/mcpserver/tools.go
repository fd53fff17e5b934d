package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// hasScope reports whether caller holds the scope t requires.
func hasScope(caller *resource.Caller, t *Tool) bool {
	return t.Scope == "" || caller.HasScope(t.Scope)
}

// allowed runs the policy hook; nil hook allows.
func (s *Server) allowed(ctx context.Context, caller *resource.Caller, tool string) error {
	if s.authorize == nil {
		return nil
	}
	return s.authorize(ctx, caller, s.name, tool)
}

// allowedOnce is allowed, skipped when serve already authorized this
// tool for the current request.
func (s *Server) allowedOnce(ctx context.Context, caller *resource.Caller, tool string) error {
	if done, _ := ctx.Value(authorizedKey{}).(string); done != "" && done == tool {
		return nil
	}
	return s.allowed(ctx, caller, tool)
}

// filterTools keeps the tools the caller has the scope for and the policy
// allows. The MCP layer applies it to tools/list and again to tools/call.
func (s *Server) filterTools(ctx context.Context, tools []mcpgo.Tool) []mcpgo.Tool {
	caller, ok := resource.CallerFrom(ctx)
	if !ok || caller == nil {
		return nil
	}
	out := make([]mcpgo.Tool, 0, len(tools))
	for _, mt := range tools {
		t := s.tools[mt.Name]
		if t == nil || !hasScope(caller, t) {
			continue
		}
		if err := s.allowedOnce(ctx, caller, t.Name); err != nil && !errors.Is(err, ErrApprovalRequired) {
			continue
		}
		out = append(out, mt)
	}
	return out
}

// toolHandler adapts t.Handler to the MCP layer. It checks the caller again
// (so no path into the MCP layer skips serve's checks), converts the arguments and
// the result, and keeps handler errors and panics away from the client.
func (s *Server) toolHandler(t *Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (res *mcpgo.CallToolResult, err error) {
		caller, ok := resource.CallerFrom(ctx)
		if !ok || caller == nil || !hasScope(caller, t) {
			return nil, ErrDenied
		}
		denied := s.allowedOnce(ctx, caller, t.Name)
		var approval bool
		if ctx, approval = withApproval(ctx, denied); approval {
			denied = nil
		}
		if denied != nil {
			s.logger.InfoContext(ctx, "mcpserver: tool call denied", slog.String("tool", t.Name), slog.Any("error", denied))
			// serve refuses such a call before it gets here; should one
			// come this way, it is reported all the same.
			if s.onDenied != nil {
				s.onDenied(ctx, caller, t.Name, denied)
			}
			return nil, ErrDenied
		}
		args, err := arguments(req)
		if err != nil {
			return mcpgo.NewToolResultError(err.Error()), nil
		}
		defer func() {
			if p := recover(); p != nil {
				s.logger.ErrorContext(ctx, "mcpserver: tool panicked", slog.String("tool", t.Name), slog.Any("panic", p))
				res, err = nil, ErrToolFailed
			}
		}()
		r, err := t.Handler(ctx, caller, args)
		if e, ok := errors.AsType[*ElicitationRequiredError](err); ok {
			return elicitationAnswer(ctx, e)
		}
		if err != nil {
			s.logger.WarnContext(ctx, "mcpserver: tool failed", slog.String("tool", t.Name), slog.Any("error", err))
			return nil, ErrToolFailed
		}
		out, err := callToolResult(r)
		if err != nil {
			s.logger.ErrorContext(ctx, "mcpserver: unusable tool result", slog.String("tool", t.Name), slog.Any("error", err))
			return nil, ErrToolFailed
		}
		return out, nil
	}
}

// arguments returns the call's arguments as a JSON object, {} when absent.
func arguments(req mcpgo.CallToolRequest) (json.RawMessage, error) {
	raw := bytes.TrimSpace(req.Params.RawArguments)
	if len(raw) == 0 && req.Params.Arguments != nil {
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, errors.New("arguments are not JSON")
		}
		raw = b
	}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if raw[0] != '{' {
		return nil, errors.New("arguments must be a JSON object")
	}
	return json.RawMessage(raw), nil
}

// callToolResult maps a Result to an MCP CallToolResult: Text (or, when
// empty, the JSON of Structured) as one text block, Structured as
// structuredContent.
func callToolResult(r Result) (*mcpgo.CallToolResult, error) {
	out := &mcpgo.CallToolResult{Content: []mcpgo.Content{}, IsError: r.IsError}
	text := r.Text
	if r.Structured != nil {
		b, err := json.Marshal(r.Structured)
		if err != nil {
			return nil, fmt.Errorf("mcpserver: structured result: %w", err)
		}
		if b[0] != '{' {
			return nil, errors.New("mcpserver: structured result is not a JSON object")
		}
		out.StructuredContent = json.RawMessage(b)
		if text == "" {
			text = string(b)
		}
	}
	if text != "" {
		out.Content = append(out.Content, mcpgo.NewTextContent(text))
	}
	return out, nil
}
