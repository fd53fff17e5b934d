package attest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// procTree is a directory laid out like the proc filesystem with a stat
// file per process, for DescendsFrom.
type procTree struct {
	root string
}

func newProcTree(t *testing.T) *procTree {
	t.Helper()
	return &procTree{root: t.TempDir()}
}

// stat writes the stat file of pid as the kernel writes it (abridged).
func (p *procTree) stat(t *testing.T, pid int, comm string, ppid int) {
	t.Helper()
	p.raw(t, pid, fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 100\n",
		pid, comm, ppid, ppid, ppid))
}

// raw writes content as the stat file of pid.
func (p *procTree) raw(t *testing.T, pid int, content string) {
	t.Helper()
	dir := filepath.Join(p.root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// chain writes pid → pid+1 → … → pid+n, each the parent of the one
// before, and pid+n a child of 0 (the top of the tree).
func (p *procTree) chain(t *testing.T, pid, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		p.stat(t, pid+i, "proc", pid+i+1)
	}
	p.stat(t, pid+n, "top", 0)
}

// family writes the tree 1 ← 10 ← 20 ← 30: init, a plugin, its child and
// its grandchild.
func family(t *testing.T, p *procTree) {
	t.Helper()
	p.stat(t, 1, "init", 0)
	p.stat(t, 10, "plugin", 1)
	p.stat(t, 20, "child", 10)
	p.stat(t, 30, "grandchild", 20)
}

func TestDescendsFromFakeTree(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, p *procTree)
		pid      int
		roots    []int
		wantRoot int
		wantOK   bool
		wantErr  error
		wantMsg  string
	}{
		{name: "the process itself", setup: family, pid: 10, roots: []int{10}, wantRoot: 10, wantOK: true},
		{name: "child", setup: family, pid: 20, roots: []int{10}, wantRoot: 10, wantOK: true},
		{name: "grandchild", setup: family, pid: 30, roots: []int{10}, wantRoot: 10, wantOK: true},
		{name: "nearest root wins", setup: family, pid: 30, roots: []int{10, 20}, wantRoot: 20, wantOK: true},
		{name: "one of several roots", setup: family, pid: 30, roots: []int{99, 10}, wantRoot: 10, wantOK: true},
		{name: "parent is no descendant", setup: family, pid: 10, roots: []int{20, 30}},
		{name: "unrelated root", setup: family, pid: 30, roots: []int{99}},
		{name: "no roots", setup: family, pid: 30},
		{name: "roots that are not positive match nothing", setup: family, pid: 1, roots: []int{0, -1}},
		{
			name: "command name with spaces and parentheses",
			setup: func(t *testing.T, p *procTree) {
				family(t, p)
				p.stat(t, 40, "a) (b) c", 30)
			},
			pid: 40, roots: []int{10}, wantRoot: 10, wantOK: true,
		},
		{
			// Read up to the first ')', this name would make 10 the
			// parent.
			name: "command name that imitates the fields",
			setup: func(t *testing.T, p *procTree) {
				family(t, p)
				p.stat(t, 40, "x) S 10 (y", 1)
			},
			pid: 40, roots: []int{10},
		},
		{
			name:  "deepest root within the bound",
			setup: func(t *testing.T, p *procTree) { p.chain(t, 1000, MaxLineageDepth) },
			pid:   1000, roots: []int{1000 + MaxLineageDepth}, wantRoot: 1000 + MaxLineageDepth, wantOK: true,
		},
		{
			name:  "as many ancestors as the bound",
			setup: func(t *testing.T, p *procTree) { p.chain(t, 1000, MaxLineageDepth) },
			pid:   1000, roots: []int{1},
		},
		{
			name:    "more ancestors than the bound",
			setup:   func(t *testing.T, p *procTree) { p.chain(t, 1000, MaxLineageDepth+1) },
			pid:     1000,
			roots:   []int{1000 + MaxLineageDepth + 1},
			wantErr: ErrLineageTooDeep,
			wantMsg: "pid 1000 has more than 256 ancestors",
		},
		{
			name: "cycle",
			setup: func(t *testing.T, p *procTree) {
				p.stat(t, 20, "a", 30)
				p.stat(t, 30, "b", 20)
			},
			pid: 30, roots: []int{10}, wantErr: ErrLineageTooDeep,
		},
		{name: "no such process", setup: family, pid: 77, roots: []int{10}, wantErr: ErrNoProcess, wantMsg: "pid 77"},
		{name: "no such process among the roots", setup: family, pid: 77, roots: []int{77}, wantErr: ErrNoProcess},
		{
			name: "ancestor gone",
			setup: func(t *testing.T, p *procTree) {
				p.stat(t, 30, "grandchild", 20)
			},
			pid: 30, roots: []int{10}, wantErr: ErrProcessExited, wantMsg: "pid 20, an ancestor of pid 30, is gone",
		},
		{name: "zero pid", setup: family, pid: 0, roots: []int{10}, wantErr: ErrInvalidRequest, wantMsg: "pid 0 is not positive"},
		{name: "negative pid", setup: family, pid: -3, roots: []int{10}, wantErr: ErrInvalidRequest},
		{
			name:    "no command name",
			setup:   func(t *testing.T, p *procTree) { p.raw(t, 30, "30 S 20\n") },
			pid:     30,
			wantMsg: "no parenthesized command name",
		},
		{
			name:    "stat of another pid",
			setup:   func(t *testing.T, p *procTree) { p.raw(t, 30, "31 (x) S 20\n") },
			pid:     30,
			wantMsg: `stat names pid "31", want 30`,
		},
		{
			name:    "no parent field",
			setup:   func(t *testing.T, p *procTree) { p.raw(t, 30, "30 (x) S\n") },
			pid:     30,
			wantMsg: "1 fields after the command name, want at least 2",
		},
		{
			name:    "parent not a number",
			setup:   func(t *testing.T, p *procTree) { p.raw(t, 30, "30 (x) S -1 0\n") },
			pid:     30,
			wantMsg: `parent pid "-1" is not a pid`,
		},
		{
			name:    "stat too long",
			setup:   func(t *testing.T, p *procTree) { p.raw(t, 30, "30 ("+strings.Repeat("x", maxStatSize)+") S 1\n") },
			pid:     30,
			wantMsg: "longer than 8192 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProcTree(t)
			tt.setup(t, p)
			root, ok, err := New(Config{ProcRoot: p.root}).DescendsFrom(tt.pid, tt.roots...)
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("DescendsFrom: %v", err)
				}
				if root != tt.wantRoot || ok != tt.wantOK {
					t.Errorf("DescendsFrom = %d, %v; want %d, %v", root, ok, tt.wantRoot, tt.wantOK)
				}
				return
			}
			if err == nil {
				t.Fatalf("DescendsFrom = %d, %v; want an error", root, ok)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("DescendsFrom = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("DescendsFrom error %q does not contain %q", err, tt.wantMsg)
			}
			if root != 0 || ok {
				t.Errorf("DescendsFrom returned %d, %v with an error", root, ok)
			}
		})
	}
}

// runSpawn is the child mode modeSpawn: it starts a copy of itself in
// modeWait, prints that grandchild's pid once it is ready, and ends it when
// its own stdin is closed.
func runSpawn() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+modeWait)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		fmt.Println("error: grandchild not ready:", line, err)
		return 2
	}
	fmt.Println(cmd.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
