package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPolicies = `@id("attested-only")
@reason("caller is not attested")
forbid (principal, action, resource)
unless { context.attestation == "verified" };

@id("notes-read")
permit (principal, action == Action::"tool.call", resource in Server::"notes")
when { context.scopes.contains("notes:read") };

@id("payments-approval")
@approval("required")
permit (principal == Agent::"buyer", action == Action::"tool.call", resource == Tool::"payments/pay")
when { context has amount && context.amount > 100 };
`

const testCases = `{"cases": [
  {"name": "reader reads a note",
   "request": {"principal": {"name": "reader"}, "action": "tool.call", "resource": "notes/read",
               "scopes": ["notes:read"], "attestation": "verified"},
   "expect": "allow", "policies": ["notes-read"]},
  {"name": "unattested reader is denied",
   "request": {"principal": {"name": "reader"}, "action": "tool.call", "resource": "notes/read",
               "scopes": ["notes:read"]},
   "expect": "deny", "policies": ["attested-only"]},
  {"name": "large payment needs approval",
   "request": {"principal": {"name": "buyer"}, "action": "tool.call", "resource": "payments/pay",
               "attestation": "verified", "context": {"amount": 250}},
   "expect": "approval_required"}
]}`

// policyDir writes files (name -> content) into a new directory.
func policyDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyTestPasses(t *testing.T) {
	dir := policyDir(t, map[string]string{"policies.cedar": testPolicies})
	cases := writeFile(t, "cases.json", testCases)
	code, stdout, stderr := run(t, "policy", "test", cases, "--dir", dir)
	want := "PASS reader reads a note\nPASS unattested reader is denied\nPASS large payment needs approval\n3 cases, 3 passed, 0 failed\n"
	if code != 0 || stdout != want || stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestPolicyTestFromConfig(t *testing.T) {
	// policy.dir is relative to the config file.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "p.cedar"), []byte(testPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "agenthost.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\npolicy:\n  dir: policies\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := writeFile(t, "cases.json", testCases)
	code, stdout, stderr := run(t, "policy", "test", cases, "--config", cfg)
	if code != 0 || !strings.HasSuffix(stdout, "3 cases, 3 passed, 0 failed\n") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestPolicyTestFails(t *testing.T) {
	// Without the approval policy the payment is denied.
	dir := policyDir(t, map[string]string{"policies.cedar": testPolicies[:strings.Index(testPolicies, `@id("payments-approval")`)]})
	cases := writeFile(t, "cases.json", testCases)
	code, stdout, stderr := run(t, "policy", "test", cases, "--dir", dir)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != 1 || len(lines) != 4 || lines[0] != "PASS reader reads a note" ||
		!strings.HasPrefix(lines[2], "FAIL large payment needs approval: expected approval_required, got deny") ||
		lines[3] != "3 cases, 2 passed, 1 failed" || stderr != "" {
		t.Fatalf("exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
	}
}

func TestPolicyTestParseError(t *testing.T) {
	dir := policyDir(t, map[string]string{
		"10-good.cedar": testPolicies,
		"20-bad.cedar":  "// a comment\npermit (principal, action, resource)\nwhen { context.amount > };\n",
	})
	cases := writeFile(t, "cases.json", testCases)
	code, stdout, stderr := run(t, "policy", "test", cases, "--dir", dir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "20-bad.cedar:3:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestAuditPolicyCommandErrors(t *testing.T) {
	noHost := "/nonexistent/dir"
	badRules := writeFile(t, "rules.json", `{"allow_action": ["tool.call"]}`)
	goodRules := writeFile(t, "rules.json", `{}`)
	cases := writeFile(t, "cases.json", testCases)
	noPolicyConfig := writeFile(t, "agenthost.yaml", "version: 1\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"audit without a subcommand", []string{"audit"}, 2, "needs a subcommand"},
		{"audit unknown subcommand", []string{"audit", "frob"}, 2, `unknown command "frob"`},
		{"verify without a host", []string{"audit", "verify", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"verify with an argument", []string{"audit", "verify", "x"}, 2, "at most 0 argument"},
		{"tail without a host", []string{"audit", "tail", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"tail -n 0", []string{"audit", "tail", "-n", "0"}, 2, "-n must be between 1 and 10000"},
		{"tail -n too many", []string{"audit", "tail", "-n", "10001"}, 2, "-n must be between"},
		{"export negative", []string{"audit", "export", "--from", "-1"}, 2, "--from must not be negative"},
		{"export without a host", []string{"audit", "export", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"trace without an id", []string{"audit", "trace"}, 2, "agenthost audit trace takes one TXN"},
		{"check without a file", []string{"audit", "check"}, 2, "agenthost audit check takes one RULESFILE"},
		{"check missing file", []string{"audit", "check", "/nonexistent/rules.json"}, 2, "/nonexistent/rules.json"},
		{"check invalid rules", []string{"audit", "check", badRules}, 2, badRules + ": audit: parse rules"},
		{"check without a host", []string{"audit", "check", goodRules, "--data-dir", noHost}, 1, "no agenthost is running"},
		{"checkpoint without a host", []string{"audit", "checkpoint", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"prove without a proof", []string{"audit", "prove"}, 2, "needs either --index or --consistency"},
		{"prove both", []string{"audit", "prove", "--index", "1", "--consistency", "1:2"}, 2, "needs either --index or --consistency"},
		{"prove size with consistency", []string{"audit", "prove", "--size", "3", "--consistency", "1:2"}, 2, "--size goes with --index"},
		{"prove negative index", []string{"audit", "prove", "--index", "-1"}, 2, "--index must not be negative"},
		{"prove index beyond size", []string{"audit", "prove", "--index", "3", "--size", "3"}, 2, "must be less than --size"},
		{"prove bad consistency", []string{"audit", "prove", "--consistency", "3"}, 2, "wants OLD:NEW"},
		{"prove shrinking consistency", []string{"audit", "prove", "--consistency", "3:2"}, 2, "1 <= OLD <= NEW"},
		{"prove without a host", []string{"audit", "prove", "--index", "0", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"policy without a subcommand", []string{"policy"}, 2, "needs a subcommand"},
		{"reload without a host", []string{"policy", "reload", "--data-dir", noHost}, 1, "no agenthost is running"},
		{"policy test without --dir or config", []string{"policy", "test", cases, "--config", "/nonexistent/agenthost.yaml"}, 2, "no such file"},
		{"policy test config without policy.dir", []string{"policy", "test", cases, "--config", noPolicyConfig}, 2, "sets no policy.dir; give the policy directory with --dir"},
		{"policy test --dir and --config", []string{"policy", "test", cases, "--dir", ".", "--config", noPolicyConfig}, 2, "--dir or --config, not both"},
		{"policy test without cases", []string{"policy", "test", "--dir", "."}, 2, "takes one CASESFILE"},
		{"policy test missing cases", []string{"policy", "test", "/nonexistent/cases.json", "--dir", "."}, 2, "/nonexistent/cases.json"},
		{"policy test missing dir", []string{"policy", "test", cases, "--dir", "/nonexistent/policies"}, 1, "/nonexistent/policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to contain %q)", code, tt.wantCode, stderr, tt.wantErr)
			}
		})
	}
}
