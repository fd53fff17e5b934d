package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/audit/audittest"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// auditSession starts a host on dataDir, appends one remediation record
// per reason, stops the host (which signs a final checkpoint) and returns
// the host's verifier key.
func auditSession(t *testing.T, cfg *config.Config, dataDir string, reasons ...string) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	h, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	for _, r := range reasons {
		if err := h.audit.Append(context.Background(), audit.Record{Action: audit.ActionRemediation, Reason: r, Cause: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return h.audit.vkey
}

// copyTree copies the directories and regular files of src to dst,
// keeping their modes: a backup or snapshot of a data directory.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, fi.Mode().Perm())
		}
		return nil // sockets
	})
	if err != nil {
		t.Fatal(err)
	}
}

func openDB(t *testing.T, dataDir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dataDir, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rewriteLog replaces the data directory's audit log by its records with
// record 1 changed, signed with skey: what someone holding the data
// directory and a signing key can do.
func rewriteLog(t *testing.T, dataDir, skey string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dataDir, dbFileName)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := audit.Read(ctx, st, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openDB(t, dataDir).Exec(`DELETE FROM log_entries WHERE log IN (?, ?, ?, ?)`,
		audit.RecordsLog, audit.HashesLog, audit.CheckpointsLog, audit.SealsLog); err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Config{Log: st, Signer: signer, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		r := e.Record
		if e.Index == 1 {
			r.Reason = "nothing happened here"
		}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAuditAttacksCaught: what someone holding the data directory can do
// to the audit log passes a verification that trusts the data directory,
// and fails one with the pinned verifier key and a checkpoint kept outside
// it; a host pinned to its key and given the checkpoint directory refuses
// to start on it.
func TestAuditAttacksCaught(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		attack func(t *testing.T, dataDir, snapshot string)
		want   audit.ProblemKind
	}{
		{"data directory rolled back", func(t *testing.T, dataDir, snapshot string) {
			if err := os.RemoveAll(dataDir); err != nil {
				t.Fatal(err)
			}
			copyTree(t, snapshot, dataDir)
		}, audit.ProblemKept},
		{"newest records deleted with their hashes, checkpoints and seals", func(t *testing.T, dataDir, _ string) {
			db := openDB(t, dataDir)
			for _, log := range []string{audit.RecordsLog, audit.HashesLog} {
				if _, err := db.Exec(`DELETE FROM log_entries WHERE log = ? AND idx >= 3`, log); err != nil {
					t.Fatal(err)
				}
			}
			for _, log := range []string{audit.CheckpointsLog, audit.SealsLog} {
				rows, err := db.Query(`SELECT idx, data FROM log_entries WHERE log = ?`, log)
				if err != nil {
					t.Fatal(err)
				}
				var drop []int64
				for rows.Next() {
					var idx int64
					var data []byte
					if err := rows.Scan(&idx, &data); err != nil {
						t.Fatal(err)
					}
					if n, err := audit.CheckpointSize(data); err != nil || n > 3 {
						drop = append(drop, idx)
					}
				}
				rows.Close()
				for _, idx := range drop {
					if _, err := db.Exec(`DELETE FROM log_entries WHERE log = ? AND idx = ?`, log, idx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, audit.ProblemKept},
		{"rewritten and signed again with the stored key", func(t *testing.T, dataDir, _ string) {
			skey, err := os.ReadFile(filepath.Join(dataDir, auditDirName, auditSigningKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			rewriteLog(t, dataDir, strings.TrimSpace(string(skey)))
		}, audit.ProblemKept},
		{"rewritten and signed with a key of the attacker's", func(t *testing.T, dataDir, _ string) {
			skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(dataDir, auditDirName)
			if err := os.WriteFile(filepath.Join(dir, auditSigningKeyFile), []byte(skey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, auditVerifierKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			rewriteLog(t, dataDir, skey)
		}, audit.ProblemCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dataDir, snapshot := filepath.Join(base, "data"), filepath.Join(base, "snapshot")
			keptDir := filepath.Join(t.TempDir(), "kept") // other storage
			cfg := testConfig(t)
			cfg.Audit.CheckpointDir = keptDir
			pinned := auditSession(t, cfg, dataDir, "first", "second", "third")
			copyTree(t, dataDir, snapshot)
			if again := auditSession(t, cfg, dataDir, "fourth", "fifth", "sixth"); again != pinned {
				t.Fatalf("the key changed across restarts: %s, %s", pinned, again)
			}

			tt.attack(t, dataDir, snapshot)

			// Trusting the data directory, the attack goes unnoticed.
			res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir})
			if err != nil || res.Report.Problem != nil {
				t.Fatalf("verification trusting the data directory: %+v, %v", res.Report, err)
			}
			// With the pinned key and the kept checkpoint, it does not.
			kept, err := audit.LoadCheckpoint(keptDir)
			if err != nil {
				t.Fatal(err)
			}
			res, err = VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir, VerifierKey: pinned, Checkpoint: kept})
			if err != nil || res.Report.Problem == nil || res.Report.Problem.Kind != tt.want || res.VerifierKey != pinned {
				t.Fatalf("verification with the pinned key and the kept checkpoint: %+v, %v", res, err)
			}
			t.Logf("caught: %v", res.Report.Problem)
			// A host pinned to its key with the kept checkpoints refuses
			// to start on it.
			cfg.Audit.VerifierKey = pinned
			if h, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard}); err == nil {
				h.close()
				t.Fatal("the host started on the attacked log")
			} else {
				t.Logf("start refused: %v", err)
			}
		})
	}
}

// TestAuditHandAppendedNotVouched: a record put into the store while the
// host is down is not vouched for by the checkpoints of the next start.
func TestAuditHandAppendedNotVouched(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(t)
	auditSession(t, cfg, dataDir, "first", "second", "third")
	if _, err := openDB(t, dataDir).Exec(`INSERT INTO log_entries (log, idx, data) VALUES (?, 3, ?)`, audit.RecordsLog,
		`{"seq":3,"time":"2026-01-01T00:00:00Z","agent":"payments","action":"tool.call","resource":"payments/pay","decision":"allow","outcome":"ok"}`); err != nil {
		t.Fatal(err)
	}
	auditSession(t, cfg, dataDir, "fourth")
	res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if p := rep.Problem; p == nil || p.Kind != audit.ProblemUncovered || p.Index != 3 ||
		len(rep.Uncovered) != 1 || rep.Uncovered[0] != (audit.Range{From: 3, To: 4}) || rep.Records != 6 {
		t.Fatalf("report %+v (problem %v)", rep, rep.Problem)
	}
	// The host's own records before and after are covered.
	if rep.Covered != 6 {
		t.Errorf("covered %d records, want 6", rep.Covered)
	}
}

// TestAuditJWTToolNameRecorded: a call whose tool name looks like a JSON
// Web Token is refused and recorded, the token redacted.
func TestAuditJWTToolNameRecorded(t *testing.T) {
	ctx := context.Background()
	h := runHost(t, testConfig(t), filepath.Join(t.TempDir(), "data"))
	jwt := "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	if _, err := h.med.HostFor("nobody").CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: jwt, ArgumentsJson: "{}"}); err == nil {
		t.Fatal("the call succeeded")
	}
	if err := h.audit.Record(ctx, mediator.Record{Agent: "a", Action: audit.ActionToolCall, Resource: "notes/" + jwt, Decision: "deny", Outcome: "denied"}); err != nil {
		t.Fatalf("Record: %v", err)
	}
	es, err := audit.Tail(ctx, syncedStore(t, h), 10)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range es {
		if strings.Contains(e.Record.Resource, "[redacted: jwt sha256:") {
			if strings.Join(e.Record.Redacted, ",") != "resource" {
				t.Errorf("record %d: redacted %v", e.Index, e.Record.Redacted)
			}
			found = append(found, e.Record.Resource)
		}
	}
	if len(found) != 2 || !strings.HasPrefix(found[1], "notes/[redacted: jwt sha256:") {
		t.Fatalf("redacted records %q among %+v", found, es)
	}
	var export bytes.Buffer
	if _, err := audit.Export(ctx, syncedStore(t, h), &export, 0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(export.String(), jwt) {
		t.Fatal("the token is in the audit log")
	}
}

// syncBuffer is a bytes.Buffer safe for the host's writes and the test's
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuditSigningKeyFile: the signing key is an owner-only file of its
// own, not in the store; the verifier key is printed at start and kept for
// offline verification; a key file others can read is refused.
func TestAuditSigningKeyFile(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	var out syncBuffer
	h := runHostWith(t, Options{Config: testConfig(t), DataDir: dataDir, Stdout: &out})
	dir := filepath.Join(dataDir, auditDirName)
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {filepath.Join(dir, auditSigningKeyFile), 0o600}} {
		if fi, err := os.Stat(c.path); err != nil || fi.Mode() != c.mode {
			t.Errorf("%s: %v, %v; want mode %v", c.path, fi.Mode(), err, c.mode)
		}
	}
	skey, err := os.ReadFile(filepath.Join(dir, auditSigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil || s.VerifierKey() != h.audit.vkey {
		t.Fatalf("key file: %v, %v", s, err)
	}
	if _, err := h.Store().Get(ctx, nsHost, keyAuditSigner); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the store holds an audit key: %v", err)
	}
	if vk, err := os.ReadFile(filepath.Join(dir, auditVerifierKeyFile)); err != nil || string(vk) != h.audit.vkey+"\n" {
		t.Errorf("verifier key file %q, %v", vk, err)
	}
	// An empty log verifies (there is nothing to sign yet).
	if res, err := h.AuditVerify(ctx); err != nil || res.Report.Problem != nil || res.Report.Size != 0 || res.Checkpoint != "" {
		t.Fatalf("AuditVerify of an empty log: %+v, %v", res, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "  audit verifier "+h.audit.vkey+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("banner:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}

	other := filepath.Join(t.TempDir(), "data")
	auditSession(t, testConfig(t), other)
	if err := os.Chmod(filepath.Join(other, auditDirName, auditSigningKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Config: testConfig(t), DataDir: other, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("New with a readable key file: %v", err)
	}
}

// legacyDataDir makes a data directory as an earlier version left it: the
// audit signing key in the store, and a log signed with it.
func legacyDataDir(t *testing.T) (dataDir, skey, vkey string) {
	t.Helper()
	ctx := context.Background()
	dataDir = filepath.Join(t.TempDir(), "data")
	if err := EnsurePrivateDir(dataDir); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dataDir, dbFileName)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Put(ctx, nsHost, keyAuditSigner, []byte(`{"signer":"`+skey+`","verifier":"`+vkey+`"}`), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, audit.Config{Log: st, Signer: s, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, audit.Record{Action: audit.ActionRemediation, Reason: "before the upgrade"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dataDir, skey, vkey
}

// TestAuditKeyMovesOutOfTheStore: a key an earlier version kept in the
// store becomes the key file and leaves the store; the log goes on under
// it.
func TestAuditKeyMovesOutOfTheStore(t *testing.T) {
	ctx := context.Background()
	dataDir, skey, vkey := legacyDataDir(t)
	// Before any start of this version, offline verification finds the
	// key where the earlier version kept it.
	if res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir}); err != nil || res.VerifierKey != vkey || res.Report.Problem != nil {
		t.Fatalf("verify before the upgrade: %+v, %v", res, err)
	}
	if got := auditSession(t, testConfig(t), dataDir, "after the upgrade"); got != vkey {
		t.Fatalf("verifier key %s, want the stored one %s", got, vkey)
	}
	if data, err := os.ReadFile(filepath.Join(dataDir, auditDirName, auditSigningKeyFile)); err != nil || strings.TrimSpace(string(data)) != skey {
		t.Fatalf("key file %q, %v", data, err)
	}
	var n int
	if err := openDB(t, dataDir).QueryRow(`SELECT count(*) FROM kv WHERE ns = ? AND key = ?`, nsHost, keyAuditSigner).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the store still holds the key: %d, %v", n, err)
	}
	res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir, VerifierKey: vkey})
	if err != nil || res.Report.Problem != nil || res.Report.Records != 2 {
		t.Fatalf("verify: %+v, %v", res.Report, err)
	}

	// A key in the store other than the key file's is refused.
	dataDir, _, _ = legacyDataDir(t)
	other, _, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(filepath.Join(dataDir, auditDirName)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, auditDirName, auditSigningKeyFile), []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Options{Config: testConfig(t), DataDir: dataDir, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "other than the host's") {
		t.Fatalf("New with two keys: %v", err)
	}
}

// TestAuditSigningKeyFromEnv: the key can come from the environment
// instead of a file; the host refuses to start without it.
func TestAuditSigningKeyFromEnv(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Audit.SigningKeyEnv = "AGENTHOST_TEST_AUDIT_SIGNING_KEY"
	t.Setenv(cfg.Audit.SigningKeyEnv, skey)
	dataDir := filepath.Join(t.TempDir(), "data")
	if got := auditSession(t, cfg, dataDir, "one"); got != vkey {
		t.Fatalf("verifier key %s, want %s", got, vkey)
	}
	if _, err := os.Stat(filepath.Join(dataDir, auditDirName, auditSigningKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was written: %v", err)
	}
	if res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir}); err != nil || res.VerifierKey != vkey || res.Report.Problem != nil {
		t.Fatalf("verify with the key the host gives: %+v, %v", res, err)
	}
	t.Setenv(cfg.Audit.SigningKeyEnv, "")
	if _, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "not set") {
		t.Fatalf("New without the key: %v", err)
	}
	other, _, err := audit.GenerateKey(rand.Reader, "elsewhere.local")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(cfg.Audit.SigningKeyEnv, other)
	if _, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "trust domain") {
		t.Fatalf("New with another trust domain's key: %v", err)
	}
}

// TestAuditPinnedVerifierKey: audit.verifier_key must be the host's key.
func TestAuditPinnedVerifierKey(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(t)
	vkey := auditSession(t, cfg, dataDir)
	_, other, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.VerifierKey = other
	if _, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("New with another pinned key: %v", err)
	}
	cfg.Audit.VerifierKey = vkey
	auditSession(t, cfg, dataDir, "pinned")
}

