package attest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var fixedTime = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

func fixedClock() time.Time { return fixedTime }

// wantEvidenceFor describes the file at path as Collect should, for a
// process pid running it.
func wantEvidenceFor(t *testing.T, path string, pid int) Evidence {
	t.Helper()
	sum, err := HashFile(context.Background(), path)
	if err != nil {
		t.Fatalf("HashFile(%s): %v", path, err)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return Evidence{
		Path:        resolved,
		SHA256:      sum,
		PID:         pid,
		UID:         os.Geteuid(),
		GID:         os.Getegid(),
		CollectedAt: fixedTime,
		Size:        fi.Size(),
		ModTime:     fi.ModTime().UTC(),
	}
}

func TestCollectSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want := wantEvidenceFor(t, self, os.Getpid())
	want.ConfigDigest = "00ff00ff"
	c := New(Config{Now: fixedClock})
	got, err := c.Collect(context.Background(), Request{
		PID:            os.Getpid(),
		ExpectedSHA256: strings.ToUpper(want.SHA256),
		ConfigDigest:   "00FF00ff",
	})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Collect (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestCollectChild(t *testing.T) {
	dir := t.TempDir()
	path := copyTestBinary(t, dir, "plugin", "child marker")
	ch := startChild(t, path)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	selfSum, err := HashFile(context.Background(), self)
	if err != nil {
		t.Fatal(err)
	}
	want := wantEvidenceFor(t, path, ch.pid())
	if want.SHA256 == selfSum {
		t.Fatal("the copy has the digest of the test binary; the marker was not appended")
	}

	tests := []struct {
		name     string
		expected string
		wantErr  error
	}{
		{name: "no expected digest"},
		{name: "expected digest matches", expected: want.SHA256},
		{name: "expected digest differs", expected: selfSum, wantErr: ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Now: fixedClock})
			got, err := c.Collect(context.Background(), Request{PID: ch.pid(), ExpectedSHA256: tt.expected})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Collect error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				for _, d := range []string{want.SHA256, selfSum} {
					if !strings.Contains(err.Error(), d) {
						t.Errorf("Collect error %q does not name digest %s", err, d)
					}
				}
			}
			// On a mismatch the evidence is still returned whole.
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Collect (-want +got):\n%s", diff)
			}
		})
	}
}

// A binary replaced on disk after launch: the running image is hashed, the
// digest of the new file on disk is a mismatch, and the evidence says the
// running image has no name any more.
func TestCollectReplacedBinary(t *testing.T) {
	dir := t.TempDir()
	path := copyTestBinary(t, dir, "plugin", "original")
	launched := wantEvidenceFor(t, path, 0)
	ch := startChild(t, path)
	launched.PID = ch.pid()
	launched.Unlinked = true

	replacement := copyTestBinary(t, dir, "replacement", "replacement")
	if err := os.Rename(replacement, path); err != nil {
		t.Fatalf("rename over the running binary: %v", err)
	}
	onDisk, err := HashFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}

	c := New(Config{Now: fixedClock})
	got, err := c.Collect(context.Background(), Request{PID: ch.pid(), ExpectedSHA256: onDisk})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Collect = %v, want ErrDigestMismatch", err)
	}
	if diff := cmp.Diff(launched, got); diff != "" {
		t.Errorf("Collect (-want +got):\n%s", diff)
	}
	if err := Verify(got, Policy{SHA256: onDisk}); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Verify against the new file = %v, want ErrDigestMismatch", err)
	}
}

// pidMax returns the kernel's pid_max: pids are always smaller.
func pidMax(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatalf("read pid_max: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("parse pid_max: %v", err)
	}
	return n
}

func TestCollectNoProcess(t *testing.T) {
	tests := []struct {
		name string
		pid  int
	}{
		{name: "pid_max", pid: pidMax(t)},
		{name: "above any pid_max", pid: 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Collect(context.Background(), Request{PID: tt.pid})
			if !errors.Is(err, ErrNoProcess) {
				t.Fatalf("Collect = %v, want ErrNoProcess", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", tt.pid)) {
				t.Errorf("Collect error %q does not name the pid", err)
			}
			if ev != (Evidence{}) {
				t.Errorf("Collect returned evidence %+v with an error", ev)
			}
		})
	}
}

// A child that has exited but is not reaped yet is a zombie: it runs no
// program, so there is nothing to attest.
func TestCollectZombie(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+modeExit)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	// Wait for the exit without reaping, so the pid stays a zombie.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			if err != nil {
				t.Fatalf("waitid: %v", err)
			}
			break
		}
	}
	_, err = Collect(context.Background(), Request{PID: cmd.Process.Pid})
	if !errors.Is(err, ErrProcessExited) {
		t.Fatalf("Collect = %v, want ErrProcessExited", err)
	}
}

