package attest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxStatusSize bounds how much of /proc/<pid>/status is read; the kernel
// writes about 1.5 KiB.
const maxStatusSize = 64 << 10

// deletedSuffix is what the kernel appends to the target of
// /proc/<pid>/exe when the executable has no name on disk any more.
const deletedSuffix = " (deleted)"

// collect gathers evidence from the proc filesystem. The directory
// /proc/<pid> is opened once and every later file is opened relative to it:
// that handle stays bound to the process it was opened for, so once the
// process exits every lookup through it fails, even if the pid is reused.
func (c *Collector) collect(ctx context.Context, req Request) (Evidence, error) {
	pid := req.PID
	dir := filepath.Join(c.procRoot, strconv.Itoa(pid))
	dirfd, err := openat(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return Evidence{}, fmt.Errorf("%w: pid %d (%s does not exist)", ErrNoProcess, pid, dir)
		}
		return Evidence{}, fmt.Errorf("attest: collect pid %d: %w", pid, &fs.PathError{Op: "open", Path: dir, Err: err})
	}
	defer unix.Close(dirfd)
	p := procDir{fd: dirfd, path: dir, pid: pid}

	first, err := p.status()
	if err != nil {
		return Evidence{}, err
	}
	if first.tgid != pid {
		return Evidence{}, fmt.Errorf("%w: pid %d is a thread of process %d", ErrInvalidRequest, pid, first.tgid)
	}
	if first.exited() {
		return Evidence{}, fmt.Errorf("%w: pid %d is in state %c and runs no program", ErrProcessExited, pid, first.state)
	}

	exe, err := p.openExe()
	if err != nil {
		return Evidence{}, err
	}
	defer exe.Close()
	path, err := p.readExeLink()
	if err != nil {
		return Evidence{}, err
	}
	sum, info, err := hashFile(ctx, exe, fmt.Sprintf("executable %s of pid %d", path, pid))
	if err != nil {
		return Evidence{}, err
	}
	image, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return Evidence{}, fmt.Errorf("attest: collect pid %d: no file status for %s", pid, path)
	}
	unlinked := image.Nlink == 0
	if unlinked {
		path = strings.TrimSuffix(path, deletedSuffix)
	}

	if c.afterHash != nil {
		c.afterHash()
	}

	// The process must still be the one that was examined: alive, with
	// the same ids, running the same image.
	last, err := p.status()
	if err != nil {
		return Evidence{}, err
	}
	if last.exited() {
		return Evidence{}, fmt.Errorf("%w: pid %d entered state %c", ErrProcessExited, pid, last.state)
	}
	if last.uid != first.uid || last.gid != first.gid {
		return Evidence{}, fmt.Errorf("%w: pid %d changed from uid %d gid %d to uid %d gid %d",
			ErrProcessChanged, pid, first.uid, first.gid, last.uid, last.gid)
	}
	var now unix.Stat_t
	if err := fstatat(dirfd, "exe", &now); err != nil {
		return Evidence{}, p.exeError("stat", err)
	}
	if uint64(now.Dev) != uint64(image.Dev) || uint64(now.Ino) != uint64(image.Ino) {
		return Evidence{}, fmt.Errorf("%w: pid %d executed another program while %s was hashed",
			ErrProcessChanged, pid, path)
	}

	return Evidence{
		Path:     path,
		SHA256:   sum,
		PID:      pid,
		UID:      first.uid,
		GID:      first.gid,
		Size:     info.Size(),
		ModTime:  info.ModTime().UTC(),
		Unlinked: unlinked,
	}, nil
}

// procDir is an open /proc/<pid> directory.
type procDir struct {
	fd   int
	path string
	pid  int
}

// status reads and parses the process's status file. A process that is
// gone is reported as ErrProcessExited: the directory itself was found.
func (p procDir) status() (procStatus, error) {
	name := filepath.Join(p.path, "status")
	fd, err := openat(p.fd, "status", unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return procStatus{}, fmt.Errorf("%w: pid %d (%s is gone)", ErrProcessExited, p.pid, name)
		}
		return procStatus{}, fmt.Errorf("attest: collect pid %d: %w", p.pid, &fs.PathError{Op: "open", Path: name, Err: err})
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStatusSize+1))
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return procStatus{}, fmt.Errorf("%w: pid %d (%s is gone)", ErrProcessExited, p.pid, name)
		}
		return procStatus{}, fmt.Errorf("attest: collect pid %d: %w", p.pid, err)
	}
	if len(data) > maxStatusSize {
		return procStatus{}, fmt.Errorf("attest: parse %s: longer than %d bytes", name, maxStatusSize)
	}
	st, err := parseStatus(data)
	if err != nil {
		return procStatus{}, fmt.Errorf("attest: parse %s: %w", name, err)
	}
	return st, nil
}

