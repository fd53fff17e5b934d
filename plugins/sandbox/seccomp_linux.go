package sandbox

import (
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// seccompSpec is carried in the helper spec so that the host decides the
// filter; today it has no options.
type seccompSpec struct{}

// deniedSyscalls are the system calls no agent plugin needs: debugging
// and reading other processes, mounting and namespaces, kernel modules
// and kexec, the kernel keyring, BPF and perf, clock and host settings,
// swap and reboot, file handles (which open files by inode, beneath any
// mount), io_uring (whose operations bypass this filter), userfaultfd.
// Each fails with EPERM, so the plugin gets a clear error.
var deniedSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
	"fspick", "mount_setattr", "unshare", "setns",
	"init_module", "finit_module", "delete_module", "create_module", "query_module", "get_kernel_syms",
	"kexec_load", "kexec_file_load",
	"add_key", "request_key", "keyctl",
	"bpf", "perf_event_open", "userfaultfd", "fanotify_init", "lookup_dcookie",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "nfsservctl", "vhangup", "uselib",
	"ustat", "sysfs", "_sysctl", "syslog", "iopl", "ioperm", "vm86", "vm86old",
	"name_to_handle_at", "open_by_handle_at",
}

// enosysSyscalls fail with ENOSYS, so that a C library falls back to an
// older call the filter can inspect (clone3 passes its flags in memory)
// or to plain system calls (io_uring).
var enosysSyscalls = []string{"clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"}

// nsCloneFlags are clone(2) flags that would create namespaces.
const nsCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// allowedPersonality are the personality(2) values a program may set
// (the ones the OCI default profile admits): querying, and Linux with or
// without address-space randomization turned off.
var allowedPersonality = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// allowedFamilies are the socket families a plugin may open: unix sockets
// (its channel to the host), IPv4 and IPv6 (only loopback exists in its
// network namespace) and netlink (which Go uses to list interfaces).
var allowedFamilies = []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6, unix.AF_NETLINK}

// seccompPolicy builds the filter: everything is allowed except the calls
// above and a few argument patterns (namespace flags to clone, socket
// families other than the allowed ones, personality changes, terminal
// input injection).
func seccompPolicy() (seccomp.Policy, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return seccomp.Policy{}, fmt.Errorf("seccomp: %w", err)
	}
	known := func(names []string) []string {
		var out []string
		for _, n := range names {
			if _, ok := info.SyscallNames[n]; ok {
				out = append(out, n)
			}
		}
		return out
	}
	notIn := func(arg uint32, values []uint64) seccomp.ArgumentConditions {
		var c seccomp.ArgumentConditions
		for _, v := range values {
			c = append(c, seccomp.Condition{Argument: arg, Operation: seccomp.NotEqual, Value: v})
		}
		return c
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Names: known(deniedSyscalls), Action: seccomp.ActionErrno},
			{Names: known(enosysSyscalls), Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS)},
			{
				NamesWithCondtions: []seccomp.NameWithConditions{
					{Name: "clone", Conditions: seccomp.ArgumentConditions{
						{Argument: 0, Operation: seccomp.BitsSet, Value: nsCloneFlags}}},
					{Name: "personality", Conditions: notIn(0, allowedPersonality)},
					{Name: "ioctl", Conditions: seccomp.ArgumentConditions{
						{Argument: 1, Operation: seccomp.Equal, Value: unix.TIOCSTI}}},
					{Name: "ioctl", Conditions: seccomp.ArgumentConditions{
						{Argument: 1, Operation: seccomp.Equal, Value: unix.TIOCLINUX}}},
				},
				Action: seccomp.ActionErrno,
			},
			{
				NamesWithCondtions: []seccomp.NameWithConditions{
					{Name: "socket", Conditions: notIn(0, allowedFamilies)},
					{Name: "socketpair", Conditions: notIn(0, allowedFamilies)},
				},
				Action: seccomp.ActionErrno | seccomp.Action(unix.EAFNOSUPPORT),
			},
		},
	}, nil
}

// loadSeccomp installs the filter on the calling thread (no_new_privs is
// already set).
func loadSeccomp(seccompSpec) error {
	policy, err := seccompPolicy()
	if err != nil {
		return err
	}
	if err := seccomp.LoadFilter(seccomp.Filter{Policy: policy}); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}
