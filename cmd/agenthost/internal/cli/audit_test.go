package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/policy"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// testHost serves the admin API from a real audit log in memory and a real
// policy engine, the way the host does.
type testHost struct {
	st       *memstore.Store
	log      *audit.Log
	verifier note.Verifier
	vkey     string
	skey     string // the signing key, for tests that rewrite the log
	engine   *policy.Engine
	// policyDir holds the engine's policy files.
	policyDir string
	// problem, when set, is reported by AuditVerify (a tampered log).
	problem *audit.Problem
	// ignoreKept makes AuditVerifyPinned skip the kept checkpoint, as a
	// host that lies would.
	ignoreKept bool
}

func (h *testHost) Agents(context.Context) []localapi.AgentInfo { return nil }
func (h *testHost) RunTask(context.Context, localapi.TaskRequest, func(localapi.TaskEvent) error) error {
	return errors.New("no agents")
}
func (h *testHost) Quarantine(context.Context, string, string) error { return localapi.ErrUnknownAgent }
func (h *testHost) Release(context.Context, string, string) error    { return localapi.ErrUnknownAgent }

func (h *testHost) AuditVerify(ctx context.Context) (localapi.AuditVerifyResult, error) {
	return h.AuditVerifyPinned(ctx, localapi.AuditVerifyRequest{})
}

// AuditVerifyPinned verifies as the host does: with the caller's key and
// against its kept checkpoint, unless ignoreKept makes it a host that
// lies about the latter.
func (h *testHost) AuditVerifyPinned(ctx context.Context, req localapi.AuditVerifyRequest) (localapi.AuditVerifyResult, error) {
	vkey := req.VerifierKey
	if vkey == "" {
		vkey = h.vkey
	}
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		return localapi.AuditVerifyResult{}, fmt.Errorf("%w: %w", localapi.ErrBadVerifyRequest, err)
	}
	var opts []audit.VerifyOption
	if req.Checkpoint != "" && !h.ignoreKept {
		opts = append(opts, audit.AgainstCheckpoint([]byte(req.Checkpoint)))
	}
	cp, err := h.log.Checkpoint(ctx)
	if err != nil {
		return localapi.AuditVerifyResult{}, err
	}
	rep, err := audit.Verify(ctx, h.st, v, opts...)
	if err != nil && rep.Problem == nil {
		return localapi.AuditVerifyResult{}, err
	}
	if h.problem != nil {
		rep.Problem = h.problem
	}
	return localapi.AuditVerifyResult{Report: rep, Checkpoint: string(cp), VerifierKey: vkey}, nil
}

func (h *testHost) AuditRead(ctx context.Context, from int64, limit int) ([]audit.Entry, error) {
	if from < 0 {
		return audit.Tail(ctx, h.st, int(-from))
	}
	return audit.Read(ctx, h.st, from, limit)
}

func (h *testHost) AuditExport(ctx context.Context, w io.Writer, from int64) (int64, error) {
	return audit.Export(ctx, h.st, w, from)
}

func (h *testHost) AuditTrace(ctx context.Context, id string) (*audit.TraceNode, error) {
	return audit.Trace(ctx, h.st, id)
}

func (h *testHost) AuditCheck(ctx context.Context, rules audit.Rules) ([]audit.Violation, error) {
	return audit.Check(ctx, h.st, rules)
}

func (h *testHost) AuditCheckpoint(ctx context.Context) ([]byte, string, error) {
	cp, err := h.log.Latest(ctx)
	if errors.Is(err, audit.ErrNotFound) {
		cp, err = h.log.Checkpoint(ctx)
	}
	return cp, h.vkey, err
}

