package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agenthost/agenthost/runtime/config"
)

// tlsDir returns a directory holding cert.pem and key.pem, where a config
// file can be placed so that relative TLS paths resolve.
func tlsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// problems summarises an error returned by Parse as "LINE path: message"
// lines, failing the test if it is not config.Errors.
func problems(t *testing.T, err error) config.Errors {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not config.Errors", err, err)
	}
	return errs
}

var ignoreUnexported = cmpopts.IgnoreUnexported(config.Config{})

func TestParseValid(t *testing.T) {
	dir := tlsDir(t)
	tests := []struct {
		name string
		src  string
		want func(c *config.Config)
	}{
		{
			name: "minimal file gets every default",
			src:  "version: 1\n",
			want: func(c *config.Config) {},
		},
		{
			name: "empty sections keep defaults",
			src:  "version: 1\nlisten:\nidentity: {}\nstorage: ~\nlog:\n",
			want: func(c *config.Config) {},
		},
		{
			name: "full file",
			src: `# every key
version: 1
trust_domain: example.org
listen:
  address: 0.0.0.0:8443
  issuer: https://agents.example.org/host
  tls:
    cert_file: cert.pem
    key_file: ` + filepath.Join(dir, "key.pem") + `
identity:
  svid_ttl: 30m
  ca_ttl: 48h
storage:
  driver: sqlite
  path: state/agenthost.db
log:
  level: debug
  format: json
`,
			want: func(c *config.Config) {
				c.TrustDomain = "example.org"
				c.Listen = config.ListenConfig{
					Address: "0.0.0.0:8443",
					Issuer:  "https://agents.example.org/host",
					TLS: &config.TLSConfig{
						CertFile: filepath.Join(dir, "cert.pem"),
						KeyFile:  filepath.Join(dir, "key.pem"),
					},
				}
				c.Identity = config.IdentityConfig{SVIDTTL: 30 * time.Minute, CATTL: 48 * time.Hour}
				c.Storage.Path = filepath.Join(dir, "state", "agenthost.db")
				c.Log = config.LogConfig{Level: config.LevelDebug, Format: config.FormatJSON}
			},
		},
		{
			name: "postgres with dsn_env",
			src:  "version: 1\nstorage: {driver: postgres, dsn_env: AGENTHOST_PG_DSN}\n",
			want: func(c *config.Config) {
				c.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_PG_DSN"}
			},
		},
		{
			name: "postgres with a relative dsn_file",
			src:  "version: 1\nstorage:\n  driver: postgres\n  dsn_file: key.pem\n",
			want: func(c *config.Config) {
				c.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNFile: filepath.Join(dir, "key.pem")}
			},
		},
		{
			name: "tls on loopback defaults to an https issuer",
			src:  "version: 1\nlisten:\n  tls: {cert_file: cert.pem, key_file: key.pem}\n",
			want: func(c *config.Config) {
				c.Listen.Issuer = "https://127.0.0.1:8420"
				c.Listen.TLS = &config.TLSConfig{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
			},
		},
		{
			name: "ipv6 loopback",
			src:  "version: 1\nlisten: {address: \"[::1]:9000\"}\n",
			want: func(c *config.Config) {
				c.Listen.Address = "[::1]:9000"
				c.Listen.Issuer = "http://[::1]:9000"
			},
		},
		{
			name: "localhost with an explicit issuer",
			src:  "version: 1\nlisten: {address: \"localhost:9000\", issuer: \"http://localhost:9000/base\"}\n",
			want: func(c *config.Config) {
				c.Listen.Address = "localhost:9000"
				c.Listen.Issuer = "http://localhost:9000/base"
			},
		},
		{
			name: "svid ttl just under ca_ttl/6",
			src:  "version: 1\nidentity: {svid_ttl: 119h59m, ca_ttl: 720h}\n",
			want: func(c *config.Config) { c.Identity.SVIDTTL = 119*time.Hour + 59*time.Minute },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := config.Default()
			tt.want(want)
			if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	c := config.Default()
	want := &config.Config{
		Version:     1,
		TrustDomain: "agenthost.local",
		Listen:      config.ListenConfig{Address: "127.0.0.1:8420", Issuer: "http://127.0.0.1:8420"},
		Identity:    config.IdentityConfig{SVIDTTL: time.Hour, CATTL: 720 * time.Hour},
		Storage:     config.StorageConfig{Driver: config.DriverSQLite},
		Log:         config.LogConfig{Level: config.LevelInfo, Format: config.FormatText},
		Auth: config.AuthConfig{
			AccessTokenTTL:            5 * time.Minute,
			RefreshTokenTTL:           24 * time.Hour,
			CodeTTL:                   time.Minute,
			SigningKeyPeriod:          720 * time.Hour,
			DynamicRegistration:       true,
			RegistrationBurst:         10,
			RegistrationInterval:      time.Minute,
			MaxDynamicClients:         1000,
			UnusedClientTTL:           24 * time.Hour,
			ClientIDMetadataDocuments: true,
		},
		Sandbox: config.SandboxConfig{Level: config.SandboxStrict, Memory: config.GiB, Processes: 512, TmpSize: 64 * config.MiB},
	}
	if diff := cmp.Diff(want, c, ignoreUnexported); diff != "" {
		t.Errorf("Default() (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

// want describes one expected problem.
type want struct {
	line int
	path string
	kind error
	text string
}

func check(t *testing.T, err error, wants []want) {
	t.Helper()
	errs := problems(t, err)
	if len(errs) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(wants), err)
	}
	for i, w := range wants {
		e := errs[i]
		if e.Line != w.line || e.Path != w.path || !errors.Is(e, w.kind) || !strings.Contains(e.Message, w.text) {
			t.Errorf("problem %d = %q (kind %v), want line %d path %q kind %v containing %q",
				i, e.Error(), e.Kind, w.line, w.path, w.kind, w.text)
		}
	}
}

func TestParseFileProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{"empty", "", []want{{0, "", config.ErrEmpty, "file is empty"}}},
		{"white space", " \n\t\n", []want{{0, "", config.ErrEmpty, "file is empty"}}},
		{"only comments", "# nothing\n# here\n", []want{{0, "", config.ErrEmpty, "only comments"}}},
		{"null document", "---\n~\n", []want{{0, "", config.ErrEmpty, "file is empty"}}},
		{"unclosed flow list", "version: 1\nlisten: [a\n", []want{{2, "", config.ErrSyntax, "not valid YAML: did not find expected ',' or ']'"}}},
		{"unclosed flow list at the end", "version: 1\nlisten: [a\n\n\n", []want{{2, "", config.ErrSyntax, "not valid YAML"}}},
		{"bad indentation", "version: 1\nlisten:\n  a: b\n c: d\n", []want{{4, "", config.ErrSyntax, "did not find expected key"}}},
		{"unterminated string", "version: 1\nlisten:\n  address: \"x\n", []want{{3, "", config.ErrSyntax, "found unexpected end of stream"}}},
		{"nested mapping value", "version: 1\nx: y: z\n", []want{{2, "", config.ErrSyntax, "mapping values are not allowed"}}},
		{"binary", "\x00\x01\x02", []want{{0, "", config.ErrSyntax, "not valid YAML"}}},
		{"tab indentation", "version: 1\nlisten:\n\taddress: x\n", []want{{3, "", config.ErrSyntax, "not valid YAML"}}},
		{"top level list", "- version: 1\n", []want{{1, "", config.ErrNotMapping, "got a list"}}},
		{"top level string", "just some text\n", []want{{1, "", config.ErrNotMapping, `got the string "just some text"`}}},
		{"two documents", "version: 1\n---\nversion: 1\n", []want{{3, "", config.ErrSyntax, "more than one YAML document"}}},
		{"missing version", "trust_domain: a.b\n", []want{{1, "version", config.ErrNoVersion, `missing required key "version"`}}},
		{
			"missing version still reports the rest",
			"trust_domain: a.b\nlog: {level: loud}\n",
			[]want{
				{1, "version", config.ErrNoVersion, "missing"},
				{2, "log.level", config.ErrType, "unknown log level"},
			},
		},
		{"empty version", "version:\n", []want{{1, "version", config.ErrNoVersion, "version is empty"}}},
		{"unsupported version", "trust_domain: a.b\nversion: 2\nbogus: 1\n", []want{{2, "version", config.ErrUnsupportedVersion, "unsupported version 2; this agenthost reads version 1"}}},
		{"version as string", "version: \"1\"\n", []want{{1, "version", config.ErrType, `expected an integer, got the string "1"`}}},
		{"version as float", "version: 1.0\n", []want{{1, "version", config.ErrType, "expected an integer"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("agenthost.yaml", []byte(tt.src))
			if c != nil {
				t.Errorf("Parse returned a config along with %v", err)
			}
			check(t, err, tt.want)
		})
	}
}

func TestParseTypeProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want want
	}{
		{"list for string", "trust_domain: [a]", want{2, "trust_domain", config.ErrType, "expected a string, got a list"}},
		{"string for section", "listen: 127.0.0.1:8420", want{2, "listen", config.ErrType, "expected a mapping, got the string"}},
		{"number for address", "listen:\n  address: 8420", want{3, "listen.address", config.ErrType, `address "8420" is not host:port`}},
		{"port out of range", "listen:\n  address: 127.0.0.1:70000", want{3, "listen.address", config.ErrType, "want a number from 1 to 65535"}},
		{"unbracketed ipv6", "listen:\n  address: ::1:8420", want{3, "listen.address", config.ErrType, "brackets"}},
		{"number for duration", "identity:\n  svid_ttl: 3600", want{3, "identity.svid_ttl", config.ErrType, "with a unit"}},
		{"bad duration", "identity:\n  ca_ttl: 30 days", want{3, "identity.ca_ttl", config.ErrType, `invalid duration "30 days"`}},
		{"bad driver", "storage:\n  driver: mysql", want{3, "storage.driver", config.ErrType, `unknown storage driver "mysql"; want one of sqlite, postgres`}},
		{"bad level", "log:\n  level: verbose", want{3, "log.level", config.ErrType, `unknown log level "verbose"; want one of debug, info, warn, error`}},
		{"bad format", "log:\n  format: xml", want{3, "log.format", config.ErrType, "unknown log format"}},
		{"list for tls", "listen:\n  tls: [a, b]", want{3, "listen.tls", config.ErrType, "expected a mapping, got a list"}},
		{"bool for path", "storage:\n  path: false", want{3, "storage.path", config.ErrType, "expected a string, got the boolean"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("agenthost.yaml", []byte("version: 1\n"+tt.src+"\n"))
			check(t, err, []want{tt.want})
		})
	}
}

func TestParseKeyProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{
			name: "unknown keys at several depths",
			src:  "version: 1\nlistn: {}\nlisten:\n  tls:\n    cert: a\n  port: 1\n",
			want: []want{
				{2, "listn", config.ErrUnknownKey, `unknown key "listn" (did you mean "listen"?)`},
				{4, "listen.tls.cert_file", config.ErrInvalid, `is required when listen.tls is set`},
				{4, "listen.tls.key_file", config.ErrInvalid, `is required when listen.tls is set`},
				{5, "listen.tls.cert", config.ErrUnknownKey, `unknown key "cert"`},
				{6, "listen.port", config.ErrUnknownKey, `unknown key "port"`},
			},
		},
		{
			name: "keys are case-sensitive",
			src:  "version: 1\nTrust_Domain: a\n",
			want: []want{{2, "Trust_Domain", config.ErrUnknownKey, `did you mean "trust_domain"`}},
		},
		{
			name: "duplicate keys",
			src:  "version: 1\nlog:\n  level: info\n  level: debug\nversion: 1\n",
			want: []want{
				{4, "log.level", config.ErrDuplicateKey, `duplicate key "level" (first given on line 3)`},
				{5, "version", config.ErrDuplicateKey, `duplicate key "version" (first given on line 1)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("agenthost.yaml", []byte(tt.src))
			check(t, err, tt.want)
		})
	}
}

func TestThreeMistakes(t *testing.T) {
	src := `version: 1
trust_domain: agenthost.local
listen:
  adress: 127.0.0.1:8420
identity:
  svid_ttl: 1 hour
log:
  level: verbose
`
	_, err := config.Parse("three.yaml", []byte(src))
	want := strings.Join([]string{
		`three.yaml:4:3: listen.adress: unknown key "adress" (did you mean "address"?)`,
		`three.yaml:6:13: identity.svid_ttl: invalid duration "1 hour"; want a duration with a unit, such as "90s", "30m" or "1h"`,
		`three.yaml:8:10: log.level: unknown log level "verbose"; want one of debug, info, warn, error`,
	}, "\n")
	if err == nil {
		t.Fatal("Parse accepted a file with three mistakes")
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error text (-want +got):\n%s", diff)
	}
	errs := problems(t, err)
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if diff := cmp.Diff([]int{4, 6, 8}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestValidateProblems(t *testing.T) {
	dir := tlsDir(t)
	long := strings.Repeat("a", 256)
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{
			name: "non-loopback without tls",
			src:  "listen:\n  address: 0.0.0.0:8420\n",
			want: []want{{3, "listen.address", config.ErrInvalid,
				"listening on 0.0.0.0:8420 without TLS is refused; configure listen.tls or bind a loopback address"}},
		},
		{
			name: "every interface without tls",
			src:  "listen:\n  address: \":8420\"\n",
			want: []want{{3, "listen.address", config.ErrInvalid, "listening on :8420 without TLS is refused"}},
		},
		{
			name: "public name without tls and an http issuer",
			src:  "listen:\n  address: agents.example.org:80\n  issuer: http://agents.example.org\n",
			want: []want{{3, "listen.address", config.ErrInvalid, "without TLS is refused"}},
		},
		{
			name: "every interface with tls needs an issuer",
			src:  "listen:\n  address: 0.0.0.0:8443\n  tls: {cert_file: cert.pem, key_file: key.pem}\n",
			want: []want{{2, "listen.issuer", config.ErrInvalid, "must be set when listening on every interface"}},
		},
		{
			name: "issuer with trailing slash",
			src:  "listen:\n  issuer: http://127.0.0.1:8420/\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, `must not end with a slash; use "http://127.0.0.1:8420"`}},
		},
		{
			name: "issuer with query",
			src:  "listen:\n  issuer: http://127.0.0.1:8420?a=b\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "must not have a query"}},
		},
		{
			name: "issuer with empty query",
			src:  "listen:\n  issuer: http://127.0.0.1:8420?\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "must not have a query"}},
		},
		{
			name: "issuer with fragment",
			src:  "listen:\n  issuer: \"http://127.0.0.1:8420#top\"\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "must not have a fragment"}},
		},
		{
			name: "issuer with other scheme",
			src:  "listen:\n  issuer: ftp://127.0.0.1\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "must be an http or https URL"}},
		},
		{
			name: "issuer without scheme",
			src:  "listen:\n  issuer: 127.0.0.1:8420\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, ""}},
		},
		{
			name: "issuer with user information",
			src:  "listen:\n  issuer: https://me@agents.example.org\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "user information"}},
		},
		{
			name: "http issuer on a non-loopback address with tls",
			src:  "listen:\n  address: 10.0.0.5:8443\n  issuer: http://10.0.0.5:8443\n  tls: {cert_file: cert.pem, key_file: key.pem}\n",
			want: []want{{4, "listen.issuer", config.ErrInvalid, "an http issuer is only allowed when listening on a loopback address"}},
		},
		{
			name: "http issuer naming a public host",
			src:  "listen:\n  issuer: http://agents.example.org\n",
			want: []want{{3, "listen.issuer", config.ErrInvalid, "only allowed for a loopback host"}},
		},
		{
			name: "tls with only a certificate",
			src:  "listen:\n  tls:\n    cert_file: cert.pem\n",
			want: []want{{3, "listen.tls.key_file", config.ErrInvalid, "is required when listen.tls is set"}},
		},
		{
			name: "empty tls section",
			src:  "listen:\n  tls: {}\n",
			want: []want{
				{3, "listen.tls.cert_file", config.ErrInvalid, "required"},
				{3, "listen.tls.key_file", config.ErrInvalid, "required"},
			},
		},
		{
			name: "tls files missing or directories",
			src:  "listen:\n  tls:\n    cert_file: missing.pem\n    key_file: adir\n",
			want: []want{
				{4, "listen.tls.cert_file", config.ErrInvalid, filepath.Join(dir, "missing.pem") + " does not exist"},
				{5, "listen.tls.key_file", config.ErrInvalid, "is a directory"},
			},
		},
		{
			name: "svid ttl below minimum",
			src:  "identity:\n  svid_ttl: 30s\n",
			want: []want{{3, "identity.svid_ttl", config.ErrInvalid, "30s is shorter than the minimum of 1m"}},
		},
		{
			name: "explicit zero is checked, not defaulted",
			src:  "identity:\n  svid_ttl: 0s\n",
			want: []want{{3, "identity.svid_ttl", config.ErrInvalid, "0s is shorter than the minimum of 1m"}},
		},
		{
			name: "ca ttl below minimum",
			src:  "identity:\n  ca_ttl: 30m\n",
			want: []want{{3, "identity.ca_ttl", config.ErrInvalid, "30m is shorter than the minimum of 1h"}},
		},
		{
			name: "svid ttl equal to ca_ttl/6",
			src:  "identity:\n  svid_ttl: 120h\n",
			want: []want{{3, "identity.svid_ttl", config.ErrInvalid, "120h must be less than ca_ttl/6 (120h)"}},
		},
		{
			name: "svid ttl above ca_ttl/6",
			src:  "identity:\n  ca_ttl: 6h\n  svid_ttl: 2h\n",
			want: []want{{4, "identity.svid_ttl", config.ErrInvalid, "2h must be less than ca_ttl/6 (1h)"}},
		},
		{
			name: "postgres without a dsn",
			src:  "storage:\n  driver: postgres\n",
			want: []want{{3, "storage.driver", config.ErrInvalid, "driver postgres needs dsn_env (an environment variable holding the connection string) or dsn_file"}},
		},
		{
			name: "postgres with dsn_env and dsn_file",
			src:  "storage:\n  driver: postgres\n  dsn_env: PG_DSN\n  dsn_file: cert.pem\n",
			want: []want{{5, "storage.dsn_file", config.ErrInvalid, "give dsn_env or dsn_file, not both"}},
		},
		{
			name: "postgres with a bad variable name",
			src:  "storage:\n  driver: postgres\n  dsn_env: 1PG-DSN\n",
			want: []want{{4, "storage.dsn_env", config.ErrInvalid, `"1PG-DSN" is not an environment variable name`}},
		},
		{
			name: "postgres with a missing dsn_file",
			src:  "storage:\n  driver: postgres\n  dsn_file: secrets/dsn\n",
			want: []want{{4, "storage.dsn_file", config.ErrInvalid, filepath.Join(dir, "secrets", "dsn") + " does not exist"}},
		},
		{
			name: "postgres with a directory as dsn_file",
			src:  "storage:\n  driver: postgres\n  dsn_file: adir\n",
			want: []want{{4, "storage.dsn_file", config.ErrInvalid, "is a directory"}},
		},
		{
			name: "postgres with a path",
			src:  "storage:\n  driver: postgres\n  dsn_env: PG_DSN\n  path: state.db\n",
			want: []want{{5, "storage.path", config.ErrInvalid, "is only used with driver sqlite"}},
		},
		{
			name: "sqlite with dsn_env",
			src:  "storage:\n  dsn_env: PG_DSN\n",
			want: []want{{3, "storage.dsn_env", config.ErrInvalid, "is only used with driver postgres"}},
		},
		{
			name: "sqlite with dsn_file",
			src:  "storage:\n  driver: sqlite\n  dsn_file: cert.pem\n",
			want: []want{{4, "storage.dsn_file", config.ErrInvalid, "is only used with driver postgres"}},
		},
		{
			name: "storage path is a directory",
			src:  "storage:\n  path: adir\n",
			want: []want{{3, "storage.path", config.ErrInvalid, "is a directory"}},
		},
		{"uppercase trust domain", "trust_domain: Example.org\n", []want{{2, "trust_domain", config.ErrInvalid, `must be lowercase: "example.org"`}}},
		{"trust domain as uri", "trust_domain: spiffe://example.org\n", []want{{2, "trust_domain", config.ErrInvalid, "is a URI"}}},
		{"trust domain with port", "trust_domain: example.org:443\n", []want{{2, "trust_domain", config.ErrInvalid, "must not carry a port"}}},
		{"trust domain with path", "trust_domain: example.org/x\n", []want{{2, "trust_domain", config.ErrInvalid, "must not carry a path"}}},
		{"trust domain with bad character", "trust_domain: exa%mple.org\n", []want{{2, "trust_domain", config.ErrInvalid, "has the character '%'"}}},
		{"trust domain too long", "trust_domain: " + long + "\n", []want{{2, "trust_domain", config.ErrInvalid, "256 bytes"}}},
		{"empty trust domain", "trust_domain: \"\"\n", []want{{2, "trust_domain", config.ErrInvalid, "must not be empty"}}},
		{
			name: "every semantic problem is reported",
			src:  "trust_domain: A\nlisten:\n  address: 10.1.2.3:80\nidentity:\n  svid_ttl: 1s\n  ca_ttl: 1m\nstorage:\n  driver: postgres\n",
			want: []want{
				{2, "trust_domain", config.ErrInvalid, "lowercase"},
				{4, "listen.address", config.ErrInvalid, "without TLS is refused"},
				{6, "identity.svid_ttl", config.ErrInvalid, "minimum"},
				{7, "identity.ca_ttl", config.ErrInvalid, "minimum"},
				{9, "storage.driver", config.ErrInvalid, "needs dsn_env"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte("version: 1\n"+tt.src))
			check(t, err, tt.want)
		})
	}
}

func TestValidateConfigLiteral(t *testing.T) {
	c := &config.Config{Log: config.LogConfig{Level: "loud"}}
	check(t, c.Validate(), []want{
		{0, "version", config.ErrUnsupportedVersion, "unsupported version 0"},
		{0, "trust_domain", config.ErrInvalid, "must not be empty"},
		{0, "listen.address", config.ErrInvalid, "address is empty"},
		{0, "identity.svid_ttl", config.ErrInvalid, "minimum"},
		{0, "identity.ca_ttl", config.ErrInvalid, "minimum"},
		{0, "storage.driver", config.ErrInvalid, `unknown storage driver ""`},
		{0, "log.level", config.ErrInvalid, `unknown log level "loud"`},
		{0, "log.format", config.ErrInvalid, `unknown log format ""`},
		{0, "sandbox.level", config.ErrInvalid, `unknown sandbox level ""; want one of strict, none`},
		{0, "sandbox.memory", config.ErrInvalid, "0 is below the minimum of 16MiB"},
		{0, "sandbox.processes", config.ErrInvalid, "0 is below the minimum of 16"},
		{0, "sandbox.tmp_size", config.ErrInvalid, "0 is below the minimum of 1MiB"},
		{0, "auth.access_token_ttl", config.ErrInvalid, "0s is shorter than the minimum of 30s"},
		{0, "auth.refresh_token_ttl", config.ErrInvalid, "0s is shorter than the minimum of 1m"},
		{0, "auth.code_ttl", config.ErrInvalid, "0s is shorter than the minimum of 10s"},
		{0, "auth.signing_key_period", config.ErrInvalid, "0s is shorter than the minimum of 1h"},
		{0, "auth.registration_burst", config.ErrInvalid, "0 is not from 1 to 10000"},
		{0, "auth.registration_interval", config.ErrInvalid, "0s is shorter than the minimum of 1s"},
		{0, "auth.max_dynamic_clients", config.ErrInvalid, "0 is not from 1 to 1000000"},
		{0, "auth.unused_client_ttl", config.ErrInvalid, "0s is shorter than the minimum of 1m"},
	})
}

func TestValidateChangedDefaults(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []want
	}{
		{"untouched", func(c *config.Config) {}, nil},
		{
			name:   "issuer changed after defaults",
			change: func(c *config.Config) { c.Listen.Issuer = "http://127.0.0.1:8420/" },
			want:   []want{{0, "listen.issuer", config.ErrInvalid, "must not end with a slash"}},
		},
		{
			name: "address changed, stale derived issuer",
			change: func(c *config.Config) {
				c.Listen.Address = "10.0.0.1:8443"
				c.Listen.TLS = &config.TLSConfig{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"}
			},
			want: []want{
				{0, "listen.tls.cert_file", config.ErrInvalid, "does not exist"},
				{0, "listen.tls.key_file", config.ErrInvalid, "does not exist"},
				{0, "listen.issuer", config.ErrInvalid, "an http issuer is only allowed when listening on a loopback address"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.change(c)
			check(t, c.Validate(), tt.want)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := tlsDir(t)
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("version: 1\nlisten:\n  tls: {cert_file: cert.pem, key_file: key.pem}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nlog: {level: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
		is      error
	}{
		{"good", good, "", nil},
		{"bad", bad, bad + ":2:14: log.level: unknown log level", config.ErrType},
		{"missing", filepath.Join(dir, "nope.yaml"), "config: open", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if c.File() != tt.path {
					t.Errorf("File() = %q, want %q", c.File(), tt.path)
				}
				if got, want := c.Listen.TLS.CertFile, filepath.Join(dir, "cert.pem"); got != want {
					t.Errorf("cert file = %q, want %q", got, want)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !errors.Is(err, tt.is) {
				t.Errorf("Load error = %v, want prefix %q wrapping %v", err, tt.wantErr, tt.is)
			}
		})
	}
}

func TestQuickstart(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "examples", "quickstart", "agenthost.yaml"))
	if err != nil {
		t.Fatalf("quickstart config (its agents are built by `make build`): %v", err)
	}
	// Apart from its models, agents, users, clients, resources, MCP servers
	// and policy directory, the quickstart is the defaults.
	base := *c
	base.Models, base.Agents = nil, nil
	base.Auth.Users, base.Auth.Clients, base.Auth.Resources = nil, nil, nil
	base.MCP = config.MCPConfig{}
	base.Console = config.ConsoleConfig{}
	if !strings.HasSuffix(base.Policy.Dir, filepath.Join("quickstart", "policies")) {
		t.Errorf("quickstart policy.dir = %q", base.Policy.Dir)
	}
	base.Policy.Dir = ""
	if diff := cmp.Diff(config.Default(), &base, ignoreUnexported); diff != "" {
		t.Errorf("quickstart differs from the defaults (-want +got):\n%s", diff)
	}
	if len(c.Agents) != 3 || c.Agents[0].Name != "research" || c.Models["default"].Provider != config.ProviderOffline {
		t.Errorf("quickstart agents %+v, models %+v", c.Agents, c.Models)
	}
	if got := c.IssuerURL(); got != "http://127.0.0.1:8420" {
		t.Errorf("IssuerURL() = %q", got)
	}
	if !c.Listen.IsLoopback() || c.Listen.TLSEnabled() {
		t.Errorf("quickstart listener: loopback %v, tls %v", c.Listen.IsLoopback(), c.Listen.TLSEnabled())
	}
	if p, ok := c.Position("listen.address"); !ok || p.Line == 0 {
		t.Errorf("Position(listen.address) = %v, %v", p, ok)
	}
}

func TestDigest(t *testing.T) {
	a := "version: 1\ntrust_domain: example.org\nlog:\n  level: debug\n  format: json\n"
	b := "# same settings, other order\nlog: {format: json, level: \"debug\"}\n\ntrust_domain: example.org   # td\nversion: 1\n"
	withDefaults := a + "identity: {svid_ttl: 60m, ca_ttl: 720h}\nlisten: {address: 127.0.0.1:8420}\n"
	other := "version: 1\ntrust_domain: example.org\nlog:\n  level: warn\n  format: json\n"

	digest := func(t *testing.T, src string) string {
		t.Helper()
		c, err := config.Parse("agenthost.yaml", []byte(src))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c.Digest()
	}
	base := digest(t, a)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("Digest() = %q, want 64 lowercase hex digits", base)
	}
	tests := []struct {
		name string
		src  string
		same bool
	}{
		{"identical", a, true},
		{"reordered with comments", b, true},
		{"defaults written out", withDefaults, true},
		{"one value changed", other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digest(t, tt.src); (got == base) != tt.same {
				t.Errorf("digest %s vs %s: same = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
	canon, err := config.Default().CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const wantCanon = `{"version":1,"trust_domain":"agenthost.local","listen":{"address":"127.0.0.1:8420","issuer":"http://127.0.0.1:8420","tls":null},"identity":{"svid_ttl":3600000000000,"ca_ttl":2592000000000000},"storage":{"driver":"sqlite","path":""},"log":{"level":"info","format":"text"},` +
		`"auth":{"access_token_ttl":300000000000,"refresh_token_ttl":86400000000000,"code_ttl":60000000000,` +
		`"signing_key_period":2592000000000000,"dynamic_registration":true,"registration_token_hash":"",` +
		`"registration_burst":10,"registration_interval":60000000000,"max_dynamic_clients":1000,` +
		`"unused_client_ttl":86400000000000,"client_id_metadata_documents":true,` +
		`"allow_private_fetch":false,"require_dpop_nonce":false},` +
		`"sandbox":{"level":"strict","memory":1073741824,"processes":512,"cpu":0,"tmp_size":67108864},"mcp":{},` +
		`"policy":{"dir":"","authzen_endpoint":"","serve_authzen":false},"audit":{"checkpoint_every":0,"checkpoint_interval":0,` +
		`"verifier_key":"","signing_key_env":"","checkpoint_dir":"","witness_url":"","witness_key":""},` +
		`"signals":{"transmitter":false}}`
	if diff := cmp.Diff(wantCanon, string(canon)); diff != "" {
		t.Errorf("canonical JSON (-want +got):\n%s", diff)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *config.Error
		want string
	}{
		{"full", &config.Error{File: "a.yaml", Line: 3, Column: 5, Path: "listen.address", Message: "bad"}, "a.yaml:3:5: listen.address: bad"},
		{"no column", &config.Error{File: "a.yaml", Line: 3, Message: "bad"}, "a.yaml:3: bad"},
		{"no line", &config.Error{File: "a.yaml", Path: "version", Message: "bad"}, "a.yaml: version: bad"},
		{"no file", &config.Error{Line: 1, Column: 2, Path: "x", Message: "bad"}, "1:2: x: bad"},
		{"message only", &config.Error{Message: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	errs := config.Errors{
		{File: "a.yaml", Line: 1, Column: 1, Path: "x", Message: "one", Kind: config.ErrUnknownKey},
		{File: "a.yaml", Line: 2, Column: 1, Path: "y", Message: "two", Kind: config.ErrType},
	}
	if got, want := errs.Error(), "a.yaml:1:1: x: one\na.yaml:2:1: y: two"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var err error = errs
	if !errors.Is(err, config.ErrType) || !errors.Is(err, config.ErrUnknownKey) || errors.Is(err, config.ErrInvalid) {
		t.Error("errors.Is does not see exactly the kinds in the list")
	}
	var one *config.Error
	if !errors.As(err, &one) || one.Path != "x" {
		t.Errorf("errors.As found %v", one)
	}
}

func TestAddress(t *testing.T) {
	tests := []struct {
		addr        string
		valid       bool
		loopback    bool
		unspecified bool
		host        string
		port        uint16
	}{
		{"127.0.0.1:8420", true, true, false, "127.0.0.1", 8420},
		{"127.8.9.10:1", true, true, false, "127.8.9.10", 1},
		{"[::1]:8420", true, true, false, "::1", 8420},
		{"localhost:80", true, true, false, "localhost", 80},
		{"LocalHost:80", true, true, false, "LocalHost", 80},
		{"0.0.0.0:8420", true, false, true, "0.0.0.0", 8420},
		{"[::]:8420", true, false, true, "::", 8420},
		{":8420", true, false, true, "", 8420},
		{"10.0.0.1:443", true, false, false, "10.0.0.1", 443},
		{"agents.example.org:443", true, false, false, "agents.example.org", 443},
		{"localhost.example.org:443", true, false, false, "localhost.example.org", 443},
		{"", false, false, false, "", 0},
		{"127.0.0.1", false, false, false, "", 0},
		{"127.0.0.1:0", false, true, false, "127.0.0.1", 0},
		{"127.0.0.1:http", false, true, false, "127.0.0.1", 0},
		{"bad_host!:80", false, false, false, "bad_host!", 80},
		{"-x.org:80", false, false, false, "-x.org", 80},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			_, err := config.ParseAddress(tt.addr)
			if (err == nil) != tt.valid {
				t.Fatalf("ParseAddress(%q) error = %v, want valid %v", tt.addr, err, tt.valid)
			}
			a := config.Address(tt.addr)
			if a.IsLoopback() != tt.loopback || a.IsUnspecified() != tt.unspecified || a.Host() != tt.host || a.Port() != tt.port {
				t.Errorf("%q: loopback %v unspecified %v host %q port %d; want %v %v %q %d",
					tt.addr, a.IsLoopback(), a.IsUnspecified(), a.Host(), a.Port(), tt.loopback, tt.unspecified, tt.host, tt.port)
			}
		})
	}
}

func TestIssuerURL(t *testing.T) {
	tests := []struct {
		name string
		c    config.Config
		want string
	}{
		{"explicit", config.Config{Listen: config.ListenConfig{Address: "127.0.0.1:1", Issuer: "https://x.org"}}, "https://x.org"},
		{"http by default", config.Config{Listen: config.ListenConfig{Address: "127.0.0.1:1"}}, "http://127.0.0.1:1"},
		{"https with tls", config.Config{Listen: config.ListenConfig{Address: "h.org:1", TLS: &config.TLSConfig{}}}, "https://h.org:1"},
		{"no address", config.Config{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.IssuerURL(); got != tt.want {
				t.Errorf("IssuerURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogLevelSlog(t *testing.T) {
	tests := []struct {
		level config.LogLevel
		want  string
	}{
		{config.LevelDebug, "DEBUG"},
		{config.LevelInfo, "INFO"},
		{config.LevelWarn, "WARN"},
		{config.LevelError, "ERROR"},
		{"bogus", "INFO"},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			if got := tt.level.SlogLevel().String(); got != tt.want {
				t.Errorf("SlogLevel() = %s, want %s", got, tt.want)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	src := []byte(`version: 1
trust_domain: example.org
listen:
  address: 127.0.0.1:8420
  issuer: http://localhost:8420
identity:
  svid_ttl: 30m
  ca_ttl: 48h
storage:
  driver: sqlite
log:
  level: debug
  format: json
`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := config.Parse("agenthost.yaml", src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	c := config.Default()
	b.ReportAllocs()
	for b.Loop() {
		if c.Digest() == "" {
			b.Fatal("empty digest")
		}
	}
}

func TestParseReportsDecodeAndValidationProblemsTogether(t *testing.T) {
	src := "version: 1\n" +
		"trust_domain: Bad Domain!\n" + // validation
		"listen:\n" +
		"  address: 0.0.0.0:8420\n" + // validation: no TLS
		"identity:\n" +
		"  svid_ttl: forever\n" + // decode: bad duration (no second report about it)
		"log:\n" +
		"  levle: info\n" // decode: unknown key
	_, err := config.Parse("agenthost.yaml", []byte(src))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error = %v, want config.Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Path))
	}
	want := []string{"2 trust_domain", "4 listen.address", "6 identity.svid_ttl", "8 log.levle"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("problems (-want +got):\n%s\nall:\n%v", diff, errs)
	}
}

func TestTrustDomainMessages(t *testing.T) {
	tests := []struct{ td, want string }{
		{"Example.ORG", `must be lowercase: "example.org"`},
		{"Bad Domain", `has the character ' '`},
		{"Bad:1", "must not carry a port"},
	}
	for _, tt := range tests {
		t.Run(tt.td, func(t *testing.T) {
			_, err := config.Parse("agenthost.yaml", []byte("version: 1\ntrust_domain: \""+tt.td+"\"\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAgents(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "research")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(noexec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "agenthost.yaml")

	good := "version: 1\nagents:\n  - name: research\n    path: research\n    env: {MODE: demo}\n"
	c, err := config.Parse(cfgPath, []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(c.Agents) != 1 || c.Agents[0].Path != exe || c.Agents[0].Env["MODE"] != "demo" {
		t.Fatalf("agents = %+v", c.Agents)
	}

	bad := "version: 1\nagents:\n" +
		"  - name: Research\n    path: research\n" + // 4: bad name
		"  - name: a\n    path: missing\n" + // 6: missing binary
		"  - name: a\n    path: data.txt\n" + // 7: duplicate name, 8: not executable
		"  - name: b\n    path: research\n    sha256: xyz\n" + // 11: bad digest
		"  - name: c\n    path: research\n    env: {SPIFFE_ENDPOINT_SOCKET: x, 1BAD: y}\n" // 14: env
	_, err = config.Parse(cfgPath, []byte(bad))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error = %v", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	want := []string{"agents[0].name", "agents[1].path", "agents[2].name", "agents[2].path", "agents[3].sha256", "agents[4].env", "agents[4].env"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("problems (-want +got):\n%s\n%v", diff, errs)
	}
}

func TestModelsAndGrants(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "research")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := "version: 1\nmodels:\n  default: {provider: offline}\n  gpt: {provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}\n" +
		"agents:\n  - name: research\n    path: research\n    model: gpt\n    tools: [clock/now, notes/*]\n"
	c, err := config.Parse(filepath.Join(dir, "a.yaml"), []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agents[0].Model != "gpt" || len(c.Agents[0].Tools) != 2 || c.Models["gpt"].APIKeyEnv != "OPENAI_API_KEY" {
		t.Fatalf("config = %+v", c)
	}
	bad := "version: 1\nmodels:\n" +
		"  a: {provider: openai}\n" + // 3: model required
		"  b: {provider: magic}\n" + // 4: unknown provider
		"  c: {provider: anthropic, model: m, base_url: 'ftp://x'}\n" + // 5: base_url
		"agents:\n  - name: research\n    path: research\n" +
		"    model: nope\n" + // 9: unknown model
		"    tools: [clock, 'a/*/b']\n" // 10: two bad tools
	_, err = config.Parse(filepath.Join(dir, "a.yaml"), []byte(bad))
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error = %v", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	want := []string{"models.a.model", "models.b.provider", "models.c.base_url", "agents[0].model", "agents[0].tools[0]", "agents[0].tools[1]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("problems (-want +got):\n%s\n%v", diff, errs)
	}
}

func TestCallAgents(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "a")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nagents:\n" +
		"  - {name: a, path: a, call_agents: [b]}\n" +
		"  - {name: b, path: a, call_agents: [b, nope]}\n"
	_, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(src))
	if err == nil || !strings.Contains(err.Error(), "cannot delegate to itself") || !strings.Contains(err.Error(), `no agent "nope"`) {
		t.Fatalf("error = %v", err)
	}
	if strings.Contains(err.Error(), ": agents[0].") {
		t.Fatalf("a valid delegation was refused: %v", err)
	}
}
