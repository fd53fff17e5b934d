package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperArg0 is the argv[0] under which the host re-executes its own
// binary as a sandbox's init process; probeArg0 is the argv[0] of the
// process [Probe] runs inside a sandbox to check it.
const (
	helperArg0 = "agenthost-sandbox"
	probeArg0  = "agenthost-sandbox-probe"
)

// The file descriptors the host hands the helper (after stdin, stdout and
// stderr).
const (
	fdSpec     = 3 // the helperSpec, JSON, then EOF
	fdBinary   = 4 // the plugin binary, opened and checked by the host
	fdStatus   = 5 // the helper writes one helperStatus, then closes it
	fdLifeline = 6 // EOF here means the host is gone
)

// newRoot is where the helper builds the plugin's root file system before
// pivot_root. It is a tmpfs mounted in the helper's own mount namespace,
// so nothing of it is visible to the host.
const newRoot = "/tmp"

// exitSetup is the helper's exit status when the sandbox could not be set
// up (as env(1) and bwrap use 125 for their own failures).
const exitSetup = 125

// helperSpec is what the host tells the helper to build.
type helperSpec struct {
	// Probe asks the helper to run the probe child instead of a plugin.
	Probe    bool        `json:"probe,omitempty"`
	Path     string      `json:"path"`
	Argv     []string    `json:"argv"`
	Env      []string    `json:"env"`
	Binds    []bindSpec  `json:"binds"`
	Symlinks []linkSpec  `json:"symlinks,omitempty"`
	TmpSize  int64       `json:"tmp_size"`
	Rlimits  []rlimit    `json:"rlimits"`
	Ports    []uint16    `json:"ports,omitempty"`
	PortDir  string      `json:"port_dir,omitempty"`
	Hostname string      `json:"hostname"`
	Seccomp  seccompSpec `json:"seccomp"`
}

type bindSpec struct {
	// Source is the host path. FD, when non-zero, is an inherited file
	// descriptor of the file Source must still name (the plugin binary).
	Source string `json:"source,omitempty"`
	FD     int    `json:"fd,omitempty"`
	// Target is the path inside the sandbox.
	Target   string `json:"target"`
	Writable bool   `json:"writable,omitempty"`
	Exec     bool   `json:"exec,omitempty"`
	Device   bool   `json:"device,omitempty"`
	Optional bool   `json:"optional,omitempty"`
}

type linkSpec struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

type rlimit struct {
	Resource int    `json:"resource"`
	Value    uint64 `json:"value"`
}

// helperStatus is the helper's one report to the host.
type helperStatus struct {
	Error    string `json:"error,omitempty"`
	PID      int    `json:"pid,omitempty"` // the plugin's pid inside the sandbox
	Landlock int    `json:"landlock,omitempty"`
	Proc     bool   `json:"proc,omitempty"`
}

func init() {
	if len(os.Args) == 0 {
		return
	}
	switch os.Args[0] {
	case helperArg0:
		os.Exit(helperMain())
	case probeArg0:
		os.Exit(probeMain())
	}
}

// helperMain is the sandbox's init process: PID 1 of new user, mount,
// PID, network, IPC and UTS namespaces, root (without any power outside)
// in its user namespace. It builds the file system view, restricts its own
// thread, starts the plugin from that thread so the plugin inherits every
// restriction, then reaps children until the plugin exits.
func helperMain() int {
	// Capabilities, no_new_privs, Landlock and seccomp are properties of
	// a thread; the plugin is forked from this one.
	runtime.LockOSThread()
	status := os.NewFile(fdStatus, "status")
	fail := func(format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		_ = json.NewEncoder(status).Encode(helperStatus{Error: msg})
		fmt.Fprintln(os.Stderr, "sandbox:", msg)
		return exitSetup
	}
	// Everything below assumes new namespaces: started any other way (by
	// hand, under this name), the helper does nothing at all.
	if os.Getpid() != 1 {
		return fail("the sandbox helper runs only as the first process of a new PID namespace")
	}
	// The plugin inherits none of the helper's descriptors: neither those
	// the host handed over nor any the host process left inheritable (a
	// library's descriptor opened without O_CLOEXEC reaches the helper
	// through exec).
	if err := closeOnExecFrom(fdSpec); err != nil {
		return fail("%v", err)
	}
	var spec helperSpec
	if err := json.NewDecoder(io.LimitReader(os.NewFile(fdSpec, "spec"), 1<<20)).Decode(&spec); err != nil {
		return fail("read spec: %v", err)
	}
	st, err := setup(&spec)
	if err != nil {
		return fail("%v", err)
	}
	devnull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open /dev/null: %v", err)
	}
	if err := restrictThread(&spec, &st); err != nil {
		return fail("%v", err)
	}
	path, argv := spec.Path, spec.Argv
	if spec.Probe {
		path, argv = spec.Path, []string{probeArg0}
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   spec.Env,
		Files: []uintptr{uintptr(devnull), 1, 2},
	})
	if err != nil {
		return fail("start %s: %v", spec.Path, err)
	}
	st.PID = pid
	_ = json.NewEncoder(status).Encode(st)
	status.Close()
	return reap(pid)
}

