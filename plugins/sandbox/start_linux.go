package sandbox

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setupTimeout bounds how long the helper may take to report.
const setupTimeout = 30 * time.Second

// Process is a started plugin process.
type Process struct {
	cmd         *exec.Cmd
	lifeline    *os.File
	protections Protections
	listeners   []net.Listener
	group       *cgroup
	done        chan struct{}
	waitErr     error
}

// Start starts the process spec describes, contained as policy says. It
// returns once the plugin has been executed (not once it is ready), or
// with an error saying which step failed. The process is killed with the
// host: a helper process, PID 1 of the plugin's PID namespace, gets
// SIGKILL when the host exits and also watches a pipe to the host.
func Start(spec Spec, policy Policy) (*Process, error) {
	if !filepath.IsAbs(spec.Path) || spec.Binary == nil || spec.Stdout == nil || spec.Stderr == nil {
		return nil, fmt.Errorf("%w: an absolute path, the open binary, stdout and stderr are required", ErrConfig)
	}
	paths := append([]string(nil), policy.ReadOnlyPaths...)
	for _, b := range append(append([]Bind(nil), spec.Sockets...), spec.WritableDirs...) {
		paths = append(paths, b.Source, b.Target)
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			return nil, fmt.Errorf("%w: path %q is not an absolute path below /", ErrConfig, p)
		}
	}
	switch policy.level() {
	case LevelNone:
		return startPlain(spec)
	case LevelStrict:
		return startStrict(spec, policy, false)
	default:
		return nil, fmt.Errorf("%w: unknown level %q", ErrConfig, policy.Level)
	}
}

// startPlain runs the plugin as a plain child: its own process group, no
// stdin, SIGKILL when the host exits (which the plugin can undo).
func startPlain(spec Spec) (*Process, error) {
	cmd := &exec.Cmd{
		// The checked binary, not whatever the path names by now.
		Path:       "/proc/self/fd/3",
		Args:       append([]string{spec.Path}, spec.Args...),
		Env:        append([]string{}, spec.Env...),
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		ExtraFiles: []*os.File{spec.Binary},
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: start %s: %w", spec.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), protections: Protections{Level: LevelNone,
		Missing: []string{"not contained: sandbox level none"}}}
	go p.wait()
	return p, nil
}

// startStrict starts the helper in new namespaces and hands it the spec.
func startStrict(spec Spec, policy Policy, probe bool) (*Process, error) {
	hs, err := helperSpecFor(spec, policy)
	if err != nil {
		return nil, err
	}
	hs.Probe = probe
	encoded, err := json.Marshal(hs)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode spec: %w", err)
	}
	var pipes [3][2]*os.File // spec, status, lifeline: read and write ends
	for i := range pipes {
		if pipes[i][0], pipes[i][1], err = os.Pipe(); err != nil {
			for _, pp := range pipes[:i] {
				pp[0].Close()
				pp[1].Close()
			}
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	specR, specW := pipes[0][0], pipes[0][1]
	statusR, statusW := pipes[1][0], pipes[1][1]
	lifeR, lifeW := pipes[2][0], pipes[2][1]
	// The helper's ends are closed here once it has them; so is the spec's
	// write end once the spec is sent.
	defer specR.Close()
	defer statusR.Close()
	defer lifeR.Close()
	defer specW.Close()

	p := &Process{done: make(chan struct{}), lifeline: lifeW}
	fail := func(err error) (*Process, error) {
		p.closeListeners()
		if p.group != nil {
			p.group.remove()
		}
		statusW.Close()
		lifeW.Close()
		return nil, err
	}
	limits, cpuLimited := "rlimit", false
	if m, _ := hostCgroups(); m != nil {
		if p.group, err = m.newGroup(spec.Owner, policy); err != nil {
			return fail(fmt.Errorf("%w: %s: %w", ErrSetup, spec.Path, err))
		}
		limits, cpuLimited = fmt.Sprintf("cgroup v%d", m.version), m.cpuLimited()
	}
	if len(policy.LoopbackPorts) > 0 {
		if err := p.listenPorts(spec.WritableDirs[0].Source, policy.LoopbackPorts, spec.Forward); err != nil {
			return fail(err)
		}
	}
	uid, gid := os.Geteuid(), os.Getegid()
	p.cmd = &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{helperArg0, spec.Owner},
		// The helper's own environment is empty; the plugin's is in the
		// spec.
		Env:        []string{},
		Stdout:     spec.Stdout,
		Stderr:     spec.Stderr,
		ExtraFiles: []*os.File{specR, spec.Binary, statusW, lifeR},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
				unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
			GidMappingsEnableSetgroups: false,
			Pdeathsig:                  syscall.SIGKILL,
			Setpgid:                    true,
		},
	}
	if err := p.cmd.Start(); err != nil {
		return fail(fmt.Errorf("%w: start the sandbox: %w", ErrUnsupported, err))
	}
	statusW.Close()
	go p.wait()
	abort := func(err error) (*Process, error) {
		p.Kill()
		<-p.done
		return nil, fmt.Errorf("%w: %s: %w", ErrSetup, spec.Path, err)
	}
	// The helper waits for its spec, so it is in its control group before
	// it starts anything.
	if p.group != nil {
		if err := p.group.add(p.cmd.Process.Pid); err != nil {
			return abort(err)
		}
	}
	// The spec is far smaller than a pipe's buffer.
	if _, err := specW.Write(encoded); err != nil {
		return abort(fmt.Errorf("send spec: %w", err))
	}
	specW.Close()
	st, err := readStatus(statusR)
	if err != nil {
		return abort(err)
	}
	p.protections = Protections{
		Level:          LevelStrict,
		Namespaces:     []string{"user", "mount", "pid", "network", "ipc", "uts", "cgroup"},
		NoNewPrivs:     true,
		NoCapabilities: true,
		Seccomp:        true,
		Landlock:       st.Landlock,
		Limits:         limits,
		DiesWithHost:   true,
	}
	if st.Landlock == 0 {
		p.protections.Missing = append(p.protections.Missing, "landlock: the kernel has no Landlock")
	}
	if !st.Proc {
		p.protections.Missing = append(p.protections.Missing, "/proc: could not be mounted, the plugin has none")
	}
	if p.group == nil && os.Geteuid() == 0 {
		p.protections.Missing = append(p.protections.Missing,
			"processes: not limited (no control group, and RLIMIT_NPROC does not hold for root)")
	}
	if policy.CPU > 0 && !cpuLimited {
		p.protections.Missing = append(p.protections.Missing, "cpu: not limited (needs a control group with the cpu controller)")
	}
	return p, nil
}

