package agenthost_test

// This test enforces the import direction and third-party ownership laid out
// in DESIGN.md §3. It reads the real import graph with `go list`, so a
// violation anywhere in the module fails `go test ./...`.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/agenthost/agenthost"

// rule says which of our packages a package (matched by the longest prefix)
// may import. An allow entry "x" matches package x only; "x/..." matches x
// and everything under it. Packages under a rule with no more specific rule
// beneath it may also import each other.
type rule struct {
	pkg   string
	allow []string
}

// rules is DESIGN.md §3's table. Entries are module-relative paths.
var rules = []rule{
	{"credentials", nil},
	{"credentials/ca", []string{"credentials", "credentials/jose"}},
	{"credentials/workloadapi", []string{"credentials", "credentials/ca", "credentials/attest"}},
	{"credentials/attest", []string{"credentials"}},
	{"credentials/jose", []string{"credentials"}},
	{"credentials/wimse", []string{"credentials", "credentials/jose"}},
	{"credentials/oauth", []string{"credentials", "credentials/jose"}},
	{"credentials/txntoken", []string{"credentials", "credentials/jose"}},
	{"credentials/svidtls", []string{"credentials"}},
	{"credentials/federation", []string{"credentials", "credentials/ca", "credentials/jose", "credentials/oauth/fetch"}},
	{"credentials/authserver", []string{"credentials/..."}},
	{"consent", []string{"credentials/..."}},
	{"llm", []string{"credentials"}},
	{"mcp", []string{"credentials/...", "consent/..."}},
	{"a2a", []string{"credentials/...", "consent/..."}},
	{"plugins/proto", nil},
	// The SDK checks a call's Txn-Token against its arguments in the
	// host's canonical JSON (a standard-library-only package).
	{"plugins/sdk", []string{"plugins/proto", "credentials/txntoken/canonjson"}},
	{"plugins/sandbox", nil},
	{"plugins", []string{"plugins/proto", "plugins/sandbox", "credentials/..."}},
	{"runtime", []string{"credentials/...", "consent/...", "llm/...", "mcp/...", "a2a/...", "plugins/...", "runtime/..."}},
	// The mediator is the security spine (DESIGN.md §9): the call path only,
	// no storage or business logic of its own.
	{"runtime/mediator", []string{"credentials/...", "consent/...", "llm/...", "plugins/proto"}},
	// The host's built-in tools: mediator.Tools keeping their data in the store.
	{"runtime/hosttools", []string{"llm", "runtime/mediator", "runtime/store"}},
	// The hosted MCP servers (the MCP bridge): everything they use of the
	// host (authorization server, verifiers, auditor, policy hook,
	// approvals, upstream clients) is handed in through mcphost.Config,
	// so they never import runtime/host.
	{"runtime/mcphost", []string{"credentials/...", "consent/...", "mcp/...", "runtime/config", "runtime/httpaudit", "runtime/mediator"}},
	// The tools of remote MCP servers (the remote-tool adapters): each
	// workload's OAuth and MCP clients and DPoP keys are the package's;
	// what is the host's (token clients, whom a call is for, transports)
	// is handed in through remotetools.Config, so it never imports
	// runtime/host.
	{"runtime/remotetools", []string{"credentials/...", "llm", "mcp/...", "plugins/proto", "runtime/config", "runtime/mediator"}},
	// The audit of refused HTTP requests, shared by the MCP and A2A mounts.
	{"runtime/httpaudit", []string{"credentials/oauth", "runtime/mediator"}},
	{"cmd", []string{"credentials/...", "consent/...", "llm/...", "mcp/...", "a2a/...", "plugins/...", "runtime/..."}},
	{"examples", []string{"plugins/sdk", "plugins/proto", "credentials"}},
}

