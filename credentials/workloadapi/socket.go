package workloadapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// staleProbeTimeout bounds the connection attempt that tells a stale socket
// file from a live one. A stale socket refuses at once.
const staleProbeTimeout = 2 * time.Second

// listenSocket creates the unix socket at path with mode 0600. The parent
// directory must already exist, be owned by this process's user and have
// mode 0700 or stricter, so that no other user can reach the socket in the
// moment between its creation and its chmod. A stale socket file at path
// is replaced; any other kind of file is refused.
func listenSocket(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("workloadapi: socket path is empty")
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("workloadapi: socket path %q is not absolute", path)
	}
	path = filepath.Clean(path)
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("workloadapi: listen on %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("workloadapi: chmod socket %q: %w", path, err)
	}
	return ln, nil
}

func checkSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("workloadapi: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %q is not a directory", ErrInsecureSocketDir, dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %q has mode %#o, want 0700 or stricter", ErrInsecureSocketDir, dir, perm)
	}
	if owner, ok := fileOwner(fi); ok && owner != os.Geteuid() {
		return fmt.Errorf("%w: %q is owned by uid %d, not %d", ErrInsecureSocketDir, dir, owner, os.Geteuid())
	}
	return nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workloadapi: socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w: %q (%s)", ErrNotSocket, path, fi.Mode().Type())
	}
	if conn, err := net.DialTimeout("unix", path, staleProbeTimeout); err == nil {
		conn.Close()
		return fmt.Errorf("%w: a process is listening on %q", ErrSocketInUse, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("workloadapi: remove stale socket: %w", err)
	}
	return nil
}

// removeSocket removes the socket file at path if it is still a socket.
func removeSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("workloadapi: socket path: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("workloadapi: remove socket: %w", err)
	}
	return nil
}
