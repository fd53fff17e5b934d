package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// testMCPHostEnv makes the test binary a host (see TestMain): the value is
// its data directory. The host serves notes/add on /mcp/notes to the
// client "pep" (secret "pep-secret") and prints its issuer URL on stdout.
const testMCPHostEnv = "AGENTHOST_HOST_TEST_MCP_HOST"

// notesNamespace is where the built-in notes tools keep notes.
const notesNamespace = "tool.notes"

// runMCPHost is the host process of TestMCPAuditSurvivesKill. It runs
// until it is killed.
func runMCPHost(dataDir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "mcp host:", err)
		return 1
	}
	cfg, err := config.Parse("crash.yaml", []byte("version: 1\ntrust_domain: test.local\n"))
	if err != nil {
		return fail(err)
	}
	hash, err := userauth.HashPassword("pep-secret")
	if err != nil {
		return fail(err)
	}
	cfg.Listen.Address = "127.0.0.1:0"
	cfg.Auth.Clients = []config.ClientConfig{{ID: "pep", AuthMethod: config.AuthMethodClientSecretPost, SecretHash: hash,
		GrantTypes: []config.GrantType{config.GrantClientCredentials}, Scopes: []string{"notes:write"}}}
	cfg.MCP.Servers = []config.MCPServerConfig{{Name: "notes", Tools: []string{"notes/add"}}}
	ctx := context.Background()
	h, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard, Version: "test"})
	if err != nil {
		return fail(err)
	}
	fmt.Println(h.Issuer())
	if err := h.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// noteArgs are the arguments of the n-th notes/add call: each note's text
// is its own, so its digest names one call.
func noteArgs(text string) []byte {
	b, _ := json.Marshal(map[string]string{"text": text})
	return b
}

// TestMCPAuditSurvivesKill: a host process under a load of notes/add
// calls over MCP (streamable HTTP, bearer token) is killed with SIGKILL
// mid-load. In the store it leaves, every stored note has a durable allow
// decision for its call in the audit log: no tool ran before its decision
// was recorded.
func TestMCPAuditSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a host process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testMCPHostEnv+"="+dataDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	issuerc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		issuerc <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var issuer string
	select {
	case issuer = <-issuerc:
	case <-exited:
		t.Fatalf("the host exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the host did not start: %s", stderr.String())
	}
	if !strings.HasPrefix(issuer, "http://") {
		t.Fatalf("host printed %q: %s", issuer, stderr.String())
	}
	endpoint := issuer + "/mcp/notes"
	token := clientToken(t, issuer, endpoint, "notes:write")

	// Load: workers add notes until the host is gone.
	const workers = 16
	const killAfter = 300 // answered calls before the kill
	var next, answered, inFlight atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				args := noteArgs(fmt.Sprintf("note %d", n))
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"add","arguments":%s}}`, n, args)
				req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
				req.Header.Set("Authorization", "Bearer "+token)
				inFlight.Add(1)
				resp, err := client.Do(req)
				inFlight.Add(-1)
				if err != nil {
					return // the host is gone
				}
				out, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					return // the host is gone
				}
				if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`saved`)) {
					t.Errorf("notes/add %d: %d %s", n, resp.StatusCode, out)
					return
				}
				if answered.Add(1) == killAfter {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Errorf("only %d calls answered in 60s", answered.Load())
	}
	pending := inFlight.Load()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if pending == 0 {
		t.Fatal("no call was in flight when the host was killed")
	}

	// What the killed host left behind.
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(dataDir, dbFileName)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	decided := map[string]bool{} // args digest of every allowed notes/add
	decisions, outcomes := 0, 0
	for from := int64(0); ; {
		es, err := audit.Read(ctx, st, from, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			r := e.Record
			if r.Action != "mcp.tools.call" || r.Resource != "notes/add" || r.Decision != audit.DecisionAllow {
				continue
			}
			decided[r.ArgsSHA256] = true
			if r.Outcome == "" {
				decisions++
			} else {
				outcomes++
			}
		}
		if len(es) < store.MaxLimit {
			break
		}
		from = es[len(es)-1].Index + 1
	}
	notes, unaudited := 0, 0
	for after := ""; ; {
		recs, err := st.List(ctx, notesNamespace, "", after, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			var n struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(rec.Value, &n); err != nil {
				t.Fatalf("note %s: %v", rec.Key, err)
			}
			notes++
			sum := sha256.Sum256(noteArgs(n.Text))
			if !decided[hex.EncodeToString(sum[:])] {
				unaudited++
				if unaudited <= 5 {
					t.Errorf("note %q (%s) is stored without a decision record", n.Text, rec.Key)
				}
			}
		}
		if len(recs) < store.MaxLimit {
			break
		}
		after = recs[len(recs)-1].Key
	}
	t.Logf("killed with %d calls in flight after %d answered: %d notes stored, %d decision records (%d outcome records) for notes/add, %d notes without a decision record",
		pending, answered.Load(), notes, decisions, outcomes, unaudited)
	if notes < killAfter {
		t.Fatalf("%d notes stored, want at least the %d answered", notes, killAfter)
	}
	if unaudited > 0 {
		t.Fatalf("%d of %d stored notes have no decision record in the audit log", unaudited, notes)
	}
}
