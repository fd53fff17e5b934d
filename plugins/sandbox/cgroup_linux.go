package sandbox

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are enforced by rlimits always, and by a control group for each
// sandbox where the host may create one:
//
//   - cgroup v2, in the host's own group when it is delegated to the host's
//     user (or the host runs as root) and offers the memory, pids and cpu
//     controllers; the host moves itself into a leaf "host" group first,
//     as the v2 rule of no processes in inner groups requires;
//   - cgroup v1, when the host may write to its own groups of the memory
//     and pids hierarchies (and cpu, for a CPU limit).
//
// A control group limits a sandbox as a whole (every process and thread
// in it, whatever its user), where RLIMIT_NPROC does not hold for a host
// running as root and counts per user.

// cgroupPrefix starts the name of every group the host creates for a
// sandbox, followed by the owner's tag and a random suffix.
const cgroupPrefix = "agenthost-sandbox-"

var cgroupControllers = []string{"memory", "pids", "cpu"}

// cgroupManager creates the groups of one host process.
type cgroupManager struct {
	version int
	// v2: the group under which sandboxes' groups are created.
	// v1: per controller, the host's own group in that hierarchy.
	parents map[string]string
}

var cgroupsOnce struct {
	once sync.Once
	m    *cgroupManager
	err  error
}

// hostCgroups returns this process's cgroup manager, or nil with the
// reason when the host may not create control groups.
func hostCgroups() (*cgroupManager, error) {
	cgroupsOnce.once.Do(func() {
		cgroupsOnce.m, cgroupsOnce.err = detectCgroups("/proc/self/mountinfo", "/proc/self/cgroup", os.Getpid())
	})
	return cgroupsOnce.m, cgroupsOnce.err
}

// mountInfo is one cgroup file system mount.
type cgroupMount struct {
	dir     string   // where it is mounted
	root    string   // the group shown at dir
	version int      // 1 or 2
	ctrls   []string // v1: the controllers of the hierarchy
}

