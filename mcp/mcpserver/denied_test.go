package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// TestToolHandlerReportsRefusal: a tools/call that reaches the MCP layer
// without serve's policy check (the second line of defence) is refused
// there and OnDenied is told of it, so the refusal can be audited; the
// tool's handler never runs. An allowed call tells OnDenied nothing.
func TestToolHandlerReportsRefusal(t *testing.T) {
	var runs atomic.Int32
	handler := func(context.Context, *resource.Caller, json.RawMessage) (Result, error) {
		runs.Add(1)
		return Result{Text: "done"}, nil
	}
	f := newFixture(t, fixtureOpts{tools: func(*fixture) []Tool {
		return []Tool{
			{Name: "notes.read", Scope: "notes:read", Handler: handler},
			{Name: "notes.purge", Scope: "notes:read", Handler: handler},
		}
	}})
	caller := &resource.Caller{Subject: "alice", Scopes: []string{"notes:read"}}
	for _, tc := range []struct {
		tool     string
		wantErr  error
		wantRuns int32
		denied   []string
	}{
		{tool: "notes.read", wantRuns: 1},
		{tool: "notes.purge", wantErr: ErrDenied, denied: []string{"alice notes.purge: mcpserver: denied: notes.purge"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			runs.Store(0)
			f.seen.mu.Lock()
			f.seen.deniedCalls = nil
			f.seen.mu.Unlock()
			req := mcpgo.CallToolRequest{}
			req.Params.Name = tc.tool
			_, err := f.s.toolHandler(f.s.tools[tc.tool])(resource.WithCaller(context.Background(), caller), req)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if got := runs.Load(); got != tc.wantRuns {
				t.Errorf("handler ran %d times, want %d", got, tc.wantRuns)
			}
			f.seen.mu.Lock()
			defer f.seen.mu.Unlock()
			if len(f.seen.deniedCalls) != len(tc.denied) || (len(tc.denied) > 0 && f.seen.deniedCalls[0] != tc.denied[0]) {
				t.Errorf("OnDenied was told %q, want %q", f.seen.deniedCalls, tc.denied)
			}
		})
	}
}
