package workloadapi

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRotationDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	tests := []struct {
		name      string
		now       time.Time
		notBefore time.Time
		notAfter  time.Time
		want      bool
	}{
		{"fresh", start, start, end, false},
		{"just before half", start.Add(30*time.Minute - time.Nanosecond), start, end, false},
		{"at half", start.Add(30 * time.Minute), start, end, true},
		{"after half", start.Add(45 * time.Minute), start, end, true},
		{"expired", end.Add(time.Second), start, end, true},
		{"before not-before", start.Add(-time.Hour), start, end, false},
		{"empty window", start, start, start, true},
		{"inverted window", start, end, start, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rotationDue(tt.now, tt.notBefore, tt.notAfter); got != tt.want {
				t.Errorf("rotationDue = %v, want %v", got, tt.want)
			}
		})
	}
}

// staleSocket leaves a socket file at path that nothing listens on.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

func TestListenSocket(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the directory and returns the socket path.
		setup   func(t *testing.T, dir string) string
		wantErr error // nil: success
		anyErr  bool  // an error without a sentinel
		// after checks the path after the call.
		after func(t *testing.T, path string)
	}{
		{
			name:  "new socket",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "a.sock") },
		},
		{
			name: "stale socket replaced",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.sock")
				staleSocket(t, p)
				return p
			},
		},
		{
			name: "live socket refused",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.sock")
				ln, err := net.Listen("unix", p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return p
			},
			wantErr: ErrSocketInUse,
		},
		{
			name: "regular file refused and kept",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.sock")
				if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrNotSocket,
			after: func(t *testing.T, path string) {
				b, err := os.ReadFile(path)
				if err != nil || string(b) != "keep me" {
					t.Errorf("regular file changed: %q, %v", b, err)
				}
			},
		},
		{
			name: "directory at path refused",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.sock")
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrNotSocket,
		},
		{
			name: "group-readable directory refused",
			setup: func(t *testing.T, dir string) string {
				sub := filepath.Join(dir, "open")
				if err := os.Mkdir(sub, 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(sub, 0o750); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(sub, "a.sock")
			},
			wantErr: ErrInsecureSocketDir,
		},
		{
			name: "world-writable directory refused",
			setup: func(t *testing.T, dir string) string {
				sub := filepath.Join(dir, "open")
				if err := os.Mkdir(sub, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(sub, 0o703); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(sub, "a.sock")
			},
			wantErr: ErrInsecureSocketDir,
		},
		{
			name: "stricter directory accepted",
			setup: func(t *testing.T, dir string) string {
				sub := filepath.Join(dir, "strict")
				if err := os.Mkdir(sub, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(sub, 0o300); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(sub, 0o700) })
				return filepath.Join(sub, "a.sock")
			},
		},
		{
			name: "symlinked directory refused",
			setup: func(t *testing.T, dir string) string {
				real := filepath.Join(dir, "real")
				if err := os.Mkdir(real, 0o700); err != nil {
					t.Fatal(err)
				}
				link := filepath.Join(dir, "link")
				if err := os.Symlink(real, link); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(link, "a.sock")
			},
			wantErr: ErrInsecureSocketDir,
		},
		{
			name:    "missing directory",
			setup:   func(t *testing.T, dir string) string { return filepath.Join(dir, "missing", "a.sock") },
			wantErr: fs.ErrNotExist,
		},
		{
			name:   "relative path",
			setup:  func(t *testing.T, dir string) string { return "a.sock" },
			anyErr: true,
		},
		{
			name:   "empty path",
			setup:  func(t *testing.T, dir string) string { return "" },
			anyErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, privateDir(t))
			ln, err := listenSocket(path)
			if ln != nil {
				defer ln.Close()
			}
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("listenSocket error = %v, want %v", err, tt.wantErr)
				}
			case tt.anyErr:
				if err == nil {
					t.Fatal("listenSocket succeeded, want an error")
				}
			default:
				if err != nil {
					t.Fatalf("listenSocket: %v", err)
				}
				fi, err := os.Lstat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
					t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
				}
				conn, err := net.Dial("unix", path)
				if err != nil {
					t.Fatalf("dial new socket: %v", err)
				}
				conn.Close()
			}
			if tt.after != nil {
				tt.after(t, path)
			}
		})
	}
}
