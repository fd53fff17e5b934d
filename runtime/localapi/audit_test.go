package localapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/policy"
)

// fakeAudit is a Backend that also serves a small audit log and a policy
// engine that allows what the agent "reader" asks.
type fakeAudit struct {
	fakeBackend
	records   []audit.Record
	problem   *audit.Problem
	exportErr error // returned after the first record
	reloadErr error
	gotRules  audit.Rules
	gotReq    policy.Request
}

func newFakeAudit() *fakeAudit {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeAudit{records: []audit.Record{
		{Seq: 0, Time: t0, Agent: "reader", Action: audit.ActionToolCall, Resource: "notes/read", Decision: audit.DecisionAllow, Txn: "t1"},
		{Seq: 1, Time: t0.Add(time.Second), Agent: "reader", Action: audit.ActionToolCall, Resource: "notes/read", Outcome: audit.OutcomeOK, Txn: "t1"},
		{Seq: 2, Time: t0.Add(2 * time.Second), Agent: "writer", Action: audit.ActionAgentCall, Resource: "reader", Decision: audit.DecisionAllow, Txn: "t2", ParentTxn: "t1"},
	}}
}

func (f *fakeAudit) entries(from, to int64) []audit.Entry {
	var out []audit.Entry
	for i := from; i < to && i < int64(len(f.records)); i++ {
		out = append(out, audit.Entry{Index: i, Record: f.records[i]})
	}
	return out
}

func (f *fakeAudit) AuditVerify(context.Context) (AuditVerifyResult, error) {
	n := int64(len(f.records))
	r := audit.Report{Size: n, Records: n, Checkpoints: 2, Covered: n, TreeHash: [32]byte{1, 2, 3}, Problem: f.problem}
	return AuditVerifyResult{Report: r, Checkpoint: "go.sum database tree\n3\nAQID\n\n— sig\n", VerifierKey: "vkey"}, nil
}

func (f *fakeAudit) AuditRead(_ context.Context, from int64, limit int) ([]audit.Entry, error) {
	if from < 0 {
		from = max(int64(len(f.records))+from, 0)
	}
	return f.entries(from, from+int64(limit)), nil
}

func (f *fakeAudit) AuditExport(_ context.Context, w io.Writer, from int64) (int64, error) {
	var n int64
	for _, e := range f.entries(from, int64(len(f.records))) {
		if f.exportErr != nil && n == 1 {
			return n, f.exportErr
		}
		fmt.Fprintf(w, "{\"seq\":%d}\n", e.Index)
		n++
	}
	return n, nil
}

func (f *fakeAudit) AuditTrace(_ context.Context, id string) (*audit.TraceNode, error) {
	if id != "t1" && id != "t2" {
		return nil, fmt.Errorf("%w: transaction %s", audit.ErrNotFound, id)
	}
	child := &audit.TraceNode{Txn: "t2", Parent: "t1", Agent: "writer", Records: f.entries(2, 3)}
	return &audit.TraceNode{Txn: "t1", Agent: "reader", Records: f.entries(0, 2), Children: []*audit.TraceNode{child}}, nil
}

func (f *fakeAudit) AuditCheck(_ context.Context, rules audit.Rules) ([]audit.Violation, error) {
	f.gotRules = rules
	if len(rules.ApprovalRequired) > 0 {
		return []audit.Violation{{Index: 1, Rule: audit.RuleApproval, Detail: "no approval"}}, nil
	}
	return nil, nil
}

func (f *fakeAudit) AuditCheckpoint(context.Context) ([]byte, string, error) {
	return []byte("go.sum database tree\n3\nAQID\n\n— sig\n"), "vkey", nil
}

func (f *fakeAudit) AuditInclusionProof(_ context.Context, index, size int64) ([]string, error) {
	if size > int64(len(f.records)) {
		return nil, errors.New("tree size beyond the log")
	}
	return []string{fmt.Sprintf("inc-%d-%d", index, size)}, nil
}

func (f *fakeAudit) AuditConsistencyProof(_ context.Context, oldSize, newSize int64) ([]string, error) {
	return []string{fmt.Sprintf("con-%d-%d", oldSize, newSize), "h2"}, nil
}

