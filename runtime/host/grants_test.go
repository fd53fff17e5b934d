package host

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/hosttools"
	"github.com/agenthost/agenthost/runtime/mediator"
)

func TestCheckGrants(t *testing.T) {
	tools := hosttools.New(hosttools.Config{})
	tools["docs/search"] = nil
	tests := []struct {
		name   string
		grants []string
		want   []string // in the error; none: no error
	}{
		{"host tools", []string{"clock/now", "payments/transfer"}, nil},
		{"a whole server", []string{"notes/*", "docs/*"}, nil},
		{"a remote tool", []string{"docs/search"}, nil},
		{"unknown tool of a known server", []string{"clock/now", "payments/refund"},
			[]string{`agent a is granted "payments/refund", which no server offers`, "the tools are: clock/now, docs/search, notes/add"}},
		{"unknown server", []string{"mail/*"}, []string{`agent a is granted "mail/*", which no server offers`}},
		{"a prefix is not a server", []string{"pay/*"}, []string{`"pay/*", which no server offers`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkGrants([]config.AgentConfig{{Name: "a", Tools: tt.grants}}, tools)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("checkGrants = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("checkGrants accepted a grant of a tool no server offers")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkGrants = %q, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestUnknownGrantRefusesStart: the host does not start on a grant of a
// tool no server offers, a tool plugin's included, and says which agent,
// which tool, and which tools exist.
func TestUnknownGrantRefusesStart(t *testing.T) {
	requireSandbox(t)
	tests := []struct {
		name  string
		agent string
		grant string
		want  []string
	}{
		{"host tool", "payments", "payments/refund", []string{`agent payments is granted "payments/refund", which no server offers`,
			"payments/balance, payments/transfer"}},
		{"tool plugin's tool", "research", "textkit/nope", []string{`agent research is granted "textkit/nope", which no server offers`,
			"textkit/digest, textkit/stats"}},
		{"remote tool", "research", "local-notes/add", []string{`agent research is granted "local-notes/add"`, "local-notes/search"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quickstartConfig(t)
			for i := range cfg.Agents {
				if cfg.Agents[i].Name == tt.agent {
					cfg.Agents[i].Tools = append(cfg.Agents[i].Tools, tt.grant)
				}
			}
			h, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
			if err == nil {
				h.close()
				t.Fatalf("the host started with %s granted %s", tt.agent, tt.grant)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New = %q, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestQuickstartPayments runs the Quick start's payments and assistant
// commands on the quickstart config and policies: a transfer through the
// assistant moves money; a transfer asked of payments directly does not,
// because policy hides payments/transfer from that task, and the hidden
// tool is audited as a tool.list denial; the compliance check passes.
func TestQuickstartPayments(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := quickstartConfig(t)
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	waitAllRunning(ctx, t, dir, len(cfg.Agents))

	steps := []struct {
		agent, input, want string
	}{
		{"assistant", "transfer from: alice to: bob amount: 12.50",
			"payments says: The payments/transfer tool returned: transferred 12.50 from alice to bob"},
		{"payments", "what is the balance of account: bob", "The payments/balance tool returned: bob: 12.50"},
		{"assistant", "what is the balance of account: bob", "payments says: The payments/balance tool returned: bob: 12.50"},
	}
	for _, s := range steps {
		final, failure, err := taskAnswer(ctx, h, s.agent, s.input)
		if err != nil || failure != "" || final != s.want {
			t.Errorf("run %s %q = %q %q %v, want %q", s.agent, s.input, final, failure, err, s.want)
		}
	}

	before, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	final, failure, err := taskAnswer(ctx, h, "payments", "transfer from: alice to: bob amount: 12.50")
	if err != nil || failure != "" || strings.Contains(final, "transferred") {
		t.Errorf("direct transfer: %q %q %v", final, failure, err)
	}
	after, err := h.AuditRead(ctx, int64(len(before)), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var hidden []string
	for _, e := range after {
		if r := e.Record; r.Action == mediator.ActionListTools && r.Resource != "*" {
			hidden = append(hidden, strings.Join([]string{r.Agent, r.Resource, r.Decision, r.Outcome, r.Reason}, " | "))
			if !strings.HasPrefix(r.Policy, "transfers-only-when-delegated") {
				t.Errorf("the hidden tool's record names policy %q", r.Policy)
			}
		}
	}
	want := "payments | payments/transfer | deny | denied | hidden from the tool list: payments/transfer is called only in a task delegated by the assistant"
	if len(hidden) != 1 || hidden[0] != want {
		t.Errorf("records of hidden tools: %q, want [%q]", hidden, want)
	}
	if out, _, _ := taskAnswer(ctx, h, "payments", "what is the balance of account: bob"); out != "The payments/balance tool returned: bob: 12.50" {
		t.Errorf("the direct transfer moved money: %q", out)
	}
	if v, err := h.AuditCheck(ctx, mustRules(t)); err != nil || len(v) != 0 {
		t.Errorf("audit check with the quickstart rules: %v, %v", v, err)
	}
}