// closeOnExecFrom marks every descriptor from first on close-on-exec.
func closeOnExecFrom(first int) error {
	if unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	// Before Linux 5.11: the host's /proc is still mounted here.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list inherited descriptors: %w", err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// setup builds everything that needs the helper's capabilities: the file
// system view, the host name, the loopback interface, the limits.
func setup(spec *helperSpec) (helperStatus, error) {
	var st helperStatus
	proc, err := buildRoot(spec)
	if err != nil {
		return st, err
	}
	st.Proc = proc
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return st, fmt.Errorf("set host name: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return st, err
	}
	if err := forwardPorts(spec.Ports, spec.PortDir); err != nil {
		return st, err
	}
	// Neither the plugin nor anything it starts may read this process's
	// memory or file descriptors through /proc.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return st, fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	for _, r := range spec.Rlimits {
		lim := unix.Rlimit{Cur: r.Value, Max: r.Value}
		if err := unix.Setrlimit(r.Resource, &lim); err != nil {
			return st, fmt.Errorf("setrlimit(%d, %d): %w", r.Resource, r.Value, err)
		}
	}
	return st, nil
}

// buildRoot mounts a tmpfs at newRoot, binds into it what the plugin may
// see, mounts a /proc of the new PID namespace, a /dev with the harmless
// devices and a private /tmp, then makes it the root and detaches the
// host's file system. It reports whether /proc could be mounted.
func buildRoot(spec *helperSpec) (proc bool, err error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return false, fmt.Errorf("make mounts private: %w", err)
	}
	// Every source is opened now, as the host sees it, before anything
	// is mounted over it; binds then come from these descriptors.
	var sources []source
	defer func() {
		for _, s := range sources {
			unix.Close(s.fd)
		}
	}()
	for _, b := range spec.Binds {
		s, err := openSource(b)
		if err != nil {
			if b.Optional && errors.Is(err, unix.ENOENT) {
				continue
			}
			return false, err
		}
		sources = append(sources, s)
	}
	// Parents before children.
	sort.SliceStable(sources, func(i, j int) bool { return depth(sources[i].Target) < depth(sources[j].Target) })

	if err := unix.Mount("tmpfs", newRoot, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return false, fmt.Errorf("mount root tmpfs: %w", err)
	}
	at := func(p string) string { return filepath.Join(newRoot, p) }
	for _, d := range []string{"/proc", "/dev", "/tmp"} {
		if err := os.Mkdir(at(d), 0o755); err != nil {
			return false, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// A /proc of the new PID namespace, showing process directories only
	// (subset=pid, Linux 5.8), else a whole one.
	const procFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("proc", at("/proc"), "proc", procFlags, "subset=pid"); err == nil {
		proc = true
	} else if err := unix.Mount("proc", at("/proc"), "proc", procFlags, ""); err == nil {
		proc = true
	}
	if err := unix.Mount("tmpfs", at("/dev"), "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return false, fmt.Errorf("mount /dev: %w", err)
	}
	tmpOpts := "mode=1777,size=" + strconv.FormatInt(spec.TmpSize, 10)
	if err := unix.Mount("tmpfs", at("/tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, tmpOpts); err != nil {
		return false, fmt.Errorf("mount /tmp: %w", err)
	}
	for _, s := range sources {
		target := at(s.Target)
		if err := mountPoint(target, s.dir); err != nil {
			return false, fmt.Errorf("create mount point %s: %w", s.Target, err)
		}
		from := "/proc/self/fd/" + strconv.Itoa(s.fd)
		if err := unix.Mount(from, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return false, fmt.Errorf("bind %s: %w", s.Target, err)
		}
		// Remounting a bind in a user namespace must keep the flags the
		// source's mount is locked with.
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID)
		if s.flags&unix.ST_NODEV != 0 || !s.Device {
			flags |= unix.MS_NODEV
		}
		if s.flags&unix.ST_NOEXEC != 0 || !s.Exec {
			flags |= unix.MS_NOEXEC
		}
		if !s.Writable || s.flags&unix.ST_RDONLY != 0 {
			flags |= unix.MS_RDONLY
		}
		for _, f := range []struct {
			st int64
			ms uintptr
		}{{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME}} {
			if s.flags&f.st != 0 {
				flags |= f.ms
			}
		}
		if err := unix.Mount("", target, "", flags, ""); err != nil {
			return false, fmt.Errorf("remount %s: %w", s.Target, err)
		}
	}
	for _, l := range spec.Symlinks {
		p := at(l.Path)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, fmt.Errorf("create %s: %w", filepath.Dir(l.Path), err)
		}
		if err := os.Symlink(l.Target, p); err != nil {
			return false, fmt.Errorf("create symlink %s: %w", l.Path, err)
		}
	}
	// The new root replaces the old one, which is then detached: nothing
	// of the host's file system stays reachable.
	if err := unix.Chdir(newRoot); err != nil {
		return false, fmt.Errorf("chdir to new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return false, fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return false, fmt.Errorf("detach the host's root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return false, fmt.Errorf("chdir /: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return false, fmt.Errorf("make the root read-only: %w", err)
	}
	return proc, nil
}

// source is a bind's source, open in the helper's mount namespace.
type source struct {
	bindSpec
	fd    int
	dir   bool
	flags int64 // statfs flags of the source's mount
}

func openSource(b bindSpec) (source, error) {
	fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return source{}, fmt.Errorf("open %s: %w", b.Source, err)
	}
	s := source{bindSpec: b, fd: fd}
	var fi unix.Stat_t
	if err := unix.Fstat(fd, &fi); err != nil {
		unix.Close(fd)
		return source{}, fmt.Errorf("stat %s: %w", b.Source, err)
	}
	// A descriptor the host opened belongs to the host's mount namespace
	// and cannot be the source of a bind here; the path is bound instead,
	// and must still name the very same file.
	if b.FD != 0 {
		var want unix.Stat_t
		if err := unix.Fstat(b.FD, &want); err != nil || want.Dev != fi.Dev || want.Ino != fi.Ino {
			unix.Close(fd)
			return source{}, fmt.Errorf("%s was replaced after it was checked", b.Source)
		}
	}
	s.dir = fi.Mode&unix.S_IFMT == unix.S_IFDIR
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		unix.Close(fd)
		return source{}, fmt.Errorf("statfs %s: %w", b.Source, err)
	}
	s.flags = fs.Flags
	return s, nil
}

