//go:build !linux

package attest

import (
	"fmt"
	"net"
	"runtime"
)

// PeerOf always fails: peer credentials of unix sockets are read on Linux
// only.
func PeerOf(net.Conn) (Peer, error) {
	return Peer{}, fmt.Errorf("%w: peer credentials of unix sockets on %s", ErrUnsupported, runtime.GOOS)
}