// TestAuditWitness: every checkpoint goes to the configured witness, and
// its checked cosignature is kept with the checkpoint.
func TestAuditWitness(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audittest.NewWitness("witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	w.Trust(v.Name(), v)
	srv := httptest.NewServer(w)
	defer srv.Close()
	cfg := testConfig(t)
	cfg.Audit.SigningKeyEnv = "AGENTHOST_TEST_AUDIT_SIGNING_KEY"
	t.Setenv(cfg.Audit.SigningKeyEnv, skey)
	cfg.Audit.WitnessURL = srv.URL + "/witness"
	cfg.Audit.WitnessKey = w.VerifierKey()
	cfg.Audit.CheckpointDir = filepath.Join(t.TempDir(), "kept")
	dataDir := filepath.Join(t.TempDir(), "data")
	auditSession(t, cfg, dataDir, "one", "two")
	auditSession(t, cfg, dataDir, "three") // a new client learns the witness's size
	if got := w.Latest(v.Name()); got.N != 3 {
		t.Fatalf("the witness cosigned %d records, want 3 (answers %v)", got.N, w.Statuses())
	}
	kept, err := audit.LoadCheckpoint(cfg.Audit.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := audit.ParseCosignatureVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(kept, note.VerifierList(v, wv)); err != nil || len(n.Sigs) != 2 {
		t.Fatalf("kept checkpoint, signed and cosigned:\n%s\n%+v, %v", kept, n, err)
	}
	res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir, VerifierKey: vkey, Checkpoint: kept})
	if err != nil || res.Report.Problem != nil || res.Report.Kept != 3 {
		t.Fatalf("verify against the cosigned checkpoint: %+v, %v", res.Report, err)
	}
}