// readStatus reads the helper's report, or the reason it gave none.
func readStatus(r *os.File) (helperStatus, error) {
	type result struct {
		st  helperStatus
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var st helperStatus
		line, err := bufio.NewReader(io.LimitReader(r, 64<<10)).ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("the sandbox helper exited without a report")
			}
			ch <- result{err: err}
			return
		}
		if err := json.Unmarshal(line, &st); err != nil {
			ch <- result{err: fmt.Errorf("unreadable report from the sandbox helper: %w", err)}
			return
		}
		if st.Error != "" {
			ch <- result{err: errors.New(st.Error)}
			return
		}
		ch <- result{st: st}
	}()
	select {
	case res := <-ch:
		return res.st, res.err
	case <-time.After(setupTimeout):
		return helperStatus{}, fmt.Errorf("no report from the sandbox helper within %s", setupTimeout)
	}
}

// helperSpecFor builds what the helper mounts and applies for spec.
func helperSpecFor(spec Spec, policy Policy) (*helperSpec, error) {
	inside := path.Join(RunDir, "bin", filepath.Base(spec.Path))
	hs := &helperSpec{
		Path:     inside,
		Argv:     append([]string{inside}, spec.Args...),
		Env:      append([]string{}, spec.Env...),
		TmpSize:  policy.tmpSize(),
		Hostname: "sandbox",
		Rlimits: []rlimit{
			{unix.RLIMIT_NPROC, uint64(policy.processes())},
			{unix.RLIMIT_DATA, uint64(policy.memory())},
			{unix.RLIMIT_NOFILE, DefaultOpenFiles},
			{unix.RLIMIT_CORE, 0},
			{unix.RLIMIT_MEMLOCK, 0},
		},
		Ports: policy.LoopbackPorts,
	}
	hs.Binds = append(hs.Binds, bindSpec{Source: spec.Path, FD: fdBinary, Target: inside, Exec: true})
	for _, dev := range []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"} {
		hs.Binds = append(hs.Binds, bindSpec{Source: dev, Target: dev, Writable: true, Device: true})
	}
	hs.Symlinks = append(hs.Symlinks,
		linkSpec{"/dev/fd", "/proc/self/fd"}, linkSpec{"/dev/stdin", "/proc/self/fd/0"},
		linkSpec{"/dev/stdout", "/proc/self/fd/1"}, linkSpec{"/dev/stderr", "/proc/self/fd/2"})
	kind, err := binaryKind(spec.Binary)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, spec.Path, err)
	}
	if kind != kindStatic {
		binds, links := systemFiles(kind == kindScript)
		hs.Binds = append(hs.Binds, binds...)
		hs.Symlinks = append(hs.Symlinks, links...)
	}
	for _, p := range policy.ReadOnlyPaths {
		hs.Binds = append(hs.Binds, bindSpec{Source: p, Target: filepath.Clean(p)})
	}
	for _, b := range spec.Sockets {
		hs.Binds = append(hs.Binds, bindSpec{Source: b.Source, Target: filepath.Clean(b.Target)})
	}
	for _, b := range spec.WritableDirs {
		hs.Binds = append(hs.Binds, bindSpec{Source: b.Source, Target: filepath.Clean(b.Target), Writable: true})
	}
	if len(policy.LoopbackPorts) > 0 {
		if len(spec.WritableDirs) == 0 {
			return nil, fmt.Errorf("%w: loopback ports need a writable directory for their sockets", ErrConfig)
		}
		hs.PortDir = filepath.Clean(spec.WritableDirs[0].Target)
	}
	return hs, nil
}

