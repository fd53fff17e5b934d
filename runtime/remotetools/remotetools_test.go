package remotetools_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/remotetools"
)

// noTokens and noSubject satisfy the required Config functions of tests
// that make no call.
func noTokens(remotetools.TokenClientRequest) (*oauth.Client, error) {
	return nil, errors.New("no token client in this test")
}

func noSubject(config.MCPRemoteConfig, mediator.Caller) (mcpclient.Subject, error) {
	return mcpclient.Subject{}, nil
}

// TestNewChecksConfig: New refuses a Config without what the host must
// provide and remotes it cannot call, and starts nothing.
func TestNewChecksConfig(t *testing.T) {
	valid := func(testing.TB) remotetools.Config {
		return remotetools.Config{
			Remotes: []config.MCPRemoteConfig{
				{Name: "docs", URL: "https://docs.example/mcp", Tools: []string{"search", "fetch"}},
				// Not started: a stdio server starts on its first call.
				{Name: "local", Command: []string{"/nonexistent/mcp-server", "--flag"}, Tools: []string{"now"}},
			},
			TrustDomain: "test.local",
			TokenClient: noTokens,
			Subject:     noSubject,
		}
	}
	tests := []struct {
		name   string
		config func(testing.TB) remotetools.Config
		want   string // error substring; empty means no error
	}{
		{name: "valid", config: valid},
		{name: "no remotes", config: func(tb testing.TB) remotetools.Config { c := valid(tb); c.Remotes = nil; return c }},
		{name: "no trust domain", want: "TrustDomain is required",
			config: func(tb testing.TB) remotetools.Config { c := valid(tb); c.TrustDomain = ""; return c }},
		{name: "no token client", want: "TokenClient is required",
			config: func(tb testing.TB) remotetools.Config { c := valid(tb); c.TokenClient = nil; return c }},
		{name: "no subject", want: "Subject is required",
			config: func(tb testing.TB) remotetools.Config { c := valid(tb); c.Subject = nil; return c }},
		{name: "two remotes of one name", want: `remote "docs"`,
			config: func(tb testing.TB) remotetools.Config {
				c := valid(tb)
				c.Remotes = append(c.Remotes, config.MCPRemoteConfig{Name: "docs", URL: "https://other.example/mcp", Tools: []string{"x"}})
				return c
			}},
		{name: "no name", want: `remote ""`,
			config: func(tb testing.TB) remotetools.Config {
				c := valid(tb)
				c.Remotes = []config.MCPRemoteConfig{{URL: "https://docs.example/mcp", Tools: []string{"x"}}}
				return c
			}},
		{name: "url and command", want: "remote docs: both url and command",
			config: func(tb testing.TB) remotetools.Config {
				c := valid(tb)
				c.Remotes[0].Command = []string{"/bin/true"}
				return c
			}},
		{name: "relative url", want: "remote docs: url",
			config: func(tb testing.TB) remotetools.Config { c := valid(tb); c.Remotes[0].URL = "/mcp"; return c }},
		{name: "relative command", want: "remote local:",
			config: func(tb testing.TB) remotetools.Config {
				c := valid(tb)
				c.Remotes[1].Command = []string{"mcp-server"}
				return c
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := remotetools.New(tt.config(t))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "remotetools: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestTools: every configured tool of every remote, as "<remote>/<tool>",
// with a generic definition until the remote was called.
func TestTools(t *testing.T) {
	s, err := remotetools.New(remotetools.Config{
		Remotes: []config.MCPRemoteConfig{
			{Name: "docs", URL: "https://docs.example/mcp", Tools: []string{"search", "fetch"}},
			{Name: "local", Command: []string{"/nonexistent/mcp-server"}, Tools: []string{"now"}},
		},
		TrustDomain: "test.local", TokenClient: noTokens, Subject: noSubject,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tools := s.Tools()
	var names []string
	for name, tool := range tools {
		names = append(names, name)
		if !remotetools.IsTool(tool) {
			t.Errorf("IsTool(%s) = false", name)
		}
		if d := tool.Definition(); d.Name != name || string(d.Parameters) != `{"type":"object"}` ||
			!strings.Contains(d.Description, "of the remote MCP server") {
			t.Errorf("%s: definition %+v", name, d)
		}
	}
	slices.Sort(names)
	if want := []string{"docs/fetch", "docs/search", "local/now"}; !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}
	if remotetools.IsTool(otherTool{}) {
		t.Fatal("IsTool took a tool of another kind")
	}
	if got := s.Server("docs").Config().URL; got != "https://docs.example/mcp" {
		t.Fatalf("Server(docs).Config().URL = %q", got)
	}
	if s.Server("nope") != nil || len(s.Servers()) != 2 {
		t.Fatalf("Server(nope) = %v, %d servers", s.Server("nope"), len(s.Servers()))
	}
	// A stdio server's client is the same for every agent and asks for no
	// token (noTokens would fail).
	a, err := s.Server("local").Client("alpha")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Server("local").Client("beta")
	if err != nil || a != b {
		t.Fatalf("stdio clients %v and %v (%v), want one", a, b, err)
	}
}

// TestNilSet: a host without remotes may still forget and close.
func TestNilSet(t *testing.T) {
	var s *remotetools.Set
	if n := s.ForgetSubject("alice"); n != 0 {
		t.Fatalf("ForgetSubject = %d", n)
	}
	if n := s.EndSessions("k|"); n != 0 {
		t.Fatalf("EndSessions = %d", n)
	}
	s.ForgetWorkload(alphaID)
	s.Close()
	if len(s.Tools()) != 0 || s.Server("docs") != nil || s.Servers() != nil {
		t.Fatal("a nil Set has remotes")
	}
}

type otherTool struct{}

func (otherTool) Definition() llm.Tool { return llm.Tool{Name: "x"} }

func (otherTool) Call(context.Context, mediator.Caller, json.RawMessage) (mediator.ToolResult, error) {
	return mediator.ToolResult{}, fmt.Errorf("not called")
}
