package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// decodeJSON decodes stdout as exactly one JSON document, refusing keys v
// does not know: the shape a command documents is all it prints.
func decodeJSON(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not the documented JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
}

// keysOf returns the keys of the JSON object in s, in no order.
func keysOf(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, s)
	}
	return m
}

// requireKeys fails unless the object has every key, null or empty
// values included: a stable shape leaves none out.
func requireKeys(t *testing.T, obj map[string]json.RawMessage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("the JSON object lacks %q: %v", k, obj)
		}
	}
}

func TestOutputFlagValues(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown format", []string{"status", "-o", "yaml"}, 2, `"yaml" is not an output format: use text or json`},
		{"long form", []string{"agents", "--output=xml"}, 2, `"xml" is not an output format`},
		{"not on commands that only act", []string{"quarantine", "research", "--reason", "x", "-o", "json"}, 2, "unknown shorthand flag: 'o'"},
		{"text is accepted", []string{"status", "-o", "text", "--data-dir", "/nonexistent/dir"}, 1, "no agenthost is running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) || stdout != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want it to contain %q)", code, tt.wantCode, stdout, stderr, tt.wantErr)
			}
		})
	}
}

func TestWriteJSONEscapesControls(t *testing.T) {
	var b bytes.Buffer
	in := map[string]string{"s": "a\x1b[2Jb\u009bc\u202ed\x7f<&>é"}
	if err := writeJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\u009b\u202e\x7f") {
		t.Fatalf("a control character reached the output: %q", out)
	}
	if !strings.Contains(out, `a\u001b[2Jb\u009bc\u202ed\u007f<&>é`) {
		t.Fatalf("output %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["s"] != in["s"] {
		t.Fatalf("the escaped JSON does not decode to the same value: %v, %q", err, back["s"])
	}
}

func TestStatusJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc(host.PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc(host.PathReady, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"starting","agents":2,"running":1,"down":0,"starting":[{"agent":"payments","state":"backoff"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL, Address: srv.Listener.Addr().String()})
	code, stdout, stderr := runCLI(t, nil, nil, "status", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	requireKeys(t, keysOf(t, stdout), "pid", "version", "trust_domain", "address", "issuer", "started", "health", "ready")
	var got statusJSON
	decodeJSON(t, stdout, &got)
	if got.TrustDomain != "test.local" || got.Issuer != srv.URL || got.Version != "test" || got.PID == 0 || got.Started.IsZero() {
		t.Errorf("run information: %+v", got)
	}
	if !got.Health.OK || got.Health.Detail != `200 OK {"status":"ok"}` {
		t.Errorf("health: %+v", got.Health)
	}
	if r := got.Ready; r == nil || !r.Known || r.Ready || r.Agents != 2 || r.Running != 1 ||
		len(r.Starting) != 1 || r.Starting[0] != (host.AgentStarting{Agent: "payments", State: "backoff"}) {
		t.Errorf("ready: %+v", got.Ready)
	}

	// A host that does not answer: the object says so, ready is null,
	// and the exit status is the text's.
	srv.Close()
	code, stdout, _ = runCLI(t, nil, nil, "status", "-o", "json", "--data-dir", dir)
	if code != 1 {
		t.Fatalf("unreachable: exit %d", code)
	}
	obj := keysOf(t, stdout)
	if string(obj["ready"]) != "null" {
		t.Errorf("ready = %s, want null", obj["ready"])
	}
	decodeJSON(t, stdout, &got)
	if got.Health.OK || got.Health.Detail == "" {
		t.Errorf("health of an unreachable host: %+v", got.Health)
	}
}

func TestAgentsJSON(t *testing.T) {
	dir := startRunHost(t, &runBackend{states: []string{localapi.StateBackoff}, lastErr: "plugin exited\x1b[2J"})
	code, stdout, stderr := runCLI(t, nil, nil, "agents", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw struct {
		Agents []map[string]json.RawMessage `json:"agents"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw.Agents) != 1 {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	requireKeys(t, raw.Agents[0], "name", "identity", "state", "pid", "restarts", "since", "svid_expires_at", "sandbox_level",
		"sandbox", "sandbox_missing", "last_error", "description", "version", "skills")
	var got agentsJSON
	decodeJSON(t, stdout, &got)
	a := got.Agents[0]
	if a.Name != "research" || a.State != localapi.StateBackoff || a.LastError != "plugin exited\x1b[2J" || a.PID != 0 ||
		a.SVIDExpiresAt != nil || a.SandboxMissing == nil || a.Skills == nil {
		t.Fatalf("agent: %+v", a)
	}
	if strings.Contains(stdout, "\x1b") {
		t.Fatalf("a raw escape reached the output: %q", stdout)
	}

	// No agents: an empty list, not null.
	dir = startRunHost(t, &testHost{})
	if code, stdout, _ := runCLI(t, nil, nil, "agents", "-o", "json", "--data-dir", dir); code != 0 || strings.TrimSpace(stdout) != "{\n  \"agents\": []\n}" {
		t.Fatalf("no agents: exit %d, %q", code, stdout)
	}
}

// approvalsBackend is a host with pending approvals for alice.
type approvalsBackend struct {
	*runBackend
	list []localapi.PendingApproval
}

func (b *approvalsBackend) PendingApprovals(_ context.Context, subject, _ string) ([]localapi.PendingApproval, error) {
	var out []localapi.PendingApproval
	for _, a := range b.list {
		if a.User == subject {
			out = append(out, a)
		}
	}
	return out, nil
}

func TestApprovalsJSON(t *testing.T) {
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	b := &approvalsBackend{runBackend: &runBackend{}, list: []localapi.PendingApproval{{
		ID: "ap-1", User: "alice", Client: "spiffe://test.local/agent/payments", BindingMessage: "payments/transfer 500 to bob",
		URL: "http://127.0.0.1:8420/approve/ap-1", Created: t0, Expires: t0.Add(5 * time.Minute)}}}
	dir := startRunHost(t, b)
	code, stdout, stderr := runCLI(t, nil, nil, "approvals", "--for", "alice", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw struct {
		Approvals []map[string]json.RawMessage `json:"approvals"`
	}
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw.Approvals) != 1 {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	requireKeys(t, raw.Approvals[0], "id", "user", "client", "binding_message", "url", "created", "expires")
	var got approvalsJSON
	decodeJSON(t, stdout, &got)
	want := approvalJSON{ID: "ap-1", User: "alice", Client: "spiffe://test.local/agent/payments", BindingMessage: "payments/transfer 500 to bob",
		URL: "http://127.0.0.1:8420/approve/ap-1", Created: t0, Expires: t0.Add(5 * time.Minute)}
	if got.Approvals[0] != want {
		t.Fatalf("approval %+v, want %+v", got.Approvals[0], want)
	}
	code, stdout, _ = runCLI(t, nil, nil, "approvals", "--for", "bob", "-o", "json", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, `"approvals": []`) {
		t.Fatalf("none pending: exit %d, %q", code, stdout)
	}
}

func TestAuditJSON(t *testing.T) {
	dataDir, h := startTestHost(t)
	treeHash, err := h.log.TreeHash(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("verify", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "verify", "-o", "json", "--key", h.vkey, "--data-dir", dataDir)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		requireKeys(t, keysOf(t, stdout), "verified", "failure", "offline", "verifier_key", "key_pinned", "size", "records",
			"checkpoints", "covered", "tree_hash", "uncovered", "problem", "checkpoint", "kept")
		var got verifyJSON
		decodeJSON(t, stdout, &got)
		if !got.Verified || got.Failure != "" || got.Offline || !got.KeyPinned || got.VerifierKey != h.vkey || got.Records != 3 ||
			got.Checkpoints != 1 || got.TreeHash != treeHash.String() || got.Problem != nil || got.Kept != nil ||
			got.Checkpoint == nil || *got.Checkpoint != (treeJSON{Size: 3, TreeHash: treeHash.String()}) || got.Uncovered == nil {
			t.Fatalf("verify: %+v", got)
		}
	})

	t.Run("verify tampered", func(t *testing.T) {
		h.problem = &audit.Problem{Kind: audit.ProblemRecord, Index: 1, Reason: "record hash does not match its stored hash"}
		defer func() { h.problem = nil }()
		code, stdout, stderr := run(t, "audit", "verify", "-o", "json", "--data-dir", dataDir)
		if code != 1 || !strings.Contains(stderr, "audit log FAILED verification at record 1") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var got verifyJSON
		decodeJSON(t, stdout, &got)
		if got.Verified || got.KeyPinned || got.VerifierKey != h.vkey ||
			got.Failure != "audit log FAILED verification at record 1: record hash does not match its stored hash" ||
			got.Problem == nil || *got.Problem != (problemJSON{Kind: "record", Index: 1, Reason: "record hash does not match its stored hash"}) {
			t.Fatalf("verify of a tampered log: %+v", got)
		}
	})

	t.Run("tail", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "tail", "-n", "2", "-o", "json", "--data-dir", dataDir)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var got recordsJSON
		decodeJSON(t, stdout, &got)
		if len(got.Records) != 2 || got.Records[0].Index != 1 || got.Records[1].Index != 2 {
			t.Fatalf("records: %+v", got.Records)
		}
		// The record exactly as stored, control characters and all.
		if r := got.Records[0].Record; r.Reason != "done\n\x1b[31mred" || r.Agent != "reader" || r.Txn != "t1" || r.Outcome != audit.OutcomeOK {
			t.Fatalf("record 1: %+v", r)
		}
		if strings.Contains(stdout, "\x1b") {
			t.Fatalf("a raw escape reached the output: %q", stdout)
		}
	})

	t.Run("trace", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "trace", "t1", "-o", "json", "--data-dir", dataDir)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		requireKeys(t, keysOf(t, stdout), "txn", "parent", "agent", "task", "records", "children")
		var got traceJSON
		decodeJSON(t, stdout, &got)
		if got.Txn != "t1" || len(got.Records) != 2 || got.Records[0].Index != 0 || len(got.Children) != 1 {
			t.Fatalf("root: %+v", got)
		}
		child := got.Children[0]
		if child.Txn != "t2" || child.Parent != "t1" || child.Agent != "writer" || len(child.Records) != 1 ||
			child.Records[0].Record.Action != audit.ActionAgentCall || child.Children == nil {
			t.Fatalf("child: %+v", child)
		}
	})
}

func TestWhoamiJSON(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, as, _ := startSignInHost(t)
	if code, _, stderr := runCLI(t, nil, nil, "whoami", "-o", "json", "--data-dir", dir); code != 1 || !strings.Contains(stderr, "not signed in") {
		t.Fatalf("before login: exit %d, %q", code, stderr)
	}
	signInAs(t, "allow")
	if code, _, stderr := runCLI(t, nil, nil, "login", "--data-dir", dir); code != 0 {
		t.Fatalf("login: exit %d, %q", code, stderr)
	}
	code, stdout, stderr := runCLI(t, nil, nil, "whoami", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	requireKeys(t, keysOf(t, stdout), "user", "subject", "name", "email", "issuer", "client", "resource", "scope", "expires", "renewable", "read_from")
	var got whoamiJSON
	decodeJSON(t, stdout, &got)
	if got.User != "alice (Alice Example)" || got.Subject != "alice" || got.Name != "Alice Example" || got.Issuer != as.Issuer() ||
		got.Client != host.CLIClientID || got.Resource != host.TaskResource(as.Issuer()) || !strings.Contains(got.Scope, host.ScopeTasksRun) ||
		got.Expires == nil || !got.Expires.After(time.Now()) || !got.Renewable || got.ReadFrom != "ID token" {
		t.Fatalf("whoami: %+v", got)
	}
}
