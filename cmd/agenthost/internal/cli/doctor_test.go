package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/host"
)

// fakeSandbox makes the sandbox probe answer prot, or fail with err.
func fakeSandbox(t *testing.T, prot sandbox.Protections, err error) {
	t.Helper()
	old := probeSandbox
	t.Cleanup(func() { probeSandbox = old })
	probeSandbox = func() (sandbox.Protections, error) { return prot, err }
}

var strictSandbox = sandbox.Protections{Level: sandbox.LevelStrict, Namespaces: []string{"user", "mount"}, Seccomp: true, NoNewPrivs: true}

// servers are the servers a host reaches, each an httptest server whose
// answers a test can change: an authorization server (its metadata), a
// remote MCP server (its protected resource metadata, naming the
// authorization server), a remote A2A agent (its card), a federated trust
// domain's bundle endpoint and a model server.
type servers struct {
	as, mcp, a2a, bundle, model *httptest.Server
	// asDate, when set, is the Date the authorization server answers
	// with, as a skewed clock would.
	asDate func() time.Time
	// asIssuer, when set, is the issuer its metadata names.
	asIssuer string
}

func startServers(t *testing.T) *servers {
	t.Helper()
	s := &servers{}
	s.as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		if s.asDate != nil {
			w.Header().Set("Date", s.asDate().UTC().Format(http.TimeFormat))
		}
		issuer := s.as.URL
		if s.asIssuer != "" {
			issuer = s.asIssuer
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, s.as.URL+"/token")
	}))
	s.mcp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-protected-resource/mcp" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"resource":%q,"authorization_servers":[%q]}`, s.mcp.URL+"/mcp", s.as.URL)
	}))
	s.a2a = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/a2a/partner/.well-known/agent-card.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"partner"}`)
	}))
	s.bundle = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/spiffe/bundle" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[],"spiffe_sequence":1}`)
	}))
	s.model = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			t.Errorf("the model server got a credential: %v", r.Header)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	for _, srv := range []*httptest.Server{s.as, s.mcp, s.a2a, s.bundle, s.model} {
		t.Cleanup(srv.Close)
	}
	return s
}

// doctorConfig writes a config naming every server of s, listening on
// listen, and returns its path.
func doctorConfig(t *testing.T, s *servers, listen string) string {
	t.Helper()
	return writeFile(t, "agenthost.yaml", fmt.Sprintf(`version: 1
trust_domain: a.test
listen:
  address: %s
auth:
  allow_private_fetch: true
  trusted_issuers:
    - issuer: %s
      access_tokens: true
models:
  default: {provider: offline}
  local: {provider: openai, model: m, base_url: %s}
mcp:
  remotes:
    - name: notes
      url: %s/mcp
      tools: [search]
a2a:
  remotes:
    - name: partner
      url: %s/a2a/partner
federation:
  trust_domains:
    - name: b.test
      bundle_endpoint: %s/spiffe/bundle
`, listen, s.as.URL, s.model.URL, s.mcp.URL, s.a2a.URL, s.bundle.URL))
}

// privateDataDir returns an empty data directory of mode 0700.
func privateDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// doctorLines runs doctor and returns its exit status and its lines by
// check name (the text before the first ": ", status included).
func doctorLines(t *testing.T, args ...string) (int, map[string]string, string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, nil, append([]string{"doctor"}, args...)...)
	if stderr != "" {
		t.Errorf("stderr %q", stderr)
	}
	lines := map[string]string{}
	for l := range strings.Lines(stdout) {
		l = strings.TrimSuffix(l, "\n")
		if len(l) < 6 {
			continue
		}
		check, _, ok := strings.Cut(l[6:], ": ")
		if ok {
			lines[check] = l
		}
	}
	return code, lines, stdout
}

