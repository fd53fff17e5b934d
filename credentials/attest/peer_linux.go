package attest

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// PeerOf reads the credentials of the process at the other end of a unix
// socket connection with SO_PEERCRED (unix(7)). The kernel records them when
// the peer connects, so they name the process that opened the connection;
// its pid is as this process's PID namespace sees it (0 when the peer is
// not visible there).
func PeerOf(conn net.Conn) (Peer, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("attest: connection of type %T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("attest: read peer credentials: %w", err)
	}
	var (
		cred    *unix.Ucred
		credErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, fmt.Errorf("attest: read peer credentials: %w", err)
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("attest: read peer credentials: %w", credErr)
	}
	return Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}
