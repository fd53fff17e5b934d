package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Level is how strictly a plugin process is contained.
type Level string

// Levels.
const (
	// LevelStrict is the default: the plugin runs in its own user, mount,
	// PID, network, IPC and UTS namespaces, with no capabilities, no new
	// privileges, a seccomp filter, Landlock rules where the kernel has
	// Landlock, and resource limits.
	LevelStrict Level = "strict"
	// LevelNone runs the plugin as a plain child process of the host. It
	// exists for debugging only; the host requires an explicit flag for it.
	LevelNone Level = "none"
)

// Defaults for a zero [Policy] field.
const (
	DefaultMemory    = 1 << 30 // bytes of address space or memory
	DefaultProcesses = 512     // processes and threads
	DefaultTmpSize   = 64 << 20
	DefaultOpenFiles = 4096
)

// Sentinel errors.
var (
	// ErrUnsupported: this kernel (or operating system) cannot give the
	// level a policy asks for. The error text names what is missing.
	ErrUnsupported = errors.New("sandbox: not supported here")
	// ErrConfig: the policy or spec is unusable.
	ErrConfig = errors.New("sandbox: invalid configuration")
	// ErrSetup: the sandbox could not be set up for this process.
	ErrSetup = errors.New("sandbox: setup failed")
)

// Policy is what one plugin process may see, reach and use beyond the
// minimum it needs to run and talk to the host.
type Policy struct {
	// Level is LevelStrict (the zero value means strict) or LevelNone.
	Level Level
	// ReadOnlyPaths are extra absolute paths (files or directories) the
	// plugin may read. A unix socket beneath one can still be connected
	// to (a read-only mount does not stop connect), so none may hold a
	// socket of the host's.
	ReadOnlyPaths []string
	// LoopbackPorts are TCP ports of the host's loopback interface that
	// the plugin may connect to, at 127.0.0.1:<port> inside its own
	// network namespace; the host forwards each connection.
	LoopbackPorts []uint16
	// Memory caps the plugin's memory in bytes (zero: DefaultMemory).
	Memory int64
	// Processes caps the plugin's processes and threads together (zero:
	// DefaultProcesses).
	Processes int
	// CPU caps the plugin's CPU time in cores; it is enforced only where
	// the host may create cgroup v2 groups (zero: not limited).
	CPU float64
	// TmpSize is the size of the plugin's private /tmp in bytes (zero:
	// DefaultTmpSize).
	TmpSize int64
}

func (p Policy) level() Level {
	if p.Level == "" {
		return LevelStrict
	}
	return p.Level
}

func (p Policy) memory() int64 {
	if p.Memory <= 0 {
		return DefaultMemory
	}
	return p.Memory
}

func (p Policy) processes() int {
	if p.Processes <= 0 {
		return DefaultProcesses
	}
	return p.Processes
}

func (p Policy) tmpSize() int64 {
	if p.TmpSize <= 0 {
		return DefaultTmpSize
	}
	return p.TmpSize
}

// Spec is one plugin process to start.
type Spec struct {
	// Path is the absolute path of the plugin binary, used for its
	// argv[0] and its place in the sandbox's file system view.
	Path string
	// Binary is the open binary, already checked by the caller: the
	// process executes exactly this file, not whatever Path names later.
	// Required.
	Binary *os.File
	// Args are the arguments after argv[0].
	Args []string
	// Env is the plugin's whole environment.
	Env []string
	// Sockets are unix sockets of the host the plugin may connect to (its
	// Workload API socket), each at its Target inside (under RunDir, by
	// convention).
	Sockets []Bind
	// WritableDirs are host directories the plugin may create files and
	// sockets in (the go-plugin socket directory), each at its Target
	// inside. Where Landlock is in force it can make no symbolic link
	// there; the host must still not follow one it finds.
	WritableDirs []Bind
	// Stdout and Stderr receive the plugin's output. Required.
	Stdout, Stderr *os.File
	// Owner tags the process so that [Sweep] can find it after a crash
	// of the host that started it (for instance a digest of the data
	// directory).
	Owner string
	// Forward, when LoopbackPorts are allowed, is called for each
	// connection the plugin opens to one of them; nil dials the host's
	// 127.0.0.1:<port>.
	Forward func(port uint16) (io.ReadWriteCloser, error)
}

// RunDir is the directory, inside a sandbox, that holds what the host
// gives the plugin: its binary (RunDir/bin/<name>) and, by convention, its
// sockets. No path of the host appears in a sandbox except the system's
// library directories and the policy's read-only paths.
const RunDir = "/run/agenthost"

// Bind is a host path and where the plugin sees it. At LevelNone the
// plugin sees the host's paths, so Target is not used.
type Bind struct {
	Source string // on the host, absolute
	Target string // inside the sandbox, absolute
}

// Contained reports whether the plugin runs in a sandbox of its own, where
// it sees Bind targets rather than host paths.
func (p Policy) Contained() bool { return p.level() != LevelNone }

// Protections says which protections are in force for a process (or would
// be, on this host, for a policy).
type Protections struct {
	Level Level `json:"level"`
	// Namespaces are the Linux namespaces the process has of its own.
	Namespaces []string `json:"namespaces,omitempty"`
	// NoNewPrivs: the process and its children cannot gain privileges.
	NoNewPrivs bool `json:"no_new_privs,omitempty"`
	// NoCapabilities: every capability is dropped.
	NoCapabilities bool `json:"no_capabilities,omitempty"`
	// Seccomp: the system-call filter is installed.
	Seccomp bool `json:"seccomp,omitempty"`
	// Landlock is the Landlock ABI version in force, 0 for none.
	Landlock int `json:"landlock,omitempty"`
	// Limits says how memory, processes and CPU are limited: "cgroup"
	// or "rlimit".
	Limits string `json:"limits,omitempty"`
	// DiesWithHost: the process is killed when the host process exits.
	DiesWithHost bool `json:"dies_with_host,omitempty"`
	// Missing lists the protections this host cannot give, with why.
	Missing []string `json:"missing,omitempty"`
}

// String is a one-line summary, e.g. "strict: userns mntns pidns netns
// ipcns utsns, seccomp, landlock v7, no caps, no_new_privs, rlimits".
func (p Protections) String() string {
	if p.Level == LevelNone {
		return "none: not contained"
	}
	var parts []string
	if len(p.Namespaces) > 0 {
		parts = append(parts, "namespaces "+strings.Join(p.Namespaces, ","))
	}
	if p.Seccomp {
		parts = append(parts, "seccomp")
	}
	if p.Landlock > 0 {
		parts = append(parts, fmt.Sprintf("landlock v%d", p.Landlock))
	} else {
		parts = append(parts, "no landlock")
	}
	if p.NoCapabilities {
		parts = append(parts, "no capabilities")
	}
	if p.NoNewPrivs {
		parts = append(parts, "no_new_privs")
	}
	if p.Limits != "" {
		parts = append(parts, "limits by "+p.Limits)
	}
	if p.DiesWithHost {
		parts = append(parts, "dies with host")
	}
	return string(p.Level) + ": " + strings.Join(parts, ", ")
}
