//go:build !linux

package localapi

import (
	"fmt"
	"net"
	"runtime"
)

// readPeer always fails: peer credentials are read on Linux only, so every
// connection is refused elsewhere.
func readPeer(net.Conn) (Peer, error) {
	return Peer{}, fmt.Errorf("localapi: peer credentials of unix sockets are read on linux only, not %s", runtime.GOOS)
}
