package host

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"

	"github.com/agenthost/agenthost/runtime/audit"
)

// TestAlteredAuditLog: a record edited in the database while the host is
// down is found by the offline verification, which names its index; a host
// started on the altered log still reports it.
func TestAlteredAuditLog(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(t)
	runCtx, stop := context.WithCancel(ctx)
	h, err := New(runCtx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	for _, reason := range []string{"first", "second", "third"} {
		if err := h.audit.Append(ctx, audit.Record{Action: audit.ActionRemediation, Reason: reason, Cause: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	stop() // the host signs a final checkpoint as it stops
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir})
	if err != nil || res.Report.Problem != nil || res.Report.Records != 3 || res.Checkpoint == "" {
		t.Fatalf("intact log: %+v, %v", res, err)
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, dbFileName))
	if err != nil {
		t.Fatal(err)
	}
	r, err := db.Exec(`UPDATE log_entries SET data = replace(data, 'second', 'secant') WHERE log = ? AND idx = 1`, audit.RecordsLog)
	if n, _ := r.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("tamper: %v (%d rows)", err, n)
	}
	db.Close()

	res, err = VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dataDir})
	if err != nil || res.Report.Problem == nil || res.Report.Problem.Kind != audit.ProblemRecord || res.Report.Problem.Index != 1 {
		t.Fatalf("altered log: %+v, %v", res.Report, err)
	}
	// A host started on it keeps committing to the original hashes, so the
	// edit stays visible to verification online as well.
	h = runHost(t, cfg, dataDir)
	if err := h.audit.Append(ctx, audit.Record{Action: audit.ActionRemediation, Reason: "fourth", Cause: "test"}); err != nil {
		t.Fatal(err)
	}
	online, err := h.AuditVerify(ctx)
	if err != nil || online.Report.Problem == nil || online.Report.Problem.Index != 1 {
		t.Fatalf("online verification after the edit: %+v, %v", online.Report, err)
	}
}
