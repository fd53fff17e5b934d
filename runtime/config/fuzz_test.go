package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/agenthost/agenthost/runtime/config"
)

// FuzzParse checks that no input makes Parse panic, and that its result is
// always either a valid configuration or a non-empty list of located
// problems.
func FuzzParse(f *testing.F) {
	quickstart, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "agenthost.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := []string{
		string(quickstart),
		"",
		"version: 1\n",
		"version: 2\n",
		"version: \"1\"\n",
		"- a\n- b\n",
		"version: 1\n---\nversion: 1\n",
		"version: 1\nlisten: {address: 0.0.0.0:8420}\n",
		"version: 1\nlisten: {issuer: \"http://127.0.0.1:8420/?x#y\"}\n",
		"version: 1\nlisten:\n  tls: {cert_file: /dev/null, key_file: /}\n",
		"version: 1\nidentity: {svid_ttl: 200h, ca_ttl: -1h}\n",
		"version: 1\nidentity: {svid_ttl: 9223372036854775807ns}\n",
		"version: 1\na: &a [*a]\n",
		"version: 1\nx: &x {y: 1}\nlisten:\n  <<: *x\n",
		"version: 1\n? [a]\n: b\n~: c\n",
		"version: 1\nlog: !!binary aGVsbG8=\n",
		"version: 1\ntrust_domain: !custom x\n",
		"version: 0x1\n",
		"version: 1\nversion: 1\nlog: {level: info, level: warn}\n",
		"\xef\xbb\xbfversion: 1\n",
		"version: 1\ntrust_domain: \"\\u0000\"\n",
		"{version: 1, listen: {address: \"[::1]:1\"}}",
		"version: 1\nstorage: {driver: postgres, path: \"\"}\n",
		"version: 1\nauth: {access_token_ttl: 1m, code_ttl: 1h, signing_key_period: 0s, dynamic_registration: no}\n",
		"version: 1\nauth:\n  users:\n    - {name: alice, password_hash: \"$argon2id$v=19$m=19456,t=2,p=1$AAECAwQFBgcICQoLDA0ODw$ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM\"}\n" +
			"    - {name: bob, password: x, password_hash: \"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\"}\n",
		"version: 1\nauth:\n  clients:\n    - {id: web, auth_method: none, redirect_uris: [\"https://a.example/cb\", \"com.example.app:/cb\"], scopes: [a]}\n" +
			"    - {id: \"spiffe://x/y\", auth_method: client_secret_basic, secret: s, secret_hash: \"$argon2id$v=19$m=4294967295,t=1,p=1$$\"}\n" +
			"    - {id: k, auth_method: private_key_jwt, jwks_file: /dev/null, grant_types: [client_credentials, implicit]}\n",
		"version: 1\nauth:\n  resources: [{uri: \"https://r.example#f\", scopes: [\"a b\"]}, {uri: urn:x}]\n",
		"version: 1\nagents:\n  - {name: a, path: /bin/sh, scopes: [x], client_secret: y}\n",
		"version: 1\nsandbox: {level: none, memory: 9223372036854775807, processes: 16, cpu: 1e-300, tmp_size: 1MiB, read_only_paths: [/]}\n",
		"version: 1\nagents:\n  - {name: a, path: /bin/sh, sandbox: {read_only_paths: [/tmp/.., \"\", ../x, /tmp], loopback_ports: [0, 65535, 65535], memory: 1.5GiB, cpu: 0}}\n",
		"version: 1\nmcp:\n  plugins:\n    - {name: p, path: /bin/sh, sandbox: {level: Strict, memory: 2 GiB, tmp_size: -1, processes: ~}}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz/agenthost.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			if d := c.Digest(); len(d) != 64 {
				t.Fatalf("Digest() = %q", d)
			}
			if verr := c.Validate(); verr != nil {
				t.Fatalf("a parsed config fails Validate: %v", verr)
			}
			return
		}
		if c != nil {
			t.Fatalf("Parse returned a config along with %v", err)
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %v (%T) is not a non-empty config.Errors", err, err)
		}
		for _, e := range errs {
			if e.Message == "" || e.Kind == nil {
				t.Fatalf("problem without message or kind: %#v", e)
			}
		}
	})
}
