package attest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// startSpawn starts path in modeSpawn and returns the child and the pid of
// the grandchild it started. Both are stopped when the test ends.
func startSpawn(tb testing.TB, path string) (*child, int) {
	tb.Helper()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), childEnv+"="+modeSpawn)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start child: %v", err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	tb.Cleanup(c.stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("child did not report its grandchild: %q, %v", line, err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		tb.Fatalf("child reported %q, want the grandchild's pid", line)
	}
	return c, grandchild
}

// TestDescendsFromRealProcesses walks the real proc filesystem through a
// child and a grandchild of the test. The copy of the test binary they run
// has a name with spaces and parentheses, which the kernel puts in the
// command name field of their stat files.
func TestDescendsFromRealProcesses(t *testing.T) {
	path := copyTestBinary(t, t.TempDir(), "p) (q) r", "lineage")
	ch, grandchild := startSpawn(t, path)
	self, parent := os.Getpid(), os.Getppid()
	tests := []struct {
		name     string
		pid      int
		roots    []int
		wantRoot int
		wantOK   bool
	}{
		{name: "self", pid: self, roots: []int{self}, wantRoot: self, wantOK: true},
		{name: "self below its parent", pid: self, roots: []int{parent}, wantRoot: parent, wantOK: true},
		{name: "child below self", pid: ch.pid(), roots: []int{self}, wantRoot: self, wantOK: true},
		{name: "grandchild below child", pid: grandchild, roots: []int{ch.pid()}, wantRoot: ch.pid(), wantOK: true},
		{name: "grandchild below self", pid: grandchild, roots: []int{self}, wantRoot: self, wantOK: true},
		{name: "nearest of several", pid: grandchild, roots: []int{self, ch.pid()}, wantRoot: ch.pid(), wantOK: true},
		{name: "child not below grandchild", pid: ch.pid(), roots: []int{grandchild}},
		{name: "self not below child", pid: self, roots: []int{ch.pid(), grandchild}},
		{name: "grandchild without roots", pid: grandchild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, ok, err := DescendsFrom(tt.pid, tt.roots...)
			if err != nil {
				t.Fatalf("DescendsFrom(%d, %v): %v", tt.pid, tt.roots, err)
			}
			if root != tt.wantRoot || ok != tt.wantOK {
				t.Errorf("DescendsFrom(%d, %v) = %d, %v; want %d, %v", tt.pid, tt.roots, root, ok, tt.wantRoot, tt.wantOK)
			}
		})
	}

	// The kernel wrote the unusual command name.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(grandchild) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(stat), "(p) (q) r)") {
		t.Errorf("grandchild's stat %q does not carry the command name", stat)
	}
}

func TestDescendsFromNoProcess(t *testing.T) {
	for _, pid := range []int{pidMax(t), 1 << 30} {
		root, ok, err := DescendsFrom(pid, os.Getpid())
		if !errors.Is(err, ErrNoProcess) {
			t.Errorf("DescendsFrom(%d) = %d, %v, %v; want ErrNoProcess", pid, root, ok, err)
		}
	}
}

// TestChildrenRealProcesses: the child's only child is the grandchild;
// the grandchild has none; a pid that does not exist is ErrNoProcess.
func TestChildrenRealProcesses(t *testing.T) {
	path := copyTestBinary(t, t.TempDir(), "kids", "lineage")
	ch, grandchild := startSpawn(t, path)
	kids, err := Children(ch.pid())
	if err != nil || len(kids) != 1 || kids[0] != grandchild {
		t.Fatalf("Children(child) = %v, %v; want [%d]", kids, err, grandchild)
	}
	if kids, err := Children(grandchild); err != nil || len(kids) != 0 {
		t.Fatalf("Children(grandchild) = %v, %v; want none", kids, err)
	}
	if _, err := Children(1 << 30); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("Children of no process: %v", err)
	}
	if _, err := Children(0); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("Children(0): %v", err)
	}
}
