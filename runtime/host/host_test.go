package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/runtime/config"
)

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte("version: 1\ntrust_domain: test.local\n"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Listen.Address = "127.0.0.1:0" // any free port
	return cfg
}

// startHost runs a host on dataDir and returns its base URL and a stop
// function that waits for Run to return and reports its error.
func startHost(t *testing.T, dataDir string) (string, func() error) {
	t.Helper()
	return startHostAt(t, dataDir, testConfig(t))
}

// startHostWith runs a host on cfg in a fresh data directory.
func startHostWith(t *testing.T, cfg *config.Config) (string, func() error) {
	t.Helper()
	return startHostAt(t, filepath.Join(t.TempDir(), "data"), cfg)
}

func startHostAt(t *testing.T, dataDir string, cfg *config.Config) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := New(ctx, Options{Config: cfg, DataDir: dataDir, Stderr: io.Discard, Version: "test"})
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("host did not stop within 5s")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + h.Addr(), stop
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	var lastErr error
	for range 50 { // the listener is bound before Run, so this succeeds at once
		resp, err := http.Get(url)
		if err != nil {
			lastErr = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return 0, nil
}

func TestHostServesHealthAndBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, stop := startHost(t, dir)

	code, body := get(t, base+PathHealth)
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"status":"ok"`)) {
		t.Fatalf("healthz = %d %s", code, body)
	}
	code, body = get(t, base+PathSPIFFEBundle)
	if code != http.StatusOK {
		t.Fatalf("bundle = %d %s", code, body)
	}
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("test.local"), body)
	if err != nil {
		t.Fatalf("parse bundle: %v", err)
	}
	if len(b.X509Authorities()) == 0 || len(b.JWTAuthorities()) == 0 {
		t.Fatalf("bundle has %d x509 and %d jwt authorities", len(b.X509Authorities()), len(b.JWTAuthorities()))
	}

	info, err := ReadRunInfo(dir)
	if err != nil || info.PID != os.Getpid() || info.TrustDomain != "test.local" {
		t.Fatalf("ReadRunInfo = %+v, %v", info, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode = %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, caDirName, caJournalName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode = %v, %v", fi, err)
	}

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if _, err := ReadRunInfo(dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after stop ReadRunInfo error = %v, want ErrNotRunning", err)
	}
	if socks := dataDirSockets(t, dir); len(socks) != 0 {
		t.Fatalf("sockets left behind: %q", socks)
	}
}

func TestHostRestartKeepsTrustDomain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base, stop := startHost(t, dir)
	_, first := get(t, base+PathSPIFFEBundle)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, stop = startHost(t, dir)
	_, second := get(t, base+PathSPIFFEBundle)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString("test.local")
	b1, err1 := spiffebundle.Parse(td, first)
	b2, err2 := spiffebundle.Parse(td, second)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse: %v %v", err1, err2)
	}
	if !b1.X509Bundle().Equal(b2.X509Bundle()) || !b1.JWTBundle().Equal(b2.JWTBundle()) {
		t.Fatal("restart changed the trust domain's authorities")
	}
}

func TestHostRefusesBadDataDir(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		wantErr string
	}{
		{
			name: "a file, not a directory",
			setup: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: "is not a directory",
		},
		{
			name: "group and world readable",
			setup: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "open")
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: "must be accessible by its owner only",
		},
		{
			name: "corrupt CA journal",
			setup: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "data")
				if err := os.MkdirAll(filepath.Join(p, caDirName), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, caDirName, caJournalName), []byte("{not json"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: "journal",
		},
		{
			name: "store file that is not a database",
			setup: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "data")
				if err := os.MkdirAll(p, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, dbFileName), []byte("important notes, not SQLite\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: "file is not a database",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t)
			before := snapshot(t, dir)
			_, err := New(context.Background(), Options{Config: testConfig(t), DataDir: dir, Stderr: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to mention %q", err, tt.wantErr)
			}
			// Nothing that was there before is lost or changed.
			after := snapshot(t, dir)
			for path, content := range before {
				if after[path] != content {
					t.Errorf("%s changed by a failed start", path)
				}
			}
		})
	}
}

func TestSecondHostOnSameDataDirIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startHost(t, dir)
	_, err := New(context.Background(), Options{Config: testConfig(t), DataDir: dir, Stderr: io.Discard})
	if !errors.Is(err, ErrHostRunning) {
		t.Fatalf("second New error = %v, want ErrHostRunning", err)
	}
}

func TestNonLoopbackWithoutTLSIsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Listen.Address = "0.0.0.0:0"
	_, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "d"), Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "without TLS") {
		t.Fatalf("New error = %v, want a refusal to listen without TLS", err)
	}
}

// snapshot maps each regular file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			out[path] = string(b)
		}
		return nil
	})
	return out
}

// runHost runs a host on cfg and dataDir until the test ends, then checks
// that it stopped cleanly.
func runHost(t testing.TB, cfg *config.Config, dataDir string) *Host {
	t.Helper()
	return runHostWith(t, Options{Config: cfg, DataDir: dataDir})
}

// runHostWith is runHost with options (Stderr is discarded).
func runHostWith(t testing.TB, opts Options) *Host {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	opts.Stderr = io.Discard
	h, err := New(ctx, opts)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}