func hashStrings(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

func (h *testHost) AuditInclusionProof(ctx context.Context, index, size int64) ([]string, error) {
	p, err := h.log.InclusionProof(ctx, index, size)
	return hashStrings(p), err
}

func (h *testHost) AuditConsistencyProof(ctx context.Context, oldSize, newSize int64) ([]string, error) {
	p, err := h.log.ConsistencyProof(ctx, oldSize, newSize)
	return hashStrings(p), err
}

func (h *testHost) PolicyReload(ctx context.Context) (string, error) {
	if err := h.engine.Reload(ctx); err != nil {
		return "", err
	}
	return h.engine.Version(), nil
}

func (h *testHost) PolicyDecide(ctx context.Context, r policy.Request) (policy.Decision, error) {
	return h.engine.Decide(ctx, r)
}

const testPolicy = `@id("notes-read")
permit (principal, action == Action::"tool.call", resource in Server::"notes")
when { context.scopes.contains("notes:read") };
`

// startTestHost makes a data directory that CLI commands take for a
// running host's (the directory lock held, the run file written, the admin
// socket served) and returns it with the host, whose log holds three
// records and one checkpoint of them.
func startTestHost(t *testing.T) (string, *testHost) {
	t.Helper()
	ctx := context.Background()
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// What a running host holds and writes (see runtime/host): an
	// exclusive lock on agenthost.lock and its run info in host.json.
	lock, err := os.OpenFile(filepath.Join(dataDir, "agenthost.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(host.RunInfo{PID: os.Getpid(), TrustDomain: "test.local", Started: time.Now(), Version: "test"})
	if err := os.WriteFile(filepath.Join(dataDir, "host.json"), info, 0o600); err != nil {
		t.Fatal(err)
	}

	skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	signer, verifier, err := audit.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New(nil)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	log, err := audit.Open(ctx, audit.Config{Log: st, Signer: signer, Verifier: verifier,
		Now: func() time.Time { return t0 }, CheckpointEvery: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(context.Background()) })
	for _, r := range []audit.Record{
		{Agent: "reader", Subject: "alice", Action: audit.ActionToolCall, Resource: "notes/read", Decision: audit.DecisionAllow, Policy: "notes-read", Reason: "reader may read", Txn: "t1", TokenJTI: "j1"},
		{Agent: "reader", Subject: "alice", Action: audit.ActionToolCall, Resource: "notes/read", Outcome: audit.OutcomeOK, Reason: "done\n\x1b[31mred", Txn: "t1", TokenJTI: "j1"},
		{Agent: "writer", Action: audit.ActionAgentCall, Resource: "reader", Decision: audit.DecisionAllow, Txn: "t2", ParentTxn: "t1"},
	} {
		if _, err := log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "notes.cedar"), []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.Load(policyDir)
	if err != nil {
		t.Fatal(err)
	}

	h := &testHost{st: st, log: log, verifier: verifier, vkey: vkey, skey: skey, engine: engine, policyDir: policyDir}
	srv, err := localapi.Listen(filepath.Join(dataDir, localapi.SocketName), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return dataDir, h
}

func TestAuditCommands(t *testing.T) {
	dataDir, h := startTestHost(t)
	ctx := context.Background()
	treeHash, err := h.log.TreeHash(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("verify", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "verify", "--data-dir", dataDir)
		want := fmt.Sprintf("verified 3 records and 1 checkpoint; tree hash %s\ncheckpoint: 3 records, tree hash %s, signed by agenthost-audit/test.local\n", treeHash, treeHash)
		if code != 0 || stdout != want {
			t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
		}
		// Without --key it says whose key it trusted.
		if !strings.Contains(stderr, "verifier key "+h.vkey+": the host's own") {
			t.Fatalf("stderr %q does not name the key and where it came from", stderr)
		}
		code, stdout, stderr = run(t, "audit", "verify", "--key", h.vkey, "--data-dir", dataDir)
		if code != 0 || stdout != want || stderr != "" {
			t.Fatalf("with --key: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	t.Run("verify tampered", func(t *testing.T) {
		h.problem = &audit.Problem{Kind: audit.ProblemRecord, Index: 1, Reason: "record hash does not match its stored hash"}
		defer func() { h.problem = nil }()
		code, stdout, stderr := run(t, "audit", "verify", "--data-dir", dataDir)
		if code != 1 || stdout != "" || !strings.HasSuffix(stderr, "\naudit log FAILED verification at record 1: record hash does not match its stored hash\n") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		for _, tc := range []struct {
			problem audit.Problem
			want    string
		}{
			{audit.Problem{Kind: audit.ProblemCheckpoint, Index: 0, Reason: "bad signature"}, "audit log FAILED verification at checkpoint 0: bad signature\n"},
			{audit.Problem{Kind: audit.ProblemSeal, Index: 3, Reason: "bad signature"}, "audit log FAILED verification at its latest commit seal: bad signature\n"},
			{audit.Problem{Kind: audit.ProblemUncovered, Index: 2, Reason: "no signature vouches for record 2"},
				"audit log FAILED verification: records not vouched for from record 2: no signature vouches for record 2\n"},
		} {
			h.problem = &tc.problem
			if code, _, stderr := run(t, "audit", "verify", "--data-dir", dataDir); code != 1 || !strings.HasSuffix(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q, want it to end in %q", code, stderr, tc.want)
			}
		}
	})

	t.Run("tail", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "tail", "-n", "2", "--data-dir", dataDir)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if code != 0 || len(lines) != 3 {
			t.Fatalf("exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
		}
		if f := strings.Fields(lines[0]); strings.Join(f, " ") != "INDEX TIME TXN AGENT SUBJECT ACTION RESOURCE DECISION OUTCOME REASON" {
			t.Fatalf("header %q", lines[0])
		}
		if f := strings.Fields(lines[1]); strings.Join(f, " ") != `1 2026-03-04T05:06:07Z t1 reader alice tool.call notes/read - ok done\n\x1b[31mred` {
			t.Fatalf("record 1: %q", lines[1])
		}
		if f := strings.Fields(lines[2]); strings.Join(f, " ") != "2 2026-03-04T05:06:07Z t2 writer - agent.call reader allow - -" {
			t.Fatalf("record 2: %q", lines[2])
		}
		// Columns are aligned.
		if strings.Index(lines[1], "2026") != strings.Index(lines[0], "TIME") || strings.Index(lines[2], "agent.call") != strings.Index(lines[0], "ACTION") {
			t.Fatalf("columns not aligned:\n%s", stdout)
		}
	})

	t.Run("export", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "export", "--from", "1", "--data-dir", dataDir)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		sc := bufio.NewScanner(strings.NewReader(stdout))
		var seqs []int64
		for sc.Scan() {
			var r audit.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			seqs = append(seqs, r.Seq)
		}
		if fmt.Sprint(seqs) != "[1 2]" {
			t.Fatalf("exported records %v:\n%s", seqs, stdout)
		}
	})

	t.Run("trace", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "trace", "t2", "--data-dir", dataDir)
		if code != 0 || !strings.HasPrefix(stdout, "txn t1 agent=reader\n") || !strings.Contains(stdout, "    txn t2 agent=writer parent=t1\n") {
			t.Fatalf("exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
		}
		if strings.Contains(stdout, "\x1b") {
			t.Fatalf("a control character from a record reached the terminal:\n%q", stdout)
		}
		code, _, stderr = run(t, "audit", "trace", "nope", "--data-dir", dataDir)
		if code != 1 || !strings.Contains(stderr, "not found") {
			t.Fatalf("unknown txn: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("check", func(t *testing.T) {
		rules := writeFile(t, "rules.json", `{"approval_required": ["notes/read"]}`)
		code, stdout, stderr := run(t, "audit", "check", rules, "--data-dir", dataDir)
		if code != 1 || !strings.HasPrefix(stdout, "record 1: approval-before-call: ") || strings.Count(stdout, "\n") != 1 || stderr != "1 violation\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		rules = writeFile(t, "rules.json", `{}`)
		code, stdout, stderr = run(t, "audit", "check", rules, "--data-dir", dataDir)
		if code != 0 || stdout != "no violations\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})

	// The checkpoint and key a third party keeps, then proofs it checks
	// against them.
	code, cpText, stderr := run(t, "audit", "checkpoint", "--data-dir", dataDir)
	if code != 0 || stderr != "verifier key: "+h.vkey+"\n" || !strings.HasPrefix(cpText, "agenthost-audit/test.local\n3\n") {
		t.Fatalf("checkpoint: exit %d, stdout %q, stderr %q", code, cpText, stderr)
	}
	v, err := audit.ParseVerifier(strings.TrimPrefix(strings.TrimSpace(stderr), "verifier key: "))
	if err != nil {
		t.Fatal(err)
	}
	if tree, err := audit.OpenCheckpoint([]byte(cpText), v); err != nil || tree.N != 3 || tree.Hash != treeHash {
		t.Fatalf("checkpoint printed does not open: %v, %+v", err, tree)
	}

	t.Run("prove inclusion", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "prove", "--index", "1", "--data-dir", dataDir)
		if code != 0 || stderr != "inclusion of record 1 in the tree of 3 records: 2 hashes\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		var proof tlog.RecordProof
		for _, l := range strings.Fields(stdout) {
			h, err := tlog.ParseHash(l)
			if err != nil {
				t.Fatal(err)
			}
			proof = append(proof, h)
		}
		var exported bytes.Buffer
		if _, err := audit.Export(ctx, h.st, &exported, 1); err != nil {
			t.Fatal(err)
		}
		record, _, _ := bytes.Cut(exported.Bytes(), []byte("\n"))
		if err := audit.VerifyInclusion([]byte(cpText), v, 1, record, proof); err != nil {
			t.Fatalf("the printed proof does not verify: %v", err)
		}
		if code, stdout, _ := run(t, "audit", "prove", "--index", "0", "--size", "1", "--data-dir", dataDir); code != 0 || stdout != "" {
			// A tree of one record: the record is the root, the proof empty.
			t.Fatalf("proof in a tree of 1: exit %d, stdout %q", code, stdout)
		}
		if code, _, stderr := run(t, "audit", "prove", "--index", "5", "--data-dir", dataDir); code != 1 || !strings.Contains(stderr, "not covered by the latest checkpoint") {
			t.Fatalf("record beyond the checkpoint: exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("prove consistency", func(t *testing.T) {
		code, stdout, stderr := run(t, "audit", "prove", "--consistency", "2:3", "--data-dir", dataDir)
		want, err := h.log.ConsistencyProof(ctx, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || stdout != strings.Join(hashStrings(want), "\n")+"\n" || !strings.Contains(stderr, "tree of 2 records with the tree of 3 records") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

func TestPolicyReloadCommand(t *testing.T) {
	dataDir, h := startTestHost(t)
	code, stdout, stderr := run(t, "policy", "reload", "--data-dir", dataDir)
	if code != 0 || stdout != "policy set "+h.engine.Version()+" in force\n" || !strings.HasPrefix(h.engine.Version(), "sha256:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestPolicyReloadBroken(t *testing.T) {
	dataDir, h := startTestHost(t)
	before := h.engine.Version()
	if err := os.WriteFile(filepath.Join(h.policyDir, "zz.cedar"), []byte("permit (\n  principal,\n  action ==\n);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "policy", "reload", "--data-dir", dataDir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "zz.cedar:4:") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if h.engine.Version() != before {
		t.Fatalf("the policy set in force changed: %s, was %s", h.engine.Version(), before)
	}
}
