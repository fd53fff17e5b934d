package host

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// TestHostOnPostgres: a host whose storage is PostgreSQL (storage.driver
// postgres, the DSN in an environment variable) runs a task, keeps its
// audit log there (it verifies), reports the database in /healthz, and a
// host started again on the same database finds everything. A DSN that
// does not connect fails the start with a message saying so.
func TestHostOnPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t.Setenv("AGENTHOST_TEST_HOST_DSN", pgtest.NewDatabase(t))
	exe, dir, _ := policyFixture(t, "p.cedar")
	cfg := testConfig(t)
	cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_TEST_HOST_DSN"}
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	start := func() (*Host, func()) {
		hctx, stop := context.WithCancel(context.Background())
		h, err := New(hctx, Options{Config: cfg, DataDir: filepath.Join(dir, "data"), Stderr: io.Discard, Version: "test"})
		if err != nil {
			stop()
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(hctx) }()
		halted := false
		halt := func() {
			if !halted {
				halted = true
				stop()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			}
		}
		t.Cleanup(halt)
		if _, err := h.sup.WaitFor(ctx, "whoami", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
			t.Fatal(err)
		}
		return h, halt
	}
	h, stop := start()
	if _, failure, err := taskAnswer(ctx, h, "whoami", "who am i"); err != nil || failure != "" {
		t.Fatalf("task: %q %v", failure, err)
	}
	resp, err := http.Get("http://" + h.Addr() + PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	before, err := h.AuditRead(ctx, 0, 10000)
	if err != nil || len(before) == 0 {
		t.Fatalf("audit records: %d, %v", len(before), err)
	}
	stop()

	h, _ = start()
	after, err := h.AuditRead(ctx, 0, 10000)
	if err != nil || len(after) < len(before) {
		t.Fatalf("after a restart: %d records (had %d), %v", len(after), len(before), err)
	}
	v, err := h.AuditVerify(ctx)
	if err != nil || v.Report.Problem != nil {
		t.Fatalf("audit verify on PostgreSQL: %+v, %v", v.Report, err)
	}

	// A DSN that does not connect: the start fails, saying so.
	t.Setenv("AGENTHOST_TEST_HOST_DSN", "postgres://postgres@127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=2")
	_, err = New(ctx, Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard, Version: "test"})
	if err == nil || !strings.Contains(err.Error(), "pgstore") {
		t.Fatalf("a DSN that does not connect: %v", err)
	}
	t.Logf("a DSN that does not connect: %v", err)
}