func (f *fakeAudit) PolicyReload(context.Context) (string, error) {
	if f.reloadErr != nil {
		return "", f.reloadErr
	}
	return "sha256:abc", nil
}

func (f *fakeAudit) PolicyDecide(_ context.Context, r policy.Request) (policy.Decision, error) {
	f.gotReq = r
	if !policy.ValidAction(r.Action) {
		return policy.Decision{}, fmt.Errorf("%w: unknown action %q", policy.ErrInvalidRequest, r.Action)
	}
	if r.Principal.Name == "reader" {
		return policy.Decision{Effect: policy.Allow, Policies: []string{"p0"}, Version: "sha256:abc"}, nil
	}
	return policy.Decision{Effect: policy.Deny, Version: "sha256:abc"}, nil
}

// serve runs an admin API for b and returns its socket path.
func serve(t *testing.T, b Backend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := Listen(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return path
}

// get does a raw request and returns the status and body.
func get(t *testing.T, path, method, target string, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	req, err := http.NewRequest(method, "http://agenthost"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuditEndpoints(t *testing.T) {
	f := newFakeAudit()
	path := serve(t, f)
	c := NewClient(path)
	ctx := context.Background()

	t.Run("verify", func(t *testing.T) {
		res, err := c.AuditVerify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Report.OK() || res.Report.Records != 3 || res.Report.Checkpoints != 2 || res.Report.TreeHash != ([32]byte{1, 2, 3}) || res.VerifierKey != "vkey" || !strings.HasPrefix(res.Checkpoint, "go.sum database tree\n3\n") {
			t.Fatalf("AuditVerify = %+v", res)
		}
	})
	t.Run("records", func(t *testing.T) {
		es, err := c.AuditRecords(ctx, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].Index != 1 || es[1].Record.Agent != "writer" || !es[1].Record.Time.Equal(f.records[2].Time) {
			t.Fatalf("AuditRecords(1) = %+v", es)
		}
		es, err = c.AuditRecords(ctx, -1, 5)
		if err != nil || len(es) != 1 || es[0].Index != 2 {
			t.Fatalf("AuditRecords(-1) = %+v, %v", es, err)
		}
		code, body := get(t, path, "GET", "/v1/audit/records?from=0&limit=1", "")
		if code != 200 || !strings.HasPrefix(body, `[{"index":0,"record":{"seq":0,`) {
			t.Fatalf("wire form: %d %s", code, body)
		}
	})
	t.Run("export", func(t *testing.T) {
		var buf bytes.Buffer
		n, err := c.AuditExport(ctx, &buf, 1)
		if err != nil || n != 2 || buf.String() != "{\"seq\":1}\n{\"seq\":2}\n" {
			t.Fatalf("AuditExport = %d, %v, %q", n, err, buf.String())
		}
		buf.Reset()
		n, err = c.AuditExport(ctx, &buf, 10)
		if err != nil || n != 0 || buf.Len() != 0 {
			t.Fatalf("empty AuditExport = %d, %v, %q", n, err, buf.String())
		}
	})
	t.Run("trace", func(t *testing.T) {
		tree, text, err := c.AuditTrace(ctx, "t2")
		if err != nil {
			t.Fatal(err)
		}
		if tree.Txn != "t1" || len(tree.Records) != 2 || len(tree.Children) != 1 || tree.Children[0].Parent != "t1" || tree.Children[0].Records[0].Index != 2 {
			t.Fatalf("tree = %+v", tree)
		}
		var want bytes.Buffer
		if err := tree.Format(&want); err != nil {
			t.Fatal(err)
		}
		if text != want.String() || !strings.Contains(text, "txn t1") {
			t.Fatalf("text = %q, want %q", text, want.String())
		}
	})
	t.Run("check", func(t *testing.T) {
		vs, err := c.AuditCheck(ctx, []byte(`{"approval_required": ["payments/pay"]}`))
		if err != nil || len(vs) != 1 || vs[0].Index != 1 || vs[0].Rule != audit.RuleApproval {
			t.Fatalf("AuditCheck = %+v, %v", vs, err)
		}
		if len(f.gotRules.ApprovalRequired) != 1 || f.gotRules.ApprovalRequired[0] != "payments/pay" {
			t.Fatalf("rules given to the backend: %+v", f.gotRules)
		}
		vs, err = c.AuditCheck(ctx, []byte(`{}`))
		if err != nil || len(vs) != 0 {
			t.Fatalf("AuditCheck({}) = %+v, %v", vs, err)
		}
		if code, body := get(t, path, "POST", "/v1/audit/check", "{}"); code != 200 || strings.TrimSpace(body) != "[]" {
			t.Fatalf("no violations on the wire: %d %s", code, body)
		}
	})
	t.Run("checkpoint", func(t *testing.T) {
		cp, vkey, err := c.AuditCheckpoint(ctx)
		if err != nil || vkey != "vkey" || !strings.HasPrefix(string(cp), "go.sum database tree\n") {
			t.Fatalf("AuditCheckpoint = %q, %q, %v", cp, vkey, err)
		}
	})
	t.Run("proofs", func(t *testing.T) {
		hs, err := c.AuditInclusionProof(ctx, 1, 3)
		if err != nil || len(hs) != 1 || hs[0] != "inc-1-3" {
			t.Fatalf("AuditInclusionProof = %q, %v", hs, err)
		}
		hs, err = c.AuditConsistencyProof(ctx, 2, 3)
		if err != nil || len(hs) != 2 || hs[0] != "con-2-3" {
			t.Fatalf("AuditConsistencyProof = %q, %v", hs, err)
		}
		if _, err := c.AuditInclusionProof(ctx, 1, 30); err == nil || err.Error() != "tree size beyond the log" {
			t.Fatalf("backend error: %v", err)
		}
	})
	t.Run("policy", func(t *testing.T) {
		v, err := c.PolicyReload(ctx)
		if err != nil || v != "sha256:abc" {
			t.Fatalf("PolicyReload = %q, %v", v, err)
		}
		d, err := c.PolicyDecide(ctx, policy.Request{Principal: policy.Principal{Name: "reader"}, Action: policy.ActionCallTool, Resource: "notes/read", Context: map[string]any{"amount": 5}})
		if err != nil || d.Effect != policy.Allow || len(d.Policies) != 1 || d.Version != "sha256:abc" {
			t.Fatalf("PolicyDecide = %+v, %v", d, err)
		}
		if f.gotReq.Resource != "notes/read" || fmt.Sprint(f.gotReq.Context["amount"]) != "5" {
			t.Fatalf("request given to the backend: %+v", f.gotReq)
		}
		d, err = c.PolicyDecide(ctx, policy.Request{Principal: policy.Principal{Name: "other"}, Action: policy.ActionCallTool, Resource: "notes/read"})
		if err != nil || d.Effect != policy.Deny {
			t.Fatalf("PolicyDecide(other) = %+v, %v", d, err)
		}
	})
}

func TestAuditEndpointErrors(t *testing.T) {
	f := newFakeAudit()
	path := serve(t, f)
	c := NewClient(path)
	ctx := context.Background()

	tests := []struct {
		method, target, body string
		wantCode             int
		wantErr              string
	}{
		{"GET", "/v1/audit/records?from=x", "", 400, "from"},
		{"GET", "/v1/audit/records?limit=0", "", 400, "limit"},
		{"GET", "/v1/audit/records?limit=10001", "", 400, "limit"},
		{"GET", "/v1/audit/records?limit=ten", "", 400, "limit"},
		{"GET", "/v1/audit/export?from=-1", "", 400, "from"},
		{"GET", "/v1/audit/proof/inclusion?size=3", "", 400, "index"},
		{"GET", "/v1/audit/proof/inclusion?index=-1&size=3", "", 400, "index"},
		{"GET", "/v1/audit/proof/inclusion?index=3&size=3", "", 400, "index"},
		{"GET", "/v1/audit/proof/inclusion?index=0&size=0", "", 400, "size"},
		{"GET", "/v1/audit/proof/consistency?old=1", "", 400, "new"},
		{"GET", "/v1/audit/proof/consistency?old=a&new=2", "", 400, "old"},
		{"GET", "/v1/audit/proof/consistency?old=3&new=2", "", 400, "new"},
		{"POST", "/v1/audit/check", `{"allow_action": []}`, 400, "allow_action"},
		{"POST", "/v1/audit/check", `{"approval_required": [""]}`, 400, "empty name"},
		{"POST", "/v1/audit/check", `{"x":"` + strings.Repeat("a", maxRulesBody) + `"}`, 413, "larger than"},
		{"POST", "/v1/policy/decide", `{"principal": {"name": "reader"}, "actoin": "tool.call"}`, 400, "actoin"},
		{"POST", "/v1/policy/decide", `{"principal": {"name": "reader"}, "action": "fly"}`, 400, "invalid request"},
		{"GET", "/v1/audit/trace/nope", "", 404, "not found"},
		{"GET", "/v1/audit/verify", "", 404, "no such admin endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			code, body := get(t, path, tt.method, tt.target, tt.body)
			if code != tt.wantCode || !strings.Contains(body, tt.wantErr) {
				t.Fatalf("%d %s; want %d and %q", code, body, tt.wantCode, tt.wantErr)
			}
			if !strings.HasPrefix(body, `{"error":`) {
				t.Fatalf("not a JSON error: %s", body)
			}
		})
	}

	if _, _, err := c.AuditTrace(ctx, "nope"); !errors.Is(err, audit.ErrNotFound) || !strings.Contains(err.Error(), "transaction nope") {
		t.Fatalf("AuditTrace of an unknown id: %v", err)
	}
	// An id with a slash reaches the backend whole.
	if _, _, err := c.AuditTrace(ctx, "a/b c"); !errors.Is(err, audit.ErrNotFound) || !strings.Contains(err.Error(), "transaction a/b c") {
		t.Fatalf("AuditTrace of an id with a slash: %v", err)
	}
	if _, err := c.AuditRecords(ctx, 0, MaxRecordsLimit+1); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("AuditRecords over the limit: %v", err)
	}
	if _, err := c.AuditCheck(ctx, []byte(`not json`)); err == nil || !strings.Contains(err.Error(), "parse rules") {
		t.Fatalf("AuditCheck of bad rules: %v", err)
	}

	// A real parse error, from a policy file broken on line 4.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.cedar"), []byte("permit (\n  principal,\n  action ==\n);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, f.reloadErr = policy.Load(dir)
	var pe *policy.ParseError
	if !errors.As(f.reloadErr, &pe) {
		t.Fatalf("broken policy loaded: %v", f.reloadErr)
	}
	code, body := get(t, path, "POST", "/v1/policy/reload", "")
	if code != 422 || !strings.Contains(body, "notes.cedar:4:") {
		t.Fatalf("reload of a bad policy: %d %s", code, body)
	}
	if _, err := c.PolicyReload(ctx); err == nil || err.Error() != f.reloadErr.Error() {
		t.Fatalf("PolicyReload error = %v, want %v", err, f.reloadErr)
	}

	f.exportErr = errors.New("store read failed")
	var buf bytes.Buffer
	n, err := c.AuditExport(ctx, &buf, 0)
	// The records sent before the failure may or may not have reached the
	// client; either way the export must end in an error.
	if err == nil || n > 1 || !strings.HasPrefix("{\"seq\":0}\n", buf.String()) {
		t.Fatalf("broken export = %d, %v, %q; want an error after at most 1 record", n, err, buf.String())
	}
}

func TestAuditNotSupported(t *testing.T) {
	path := serve(t, fakeBackend{})
	c := NewClient(path)
	ctx := context.Background()
	if _, err := c.AuditVerify(ctx); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("AuditVerify on a host without audit: %v", err)
	}
	if _, err := c.PolicyReload(ctx); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("PolicyReload on a host without policy: %v", err)
	}
	if _, err := c.AuditExport(ctx, io.Discard, 0); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("AuditExport on a host without audit: %v", err)
	}
	for _, target := range []string{"/v1/audit/records", "/v1/audit/checkpoint", "/v1/audit/trace/x", "/v1/audit/proof/inclusion?index=0&size=1"} {
		if code, body := get(t, path, "GET", target, ""); code != 501 || !strings.Contains(body, `"error"`) {
			t.Fatalf("GET %s: %d %s", target, code, body)
		}
	}
}
