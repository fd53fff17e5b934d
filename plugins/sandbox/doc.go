// Package sandbox contains plugin processes: an agent or tool plugin is
// untrusted code, and the host's promise (no credential reaches a plugin,
// every call goes through the mediator) holds only if the plugin cannot
// reach around the host. It needs no root, no setuid helper and nothing
// installed beside the host binary, and it imports nothing else of
// agenthost's.
//
// # How a plugin is started
//
// [Start] with [LevelStrict] re-executes the running binary
// (/proc/self/exe) under the name "agenthost-sandbox", in new user, mount,
// PID, network, IPC, UTS and cgroup namespaces (the standard library's
// SysProcAttr creates them at clone time; the user namespace maps only
// the host's own uid and gid, to root inside). This package's init
// function recognizes that name and runs the helper instead of the
// program's main, so every binary that links the package can contain
// plugins. The helper, PID 1 of the new PID namespace, then:
//
//  1. builds the plugin's file system on a tmpfs: the plugin binary
//     (read-only, the very file the host hashed: the helper checks that
//     the path still names the inode of the descriptor the host passed),
//     the loader and libraries of a dynamically linked binary (and the
//     program directories for a script), the extra read-only paths the
//     policy lists, the plugin's Workload API socket, the go-plugin socket
//     directory (writable), /dev/null, zero, full, random and urandom, a
//     /proc of the new PID namespace (pid directories only), and a private,
//     size-capped /tmp; it then pivots into it and detaches the host's
//     file system, so no data directory, home directory or host /proc is
//     reachable at all;
//  2. brings up lo, the only interface of its network namespace: the only
//     ways out are the unix sockets bound in (the go-plugin channel to the
//     host and the Workload API); a loopback port the policy allows is
//     relayed by the host (see [Policy.LoopbackPorts]);
//  3. makes itself non-dumpable and sets rlimits (data size, processes,
//     open files, no core dumps, no locked memory);
//  4. on its own locked OS thread, empties every capability set and the
//     bounding set, sets no_new_privs, applies a Landlock ruleset (where
//     the kernel has Landlock: read the view, execute only the binary and
//     libraries, write only /tmp and the writable directories (no
//     symbolic link in those, which the host shares), TCP connect
//     only to allowed ports, bind nothing, signals and abstract sockets
//     scoped to the sandbox) and a seccomp filter (ptrace, mount and
//     namespaces, kernel modules and kexec, keyrings, BPF and perf, clock
//     and host settings, file handles, io_uring, other socket families:
//     refused with an error the plugin can read);
//  5. forks and executes the plugin from that thread, so the plugin
//     inherits every restriction of it and none of the helper's file
//     descriptors (whatever the host process left inheritable included),
//     then reaps children and passes signals on until the plugin exits,
//     and exits with its status.
//
// The helper's other threads never run plugin code and keep what they
// need to relay ports. Landlock is applied with the raw system calls
// rather than through go-landlock, whose enforcement on every thread
// links libpsx into the whole host under cgo (it wraps pthread_create);
// the seccomp filter is built with go-seccomp-bpf.
//
// # Dying with the host
//
// The helper gets SIGKILL when the host exits (PR_SET_PDEATHSIG, set at
// clone time, out of the plugin's reach), and also exits when a pipe from
// the host reaches end of file. When PID 1 of a PID namespace exits, the
// kernel kills every other process in it, so nothing the plugin started
// survives either. [Sweep] kills what a crashed host may still have left,
// found by the owner tag in the helper's command line, and removes its
// empty control groups.
//
// # Limits
//
// Memory, processes and CPU are limited by a control group per sandbox
// where the host may create one (cgroup v2 in a delegated group, or the
// memory and pids hierarchies of cgroup v1), and by rlimits always. A
// plugin that forks or allocates past its limit fails those calls or dies;
// the host sees a crashed plugin and restarts it like any other.
//
// # Levels and honesty
//
// [Probe] starts a sandbox around the running binary, which checks from
// the inside that it holds no capability, has no_new_privs and a seccomp
// filter, and cannot create a user namespace. [Protections] says exactly
// what is in force for a process, and what is missing and why (no
// Landlock, no control group, no /proc). Where the kernel refuses user
// namespaces (kernel.unprivileged_userns_clone=0, user.max_user_namespaces
// =0, Ubuntu's AppArmor restriction), Start fails with [ErrUnsupported]
// and a hint; the host then refuses to start the plugin.
//
// [LevelNone] starts the plugin as a plain child in its own process group,
// killed with the host, without stdin, and contains nothing. On systems
// other than Linux it is the only level: no plugin is contained there.
package sandbox
