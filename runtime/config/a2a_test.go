package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// a2aDir is a configuration directory with an agent binary (front), a
// trust bundle (bundle.json) and a file that is no bundle (notes.txt).
func a2aDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"front":       "#!/bin/sh\n",
		"bundle.json": `{"keys":[],"spiffe_sequence":1}`,
		"notes.txt":   "not a bundle\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestA2ARemotes(t *testing.T) {
	dir := a2aDir(t)
	src := "version: 1\n" +
		"agents:\n  - {name: front, path: front, call_agents: [research, billing]}\n" +
		"a2a:\n  remotes:\n" +
		"    - name: research\n      url: https://agents.example/a2a/research\n" +
		"      trust_domain: partner.example\n      bundle_file: bundle.json\n" +
		"    - name: billing\n      url: https://billing.example/a2a/billing\n      acting_as: agent\n" +
		"      trust_domain: billing.example\n      bundle_url: https://billing.example/spiffe/bundle\n      require_signed_card: false\n"
	c, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	research, billing := c.A2A.Remotes[0], c.A2A.Remotes[1]
	if research.Name != "research" || research.URL != "https://agents.example/a2a/research" || research.ActingAs != "" ||
		research.TrustDomain != "partner.example" || research.BundleFile != filepath.Join(dir, "bundle.json") ||
		research.RequireSignedCard != nil || !research.SignedCardRequired() {
		t.Errorf("research: %+v", research)
	}
	if billing.ActingAs != config.ActingAsAgent || billing.BundleURL != "https://billing.example/spiffe/bundle" ||
		billing.RequireSignedCard == nil || billing.SignedCardRequired() {
		t.Errorf("billing: %+v", billing)
	}
	// Without a bundle nothing can be verified, so nothing is required.
	if (config.A2ARemoteConfig{Name: "x", URL: "https://x.example/a2a/x"}).SignedCardRequired() {
		t.Error("a remote without a bundle requires signed cards")
	}

	// An empty section changes no digest.
	plain, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte("version: 1\na2a: {remotes: []}\n"))
	if err != nil || empty.Digest() != plain.Digest() || c.Digest() == plain.Digest() {
		t.Errorf("digests: %v", err)
	}

	// http on loopback, for development, with allow_private_fetch.
	dev := "version: 1\nauth: {allow_private_fetch: true}\na2a:\n  remotes:\n    - {name: r, url: http://127.0.0.1:8421/a2a/r, trust_domain: dev.local, bundle_url: http://127.0.0.1:8421/spiffe/bundle}\n"
	if _, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(dev)); err != nil {
		t.Errorf("loopback http with allow_private_fetch: %v", err)
	}
}