// Kinds of executable, by what they need of the system to run.
const (
	kindStatic  = iota // a statically linked ELF program: nothing
	kindDynamic        // its loader and libraries
	kindScript         // its interpreter, and that one's libraries
)

// binaryKind tells what the executable needs of the system to run.
func binaryKind(f *os.File) (int, error) {
	var magic [2]byte
	if _, err := f.ReadAt(magic[:], 0); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	if magic == [2]byte{'#', '!'} {
		return kindScript, nil
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return 0, fmt.Errorf("neither an ELF program nor a script: %w", err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return kindDynamic, nil
		}
	}
	return kindStatic, nil
}

// libraryPaths are where a dynamically linked program's loader and
// libraries live; programPaths are added for scripts, whose interpreter may
// be anywhere there. Missing ones are skipped; a symbolic link (a merged
// /usr) is recreated as a link.
var (
	libraryPaths = []string{
		"/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32",
		"/usr/local/lib", "/etc/ld.so.cache",
	}
	programPaths = []string{"/bin", "/usr/bin", "/usr/local/bin"}
)

func systemFiles(script bool) ([]bindSpec, []linkSpec) {
	var binds []bindSpec
	var links []linkSpec
	paths := libraryPaths
	if script {
		paths = append(append([]string(nil), libraryPaths...), programPaths...)
	}
	for _, d := range paths {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if target, err := os.Readlink(d); err == nil {
				links = append(links, linkSpec{Path: d, Target: target})
			}
			continue
		}
		binds = append(binds, bindSpec{Source: d, Target: d, Exec: true, Optional: true})
	}
	return binds, links
}

// listenPorts serves, for each allowed port, a unix socket in dir whose
// connections are relayed to the host's 127.0.0.1:<port> (or to forward).
func (p *Process) listenPorts(dir string, ports []uint16, forward func(uint16) (io.ReadWriteCloser, error)) error {
	if forward == nil {
		forward = func(port uint16) (io.ReadWriteCloser, error) {
			return net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 10*time.Second)
		}
	}
	for _, port := range ports {
		ln, err := net.Listen("unix", filepath.Join(dir, portSocketName(port)))
		if err != nil {
			return fmt.Errorf("sandbox: forward port %d: %w", port, err)
		}
		p.listeners = append(p.listeners, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					up, err := forward(port)
					if err != nil {
						return
					}
					defer up.Close()
					done := make(chan struct{}, 2)
					go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
					go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
					<-done
				}()
			}
		}()
	}
	return nil
}

func (p *Process) closeListeners() {
	for _, ln := range p.listeners {
		ln.Close()
	}
	p.listeners = nil
}

// wait runs once per process, from the goroutine its start begins.
func (p *Process) wait() {
	p.waitErr = p.cmd.Wait()
	if p.lifeline != nil {
		p.lifeline.Close()
	}
	p.closeListeners()
	if p.group != nil {
		p.group.remove()
	}
	close(p.done)
}

// PID is the host pid of the process the host started: the plugin itself
// at level none, else the sandbox's init, whose only child is the plugin.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Protections says which protections are in force for this process.
func (p *Process) Protections() Protections { return p.protections }

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.waitErr
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill kills the process and, in a sandbox, every process in it.
func (p *Process) Kill() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	if p.protections.Level == LevelNone {
		// The plugin's process group: what it started too, unless it
		// left the group.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	_ = p.cmd.Process.Kill()
}

// Signal sends sig to the plugin (through the sandbox's init, which passes
// it on).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }
