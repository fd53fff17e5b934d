package workloadapi

import (
	"fmt"
	"io/fs"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkPlatform reports whether peer credentials can be read here.
func checkPlatform() error { return nil }

// readPeer reads the credentials of the process at the other end of a unix
// socket connection with SO_PEERCRED (unix(7)). The kernel records them when
// the peer connects, so they name the process that opened the connection.
func readPeer(conn net.Conn) (Peer, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("workloadapi: connection of type %T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("workloadapi: read peer credentials: %w", err)
	}
	var (
		cred    *unix.Ucred
		credErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("workloadapi: read peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("workloadapi: read peer credentials: %w", credErr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// fileOwner returns the uid that owns the file described by fi.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
