package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

var probed struct {
	once sync.Once
	prot Protections
	err  error
}

// Probe reports what LevelStrict gives on this host, by starting a sandbox
// around a copy of the running program that checks its restrictions from
// the inside. The result is computed once per process. An error wraps
// ErrUnsupported and says what is missing and how to enable it.
func Probe() (Protections, error) {
	probed.once.Do(func() { probed.prot, probed.err = probe() })
	return probed.prot, probed.err
}

func probe() (Protections, error) {
	exe, err := os.Executable()
	if err != nil {
		return Protections{}, fmt.Errorf("%w: cannot find the running program: %w", ErrUnsupported, err)
	}
	bin, err := os.Open("/proc/self/exe")
	if err != nil {
		return Protections{}, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	defer bin.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return Protections{}, fmt.Errorf("sandbox: %w", err)
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return Protections{}, fmt.Errorf("sandbox: %w", err)
	}
	defer r.Close()
	p, err := startStrict(Spec{Path: exe, Binary: bin, Stdout: devnull, Stderr: w}, Policy{}, true)
	w.Close()
	if err != nil {
		return Protections{}, explain(err)
	}
	var out bytes.Buffer
	_, _ = out.ReadFrom(r)
	if err := p.Wait(); err != nil {
		return Protections{}, fmt.Errorf("%w: the probe inside the sandbox failed: %s", ErrUnsupported,
			strings.TrimSpace(out.String()))
	}
	return p.Protections(), nil
}

// explain adds to a failure to start a sandbox what usually causes it.
func explain(err error) error {
	if !errors.Is(err, ErrUnsupported) {
		err = fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	var hints []string
	if v, ok := readSysctl("kernel/unprivileged_userns_clone"); ok && v == "0" {
		hints = append(hints, "kernel.unprivileged_userns_clone is 0 (set it to 1)")
	}
	if v, ok := readSysctl("user/max_user_namespaces"); ok && v == "0" {
		hints = append(hints, "user.max_user_namespaces is 0 (raise it)")
	}
	if v, ok := readSysctl("kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		hints = append(hints, "kernel.apparmor_restrict_unprivileged_userns is 1 (give agenthost an AppArmor profile with userns, or set it to 0)")
	}
	if len(hints) == 0 {
		hints = append(hints, "unprivileged user namespaces may be disabled by the kernel, a security module or a container runtime")
	}
	return fmt.Errorf("%w; %s", err, strings.Join(hints, "; "))
}

func readSysctl(name string) (string, bool) {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Sweep kills the sandboxes a previous run of the host left behind: every
// sandbox init process of this user tagged with owner (see Spec.Owner),
// and with it everything in its PID namespace. The caller must be the only
// holder of owner (the host holds its data directory's lock). It returns
// how many it killed.
func Sweep(owner string) (int, error) {
	if owner == "" {
		return 0, fmt.Errorf("%w: an owner is required", ErrConfig)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("sandbox: sweep: %w", err)
	}
	uid := uint32(os.Geteuid())
	self := os.Getpid()
	killed := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		if len(args) != 2 || args[0] != helperArg0 || args[1] != owner {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/"+e.Name(), &st); err != nil || (st.Uid != uid && st.Uid != 0) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	if m, _ := hostCgroups(); m != nil {
		m.sweepGroups(owner)
	}
	return killed, nil
}
