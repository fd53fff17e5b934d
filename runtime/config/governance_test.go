package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
