package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMCPSection(t *testing.T) {
	c, err := Parse("m.yaml", []byte("version: 1\nmcp:\n  servers:\n    - name: notes\n      tools: [notes/search, notes/add]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.MCP.Servers) != 1 || c.MCP.Servers[0].Name != "notes" || len(c.MCP.Servers[0].Tools) != 2 {
		t.Fatalf("%+v", c.MCP)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"mcp:\n  servers:\n    - name: Notes\n      tools: [a/b]\n", "m.yaml:4:13: mcp.servers[0].name: \"Notes\" is not a valid server name"},
		{"mcp:\n  servers:\n    - name: n\n      tools: [a/b]\n    - name: n\n      tools: [a/b]\n", "mcp.servers[1].name: MCP server \"n\" is already defined at mcp.servers[0]"},
		{"mcp:\n  servers:\n    - name: n\n", "mcp.servers[0].tools: lists no tools"},
		{"mcp:\n  servers:\n    - name: n\n      tools: [a/b, a/b]\n", "mcp.servers[0].tools[1]: tool \"a/b\" is listed twice"},
		{"mcp:\n  servers:\n    - name: n\n      tools: [a/b]\n      url: x\n", "mcp.servers[0].url: unknown key"},
	} {
		_, err := Parse("m.yaml", []byte("version: 1\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestMCPRemotes(t *testing.T) {
	c, err := Parse("m.yaml", []byte("version: 1\nmcp:\n  remotes:\n    - name: docs\n      url: https://docs.example/mcp\n      tools: [search]\n"))
	if err != nil || len(c.MCP.Remotes) != 1 || c.MCP.Remotes[0].URL != "https://docs.example/mcp" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  remotes:\n    - name: d\n      url: http://docs.example/mcp\n      tools: [s]\n", "mcp.remotes[0].url: must be https"},
		{"  remotes:\n    - name: d\n      url: /mcp\n      tools: [s]\n", "is not an absolute URL"},
		{"  remotes:\n    - name: d\n      url: https://x/mcp\n", "mcp.remotes[0].tools: lists no tools"},
		{"  remotes:\n    - name: d\n      url: https://x/mcp\n      tools: [a/b]\n", "mcp.remotes[0].tools[0]: \"a/b\" is not a tool name"},
		{"  servers:\n    - name: d\n      tools: [clock/now]\n  remotes:\n    - name: d\n      url: https://x/mcp\n      tools: [s]\n", "\"d\" is already the name of mcp.servers[0]"},
		{"  remotes:\n    - name: d\n      url: https://x/mcp\n      tools: [s]\n      acting_as: nobody\n",
			"mcp.remotes[0].acting_as: unknown acting_as \"nobody\"; want one of user, agent"},
		{"  remotes:\n    - name: d\n      url: https://x/mcp\n      tools: [s]\n      acting_as: User\n", "unknown acting_as \"User\""},
	} {
		_, err := Parse("m.yaml", []byte("version: 1\nmcp:\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("m.yaml", []byte("version: 1\nmcp:\n  remotes:\n    - name: d\n      url: http://127.0.0.1:9/mcp\n      tools: [s]\n")); err != nil {
		t.Errorf("loopback http refused: %v", err)
	}
	for _, want := range []ActingAs{"", ActingAsUser, ActingAsAgent} {
		y := "version: 1\nmcp:\n  remotes:\n    - name: d\n      url: https://x/mcp\n      tools: [s]\n"
		if want != "" {
			y += "      acting_as: " + string(want) + "\n"
		}
		c, err := Parse("m.yaml", []byte(y))
		if err != nil || c.MCP.Remotes[0].ActingAs != want {
			t.Errorf("acting_as %q: %+v %v", want, c, err)
		}
	}
}

func TestMCPGateway(t *testing.T) {
	base := "version: 1\nmcp:\n  remotes:\n    - name: up\n      url: https://up.example/mcp\n      tools: [search]\n  servers:\n"
	c, err := Parse("m.yaml", []byte(base+"    - name: gw\n      upstream: up\n      scopes: [docs:read]\n"))
	if err != nil || c.MCP.Servers[0].Upstream != "up" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"    - name: gw\n      upstream: nope\n      scopes: [a]\n", "mcp.servers[0].upstream: no remote \"nope\""},
		{"    - name: gw\n      upstream: up\n", "mcp.servers[0].scopes: a gateway needs the scopes"},
		{"    - name: gw\n      upstream: up\n      scopes: [a]\n      tools: [clock/now]\n", "a gateway offers its upstream's tools"},
		{"    - name: gw\n      tools: [clock/now]\n      scopes: [a]\n", "only a gateway (with upstream) takes scopes"},
		{"    - name: gw\n      upstream: up\n      scopes: [\"a b\"]\n", "is not a valid scope token"},
	} {
		_, err := Parse("m.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestMCPRemoteCommand(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "server")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(filepath.Join(dir, "m.yaml"), []byte("version: 1\nmcp:\n  remotes:\n    - name: local\n      command: [server, --stdio]\n      env: {MODE: demo}\n      tools: [t]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MCP.Remotes[0].Command; got[0] != exe || got[1] != "--stdio" {
		t.Fatalf("command %v", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"      command: [server]\n      url: https://x/mcp\n", "set either url or command"},
		{"      command: [missing]\n", "does not exist"},
		{"      command: [server]\n      env: {\"A=B\": x}\n", "is not an environment variable name"},
		{"      command: [server]\n      acting_as: user\n", "mcp.remotes[0].acting_as: a command remote gets no token"},
		{"", "is required (or command"},
	} {
		_, err := Parse(filepath.Join(dir, "m.yaml"), []byte("version: 1\nmcp:\n  remotes:\n    - name: local\n      tools: [t]\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestMCPPlugins(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "textkit")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(filepath.Join(dir, "m.yaml"), []byte("version: 1\nmcp:\n  plugins:\n    - name: textkit\n      path: textkit\n      env: {MODE: demo}\n  servers:\n    - name: text\n      tools: [textkit/count]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.MCP.Plugins[0]; p.Path != exe || p.Env["MODE"] != "demo" {
		t.Fatalf("plugin %+v", p)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  plugins:\n    - name: textkit\n", "mcp.plugins[0].path: is required"},
		{"  plugins:\n    - name: textkit\n      path: missing\n", "does not exist"},
		{"  plugins:\n    - name: textkit\n      path: data.txt\n", "is not executable"},
		{"  plugins:\n    - name: TextKit\n      path: textkit\n", "is not a valid plugin name"},
		{"  plugins:\n    - name: t\n      path: textkit\n    - name: t\n      path: textkit\n", "mcp.plugins[1].name: plugin \"t\" is already defined at mcp.plugins[0]"},
		{"  plugins:\n    - name: t\n      path: textkit\n      sha256: abc\n", "mcp.plugins[0].sha256: must be 64 lowercase hex digits"},
		{"  plugins:\n    - name: t\n      path: textkit\n      env: {\"A=B\": x}\n", "is not an environment variable name"},
		{"  remotes:\n    - name: t\n      url: https://x/mcp\n      tools: [s]\n  plugins:\n    - name: t\n      path: textkit\n", "\"t\" is already the name of mcp.remotes[0]"},
	} {
		_, err := Parse(filepath.Join(dir, "m.yaml"), []byte("version: 1\nmcp:\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "https://App.Example", want: "https://app.example"},
		{in: "http://localhost:6274", want: "http://localhost:6274"},
		{in: "https://app.example/", want: "https://app.example"},
		{in: "ftp://app.example", err: "is not scheme://host[:port]"},
		{in: "app.example", err: "is not scheme://host[:port]"},
		{in: "https://app.example/path", err: "has more than scheme, host and port"},
		{in: "https://user@app.example", err: "has more than scheme, host and port"},
		{in: "https://app.example:99999", err: "want a number from 1 to 65535"},
		{in: "https://app.example:080", err: "want a number from 1 to 65535"},
	}
	for _, tt := range tests {
		got, err := ParseOrigin(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseOrigin(%q) = %q, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	_, err := Parse("o.yaml", []byte("version: 1\nmcp:\n  allowed_origins: [\"*\", \"https://app.example\", \"app.example\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "mcp.allowed_origins[2]") {
		t.Errorf("config with a bad origin: %v", err)
	}
}