// mountPoint creates an empty directory or file at p, and its parents.
func mountPoint(p string, dir bool) error {
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if dir {
		return os.Mkdir(p, 0o755)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func depth(p string) int {
	n := 0
	for _, c := range filepath.Clean(p) {
		if c == '/' {
			n++
		}
	}
	return n
}

// loopbackUp brings up lo, the only interface of the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bring up: %w", err)
	}
	return nil
}

// forwardPorts listens on 127.0.0.1:<port> inside the sandbox for each
// allowed port and relays each connection to the host through the unix
// socket the host serves for that port in dir. The listeners belong to
// this process (not the plugin), on threads the plugin's restrictions do
// not apply to; the host decides where each socket leads.
func forwardPorts(ports []uint16, dir string) error {
	for _, port := range ports {
		ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			return fmt.Errorf("forward port %d: %w", port, err)
		}
		sock := filepath.Join(dir, portSocketName(port))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go relay(c, sock)
			}
		}()
	}
	return nil
}

func portSocketName(port uint16) string { return "port-" + strconv.Itoa(int(port)) + ".sock" }

func relay(c net.Conn, sock string) {
	defer c.Close()
	up, err := net.Dial("unix", sock)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// reap waits for children until the plugin exits, and returns the
// plugin's exit status (128+signal for a signal). Signals the host sends
// are passed on to the plugin; the end of the lifeline (the host died)
// ends everything. When this process exits, the kernel kills every other
// process of the PID namespace.
func reap(plugin int) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = unix.Kill(plugin, s.(syscall.Signal))
		}
	}()
	go func() {
		var b [1]byte
		_, _ = os.NewFile(fdLifeline, "lifeline").Read(b[:])
		_ = unix.Kill(-1, unix.SIGKILL)
		os.Exit(128 + int(unix.SIGKILL))
	}()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return exitSetup
		}
		if pid != plugin {
			continue
		}
		_ = unix.Kill(-1, unix.SIGKILL)
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
		return exitSetup
	}
}
