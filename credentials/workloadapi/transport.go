package workloadapi

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"

	"github.com/agenthost/agenthost/credentials/attest"
)

// authType is the AuthType of the [credentials.AuthInfo] attached to every
// connection of a workload socket.
const authType = "spiffe-workload-socket"

// authInfo is what the handshake of a workload socket learns about a
// connection: the workload the socket belongs to, the peer credentials and,
// when the peer may not use the socket, why not. Handlers read it with
// peer.FromContext.
type authInfo struct {
	credentials.CommonAuthInfo
	workload *workload
	peer     Peer
	denied   error
}

// AuthType implements [credentials.AuthInfo].
func (authInfo) AuthType() string { return authType }

// socketCredentials are the transport credentials of one workload socket.
// They add no encryption (SPECS.md §10.6: no TLS on the Workload Endpoint);
// their handshake reads the peer credentials of the accepted connection and
// decides whether the peer may use the socket. A refused peer keeps its
// connection so that each of its calls ends in PermissionDenied rather than
// a transport error.
type socketCredentials struct {
	w *workload
	// refused, if set, is told about every refused connection.
	refused func(RefuseEvent)
}

var _ credentials.TransportCredentials = socketCredentials{}

// ServerHandshake implements [credentials.TransportCredentials].
func (c socketCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info := authInfo{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		workload:       c.w,
	}
	p, err := attest.PeerOf(conn)
	if err != nil {
		info.denied = fmt.Errorf("caller cannot be identified: %w", err)
	} else {
		info.peer = p
		info.denied = c.w.admit(p)
	}
	if info.denied != nil && c.refused != nil {
		c.refused(RefuseEvent{Workload: c.w.id, SocketPath: c.w.socketPath, Peer: info.peer, Reason: info.denied})
	}
	return conn, info, nil
}

// ClientHandshake implements [credentials.TransportCredentials]; these
// credentials are for the server side only.
func (socketCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("workloadapi: socket credentials are for servers only")
}

// Info implements [credentials.TransportCredentials].
func (socketCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}

// Clone implements [credentials.TransportCredentials].
func (c socketCredentials) Clone() credentials.TransportCredentials { return c }

// OverrideServerName implements [credentials.TransportCredentials].
func (socketCredentials) OverrideServerName(string) error { return nil }