func readCgroupMounts(mountinfo string) ([]cgroupMount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		m := cgroupMount{root: unescapeMount(fields[3]), dir: unescapeMount(fields[4])}
		switch tail[0] {
		case "cgroup2":
			m.version = 2
		case "cgroup":
			m.version = 1
			for _, o := range strings.Split(tail[2], ",") {
				for _, c := range cgroupControllers {
					if o == c {
						m.ctrls = append(m.ctrls, c)
					}
				}
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readOwnCgroups returns the process's group per hierarchy: "" for v2,
// each controller name for v1.
func readOwnCgroups(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

func detectCgroups(mountinfo, cgroupFile string, self int) (*cgroupManager, error) {
	mounts, err := readCgroupMounts(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	own, err := readOwnCgroups(cgroupFile)
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	var reasons []string
	for _, m := range mounts {
		if m.version != 2 {
			continue
		}
		path, ok := own[""]
		if !ok {
			continue
		}
		dir, ok := groupDir(m, path)
		if !ok {
			continue
		}
		parent, err := prepareV2(dir, self)
		if err == nil {
			return &cgroupManager{version: 2, parents: map[string]string{"": parent}}, nil
		}
		reasons = append(reasons, "cgroup v2: "+err.Error())
	}
	parents := map[string]string{}
	for _, m := range mounts {
		if m.version != 1 {
			continue
		}
		for _, c := range m.ctrls {
			path, ok := own[c]
			if !ok {
				continue
			}
			dir, ok := groupDir(m, path)
			if !ok || unix.Access(dir, unix.W_OK) != nil {
				continue
			}
			parents[c] = dir
		}
	}
	if parents["memory"] != "" && parents["pids"] != "" {
		return &cgroupManager{version: 1, parents: parents}, nil
	}
	if len(parents) > 0 || len(reasons) == 0 {
		reasons = append(reasons, "cgroup v1: the host may not create groups in both the memory and pids hierarchies")
	}
	return nil, errors.New(strings.Join(reasons, "; "))
}

// groupDir is the directory of group path in mount m, if m shows it.
func groupDir(m cgroupMount, path string) (string, bool) {
	rel, err := filepath.Rel(m.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Join(m.dir, rel), true
}

// prepareV2 makes dir (the host's own v2 group) a parent of sandbox
// groups: its controllers must include memory, pids and cpu, the host must
// be able to write to it, and, unless it is the root group, the host moves
// itself into a leaf dir/host so that controllers can be enabled in dir.
func prepareV2(dir string, self int) (string, error) {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	have := strings.Fields(string(avail))
	for _, c := range cgroupControllers {
		if !contains(have, c) {
			return "", fmt.Errorf("the controller %s is not available in %s", c, dir)
		}
	}
	if err := unix.Access(filepath.Join(dir, "cgroup.subtree_control"), unix.W_OK); err != nil {
		return "", fmt.Errorf("%s is not delegated to this user", dir)
	}
	isRoot := func() bool {
		_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
		return errors.Is(err, os.ErrNotExist) // the root group has no cgroup.type
	}()
	if !isRoot {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return "", err
		}
		if len(strings.TrimSpace(string(procs))) > 0 {
			leaf := filepath.Join(dir, "host")
			if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return "", err
			}
			if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(self)); err != nil {
				return "", fmt.Errorf("move the host into %s: %w", leaf, err)
			}
		}
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
		return "", fmt.Errorf("enable controllers in %s: %w", dir, err)
	}
	return dir, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cgroup is the group (one per v1 hierarchy) of one sandbox.
type cgroup struct {
	version int
	dirs    []string
}

// newGroup creates a group for one sandbox of owner with pol's limits.
func (m *cgroupManager) newGroup(owner string, pol Policy) (*cgroup, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	name := cgroupPrefix + cgroupTag(owner) + "-" + hex.EncodeToString(rnd[:])
	g := &cgroup{version: m.version}
	type limit struct{ ctrl, file, value string }
	var limits []limit
	mem := strconv.FormatInt(pol.memory(), 10)
	pids := strconv.Itoa(pol.processes())
	if m.version == 2 {
		limits = []limit{{"", "memory.max", mem}, {"", "memory.swap.max", "0"}, {"", "pids.max", pids}}
		if pol.CPU > 0 {
			limits = append(limits, limit{"", "cpu.max", fmt.Sprintf("%d 100000", int64(pol.CPU*100000))})
		}
	} else {
		limits = []limit{{"memory", "memory.limit_in_bytes", mem}, {"memory", "memory.memsw.limit_in_bytes", mem},
			{"pids", "pids.max", pids}}
		if pol.CPU > 0 && m.parents["cpu"] != "" {
			limits = append(limits, limit{"cpu", "cpu.cfs_period_us", "100000"},
				limit{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(int64(pol.CPU*100000), 10)})
		}
	}
	dirs := map[string]string{}
	for _, l := range limits {
		dir, ok := dirs[l.ctrl]
		if !ok {
			dir = filepath.Join(m.parents[l.ctrl], name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				g.remove()
				return nil, fmt.Errorf("create %s: %w", dir, err)
			}
			dirs[l.ctrl] = dir
			g.dirs = append(g.dirs, dir)
		}
		if err := writeFile(filepath.Join(dir, l.file), l.value); err != nil {
			if (l.file == "memory.swap.max" || l.file == "memory.memsw.limit_in_bytes") && errors.Is(err, os.ErrNotExist) {
				continue // no swap accounting: nothing to limit
			}
			g.remove()
			return nil, fmt.Errorf("set %s: %w", filepath.Join(dir, l.file), err)
		}
	}
	return g, nil
}

// cpuLimited reports whether the group enforces a CPU limit.
func (m *cgroupManager) cpuLimited() bool { return m.version == 2 || m.parents["cpu"] != "" }

// cgroupTag shortens an owner tag to something safe in a group name.
func cgroupTag(owner string) string {
	var b strings.Builder
	for _, r := range owner {
		if b.Len() >= 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// add moves pid (and, in v1, all its threads) into the group.
func (g *cgroup) add(pid int) error {
	for _, dir := range g.dirs {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to %s: %w", pid, dir, err)
		}
	}
	return nil
}

// remove deletes the group once its processes are gone, retrying for up
// to a second while the kernel finishes tearing them down.
func (g *cgroup) remove() {
	for _, dir := range g.dirs {
		for i := 0; i < 50; i++ {
			if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// sweepGroups removes the empty groups of owner left by an earlier run.
func (m *cgroupManager) sweepGroups(owner string) {
	prefix := cgroupPrefix + cgroupTag(owner) + "-"
	for _, parent := range m.parents {
		ents, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
				// Its last processes may still be exiting.
				(&cgroup{dirs: []string{filepath.Join(parent, e.Name())}}).remove()
			}
		}
	}
}
