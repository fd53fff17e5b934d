package cli

import (
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/audit"
)

func TestAuditKeygen(t *testing.T) {
	for _, td := range []string{"agenthost.local", "agenthost.example", "a-b_c.test"} {
		t.Run(td, func(t *testing.T) {
			code, stdout, stderr := run(t, "audit", "keygen", "--trust-domain", td)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			skey, ok := strings.CutSuffix(stdout, "\n")
			if !ok || strings.Contains(skey, "\n") {
				t.Fatalf("stdout = %q, want the key on one line and nothing else", stdout)
			}
			s, err := audit.NewSigner(skey)
			if err != nil {
				t.Fatalf("NewSigner(stdout): %v", err)
			}
			if name, err := audit.KeyName(td); err != nil || s.Name() != name {
				t.Errorf("key name = %q, want %q (%v)", s.Name(), name, err)
			}
			if want := "verifier key: " + s.VerifierKey() + "\n"; stderr != want {
				t.Errorf("stderr = %q, want %q", stderr, want)
			}
			if _, err := audit.ParseVerifier(s.VerifierKey()); err != nil {
				t.Errorf("ParseVerifier: %v", err)
			}
		})
	}
}

func TestAuditKeygenFresh(t *testing.T) {
	_, a, _ := run(t, "audit", "keygen", "--trust-domain", "agenthost.local")
	_, b, _ := run(t, "audit", "keygen", "--trust-domain", "agenthost.local")
	if a == "" || a == b {
		t.Fatalf("two keys: %q and %q; want two different keys", a, b)
	}
}

func TestAuditKeygenRefused(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no trust domain", []string{}, "--trust-domain: the trust domain is required"},
		{"empty trust domain", []string{"--trust-domain", ""}, "--trust-domain: the trust domain is required"},
		{"uppercase", []string{"--trust-domain", "Agenthost.local"}, `"Agenthost.local" is not a trust domain name`},
		{"white space", []string{"--trust-domain", "agent host"}, `"agent host" is not a trust domain name`},
		{"plus", []string{"--trust-domain", "a+b"}, `"a+b" is not a trust domain name`},
		{"URI", []string{"--trust-domain", "spiffe://agenthost.local"}, "is a URI; give the bare trust domain name"},
		{"too long", []string{"--trust-domain", strings.Repeat("a", 256)}, "trust domain longer than 255 bytes"},
		{"an argument", []string{"--trust-domain", "agenthost.local", "extra"}, "takes at most 0 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, append([]string{"audit", "keygen"}, tt.args...)...)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stdout %q (want nothing), stderr %q (want it to contain %q)",
					code, exitUsage, stdout, stderr, tt.wantErr)
			}
		})
	}
}