func TestA2ARemoteProblems(t *testing.T) {
	dir := a2aDir(t)
	const head = "version: 1\nagents:\n  - {name: front, path: front}\na2a:\n  remotes:\n"
	tests := []struct {
		name, remotes, want string
	}{
		{"no name", "    - {url: https://x.example/a2a/x}\n", "c.yaml:6:7: a2a.remotes[0].name: is required"},
		{"bad name", "    - {name: Research, url: https://x.example/a2a/x}\n", `a2a.remotes[0].name: "Research" is not a valid remote agent name`},
		{"twice", "    - {name: r, url: https://x.example/a2a/x}\n    - {name: r, url: https://y.example/a2a/y}\n",
			`a2a.remotes[1].name: remote agent "r" is already defined at a2a.remotes[0]`},
		{"a hosted agent's name", "    - {name: front, url: https://x.example/a2a/x}\n",
			`a2a.remotes[0].name: "front" is already the name of a hosted agent`},
		{"no url", "    - {name: r}\n", "a2a.remotes[0].url: is required"},
		{"relative url", "    - {name: r, url: /a2a/r}\n", `a2a.remotes[0].url: "/a2a/r" is not an absolute URL`},
		{"url with user info", "    - {name: r, url: \"https://me@x.example/a2a/r\"}\n", "is not an absolute URL without user info"},
		{"http elsewhere", "    - {name: r, url: http://x.example/a2a/r}\n", "a2a.remotes[0].url: must be https (http only on a loopback host"},
		{"http on loopback without allow_private_fetch", "    - {name: r, url: http://127.0.0.1:9/a2a/r}\n",
			"a2a.remotes[0].url: an http URL on a loopback host needs auth.allow_private_fetch"},
		{"another scheme", "    - {name: r, url: ftp://x.example/a2a/r}\n", "a2a.remotes[0].url: must be https"},
		{"unknown acting_as", "    - {name: r, url: https://x.example/a2a/r, acting_as: nobody}\n",
			`a2a.remotes[0].acting_as: unknown acting_as "nobody"; want one of user, agent`},
		{"trust domain without bundle", "    - {name: r, url: https://x.example/a2a/r, trust_domain: x.example}\n",
			"a2a.remotes[0].trust_domain: needs the trust domain's bundle: set bundle_url or bundle_file"},
		{"bundle without trust domain", "    - {name: r, url: https://x.example/a2a/r, bundle_file: bundle.json}\n",
			"a2a.remotes[0].trust_domain: is required with a bundle"},
		{"bad trust domain", "    - {name: r, url: https://x.example/a2a/r, trust_domain: spiffe://x.example, bundle_file: bundle.json}\n",
			`a2a.remotes[0].trust_domain: "spiffe://x.example" is not a trust domain name`},
		{"both bundles", "    - {name: r, url: https://x.example/a2a/r, trust_domain: x.example, bundle_file: bundle.json, bundle_url: https://x.example/b}\n",
			"a2a.remotes[0].bundle_file: set bundle_url or bundle_file, not both"},
		{"bundle url over http", "    - {name: r, url: https://x.example/a2a/r, trust_domain: x.example, bundle_url: http://x.example/b}\n",
			"a2a.remotes[0].bundle_url: must be https"},
		{"missing bundle file", "    - {name: r, url: https://x.example/a2a/r, trust_domain: x.example, bundle_file: nope.json}\n",
			"a2a.remotes[0].bundle_file: " + filepath.Join(dir, "nope.json") + " does not exist"},
		{"bundle file is no bundle", "    - {name: r, url: https://x.example/a2a/r, trust_domain: x.example, bundle_file: notes.txt}\n",
			"a2a.remotes[0].bundle_file: " + filepath.Join(dir, "notes.txt") + " is not a SPIFFE trust bundle"},
		{"signed card required without bundle", "    - {name: r, url: https://x.example/a2a/r, require_signed_card: true}\n",
			"a2a.remotes[0].require_signed_card: a signature can only be verified with a trust bundle"},
		{"a token", "    - {name: r, url: https://x.example/a2a/r, token: eyJhbGciOi}\n",
			"a2a.remotes[0].token: no credential of a remote agent is written in the config"},
		{"unknown key", "    - {name: r, url: https://x.example/a2a/r, bundle: x}\n", `a2a.remotes[0].bundle: unknown key "bundle"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(head+tt.remotes))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant %q", err, tt.want)
			}
			if !errors.Is(err, config.ErrInvalid) && !errors.Is(err, config.ErrUnknownKey) && !errors.Is(err, config.ErrType) {
				t.Errorf("error kind: %v", err)
			}
		})
	}
}

// TestCallAgentsRemote: call_agents names hosted agents and remote ones;
// a name that is neither is a problem saying where names come from.
func TestCallAgentsRemote(t *testing.T) {
	dir := a2aDir(t)
	src := "version: 1\nagents:\n  - {name: front, path: front, call_agents: [research, nope]}\n" +
		"a2a:\n  remotes:\n    - {name: research, url: https://agents.example/a2a/research}\n"
	_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), `agents[0].call_agents[1]: no agent "nope" is defined under agents or a2a.remotes`) ||
		strings.Contains(err.Error(), "call_agents[0]") {
		t.Fatalf("error = %v", err)
	}
}

func TestA2AProof(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte("version: 1\ntrust_domain: test.local\na2a:\n  proof: http_signature\n"))
	if err != nil || cfg.A2A.Proof != config.ProofHTTPSignature {
		t.Fatalf("proof http_signature: %+v, %v", cfg.A2A, err)
	}
	_, err = config.Parse("p.yaml", []byte("version: 1\ntrust_domain: test.local\na2a:\n  proof: dpop\n"))
	if err == nil || !strings.Contains(err.Error(), "a2a.proof") {
		t.Fatalf("an unknown proof: %v", err)
	}
}
