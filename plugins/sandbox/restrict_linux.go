package sandbox

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// restrictThread drops every capability, sets no_new_privs, and applies
// Landlock (where the kernel has it) and the seccomp filter to the calling
// thread, which must be locked to its goroutine: the plugin is forked from
// it and inherits all of it. The helper's other threads keep none of these
// restrictions and never run plugin code.
func restrictThread(spec *helperSpec, st *helperStatus) error {
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	abi, err := applyLandlock(spec)
	if err != nil {
		return err
	}
	st.Landlock = abi
	if err := loadSeccomp(spec.Seccomp); err != nil {
		return err
	}
	return nil
}

// dropCapabilities empties the bounding and ambient sets and every set of
// the calling thread. A root process (root in the sandbox's user namespace
// only) that executes a program gets the bounding set as its permitted
// set, so with an empty bounding set the plugin starts with none.
func dropCapabilities() error {
	for c := 0; ; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) && c > 0 {
				break // past the last capability this kernel knows
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// probeMain runs inside a sandbox that [Probe] starts: it checks from the
// inside that the restrictions are in force.
func probeMain() int {
	var problems []string
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || v != 1 {
		problems = append(problems, "no_new_privs is not set")
	}
	if v, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0); err != nil || v != 2 {
		problems = append(problems, "no seccomp filter")
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		problems = append(problems, "capget: "+err.Error())
	} else {
		for _, d := range data {
			if d.Effective|d.Permitted|d.Inheritable != 0 {
				problems = append(problems, "capabilities are held")
				break
			}
		}
	}
	for c := 0; c < 64; c++ {
		v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break
		}
		if v == 1 {
			problems = append(problems, fmt.Sprintf("capability %d is in the bounding set", c))
			break
		}
	}
	if err := unix.Unshare(unix.CLONE_NEWUSER); err == nil {
		problems = append(problems, "a new user namespace could be created")
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, "sandbox probe:", problems)
		return 1
	}
	return 0
}

// Landlock access rights by the ABI version that introduced them.
const (
	llFSv1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	llFSv2 = llFSv1 | unix.LANDLOCK_ACCESS_FS_REFER
	llFSv3 = llFSv2 | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	llFSv5 = llFSv3 | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	// Rights that apply to a file (not a directory) rule.
	llFile = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

	llRead  = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	llWrite = llRead | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_FILE | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_SYM |
		unix.LANDLOCK_ACCESS_FS_REFER | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	// llShared is what the plugin may do in a directory the host shares
	// with it: no symbolic links, which the host would resolve in its own
	// file system.
	llShared = llWrite &^ unix.LANDLOCK_ACCESS_FS_MAKE_SYM
)

// landlockABI is the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// landlockHandled is what a ruleset handles at abi: every file system
// right the kernel knows, TCP bind and connect (ABI 4), and the scopes of
// abstract unix sockets and signals (ABI 6).
func landlockHandled(abi int) (fs, net, scoped uint64) {
	switch {
	case abi >= 5:
		fs = llFSv5
	case abi >= 3:
		fs = llFSv3
	case abi == 2:
		fs = llFSv2
	default:
		fs = llFSv1
	}
	if abi >= 4 {
		net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	}
	if abi >= 6 {
		scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
	}
	return fs, net, scoped
}

// landlockNetPortAttr is struct landlock_net_port_attr.
type landlockNetPortAttr struct {
	AllowedAccess uint64
	Port          uint64
}

const landlockRuleNetPort = 2

// applyLandlock restricts the calling thread to the sandbox's view: read
// everything visible, execute the plugin and its loader and libraries,
// write only to /tmp and the writable directories (where it may create no
// symbolic link), connect by TCP only to
// the forwarded ports, bind nothing, and signal or reach abstract sockets
// only within the sandbox. It returns the ABI version applied (0: the
// kernel has no Landlock).
func applyLandlock(spec *helperSpec) (int, error) {
	abi := landlockABI()
	if abi <= 0 {
		return 0, nil
	}
	fsRights, netRights, scoped := landlockHandled(abi)
	attr := unix.LandlockRulesetAttr{Handled_access_fs: fsRights, Handled_access_net: netRights, Scoped: scoped}
	// The size passed is the part of the struct this ABI knows.
	size := unsafe.Sizeof(attr.Handled_access_fs)
	if abi >= 4 {
		size += unsafe.Sizeof(attr.Handled_access_net)
	}
	if abi >= 6 {
		size += unsafe.Sizeof(attr.Scoped)
	}
	r, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return 0, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	ruleset := int(r)
	defer unix.Close(ruleset)

	addPath := func(path string, rights uint64) error {
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("landlock rule for %s: %w", path, err)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("landlock rule for %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			rights &= llFile
		}
		rights &= fsRights
		if rights == 0 {
			return nil
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: rights, Parent_fd: int32(fd)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&pb)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("landlock rule for %s: %w", path, errno)
		}
		return nil
	}
	if err := addPath("/", llRead); err != nil {
		return 0, err
	}
	if err := addPath("/tmp", llWrite); err != nil {
		return 0, err
	}
	for _, b := range spec.Binds {
		rights := uint64(llRead)
		switch {
		case b.Device:
			rights |= unix.LANDLOCK_ACCESS_FS_WRITE_FILE
		case b.Writable:
			rights = llShared
		}
		if b.Exec {
			rights |= unix.LANDLOCK_ACCESS_FS_EXECUTE
		}
		if err := addPath(b.Target, rights); err != nil {
			if b.Optional && errors.Is(err, unix.ENOENT) {
				continue
			}
			return 0, err
		}
	}
	if netRights != 0 {
		for _, port := range spec.Ports {
			np := landlockNetPortAttr{AllowedAccess: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, Port: uint64(port)}
			if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), landlockRuleNetPort,
				uintptr(unsafe.Pointer(&np)), 0, 0, 0); errno != 0 {
				return 0, fmt.Errorf("landlock rule for port %d: %w", port, errno)
			}
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0); errno != 0 {
		return 0, fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return abi, nil
}
