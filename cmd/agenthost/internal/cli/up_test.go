package cli

import (
	"strings"
	"testing"
)

func TestUpUnsafeNoSandboxFlag(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "help describes the flag",
			args:       []string{"up", "--help"},
			wantCode:   0,
			wantStdout: "--unsafe-no-sandbox   allow plugins whose sandbox level is none to start uncontained (debugging only; audited)",
		},
		{
			name:       "flag is accepted",
			args:       []string{"up", "--unsafe-no-sandbox", "--config", "/nonexistent/agenthost.yaml"},
			wantCode:   2,
			wantStderr: "no such file",
		},
		{
			name:       "flag takes an explicit boolean",
			args:       []string{"up", "--unsafe-no-sandbox=false", "--config", "/nonexistent/agenthost.yaml"},
			wantCode:   2,
			wantStderr: "no such file",
		},
		{
			name:       "flag refuses other values",
			args:       []string{"up", "--unsafe-no-sandbox=maybe"},
			wantCode:   2,
			wantStderr: `invalid argument "maybe" for "--unsafe-no-sandbox"`,
		},
		{
			name:       "flag is not global",
			args:       []string{"validate", "--unsafe-no-sandbox"},
			wantCode:   2,
			wantStderr: "unknown flag: --unsafe-no-sandbox",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want it to contain %q)\nstderr %q (want it to contain %q)",
					code, tt.wantCode, stdout, tt.wantStdout, stderr, tt.wantStderr)
			}
		})
	}
}
