package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/host"
)

// readyAfter serves a host's /healthz, and a /readyz that says research is
// still starting for the first n asks and ready after. It counts the asks
// of /readyz.
func readyAfter(t *testing.T, n int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var asks atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc(host.PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc(host.PathReady, func(w http.ResponseWriter, _ *http.Request) {
		if asks.Add(1) <= n {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"starting","agents":1,"running":0,"down":0,"starting":[{"agent":"research","state":"starting"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready","agents":1,"running":1,"down":0}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &asks
}

// runContext runs the command line with ctx and returns its standard
// output, standard error and error (not an exit status).
func runContext(ctx context.Context, args ...string) (string, string, error) {
	var stdout, stderr lockedBuffer
	root := newRootWith(&stdout, &stderr, func(io.Writer) bool { return false })
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return stdout.String(), stderr.String(), err
}

func TestStatusWaitBecomesReady(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// later: the host writes its run information only after a while.
		later bool
		check func(t *testing.T, stdout string)
	}{
		{
			name: "text",
			check: func(t *testing.T, stdout string) {
				if !strings.HasSuffix(stdout, "ready         yes (1 of 1 agents running)\n") || strings.Count(stdout, "pid ") != 1 {
					t.Errorf("stdout:\n%s\nwant the status once, ready", stdout)
				}
			},
		},
		{
			name: "json", args: []string{"-o", "json"},
			check: func(t *testing.T, stdout string) {
				var st statusJSON
				if err := json.Unmarshal([]byte(stdout), &st); err != nil || !st.Health.OK || st.Ready == nil || !st.Ready.Ready {
					t.Errorf("stdout %q (%v), want one status object, ready", stdout, err)
				}
			},
		},
		{
			name: "the host starts later", later: true,
			check: func(t *testing.T, stdout string) {
				if !strings.HasSuffix(stdout, "ready         yes (1 of 1 agents running)\n") {
					t.Errorf("stdout:\n%s\nwant the status, ready", stdout)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, asks := readyAfter(t, 3)
			dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL, Address: srv.Listener.Addr().String()})
			if tt.later {
				runFile := filepath.Join(dir, "host.json")
				info, err := os.ReadFile(runFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(runFile); err != nil {
					t.Fatal(err)
				}
				written := make(chan struct{})
				defer func() { <-written }()
				go func() {
					defer close(written)
					time.Sleep(3 * statusPollEvery)
					if err := os.WriteFile(runFile, info, 0o600); err != nil {
						t.Error(err)
					}
				}()
			}
			start := time.Now()
			args := append([]string{"status", "--wait", "10s", "--data-dir", dir}, tt.args...)
			code, stdout, stderr := runCLI(t, nil, nil, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
			}
			if n := asks.Load(); n != 4 {
				t.Errorf("/readyz asked %d times, want 4: until it said ready", n)
			}
			if d := time.Since(start); d < 3*statusPollEvery || d > 5*time.Second {
				t.Errorf("took %v; want about %v (3 polls)", d, 3*statusPollEvery)
			}
			tt.check(t, stdout)
		})
	}
}

func TestStatusWaitTimesOut(t *testing.T) {
	srv, _ := readyAfter(t, 1<<40)
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL, Address: srv.Listener.Addr().String()})
	wantErr := "agenthost: waited 600ms for the host on " + dir +
		" to be ready: not ready: still starting research (starting) (0 of 1 agents running)\n"
	t.Run("text", func(t *testing.T) {
		start := time.Now()
		code, stdout, stderr := runCLI(t, nil, nil, "status", "--wait", "600ms", "--data-dir", dir)
		if code != exitFailure || stderr != wantErr ||
			!strings.HasSuffix(stdout, "ready         no, still starting research (starting) (0 of 1 agents running)\n") {
			t.Fatalf("exit %d, stderr %q (want %q), stdout:\n%s", code, stderr, wantErr, stdout)
		}
		if d := time.Since(start); d < 600*time.Millisecond {
			t.Errorf("gave up after %v, want 600ms", d)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, nil, nil, "status", "--wait", "600ms", "-o", "json", "--data-dir", dir)
		var st statusJSON
		if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Ready == nil || !st.Ready.Known || st.Ready.Ready {
			t.Fatalf("stdout %q (%v), want one status object, not ready", stdout, err)
		}
		if code != exitFailure || stderr != wantErr {
			t.Fatalf("exit %d, stderr %q, want 1 and %q", code, stderr, wantErr)
		}
	})
}

func TestStatusWaitNoHost(t *testing.T) {
	for _, tt := range []struct{ name, dir string }{
		{"no data directory", filepath.Join(t.TempDir(), "none")},
		{"an empty data directory", t.TempDir()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, stdout, stderr := runCLI(t, nil, nil, "status", "--wait", "500ms", "--data-dir", tt.dir)
			want := "agenthost: waited 500ms for a host to be ready on " + tt.dir + ": host: no agenthost is running on this data directory"
			if code != exitFailure || stdout != "" || !strings.HasPrefix(stderr, want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 1, nothing, and %q", code, stdout, stderr, want)
			}
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("gave up after %v, want 500ms", d)
			}
			// Waiting never took the directory's lock: a host starting
			// meanwhile would have found it taken.
			if _, err := os.Stat(filepath.Join(tt.dir, "agenthost.lock")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("lock file: %v, want none", err)
			}
		})
	}
}

func TestStatusWaitCanceled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	stdout, _, err := runContext(ctx, "status", "--wait", "1m", "--data-dir", t.TempDir())
	if !errors.Is(err, context.DeadlineExceeded) || stdout != "" {
		t.Fatalf("error %v, stdout %q; want the context's error and nothing", err, stdout)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v, want soon after the context ended", d)
	}
}

func TestStatusWaitFlag(t *testing.T) {
	code, _, stderr := run(t, "status", "--wait", "-1s", "--data-dir", t.TempDir())
	if code != exitUsage || !strings.Contains(stderr, "--wait must not be negative, got -1s") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	// Without --wait, status answers at once, as before.
	code, _, stderr = run(t, "status", "--data-dir", t.TempDir())
	if code != exitFailure || !strings.Contains(stderr, "no agenthost is running") || strings.Contains(stderr, "waited") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
