package attest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// MaxLineageDepth bounds how many parents [Collector.DescendsFrom] follows.
// Real process trees are far shallower; the bound only stops a malformed
// proc tree from being walked for ever.
const MaxLineageDepth = 256

// maxStatSize bounds how much of /proc/<pid>/stat is read: one line of
// about fifty numbers after a command name of at most 64 bytes.
const maxStatSize = 8 << 10

// DescendsFrom is [Collector.DescendsFrom] with the system's /proc.
func DescendsFrom(pid int, roots ...int) (root int, ok bool, err error) {
	return New(Config{}).DescendsFrom(pid, roots...)
}

// DescendsFrom reports whether the process pid is one of roots or a
// descendant of one of them, following the parent of each process
// (/proc/<pid>/stat, proc(5)) from pid upwards. When it is, root is the
// first of roots met on the way up: pid itself, or its nearest ancestor
// among roots. Roots that are not positive match nothing, so a caller may
// pass the pid of a process that is not running as 0.
//
// The walk ends at a process whose parent is 0 (the first process of the
// pid namespace, or a kernel thread): such a pid is no one's descendant.
//
// Errors: [ErrInvalidRequest] when pid is not positive; [ErrNoProcess]
// when no process has the pid, even if it is one of roots;
// [ErrProcessExited] when an ancestor exits during the walk, so that the
// chain cannot be followed; an error wrapping [ErrLineageTooDeep] after
// [MaxLineageDepth] parents; [ErrUnsupported] on systems other than Linux
// unless Config.ProcRoot names a tree laid out like Linux's. Callers that
// decide access with it must treat any error as a refusal.
//
// A process whose parent exits is given a new parent (the nearest child
// subreaper, else the first process of its pid namespace), so a process
// that leaves its parent early is no longer found below its original
// ancestors. The walk reads each process once, so a pid reused during the
// walk may be followed as if it were the process that had it before.
func (c *Collector) DescendsFrom(pid int, roots ...int) (root int, ok bool, err error) {
	if pid <= 0 {
		return 0, false, fmt.Errorf("%w: pid %d is not positive", ErrInvalidRequest, pid)
	}
	if runtime.GOOS != "linux" && c.procRoot == DefaultProcRoot {
		return 0, false, fmt.Errorf("%w: cannot read the parent of pid %d on %s (Linux only)", ErrUnsupported, pid, runtime.GOOS)
	}
	set := make(map[int]struct{}, len(roots))
	for _, r := range roots {
		if r > 0 {
			set[r] = struct{}{}
		}
	}
	cur := pid
	// cur is pid's ancestor of generation depth (0: pid itself).
	for depth := 0; ; depth++ {
		// Read first, so that a pid that does not exist is an error even
		// when it is one of roots.
		ppid, err := c.parent(cur)
		if err != nil {
			if cur != pid && errors.Is(err, ErrNoProcess) {
				return 0, false, fmt.Errorf("%w: pid %d, an ancestor of pid %d, is gone", ErrProcessExited, cur, pid)
			}
			return 0, false, err
		}
		if _, hit := set[cur]; hit {
			return cur, true, nil
		}
		if ppid == 0 {
			return 0, false, nil
		}
		if depth+1 > MaxLineageDepth {
			return 0, false, fmt.Errorf("%w: pid %d has more than %d ancestors", ErrLineageTooDeep, pid, MaxLineageDepth)
		}
		cur = ppid
	}
}

// parent reads the parent pid of pid from its stat file.
func (c *Collector) parent(pid int) (int, error) {
	name := filepath.Join(c.procRoot, strconv.Itoa(pid), "stat")
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("%w: pid %d (%s does not exist)", ErrNoProcess, pid, name)
		}
		return 0, fmt.Errorf("attest: parent of pid %d: %w", pid, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStatSize+1))
	if err != nil {
		// A process that exits between open and read fails with ESRCH.
		if errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("%w: pid %d (%s is gone)", ErrNoProcess, pid, name)
		}
		return 0, fmt.Errorf("attest: parent of pid %d: %w", pid, err)
	}
	if len(data) > maxStatSize {
		return 0, fmt.Errorf("attest: parse %s: longer than %d bytes", name, maxStatSize)
	}
	ppid, err := parseStatParent(pid, data)
	if err != nil {
		return 0, fmt.Errorf("attest: parse %s: %w", name, err)
	}
	return ppid, nil
}

// parseStatParent returns the parent pid from a stat file of pid (proc(5)):
// "pid (comm) state ppid …". The command name may hold spaces and
// parentheses, so the fields are read after the last ')'.
func parseStatParent(pid int, data []byte) (int, error) {
	s := string(data)
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, errors.New("no parenthesized command name")
	}
	if got := strings.TrimSpace(s[:open]); got != strconv.Itoa(pid) {
		return 0, fmt.Errorf("stat names pid %q, want %d", got, pid)
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 2", len(fields))
	}
	ppid, err := strconv.ParseUint(fields[1], 10, 31)
	if err != nil {
		return 0, fmt.Errorf("parent pid %q is not a pid", fields[1])
	}
	return int(ppid), nil
}

// Children is [Collector.Children] with the system's /proc.
func Children(pid int) ([]int, error) { return New(Config{}).Children(pid) }

// Children returns the pids of the processes whose parent is pid, in
// increasing order, from a scan of every process's stat file: it finds the
// plugin under a sandbox's init, whose only child it is. A process that
// exits during the scan is left out. Errors: [ErrInvalidRequest] when pid
// is not positive, [ErrNoProcess] when pid does not exist,
// [ErrUnsupported] as for DescendsFrom.
func (c *Collector) Children(pid int) ([]int, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("%w: pid %d is not positive", ErrInvalidRequest, pid)
	}
	if runtime.GOOS != "linux" && c.procRoot == DefaultProcRoot {
		return nil, fmt.Errorf("%w: cannot list the children of pid %d on %s (Linux only)", ErrUnsupported, pid, runtime.GOOS)
	}
	if _, err := c.parent(pid); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(c.procRoot)
	if err != nil {
		return nil, fmt.Errorf("attest: children of pid %d: %w", pid, err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child <= 0 || child == pid {
			continue
		}
		ppid, err := c.parent(child)
		if err != nil {
			continue // gone, or not a process directory
		}
		if ppid == pid {
			out = append(out, child)
		}
	}
	slices.Sort(out)
	return out, nil
}
