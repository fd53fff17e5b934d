package host

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

// multiHostConfig is the configuration two hosts share: one PostgreSQL
// database (a DSN in an environment variable) and one audit signing key
// (in another), checkpoints every 25 records.
func multiHostConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	t.Setenv("AGENTHOST_TEST_MULTIHOST_DSN", pgtest.NewDatabase(t))
	skey, vkey, err := audit.GenerateKey(rand.Reader, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	exe, _, _ := policyFixture(t, "p.cedar")
	cfg := testConfig(t)
	cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_TEST_MULTIHOST_DSN"}
	cfg.Audit.SigningKeyEnv = "AGENTHOST_TEST_MULTIHOST_AUDIT_KEY"
	t.Setenv(cfg.Audit.SigningKeyEnv, skey)
	cfg.Audit.CheckpointEvery = 25
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}}}
	return cfg, vkey
}

// runAgentHost runs a host on cfg in dataDir and waits for its agent.
func runAgentHost(ctx context.Context, t *testing.T, cfg *config.Config, dataDir string) *Host {
	t.Helper()
	h := runHost(t, cfg, dataDir)
	if _, err := h.sup.WaitFor(ctx, "whoami", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAuditMultiHost: two hosts on one PostgreSQL database, with the same
// audit signing key, under concurrent load on both (tasks, and records
// appended from many goroutines) write one audit log: `audit verify`
// passes from either host and counts every record, every acknowledged
// record is in it once at the index acknowledged, nothing is declared
// unaccounted, and the hosts' records interleave (the database sequenced
// them). A third host started on the database meanwhile finds the log as
// it is, and verifies it too.
func TestAuditMultiHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfg, vkey := multiHostConfig(t)
	dir := t.TempDir()
	hosts := []*Host{
		runAgentHost(ctx, t, cfg, filepath.Join(dir, "data1")),
		runAgentHost(ctx, t, cfg, filepath.Join(dir, "data2")),
	}
	for i, h := range hosts {
		if h.audit.vkey != vkey {
			t.Fatalf("host %d: verifier key %s, want the shared %s", i+1, h.audit.vkey, vkey)
		}
	}

	const writers, each, tasks = 4, 50, 3
	var mu sync.Mutex
	acked := map[string]int64{} // Txn → index
	byHost := map[int64]int{}   // index → host
	var wg sync.WaitGroup
	for hi, h := range hosts {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					txn := fmt.Sprintf("host%d-w%d-%d", hi+1, w, i)
					idx, err := h.audit.log.Append(ctx, audit.Record{Agent: "load", Action: audit.ActionToolCall, Resource: "load/append",
						Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK, Txn: txn})
					if err != nil {
						t.Errorf("host %d: append %s: %v", hi+1, txn, err)
						return
					}
					mu.Lock()
					acked[txn], byHost[idx] = idx, hi+1
					mu.Unlock()
				}
			}()
		}
		for k := range tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, failure, err := taskAnswer(ctx, h, "whoami", "who am i"); err != nil || failure != "" {
					t.Errorf("host %d: task %d: %q %v", hi+1, k, failure, err)
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// A third host starts on the database the two are writing.
	third := runAgentHost(ctx, t, cfg, filepath.Join(dir, "data3"))
	hosts = append(hosts, third)

	for i, h := range hosts {
		if err := h.audit.log.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := h.AuditVerify(ctx)
		if err != nil || res.Report.Problem != nil || res.Report.Uncovered != nil {
			t.Fatalf("audit verify on host %d: %+v, %v", i+1, res.Report, err)
		}
		size, err := h.store.Len(ctx, audit.RecordsLog)
		if err != nil {
			t.Fatal(err)
		}
		if res.Report.Records != res.Report.Size || res.Report.Covered != res.Report.Records || res.Report.Records < int64(len(acked)) ||
			res.Report.Records > size {
			t.Errorf("audit verify on host %d: %d records, %d covered, of %d in the store; %d appended directly",
				i+1, res.Report.Records, res.Report.Covered, size, len(acked))
		}
		if tree, err := audit.OpenCheckpoint([]byte(res.Checkpoint), mustVerifier(t, vkey)); err != nil || tree.N < int64(len(acked)) {
			t.Errorf("host %d: the checkpoint of audit verify: %+v, %v", i+1, tree, err)
		}
		t.Logf("host %d: audit verify: %d records, %d checkpoints", i+1, res.Report.Records, res.Report.Checkpoints)
	}

	// Every acknowledged record once, at its index; nothing unaccounted.
	es, err := audit.Read(ctx, third.store, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, e := range es {
		if e.Record.Action == audit.ActionUnaccounted {
			t.Errorf("record %d declares records unaccounted: %s", e.Index, e.Record.Reason)
		}
		if idx, ok := acked[e.Record.Txn]; ok {
			found[e.Record.Txn]++
			if idx != e.Index {
				t.Errorf("record %s at %d, acknowledged at %d", e.Record.Txn, e.Index, idx)
			}
		}
	}
	for txn := range acked {
		if found[txn] != 1 {
			t.Errorf("record %s is in the log %d times", txn, found[txn])
		}
	}
	// The two hosts' records interleave: neither wrote all of its own
	// before the other.
	switches := 0
	last := 0
	for _, e := range es {
		if hi := byHost[e.Index]; hi != 0 {
			if last != 0 && hi != last {
				switches++
			}
			last = hi
		}
	}
	if switches < 2 {
		t.Errorf("the hosts' records switch %d times in the log: not concurrent", switches)
	}
	t.Logf("%d records, %d appended directly; the hosts' records switch %d times", len(es), len(acked), switches)
}

// mustVerifier parses a verifier key.
func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := audit.ParseVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
