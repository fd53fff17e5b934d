package cli

import (
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/localapi"
)

func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell string
		// want is a line the shell's script has.
		want string
	}{
		{"bash", "complete -o default -F __start_agenthost agenthost"},
		{"zsh", "#compdef agenthost"},
		{"fish", "complete -c agenthost"},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, stdout, stderr := run(t, "completion", tt.shell)
			if code != 0 || !strings.Contains(stdout, tt.want) || stderr != "" {
				t.Fatalf("exit %d, stderr %q, stdout lacks %q:\n%.300s", code, stderr, tt.want, stdout)
			}
		})
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		code, stdout, stderr := run(t, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "agenthost completion takes one shell: bash, zsh, fish") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// complete runs what a shell runs at a tab: the hidden __complete command
// with the words typed so far, the last one being completed. It returns
// the candidates and the directive line.
func complete(t *testing.T, words ...string) ([]string, string) {
	t.Helper()
	code, stdout, stderr := run(t, append([]string{"__complete"}, words...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", words, code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompleteAgentNames(t *testing.T) {
	b := &runBackend{}
	dir := startRunHost(t, b)
	const noFiles = ":4" // cobra.ShellCompDirectiveNoFileComp
	tests := []struct {
		name  string
		words []string
		want  []string
	}{
		{"run", []string{"run", "--data-dir", dir, ""}, []string{"research\trunning"}},
		{"run with a prefix", []string{"run", "--data-dir", dir, "re"}, []string{"research\trunning"}},
		{"run with another prefix", []string{"run", "--data-dir", dir, "pay"}, nil},
		{"run's task is not completed", []string{"run", "--data-dir", dir, "research", ""}, nil},
		{"quarantine", []string{"quarantine", "--data-dir", dir, ""}, []string{"research\trunning"}},
		{"release", []string{"release", "--data-dir", dir, "r"}, []string{"research\trunning"}},
		{"no host: nothing", []string{"run", "--data-dir", t.TempDir(), ""}, nil},
		{"no data directory: nothing", []string{"quarantine", "--data-dir", "/nonexistent/dir", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive := complete(t, tt.words...)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || directive != noFiles {
				t.Fatalf("candidates %q, directive %q; want %q, %q", got, directive, tt.want, noFiles)
			}
		})
	}

	// The state shown is the host's at the time of the tab.
	b.mu.Lock()
	b.states = []string{localapi.StateQuarantined}
	b.mu.Unlock()
	if got, _ := complete(t, "release", "--data-dir", dir, ""); strings.Join(got, ",") != "research\tquarantined" {
		t.Fatalf("candidates %q", got)
	}
}

func TestCompleteOutputFormats(t *testing.T) {
	got, _ := complete(t, "status", "-o", "")
	if strings.Join(got, ",") != "text,json" {
		t.Fatalf("candidates %q", got)
	}
}
