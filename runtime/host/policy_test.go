package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

const basePolicies = `
@id("baseline")
permit (principal, action, resource);

@id("no-notes-search")
@reason("notes are off limits")
forbid (principal, action == Action::"tool.call", resource == Tool::"notes/search");

@id("no-tools-at-high-risk")
@reason("the user's risk level is high")
forbid (principal, action == Action::"tool.call", resource) when { context.risk == "high" };
`

// policyFixture returns this test binary (an agent plugin in the mode
// testAgentEnv names), a temporary directory, and a policies directory in
// it holding basePolicies as file.
func policyFixture(t testing.TB, file string) (exe, dir, pdir string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	pdir = filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, file), []byte(basePolicies), 0o644); err != nil {
		t.Fatal(err)
	}
	return exe, dir, pdir
}

// TestPolicyAndAuditLog: with Cedar policies configured, a call the
// agent's grants allow is still refused when a policy forbids it, the
// refusal names the policy, every decision lands in the tamper-evident
// audit log, which verifies, and a policy reload takes effect at once
// while a broken policy file leaves the set in force.
func TestPolicyAndAuditLog(t *testing.T) {
	exe, dir, pdir := policyFixture(t, "base.cedar")
	cfg := testConfig(t)
	cfg.Policy.Dir = pdir
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"},
		Tools: []string{"clock/now", "notes/search"}}}
	h := runHost(t, cfg, filepath.Join(dir, "data"))
	ctx := context.Background()

	call := func(task, subject, tool string) error {
		end, err := h.med.BeginTask(mediator.Caller{Agent: "whoami", Identity: h.agentIDs["whoami"], TaskID: task, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		defer end()
		_, err = h.med.HostFor("whoami").CallTool(ctx, &pluginpb.CallToolRequest{TaskId: task, Tool: tool, ArgumentsJson: "{}"})
		return err
	}
	if err := call("t1", "alice", "clock/now"); err != nil {
		t.Fatalf("clock/now: %v", err)
	}
	err := call("t2", "alice", "notes/search")
	if err == nil || !strings.Contains(err.Error(), "notes are off limits") {
		t.Fatalf("notes/search under a forbid: %v", err)
	}
	// Not granted at all: the grants refuse before any policy is asked.
	if err := call("t3", "alice", "notes/add"); err == nil || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("ungranted tool: %v", err)
	}
	// A risk signal about the user reaches policy.
	h.signals.setRisk("alice", "high")
	if err := call("t4", "alice", "clock/now"); err == nil || !strings.Contains(err.Error(), "risk level is high") {
		t.Fatalf("clock/now at high risk: %v", err)
	}
	if err := call("t5", "bob", "clock/now"); err != nil {
		t.Fatalf("another user is not affected: %v", err)
	}
	h.signals.setRisk("alice", "")

	// The MCP servers' hook asks the same policies, for the caller's
	// client and subject.
	authz := h.mcpAuthorizer(map[string]string{"search": "notes/search", "now": "clock/now"})
	if err := authz(ctx, &resource.Caller{Subject: "alice", ClientID: "cli"}, "notes", "search"); err == nil {
		t.Fatal("the MCP hook allowed a forbidden tool")
	}
	if err := authz(ctx, &resource.Caller{Subject: "alice", ClientID: "cli"}, "clock", "now"); err != nil {
		t.Fatalf("the MCP hook refused an allowed tool: %v", err)
	}

	// Every decision is in the audit log, with the deciding policy.
	entries, err := audit.Read(ctx, syncedStore(t, h), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var denied, risky *audit.Record
	for i := range entries {
		r := &entries[i].Record
		if r.Action == "tool.call" && r.Resource == "notes/search" && r.Decision == "deny" {
			denied = r
		}
		if r.Txn == "t4" && r.Decision == "deny" {
			risky = r
		}
	}
	if risky == nil || risky.Risk != "high" || !strings.Contains(risky.Policy, "no-tools-at-high-risk") {
		t.Fatalf("the refusal at high risk is recorded as %+v", risky)
	}
	if denied == nil || !strings.Contains(denied.Policy, "no-notes-search") || denied.Subject != "alice" || denied.Txn != "t2" ||
		denied.AgentID != "spiffe://test.local/agent/whoami" {
		t.Fatalf("denied record %+v", denied)
	}
	res, err := h.AuditVerify(ctx)
	if err != nil || res.Report.Problem != nil || res.Report.Records < int64(len(entries)) || res.VerifierKey == "" {
		t.Fatalf("AuditVerify = %+v, %v", res, err)
	}

	// Reload: lifting the forbid takes effect on the next call.
	if err := os.WriteFile(filepath.Join(pdir, "base.cedar"), []byte("@id(\"baseline\")\npermit (principal, action, resource);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v1, err := h.PolicyReload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := call("t6", "alice", "notes/search"); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	// A broken file is refused with its line, and the set stays.
	if err := os.WriteFile(filepath.Join(pdir, "broken.cedar"), []byte("permit (principal, action\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.PolicyReload(ctx); err == nil || !strings.Contains(err.Error(), "broken.cedar:") {
		t.Fatalf("broken reload: %v", err)
	}
	if h.engine.Version() != v1 {
		t.Fatal("a failed reload changed the policy set")
	}
	if err := call("t7", "alice", "notes/search"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}