// owners maps a third-party module to the package prefixes allowed to import
// it (DESIGN.md §3, "Third-party ownership").
var owners = map[string][]string{
	"github.com/lestrrat-go/jwx":  {"credentials/jose"},
	"github.com/spiffe/go-spiffe": {"credentials"},
	// go-spiffe's client reads a WIT-SVID's private key as a go-jose JWK;
	// the Workload API server writes it with the same library so the wire
	// form matches exactly. Everything else goes through credentials/jose.
	"github.com/go-jose/go-jose":       {"credentials/workloadapi"},
	"github.com/hashicorp/go-plugin":   {"plugins"},
	"google.golang.org/grpc":           {"plugins", "credentials/workloadapi"},
	"github.com/mark3labs/mcp-go":      {"mcp"},
	"golang.org/x/oauth2":              {"credentials/oauth"},
	"github.com/cedar-policy/cedar-go": {"runtime/policy"},
	"github.com/spf13/cobra":           {"cmd"},
	"modernc.org/sqlite":               {"runtime/store/sqlitestore"},
	"github.com/jackc/pgx":             {"runtime/store/pgstore"},
	"go.yaml.in/yaml":                  {"runtime/config"},
	// Password and client-secret hashing (argon2id, bcrypt).
	"golang.org/x/crypto": {"credentials/authserver/userauth"},
	// Merkle log and signed checkpoints of the audit log.
	"golang.org/x/mod": {"runtime/audit"},
	// The plugin sandbox's seccomp filter.
	"github.com/elastic/go-seccomp-bpf": {"plugins/sandbox"},
	"github.com/a2aproject/a2a-go":      {"a2a"},
	// Metrics and traces: the observed packages expose hooks, and only
	// runtime/telemetry turns them into Prometheus metrics and spans.
	"github.com/prometheus/client_golang": {"runtime/telemetry"},
	"github.com/prometheus/client_model":  {"runtime/telemetry"},
	"go.opentelemetry.io/otel":            {"runtime/telemetry"},
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	var checked int
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		rel := relative(p.ImportPath)
		if rel == "" {
			continue
		}
		checked++
		for _, imp := range p.Imports {
			if dep := relative(imp); dep != "" {
				if !mayImport(rel, dep) {
					t.Errorf("%s imports %s: not allowed by DESIGN.md §3", rel, dep)
				}
				continue
			}
			for mod, allowed := range owners {
				if imp == mod || strings.HasPrefix(imp, mod+"/") {
					if !hasPrefixIn(rel, allowed) {
						t.Errorf("%s imports %s: only %v may (DESIGN.md §3 ownership)", rel, imp, allowed)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list returned no packages of this module")
	}
	t.Logf("checked %d packages", checked)
}

func TestMayImport(t *testing.T) {
	tests := []struct {
		pkg, dep string
		want     bool
	}{
		{"credentials/ca", "credentials", true},
		{"credentials/ca", "credentials/jose", true},
		{"credentials/ca", "credentials/workloadapi", false},
		{"credentials", "credentials/ca", false},
		{"credentials/ca/internal/x", "credentials/ca", true},
		{"plugins", "plugins/sdk", false},
		{"credentials/jose", "runtime/store", false},
		{"credentials/workloadapi", "credentials/ca", true},
		{"plugins/sdk", "credentials", false},
		{"plugins/sdk", "plugins/proto", true},
		{"runtime/host", "credentials/ca", true},
		{"runtime/host", "cmd/agenthost", false},
		{"runtime/store/sqlitestore", "runtime/store", true},
		{"cmd/agenthost/internal/cli", "runtime/host", true},
		{"llm", "credentials/jose", false},
		{"mcp/mcpserver", "runtime/policy", false},
		{"runtime/hosttools", "runtime/mediator", true},
		{"runtime/hosttools", "runtime/host", false},
		{"runtime/mediator", "runtime/store", false},
		{"runtime/config", "runtime/hosttools", true},
		{"runtime/mcphost", "runtime/host", false},
		{"runtime/mcphost", "mcp/mcpserver", true},
		{"runtime/mcphost", "runtime/httpaudit", true},
		{"runtime/mcphost", "runtime/store", false},
		{"runtime/host", "runtime/mcphost", true},
		{"runtime/remotetools", "runtime/host", false},
		{"runtime/remotetools", "mcp/mcpclient", true},
		{"runtime/remotetools", "credentials/oauth/dpop", true},
		{"runtime/remotetools", "runtime/mediator", true},
		{"runtime/remotetools", "runtime/store", false},
		{"runtime/remotetools", "runtime/mcphost", false},
		{"runtime/host", "runtime/remotetools", true},
		{"runtime/httpaudit", "runtime/mediator", true},
		{"runtime/httpaudit", "runtime/host", false},
		{"unknown", "credentials", false},
	}
	for _, tt := range tests {
		if got := mayImport(tt.pkg, tt.dep); got != tt.want {
			t.Errorf("mayImport(%q, %q) = %v, want %v", tt.pkg, tt.dep, got, tt.want)
		}
	}
}

func TestRuntimeHasNoGoFiles(t *testing.T) {
	// runtime/ is a grouping folder: a package there would shadow the
	// standard library's runtime (DESIGN.md §3).
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,GoFiles", "./runtime").CombinedOutput()
	if err == nil && bytes.Contains(out, []byte(`"GoFiles"`)) {
		t.Fatalf("runtime/ holds Go files: %s", out)
	}
}

func relative(importPath string) string {
	if importPath == module {
		return "."
	}
	if rest, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return rest
	}
	return ""
}

func mayImport(pkg, dep string) bool {
	if dep == pkg {
		return true
	}
	r, ok := ruleFor(pkg)
	if !ok {
		return false
	}
	// Within a rule that has no more specific rule under it, packages may
	// import each other (e.g. credentials/ca and its internal helpers).
	if isLeafRule(r) && (dep == r.pkg || strings.HasPrefix(dep, r.pkg+"/")) {
		return true
	}
	for _, a := range r.allow {
		if tree, ok := strings.CutSuffix(a, "/..."); ok {
			if dep == tree || strings.HasPrefix(dep, tree+"/") {
				return true
			}
		} else if dep == a {
			return true
		}
	}
	return false
}

func isLeafRule(r rule) bool {
	for _, o := range rules {
		if strings.HasPrefix(o.pkg, r.pkg+"/") {
			return false
		}
	}
	return true
}

func ruleFor(pkg string) (rule, bool) {
	best, found := rule{}, false
	for _, r := range rules {
		if (pkg == r.pkg || strings.HasPrefix(pkg, r.pkg+"/")) && len(r.pkg) >= len(best.pkg) {
			best, found = r, true
		}
	}
	return best, found
}

func hasPrefixIn(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
