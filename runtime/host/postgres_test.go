package host

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
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

// TestHostDatabaseOutage: while the host's PostgreSQL database cannot be
// reached, /healthz and the token endpoint answer 503 (the token endpoint
// with temporarily_unavailable, never a 500 with internals); when it is
// back, they work again without a restart.
func TestHostDatabaseOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, proxy := proxiedHost(t)
	base := "http://" + h.Addr()
	token := func() (int, string) {
		resp, err := http.PostForm(h.Issuer()+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {"pep"}, "client_secret": {"pep-secret"}, "resource": {h.pdpResource()}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	health := func() int {
		resp, err := http.Get(base + PathHealth)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st, body := token(); st != http.StatusOK {
		t.Fatalf("token before the outage: %d %s", st, body)
	}
	proxy.Cut()
	if st := health(); st != http.StatusServiceUnavailable {
		t.Errorf("healthz during the outage: %d", st)
	}
	st, body := token()
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || strings.Contains(body, "pgstore") {
		t.Errorf("token during the outage: %d %s", st, body)
	}
	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, _ := token(); st == http.StatusOK && health() == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatal("the host did not recover after the database came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestHostDatabaseOutageLosesNothing: tokens are issued under load while
// the database goes away and comes back; every token the host handed out
// (acknowledged) has its audit record, and the log verifies.
func TestHostDatabaseOutageLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, proxy := proxiedHost(t)
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		refused  int
		statuses = map[int]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.PostForm(h.Issuer()+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
					"client_id": {"pep"}, "client_secret": {"pep-secret"}, "resource": {h.pdpResource()}})
				if err != nil {
					continue
				}
				var out struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					acked[jtiOf(t, out.AccessToken)] = true
				} else {
					refused++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	// Longer than the store retries for. The host sees the outage.
	proxy.Cut()
	time.Sleep(500 * time.Millisecond)
	if resp, err := http.Get("http://" + h.Addr() + PathHealth); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz during the outage: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	time.Sleep(2500 * time.Millisecond)
	proxy.Restore()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("token requests by status: %v", statuses)
	if len(acked) == 0 {
		t.Fatalf("no token was handed out (%d refused)", refused)
	}
	if statuses[http.StatusInternalServerError] != 0 {
		t.Errorf("%d requests got 500 during the outage", statuses[http.StatusInternalServerError])
	}
	entries, err := h.AuditRead(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, e := range entries {
		if e.Record.Action == audit.ActionTokenIssue && e.Record.TokenJTI != "" {
			recorded[e.Record.TokenJTI] = true
		}
	}
	for jti := range acked {
		if !recorded[jti] {
			t.Errorf("token %s was handed out without its audit record", jti)
		}
	}
	v, err := h.AuditVerify(ctx)
	if err != nil || v.Report.Problem != nil {
		t.Fatalf("audit verify after the outage: %+v, %v", v.Report, err)
	}
}

// jtiOf is the jti of a JWT, read without verifying it.
func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("no jti in %s", b)
	}
	return c.ID
}

// proxiedHost runs a host on a PostgreSQL database of its own reached
// through a proxy the test can cut, with the client "pep" (secret
// "pep-secret", client_credentials for the AuthZEN resource).
func proxiedHost(t *testing.T) (*Host, *pgtest.Proxy) {
	t.Helper()
	proxy, dsn := pgtest.NewProxy(t, pgtest.NewDatabase(t))
	t.Setenv("AGENTHOST_TEST_HOST_DSN", dsn)
	cfg := testConfig(t)
	cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_TEST_HOST_DSN"}
	addPEP(t, cfg, ScopeAuthZEN)
	cfg.Policy.ServeAuthZEN = true
	return runHost(t, cfg, filepath.Join(t.TempDir(), "data")), proxy
}

// TestVerifyAuditOfflineOnPostgres: with no host running on the data
// directory, the audit log in PostgreSQL verifies (pinned to the host's
// key), while another host may still be running on the database.
func TestVerifyAuditOfflineOnPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := pgtest.NewDatabase(t)
	t.Setenv("AGENTHOST_TEST_HOST_DSN", dsn)
	cfg := testConfig(t)
	cfg.Storage = config.StorageConfig{Driver: config.DriverPostgres, DSNEnv: "AGENTHOST_TEST_HOST_DSN"}
	dir := filepath.Join(t.TempDir(), "data")
	hctx, stop := context.WithCancel(context.Background())
	h, err := New(hctx, Options{Config: cfg, DataDir: dir, Stderr: io.Discard, Version: "test"})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(hctx) }()
	for i := range 3 {
		if err := h.audit.Append(ctx, audit.Record{Action: "test.record", Resource: fmt.Sprint(i), Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := h.AuditVerify(ctx)
	if err != nil || v.Report.Problem != nil {
		t.Fatalf("online: %+v %v", v.Report, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err := VerifyAuditOffline(ctx, AuditVerifyOptions{DataDir: dir, DSN: dsn, VerifierKey: v.VerifierKey})
	if err != nil || res.Report.Problem != nil || res.Report.Records < 3 {
		t.Fatalf("offline on PostgreSQL: %+v, %v", res.Report, err)
	}
}
