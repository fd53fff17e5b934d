//go:build linux

package sandboxtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Try makes every attempt against t and returns the outcomes.
func Try(t Targets) []Result {
	var out []Result
	add := func(attempt, target string, err error) {
		r := Result{Attempt: attempt, Target: target, Escaped: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	for _, f := range t.Files {
		_, err := os.ReadFile(f)
		add("read file", f, err)
	}
	for _, d := range t.Dirs {
		_, err := os.ReadDir(d)
		add("list directory", d, err)
	}
	for _, d := range t.WriteDirs {
		name := filepath.Join(d, "escape-"+randomName())
		err := os.WriteFile(name, []byte("escaped"), 0o644)
		add("write file", name, err)
	}
	for _, f := range t.WriteFiles {
		fh, err := os.OpenFile(f, os.O_WRONLY, 0)
		if err == nil {
			fh.Close()
		}
		add("open for writing", f, err)
	}
	for _, d := range t.SharedDirs {
		name := filepath.Join(d, "escape-"+randomName())
		add("plant a symbolic link where the host looks", name, os.Symlink("/", name))
	}
	for _, fd := range t.Descriptors {
		var b [1]byte
		_, err := unix.Pread(fd, b[:], 0)
		add("read through a descriptor the host left open", "fd "+strconv.Itoa(fd), err)
	}
	if pid := t.HostPID; pid > 0 {
		p := strconv.Itoa(pid)
		_, err := os.ReadFile("/proc/" + p + "/environ")
		add("read the host's environment", "/proc/"+p+"/environ", err)
		_, err = os.ReadFile("/proc/" + p + "/cmdline")
		add("see the host process", "/proc/"+p, err)
		add("signal the host", "pid "+p, unix.Kill(pid, 0))
		// PTRACE_SEIZE attaches without stopping the tracee; the
		// attachment ends when this process exits.
		add("ptrace the host", "pid "+p, unix.PtraceSeize(pid))
	}
	add("list processes beyond the sandbox", "/proc", otherProcesses())
	if os.Getppid() == 1 {
		// Inside a sandbox, pid 1 is its init.
		add("ptrace the sandbox's init", "pid 1", unix.PtraceSeize(1))
		fh, err := os.Open("/proc/1/mem")
		if err == nil {
			fh.Close()
		}
		add("read the sandbox init's memory", "/proc/1/mem", err)
	}
	for _, s := range t.Sockets {
		c, err := net.DialTimeout("unix", s, 2*time.Second)
		if err == nil {
			c.Close()
		}
		add("connect to a host socket", s, err)
	}
	for _, s := range t.HTTPSockets {
		add("use an HTTP API over a host socket", s, httpOverUnix(s, t.HTTPPath))
	}
	for _, a := range t.TCP {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err == nil {
			c.Close()
		}
		add("open a TCP connection", a, err)
	}
	add("see a network interface other than loopback", "", otherInterfaces())
	// These would change the state of an uncontained process, so they
	// are made so that they cannot succeed: what matters is whether the
	// kernel refuses them as not permitted, or gets as far as the
	// arguments.
	add("create a user namespace", "", notPermitted(unix.Unshare(unix.CLONE_NEWUSER|unix.CLONE_NEWNS|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND)))
	add("mount a file system", "", notPermitted(unix.Mount("tmpfs", "/nonexistent/escape", "tmpfs", 0, "")))
	add("load a kernel module", "", notPermitted(unix.FinitModule(-1, "", 0)))
	for _, fam := range []struct {
		name string
		af   int
		typ  int
	}{{"AF_PACKET", unix.AF_PACKET, unix.SOCK_RAW}, {"AF_VSOCK", unix.AF_VSOCK, unix.SOCK_STREAM}, {"AF_ALG", unix.AF_ALG, unix.SOCK_SEQPACKET}} {
		fd, err := unix.Socket(fam.af, fam.typ, 0)
		if err == nil {
			unix.Close(fd)
		}
		add("open a socket", fam.name, err)
	}
	_, err := unix.KeyctlJoinSessionKeyring("escape")
	add("use the kernel keyring", "", err)
	add("gain a capability", "", gainCapability())
	return out
}

// notPermitted keeps err when it says the call was not permitted, and
// reports anything else (the kernel got to the arguments) as success.
func notPermitted(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return err
	}
	return nil
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// otherProcesses fails unless more processes are visible than a sandbox
// of one plugin holds: its init and the plugin's own processes, all
// children of init.
func otherProcesses() error {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var foreign []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		if !descendsFromInit(pid) {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) == 0 {
		return errors.New("only the sandbox's own processes are visible")
	}
	return nil // foreign processes are visible: escaped
}

func descendsFromInit(pid int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true // gone since listed
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(fields[1]); err != nil {
			return false
		}
		if pid == 0 {
			return false // parent outside this PID namespace
		}
	}
	return pid == 1
}

func otherInterfaces() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	var others []string
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			others = append(others, i.Name)
		}
	}
	if len(others) == 0 {
		return errors.New("only loopback")
	}
	return nil
}

func httpOverUnix(sock, path string) error {
	if path == "" {
		path = "/"
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Dial: func(string, string) (net.Conn, error) { return net.Dial("unix", sock) },
	}}
	resp, err := c.Get("http://local" + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// gainCapability fails unless the process holds, or can raise, any
// capability.
func gainCapability() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, d := range data {
		if d.Effective|d.Permitted != 0 {
			return nil
		}
	}
	data[0].Effective, data[0].Permitted = 1<<unix.CAP_SYS_ADMIN, 1<<unix.CAP_SYS_ADMIN
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	return nil
}
