package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Execute(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateThreeMistakes(t *testing.T) {
	path := writeFile(t, "agenthost.yaml", `version: 1
trust_domain: Bad Domain!
listen:
  address: 127.0.0.1:8420
  adress: 127.0.0.1:9000
identity:
  svid_ttl: forever
`)
	code, stdout, stderr := run(t, "validate", path)
	if code != 2 {
		t.Fatalf("exit = %d, want 2; stderr:\n%s", code, stderr)
	}
	if stdout != "" {
		t.Fatalf("stdout = %q, want nothing", stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 4 || lines[3] != "agenthost: config has 3 problems" {
		t.Fatalf("stderr:\n%s", stderr)
	}
	for i, want := range []string{":2:", ":5:", ":7:"} {
		if !strings.HasPrefix(lines[i], path+want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], path+want)
		}
	}
}

func TestValidateGoodConfig(t *testing.T) {
	path := writeFile(t, "agenthost.yaml", "version: 1\n")
	code, stdout, stderr := run(t, "validate", "--config", path)
	if code != 0 || !strings.Contains(stdout, ": ok (") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestValidateQuickstart(t *testing.T) {
	code, stdout, stderr := run(t, "validate", "../../../../examples/quickstart/agenthost.yaml")
	if code != 0 {
		t.Fatalf("quickstart config: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"missing config file", []string{"validate", "/nonexistent/agenthost.yaml"}, 2, "no such file"},
		{"unknown flag", []string{"validate", "--bogus"}, 2, "unknown flag"},
		{"too many arguments", []string{"validate", "a", "b"}, 2, "at most 1 argument"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"status without a host", []string{"status", "--data-dir", "/nonexistent/dir"}, 1, "no agenthost is running"},
		{"agents without a host", []string{"agents", "--data-dir", "/nonexistent/dir"}, 1, "no agenthost is running"},
		{"run without a host", []string{"run", "research", "hi", "--data-dir", "/nonexistent/dir"}, 1, "no agenthost is running"},
		{"run without a task", []string{"run", "research"}, 2, "takes AGENT and TASK"},
		{"quarantine without a reason", []string{"quarantine", "research"}, 2, "needs --reason"},
		{"up with a bad config", []string{"up", "--config", "/nonexistent/agenthost.yaml"}, 2, "no such file"},
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

func TestVersion(t *testing.T) {
	code, stdout, _ := run(t, "version", "--data-dir", t.TempDir())
	if code != 0 || !regexp.MustCompile(`^agenthost \S+\ngo `).MatchString(stdout) {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
}
