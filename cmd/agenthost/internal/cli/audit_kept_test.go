package cli

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/store/memstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// serveLog makes h serve a log of n records signed with skey, record 1
// changed if rewrite: what a host whose store was rolled back or
// rewritten serves.
func serveLog(t *testing.T, h *testHost, skey string, n int, rewrite bool) {
	t.Helper()
	ctx := context.Background()
	s, err := audit.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New(nil)
	l, err := audit.Open(ctx, audit.Config{Log: st, Signer: s, CheckpointEvery: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	for i := range n {
		r := audit.Record{Agent: "reader", Action: audit.ActionToolCall, Resource: "notes/read", Txn: "t1"}
		if rewrite && i == 1 {
			r.Reason = "nothing happened"
		}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	h.st, h.log = st, l
}

// TestAuditVerifyKeptCheckpoint: verify --checkpoint against a running
// host trusts only what the pinned key signs: a host that serves a rolled
// back or rewritten log fails even when it lies about the check.
func TestAuditVerifyKeptCheckpoint(t *testing.T) {
	dataDir, h := startTestHost(t)
	ctx := context.Background()
	_, cp, _ := run(t, "audit", "checkpoint", "--data-dir", dataDir)
	kept := writeFile(t, "kept.checkpoint", cp)
	for range 2 {
		if _, err := h.log.Append(ctx, audit.Record{Agent: "reader", Action: audit.ActionToolCall, Resource: "notes/read"}); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := audit.OpenCheckpoint([]byte(cp), h.verifier)
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run(t, "audit", "verify", "--key", h.vkey, "--checkpoint", kept, "--data-dir", dataDir)
	if code != 0 || !strings.HasSuffix(stdout, "consistent with the kept checkpoint of 3 records (tree hash "+tree.Hash.String()+")\n") || stderr != "" {
		t.Fatalf("intact log: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	otherSkey, otherVkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		serve      func(t *testing.T)
		ignoreKept bool
		args       []string
		wantCode   int
		wantErr    string
	}{
		{"rolled back, honest host", func(t *testing.T) { serveLog(t, h, h.skey, 2, false) }, false,
			[]string{"--key", h.vkey}, 1, "against the kept checkpoint of 3 records: the kept checkpoint covers 3 records but the log holds 2"},
		{"rolled back, lying host", func(t *testing.T) { serveLog(t, h, h.skey, 2, false) }, true,
			[]string{"--key", h.vkey}, 1, "the kept checkpoint covers 3 records but the host's log has 2: it was rolled back"},
		{"rewritten with the host's key, honest host", func(t *testing.T) { serveLog(t, h, h.skey, 5, true) }, false,
			[]string{"--key", h.vkey}, 1, "the log was rewritten"},
		{"rewritten with the host's key, lying host", func(t *testing.T) { serveLog(t, h, h.skey, 5, true) }, true,
			[]string{"--key", h.vkey}, 1, "no consistency from the kept 3 records to the host's 5: the log was rewritten"},
		{"rewritten with another key", func(t *testing.T) { serveLog(t, h, otherSkey, 5, true) }, true,
			[]string{"--key", h.vkey}, 1, "FAILED verification at checkpoint 0"},
		{"kept checkpoint not signed by the pinned key", func(*testing.T) {}, false,
			[]string{"--key", otherVkey}, 1, "the kept checkpoint"},
		{"bad key", func(*testing.T) {}, false, []string{"--key", "nope"}, 2, "--key"},
		{"no such checkpoint file", func(*testing.T) {}, false,
			[]string{"--key", h.vkey, "--checkpoint", filepath.Join(t.TempDir(), "none")}, 2, "--checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, log := h.st, h.log
			defer func() { h.st, h.log, h.ignoreKept = st, log, false }()
			tt.serve(t)
			h.ignoreKept = tt.ignoreKept
			args := append([]string{"audit", "verify", "--checkpoint", kept, "--data-dir", dataDir}, tt.args...)
			code, stdout, stderr := run(t, args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) || strings.Contains(stdout, "consistent with") {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want it to contain %q)", code, tt.wantCode, stdout, stderr, tt.wantErr)
			}
		})
	}
}

// TestAuditVerifyKeptCheckpointOffline: with no host running, verify
// --checkpoint DIR --key KEY reads the stored log and catches a data
// directory rolled back past the newest kept checkpoint.
func TestAuditVerifyKeptCheckpointOffline(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dataDir, keptDir := filepath.Join(base, "data"), filepath.Join(t.TempDir(), "kept")
	cfg, err := config.Parse("test.yaml", []byte("version: 1\ntrust_domain: test.local\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen.Address = "127.0.0.1:0" // any free port
	cfg.Audit.CheckpointDir = keptDir
	// A host creates the data directory, its key and store.
	hctx, stop := context.WithCancel(ctx)
	h, err := host.New(hctx, host.Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(hctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	keyData, err := os.ReadFile(filepath.Join(dataDir, "audit", "verifier.key"))
	if err != nil {
		t.Fatal(err)
	}
	pinned := strings.TrimSpace(string(keyData))
	// Records written by the log with the host's key, its checkpoints kept
	// in the checkpoint directory as the host keeps them.
	write := func(reasons ...string) {
		skey, err := os.ReadFile(filepath.Join(dataDir, "audit", "signing.key"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := audit.NewSigner(strings.TrimSpace(string(skey)))
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dataDir, "agenthost.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		dir, err := audit.NewCheckpointDir(keptDir)
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(ctx, audit.Config{Log: st, Signer: s, CheckpointInterval: -1,
			Publish: func(_ context.Context, _ *audit.Log, cp []byte) {
				if err := dir.Write(cp); err != nil {
					t.Error(err)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reasons {
			if _, err := l.Append(ctx, audit.Record{Action: audit.ActionRemediation, Reason: r}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	write("one", "two", "three")
	snapshot, err := os.ReadFile(filepath.Join(dataDir, "agenthost.db"))
	if err != nil {
		t.Fatal(err)
	}
	write("four", "five")

	code, stdout, stderr := run(t, "audit", "verify", "--key", pinned, "--checkpoint", keptDir, "--data-dir", dataDir)
	if code != 0 || !strings.Contains(stdout, "verified 5 records") || !strings.Contains(stdout, "consistent with the kept checkpoint of 5 records") {
		t.Fatalf("intact: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// The store rolled back to before the last two records.
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(filepath.Join(dataDir, "agenthost.db"+suffix))
	}
	if err := os.WriteFile(filepath.Join(dataDir, "agenthost.db"), snapshot, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "audit", "verify", "--key", pinned, "--data-dir", dataDir); code != 0 {
		t.Fatalf("the rolled back store alone: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "audit", "verify", "--key", pinned, "--checkpoint", keptDir, "--data-dir", dataDir)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "the kept checkpoint covers 5 records but the log holds 3: the log was rolled back") {
		t.Fatalf("rolled back: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
