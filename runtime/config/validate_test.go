package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// TestGrantsOfUnknownTools: a grant of a tool that neither the host nor a
// remote server in the config offers is a problem at its line; a grant of
// a tool plugin's tool is left to the host, which knows those tools only
// once it has started the plugin.
func TestGrantsOfUnknownTools(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bin"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const mcp = "mcp:\n" +
		"  remotes:\n    - {name: docs, url: https://docs.example/mcp, tools: [search]}\n" +
		"  plugins:\n    - {name: textkit, path: bin}\n"
	tests := []struct {
		name  string
		tools string
		want  string // the problem; empty: none
	}{
		{"host tools", "[clock/now, notes/*, payments/transfer]", ""},
		{"remote tools", "[docs/search, docs/*]", ""},
		{"tool plugin's tools", "[textkit/stats, textkit/anything, textkit/*]", ""},
		{"unknown host tool", "[payments/refund]",
			`c.yaml:10:13: agents[0].tools[0]: agent payments is granted "payments/refund", which no server offers; ` +
				"the tools are: clock/now, notes/add, notes/search, payments/balance, payments/transfer, docs/search, " +
				"and those of the tool plugins textkit (listed when the host starts them)"},
		{"unknown remote tool", "[clock/now, docs/fetch]", `agents[0].tools[1]: agent payments is granted "docs/fetch", which no server offers`},
		{"unknown server", "[mail/*]", `agents[0].tools[0]: agent payments is granted "mail/*", which no server offers`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\n" + mcp + "agents:\n  - name: payments\n    path: bin\n    tools: " + tt.tools + "\n"
			_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse = %v", err)
				}
				return
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Fatalf("Parse = %v\nwant one problem with %q", err, tt.want)
			}
		})
	}
}