// A process that exits after its executable was hashed yields no evidence.
func TestCollectExitDuringCollection(t *testing.T) {
	path := copyTestBinary(t, t.TempDir(), "plugin", "exiting")
	ch := startChild(t, path)
	c := New(Config{})
	c.afterHash = ch.kill
	ev, err := c.Collect(context.Background(), Request{PID: ch.pid()})
	if !errors.Is(err, ErrProcessExited) {
		t.Fatalf("Collect = %v, want ErrProcessExited", err)
	}
	if ev != (Evidence{}) {
		t.Errorf("Collect returned evidence %+v with an error", ev)
	}
}

// Another user's process: its executable cannot be read. Run as root, the
// test starts a copy of itself as an unprivileged user that collects
// evidence about this (root) process.
func TestCollectPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		fi, err := os.Stat("/proc/1")
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) == os.Geteuid() {
			t.Skip("needs root, or a pid 1 owned by another user")
		}
		_, err = Collect(context.Background(), Request{PID: 1})
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("Collect(pid 1) = %v, want fs.ErrPermission", err)
		}
		return
	}
	const nobody = 65534
	dir := t.TempDir()
	// The copy must be reachable by the unprivileged user.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := copyTestBinary(t, dir, "collector", "collector")
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), childEnv+"="+modeCollect, childPIDEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.Output()
	if errors.Is(err, fs.ErrPermission) {
		t.Skipf("cannot start a process as uid %d here: %v", nobody, err)
	}
	if err != nil {
		t.Fatalf("run collector as uid %d: %v (output %q)", nobody, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "permission" {
		t.Fatalf("collector as uid %d reported %q, want a permission error", nobody, got)
	}
}

// fakeProc is a directory laid out like the proc filesystem, for cases a
// real process cannot be made to show.
type fakeProc struct {
	root string
	pid  int
	dir  string
}

const fakePID = 4242

// fakeStatus is a status file as the kernel writes it (abridged).
func fakeStatus(state string, tgid, uid, gid int) string {
	return fmt.Sprintf("Name:\tplugin\nUmask:\t0022\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t1\n"+
		"Uid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\nVmPeak:\t    1000 kB\n",
		state, tgid, fakePID, uid+1, uid, uid, uid, gid+1, gid, gid, gid)
}

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	root := t.TempDir()
	p := &fakeProc{root: root, pid: fakePID, dir: filepath.Join(root, strconv.Itoa(fakePID))}
	if err := os.Mkdir(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *fakeProc) writeStatus(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "status"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// linkExe points the exe link at target, replacing any previous link.
func (p *fakeProc) linkExe(t *testing.T, target string) {
	t.Helper()
	link := filepath.Join(p.dir, "exe")
	tmp := link + ".new"
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
}

// binary writes an executable-like file and returns its path.
func (p *fakeProc) binary(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(p.root, name)
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCollectFakeProc(t *testing.T) {
	const abcSum = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	tests := []struct {
		name string
		// setup lays out the fake proc and returns a function to run
		// after hashing, or nil.
		setup   func(t *testing.T, p *fakeProc) func()
		want    func(p *fakeProc) Evidence
		wantErr error
		wantMsg string
	}{
		{
			name: "running process",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				return nil
			},
			want: func(p *fakeProc) Evidence {
				return Evidence{Path: filepath.Join(p.root, "plugin"), SHA256: abcSum, PID: fakePID,
					UID: 1000, GID: 100, CollectedAt: fixedTime, Size: 3}
			},
		},
		{
			name: "thread id",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", 4000, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				return nil
			},
			wantErr: ErrInvalidRequest,
			wantMsg: "pid 4242 is a thread of process 4000",
		},
		{
			name: "zombie",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("Z (zombie)", fakePID, 1000, 100))
				return nil
			},
			wantErr: ErrProcessExited,
			wantMsg: "state Z",
		},
		{
			name: "kernel thread",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("I (idle)", fakePID, 0, 0))
				return nil
			},
			wantErr: ErrNoExecutable,
			wantMsg: "no such file or directory",
		},
		{
			name:    "no status file",
			setup:   func(t *testing.T, p *fakeProc) func() { return nil },
			wantErr: ErrProcessExited,
			wantMsg: "status is gone",
		},
		{
			name: "executable is a directory",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("R (running)", fakePID, 1000, 100))
				p.linkExe(t, p.root)
				return nil
			},
			wantErr: ErrNotRegular,
			wantMsg: "is a directory",
		},
		{
			name: "executable is a named pipe",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("R (running)", fakePID, 1000, 100))
				fifo := filepath.Join(p.root, "fifo")
				if err := unix.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
				p.linkExe(t, fifo)
				return nil
			},
			wantErr: ErrNotRegular,
			wantMsg: "is a named pipe",
		},
		{
			name: "status without Uid",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, "State:\tS (sleeping)\nTgid:\t4242\nGid:\t1\t1\t1\t1\n")
				return nil
			},
			wantMsg: "no Uid line",
		},
		{
			name: "Gid not a number",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, "State:\tS (sleeping)\nTgid:\t4242\nUid:\t1\t1\t1\t1\nGid:\t1\tx\t1\t1\n")
				return nil
			},
			wantMsg: `Gid value "x" is not a 32-bit unsigned integer`,
		},
		{
			name: "Uid with three fields",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, "State:\tS (sleeping)\nTgid:\t4242\nUid:\t1\t1\t1\nGid:\t1\t1\t1\t1\n")
				return nil
			},
			wantMsg: "has 3 fields, want 4",
		},
		{
			name: "uid beyond 32 bits",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, "State:\tS (sleeping)\nTgid:\t4242\nUid:\t1\t4294967296\t1\t1\nGid:\t1\t1\t1\t1\n")
				return nil
			},
			wantMsg: `Uid value "4294967296" is not a 32-bit unsigned integer`,
		},
		{
			name: "two State lines",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1, 1)+"State:\tR (running)\n")
				return nil
			},
			wantMsg: "more than one State line",
		},
		{
			name: "status too long",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1, 1)+strings.Repeat("x", maxStatusSize))
				return nil
			},
			wantMsg: "longer than 65536 bytes",
		},
		{
			name: "uid changes during collection",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				return func() { p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 0, 100)) }
			},
			wantErr: ErrProcessChanged,
			wantMsg: "changed from uid 1000 gid 100 to uid 0 gid 100",
		},
		{
			name: "another program executed during collection",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				other := p.binary(t, "other", "xyz")
				return func() { p.linkExe(t, other) }
			},
			wantErr: ErrProcessChanged,
			wantMsg: "executed another program",
		},
		{
			name: "exits during collection",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				return func() {
					if err := os.Remove(filepath.Join(p.dir, "status")); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantErr: ErrProcessExited,
		},
		{
			name: "becomes a zombie during collection",
			setup: func(t *testing.T, p *fakeProc) func() {
				p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1000, 100))
				p.linkExe(t, p.binary(t, "plugin", "abc"))
				return func() { p.writeStatus(t, fakeStatus("Z (zombie)", fakePID, 1000, 100)) }
			},
			wantErr: ErrProcessExited,
			wantMsg: "entered state Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeProc(t)
			hook := tt.setup(t, p)
			c := New(Config{ProcRoot: p.root, Now: fixedClock})
			c.afterHash = hook
			got, err := c.Collect(context.Background(), Request{PID: p.pid})
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Collect: %v", err)
				}
				want := tt.want(p)
				fi, err := os.Stat(want.Path)
				if err != nil {
					t.Fatal(err)
				}
				want.ModTime = fi.ModTime().UTC()
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Collect (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("Collect = %+v, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Collect = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Collect error %q does not contain %q", err, tt.wantMsg)
			}
			if got != (Evidence{}) {
				t.Errorf("Collect returned evidence %+v with an error", got)
			}
		})
	}
}

// A file whose content does not match its size (as proc files report size
// zero) cannot be given one digest.
func TestHashFileSizeMismatch(t *testing.T) {
	_, err := HashFile(context.Background(), "/proc/self/status")
	if !errors.Is(err, ErrModified) {
		t.Fatalf("HashFile(/proc/self/status) = %v, want ErrModified", err)
	}
}

// The exe link is followed by Collect even when it is long.
func TestReadExeLinkLong(t *testing.T) {
	p := newFakeProc(t)
	p.writeStatus(t, fakeStatus("S (sleeping)", fakePID, 1, 1))
	long := p.root
	for len(long) < 600 {
		long = filepath.Join(long, strings.Repeat("d", 50))
	}
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(long, "plugin")
	if err := os.WriteFile(target, []byte("abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.linkExe(t, target)
	got, err := New(Config{ProcRoot: p.root}).Collect(context.Background(), Request{PID: p.pid})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if got.Path != target {
		t.Errorf("Path = %q, want %q", got.Path, target)
	}
}