func TestDoctorReach(t *testing.T) {
	fakeSandbox(t, strictSandbox, nil)
	tests := []struct {
		name string
		// change makes the servers misbehave.
		change   func(s *servers)
		wantCode int
		// want are the lines (check: status and message prefix) expected.
		want map[string]string
	}{
		{
			name:     "every server reachable",
			change:   func(*servers) {},
			wantCode: 0,
			want: map[string]string{
				"reach trusted issuer AS":  "ok    reach trusted issuer AS: metadata at AS/.well-known/oauth-authorization-server (token endpoint AS/token)",
				"reach mcp remote notes":   "ok    reach mcp remote notes: MCP/mcp: metadata at MCP/.well-known/oauth-protected-resource/mcp; authorization server AS answers",
				"reach a2a remote partner": "ok    reach a2a remote partner: card at A2A/a2a/partner/.well-known/agent-card.json",
				"reach federated b.test":   "ok    reach federated b.test: bundle fetched from BUNDLE/spiffe/bundle",
				"reach model local":        "ok    reach model local: MODEL answers (401 Unauthorized; no API key sent)",
				"clock":                    "ok    clock: within 1s of ",
			},
		},
		{
			name:     "unreachable",
			change:   func(s *servers) { s.as.Close(); s.model.Close(); s.bundle.Close() },
			wantCode: 1,
			want: map[string]string{
				"reach trusted issuer AS":  "FAIL  reach trusted issuer AS: AS does not answer: ",
				"reach mcp remote notes":   "FAIL  reach mcp remote notes: its authorization server AS does not answer: ",
				"reach federated b.test":   "FAIL  reach federated b.test: BUNDLE/spiffe/bundle does not answer: ",
				"reach model local":        "FAIL  reach model local: MODEL does not answer: ",
				"reach a2a remote partner": "ok    reach a2a remote partner: ",
			},
		},
		{
			name:     "metadata of another issuer",
			change:   func(s *servers) { s.asIssuer = "https://elsewhere.example" },
			wantCode: 1,
			want: map[string]string{
				"reach trusted issuer AS": `FAIL  reach trusted issuer AS: AS answers, but not with its metadata: AS/.well-known/oauth-authorization-server names issuer "https://elsewhere.example", not "AS" (the issuer in the config must be the one its metadata names)`,
			},
		},
		{
			name:     "clock far behind the authorization server",
			change:   func(s *servers) { s.asDate = func() time.Time { return time.Now().Add(10 * time.Minute) } },
			wantCode: 1,
			want: map[string]string{
				"clock":                   "FAIL  clock: this machine's clock is 10m0s behind AS (its Date header) (synchronize the clock (NTP): tokens and proofs are checked with 30s of leeway)",
				"reach trusted issuer AS": "ok    reach trusted issuer AS: ",
			},
		},
		{
			name:     "clock ahead of the authorization server, within the leeway",
			change:   func(s *servers) { s.asDate = func() time.Time { return time.Now().Add(-20 * time.Second) } },
			wantCode: 0,
			want: map[string]string{
				"clock": "warn  clock: this machine's clock is 20s ahead of AS (its Date header)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServers(t)
			names := strings.NewReplacer(s.as.URL, "AS", s.mcp.URL, "MCP", s.a2a.URL, "A2A", s.bundle.URL, "BUNDLE", s.model.URL, "MODEL")
			cfg := doctorConfig(t, s, freeAddr(t))
			tt.change(s)
			code, lines, stdout := doctorLines(t, "--config", cfg, "--data-dir", privateDataDir(t))
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for check, want := range tt.want {
				var got string
				for c, l := range lines {
					if names.Replace(c) == check {
						got = names.Replace(l)
					}
				}
				// The Date header has whole seconds: a skew measured
				// through it may be a second more.
				got = strings.NewReplacer("10m1s", "10m0s", " 21s ", " 20s ").Replace(got)
				if !strings.HasPrefix(got, want) {
					t.Errorf("%s: got %q, want it to start with %q", check, got, want)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", names.Replace(stdout))
			}
		})
	}
}

func TestDoctorDataDirectory(t *testing.T) {
	fakeSandbox(t, strictSandbox, nil)
	cfg := writeFile(t, "agenthost.yaml", "version: 1\nlisten: {address: "+freeAddr(t)+"}\n")
	tests := []struct {
		name     string
		setup    func(t *testing.T) string
		wantCode int
		wantDir  string
		wantKeys string
	}{
		{
			name:     "not made yet",
			setup:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") },
			wantCode: 0,
			wantDir:  "warn  data directory: DIR does not exist yet (up creates it, with mode 0700)",
		},
		{
			name: "owner-only",
			setup: func(t *testing.T) string {
				dir := privateDataDir(t)
				mkfile(t, dir, "ca/journal.json", 0o600)
				mkfile(t, dir, "audit/signing.key", 0o600)
				mkfile(t, dir, "audit/verifier.key", 0o644) // a public key
				mkfile(t, dir, "clients/a2a-caller.key", 0o600)
				return dir
			},
			wantCode: 0,
			wantDir:  "ok    data directory: DIR has mode 0700 and is yours",
			wantKeys: "ok    key files: owner-only: ca/journal.json, audit/signing.key, clients/a2a-caller.key",
		},
		{
			name: "open to others",
			setup: func(t *testing.T) string {
				dir := privateDataDir(t)
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			wantCode: 1,
			wantDir:  "FAIL  data directory: DIR has mode 0755: it holds keys, and group or others can reach it; up refuses it (chmod 700 DIR)",
		},
		{
			name: "a key others can read",
			setup: func(t *testing.T) string {
				dir := privateDataDir(t)
				mkfile(t, dir, "ca/journal.json", 0o644)
				mkfile(t, dir, "clients/x.key", 0o640)
				mkfile(t, dir, "agenthost.db", 0o600)
				return dir
			},
			wantCode: 1,
			wantDir:  "ok    data directory: DIR has mode 0700 and is yours",
			wantKeys: "FAIL  key files: group or others can read ca/journal.json (0644), clients/x.key (0640) (chmod 600 DIR/ca/journal.json DIR/clients/x.key)",
		},
		{
			name: "not a directory",
			setup: func(t *testing.T) string {
				return writeFile(t, "data", "")
			},
			wantCode: 1,
			wantDir:  "FAIL  data directory: DIR is not a directory (give --data-dir a directory)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			code, lines, stdout := doctorLines(t, "--config", cfg, "--data-dir", dir)
			got := strings.ReplaceAll(lines["data directory"], dir, "DIR")
			keys := strings.ReplaceAll(lines["key files"], dir, "DIR")
			if code != tt.wantCode || got != tt.wantDir || keys != tt.wantKeys {
				t.Fatalf("exit %d (want %d)\ndata directory %q\n          want %q\nkey files %q\n     want %q\noutput:\n%s",
					code, tt.wantCode, got, tt.wantDir, keys, tt.wantKeys, stdout)
			}
		})
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mkfile makes the file rel under dir with mode, and its directories.
func mkfile(t *testing.T, dir, rel string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("secret\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorListen(t *testing.T) {
	fakeSandbox(t, strictSandbox, nil)
	busy, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	cfg := writeFile(t, "agenthost.yaml", "version: 1\nlisten: {address: "+addr+"}\n")

	// Another program holds the port.
	code, lines, _ := doctorLines(t, "--config", cfg, "--data-dir", privateDataDir(t))
	want := "FAIL  listen: " + addr + " is in use by another program (stop it (another agenthost on another data directory?), or change listen.address)"
	if code != 1 || lines["listen"] != want {
		t.Fatalf("exit %d, listen %q, want %q", code, lines["listen"], want)
	}

	// The host on the data directory holds it.
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Address: addr})
	code, lines, _ = doctorLines(t, "--config", cfg, "--data-dir", dir)
	if code != 0 || !strings.HasPrefix(lines["listen"], "ok    listen: "+addr+" is held by the host running on "+dir+" (pid ") {
		t.Fatalf("exit %d, listen %q", code, lines["listen"])
	}

	// Free.
	busy.Close()
	code, lines, _ = doctorLines(t, "--config", cfg, "--data-dir", privateDataDir(t))
	if code != 0 || lines["listen"] != "ok    listen: "+addr+" is free" {
		t.Fatalf("exit %d, listen %q", code, lines["listen"])
	}
}

func TestDoctorSandbox(t *testing.T) {
	agent := writeFile(t, "research", "#!/bin/sh\nexit 1\n")
	if err := os.Chmod(agent, 0o755); err != nil {
		t.Fatal(err)
	}
	withAgent := writeFile(t, "agenthost.yaml", "version: 1\nlisten: {address: "+freeAddr(t)+"}\nagents:\n  - name: research\n    path: "+agent+"\n")
	noAgent := writeFile(t, "agenthost.yaml", "version: 1\nlisten: {address: "+freeAddr(t)+"}\n")
	unsupported := fmt.Errorf("%w: unprivileged user namespaces may be disabled", sandbox.ErrUnsupported)
	tests := []struct {
		name     string
		cfg      string
		prot     sandbox.Protections
		err      error
		wantCode int
		want     string
	}{
		{"available", withAgent, strictSandbox, nil, 0, "ok    sandbox: strict: "},
		{"missing a protection", withAgent, sandbox.Protections{Level: sandbox.LevelStrict, Missing: []string{"landlock: not in this kernel"}}, nil,
			0, "warn  sandbox: strict: "},
		{"unavailable, an agent needs it", withAgent, sandbox.Protections{}, unsupported,
			1, "FAIL  sandbox: agent research needs sandbox level strict, which this machine cannot give: sandbox: not supported here: unprivileged user namespaces may be disabled"},
		{"unavailable, nothing needs it", noAgent, sandbox.Protections{}, unsupported,
			0, "warn  sandbox: not available here (no plugin needs it now): "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fakeSandbox(t, tt.prot, tt.err)
			code, lines, stdout := doctorLines(t, "--config", tt.cfg, "--data-dir", privateDataDir(t))
			if code != tt.wantCode || !strings.HasPrefix(lines["sandbox"], tt.want) {
				t.Fatalf("exit %d (want %d), sandbox %q, want it to start with %q\n%s", code, tt.wantCode, lines["sandbox"], tt.want, stdout)
			}
		})
	}
}

func TestDoctorBadConfig(t *testing.T) {
	fakeSandbox(t, strictSandbox, nil)
	cfg := writeFile(t, "agenthost.yaml", "version: 1\nlisten: {adress: 127.0.0.1:8420}\n")
	code, lines, stdout := doctorLines(t, "--config", cfg, "--data-dir", privateDataDir(t))
	if code != 1 || !strings.HasPrefix(lines["config"], "FAIL  config: "+cfg+" has 1 problem; the first: "+cfg+":2:") ||
		!strings.HasSuffix(lines["config"], "(agenthost validate "+cfg+" lists them; the checks that need the config were not run)") {
		t.Fatalf("exit %d, config %q", code, lines["config"])
	}
	if _, ok := lines["listen"]; ok || lines["sandbox"] == "" {
		t.Fatalf("the checks that need no config should run, the others not:\n%s", stdout)
	}
	code, lines, _ = doctorLines(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--data-dir", privateDataDir(t))
	if code != 1 || !strings.Contains(lines["config"], "no such file or directory") {
		t.Fatalf("exit %d, config %q", code, lines["config"])
	}
}

func TestDoctorJSON(t *testing.T) {
	fakeSandbox(t, strictSandbox, nil)
	s := startServers(t)
	s.model.Close()
	code, stdout, stderr := runCLI(t, nil, nil, "doctor", "-o", "json", "--config", doctorConfig(t, s, freeAddr(t)), "--data-dir", privateDataDir(t))
	if code != 1 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw struct {
		Checks []map[string]json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw.Checks) == 0 {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	requireKeys(t, raw.Checks[0], "check", "status", "message", "hint")
	var rep doctorJSON
	decodeJSON(t, stdout, &rep)
	if rep.Failed != 1 || rep.Warnings != 0 {
		t.Fatalf("failed %d, warnings %d:\n%s", rep.Failed, rep.Warnings, stdout)
	}
	for _, c := range rep.Checks {
		if (c.Status == checkFail) != (c.Check == "reach model local") {
			t.Errorf("check %+v", c)
		}
		if c.Status == checkFail && c.Hint == "" {
			t.Errorf("a failure without a hint: %+v", c)
		}
	}
}
