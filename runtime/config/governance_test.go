package config

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/audit/audittest"
)

func TestGovernanceSections(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "g.yaml")
	c, err := Parse(name, []byte(`version: 1
policy:
  dir: policies
  serve_authzen: true
audit:
  checkpoint_every: 10
  checkpoint_interval: 5s
signals:
  transmitter: true
  receivers:
    - name: idp
      issuer: https://idp.example
    - name: risk
      issuer: http://127.0.0.1:9000
      delivery: poll
      poll_url: http://127.0.0.1:9000/ssf/poll
      token_env: RISK_TOKEN
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.Dir != filepath.Join(dir, "policies") || !c.Policy.ServeAuthZEN || c.Audit.CheckpointEvery != 10 ||
		c.Audit.CheckpointInterval != 5*time.Second || !c.Signals.Transmitter || len(c.Signals.Receivers) != 2 {
		t.Fatalf("%+v %+v %+v", c.Policy, c.Audit, c.Signals)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"policy:\n  dir: nope\n", `policy.dir: "`},
		{"policy:\n  dir: policies\n  authzen_endpoint: https://pdp.example/access/v1/evaluation\n", "set either dir"},
		{"policy:\n  authzen_endpoint: http://pdp.example/x\n", "policy.authzen_endpoint: must be https"},
		{"policy:\n  serve_authzen: true\n", "policy.serve_authzen: needs policy.dir"},
		{"audit:\n  checkpoint_every: -1\n", "audit.checkpoint_every: must not be negative"},
		{"audit:\n  checkpoint_interval: 10ms\n", "audit.checkpoint_interval: must be at least 1s"},
		{"signals:\n  receivers:\n    - name: a\n", "signals.receivers[0].issuer: is required"},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n    - name: a\n      issuer: https://y\n", `receiver "a" is already defined`},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      delivery: poll\n", "poll_url: is required with delivery: poll"},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      manage: true\n", "token_env: is required with manage"},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      delivery: poll\n      manage: true\n      token_env: T\n      poll_url: https://x/p\n", "remove poll_url or manage"},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      delivery: email\n", `"email" is not push or poll`},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      poll_url: https://x/poll\n", "only a poll receiver takes poll_url"},
		{"signals:\n  receivers:\n    - name: a\n      issuer: https://x\n      token_env: \"A=B\"\n", "is not an environment variable name"},
		{"signals:\n  receivers:\n    - name: A\n      issuer: https://x\n", "is not a valid receiver name"},
	} {
		_, err := Parse(name, []byte("version: 1\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestAuditSection(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "g.yaml")
	_, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	_, otherDomain, err := audit.GenerateKey(rand.Reader, "elsewhere.local")
	if err != nil {
		t.Fatal(err)
	}
	w, err := audittest.NewWitness("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(name, []byte(`version: 1
trust_domain: test.local
audit:
  verifier_key: `+vkey+`
  signing_key_env: AUDIT_KEY
  checkpoint_dir: kept/audit
  witness_url: https://witness.example/w1
  witness_key: `+w.VerifierKey()+`
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.VerifierKey != vkey || a.SigningKeyEnv != "AUDIT_KEY" || a.CheckpointDir != filepath.Join(dir, "kept", "audit") ||
		a.WitnessURL != "https://witness.example/w1" || a.WitnessKey != w.VerifierKey() {
		t.Fatalf("%+v", a)
	}
	tests := []struct{ name, yaml, want string }{
		{"verifier key garbage", "verifier_key: nope", "audit.verifier_key: \"nope\" is not a verifier key"},
		{"verifier key of another domain", "verifier_key: " + otherDomain, "not of this trust domain's log (agenthost-audit/test.local)"},
		{"witness key as verifier key", "verifier_key: " + w.VerifierKey(), "audit.verifier_key:"},
		{"env name", "signing_key_env: \"A=B\"", "audit.signing_key_env: \"A=B\" is not an environment variable name"},
		{"checkpoint dir is a file", "checkpoint_dir: " + file, "audit.checkpoint_dir:"},
		{"witness over http", "witness_url: http://witness.example/w1\n  witness_key: " + w.VerifierKey(), "audit.witness_url: must be https"},
		{"witness without key", "witness_url: https://witness.example/w1", "audit.witness_key: is required with witness_url"},
		{"witness key of a log", "witness_url: https://witness.example/w1\n  witness_key: " + vkey, "audit.witness_key:"},
		{"witness key alone", "witness_key: " + w.VerifierKey(), "audit.witness_key: needs audit.witness_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(name, []byte("version: 1\ntrust_domain: test.local\naudit:\n  "+tt.yaml+"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	// http on a loopback host is fine for a local witness.
	if _, err := Parse(name, []byte("version: 1\ntrust_domain: test.local\naudit:\n  witness_url: http://127.0.0.1:9000/w\n  witness_key: "+w.VerifierKey()+"\n")); err != nil {
		t.Fatalf("loopback witness: %v", err)
	}
}