// openExe opens the executable the process runs, through the exe link.
func (p procDir) openExe() (*os.File, error) {
	fd, err := openat(p.fd, "exe", unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return nil, p.exeError("open", err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(p.path, "exe")), nil
}

// readExeLink returns the target of the exe link as the kernel reports it.
func (p procDir) readExeLink() (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(p.fd, "exe", buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", p.exeError("readlink", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", fmt.Errorf("attest: collect pid %d: target of %s is longer than %d bytes",
				p.pid, filepath.Join(p.path, "exe"), size)
		}
	}
}

// exeError explains a failure to reach the exe link. The link is missing
// for a process that exited (or is a zombie) and for a kernel thread;
// the status file tells them apart.
func (p procDir) exeError(op string, err error) error {
	name := filepath.Join(p.path, "exe")
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("%w: pid %d (%s is gone)", ErrProcessExited, p.pid, name)
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("attest: collect pid %d: %w", p.pid, &fs.PathError{Op: op, Path: name, Err: err})
	}
	st, serr := p.status()
	if serr != nil {
		return serr
	}
	if st.exited() {
		return fmt.Errorf("%w: pid %d entered state %c", ErrProcessExited, p.pid, st.state)
	}
	return fmt.Errorf("%w: pid %d (%s: %w)", ErrNoExecutable, p.pid, name, &fs.PathError{Op: op, Path: name, Err: err})
}

// procStatus is what is used of /proc/<pid>/status (proc(5)).
type procStatus struct {
	state byte
	tgid  int
	uid   int
	gid   int
}

// exited reports a zombie or dead process.
func (s procStatus) exited() bool { return s.state == 'Z' || s.state == 'X' }

// parseStatus reads the State, Tgid, Uid and Gid lines of a status file.
// Uid and Gid list the real, effective, saved and filesystem ids; the
// effective ones are kept.
func parseStatus(data []byte) (procStatus, error) {
	var (
		st                                    procStatus
		seenState, seenTgid, seenUID, seenGID bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxStatusSize)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch key {
		case "State":
			err = once(&seenState, key)
			if err == nil {
				if value == "" {
					err = errors.New("empty State line")
				} else {
					st.state = value[0]
				}
			}
		case "Tgid":
			err = once(&seenTgid, key)
			if err == nil {
				st.tgid, err = parseID(key, value)
			}
		case "Uid":
			err = once(&seenUID, key)
			if err == nil {
				st.uid, err = parseIDs(key, value)
			}
		case "Gid":
			err = once(&seenGID, key)
			if err == nil {
				st.gid, err = parseIDs(key, value)
			}
		}
		if err != nil {
			return procStatus{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return procStatus{}, err
	}
	for _, f := range []struct {
		seen bool
		key  string
	}{{seenState, "State"}, {seenTgid, "Tgid"}, {seenUID, "Uid"}, {seenGID, "Gid"}} {
		if !f.seen {
			return procStatus{}, fmt.Errorf("no %s line", f.key)
		}
	}
	return st, nil
}

// once marks a status key seen and fails if it was seen before.
func once(seen *bool, key string) error {
	if *seen {
		return fmt.Errorf("more than one %s line", key)
	}
	*seen = true
	return nil
}

// parseIDs parses a Uid or Gid value (real, effective, saved, filesystem)
// and returns the effective id.
func parseIDs(key, value string) (int, error) {
	fields := strings.Fields(value)
	if len(fields) != 4 {
		return 0, fmt.Errorf("%s line %q has %d fields, want 4", key, value, len(fields))
	}
	var effective int
	for i, f := range fields {
		id, err := parseID(key, f)
		if err != nil {
			return 0, err
		}
		if i == 1 {
			effective = id
		}
	}
	return effective, nil
}

// parseID parses one id: a decimal that fits in 32 bits, as the kernel
// writes them.
func parseID(key, s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s value %q is not a 32-bit unsigned integer", key, s)
	}
	return int(n), nil
}

// openat opens name relative to dirfd, retrying on EINTR.
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// fstatat stats name relative to dirfd, following a final link, retrying
// on EINTR.
func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, 0)
		if err != unix.EINTR {
			return err
		}
	}
}
