package workloadapi

import (
	"crypto"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"

	"github.com/agenthost/agenthost/credentials/attest"
)

// Workload is one socket of the Workload API and the identity it serves.
type Workload struct {
	// ID is the SPIFFE ID the SVIDs issued on this socket name, and its
	// default identity. It must belong to the authority's trust domain.
	ID spiffeid.ID

	// ExtraIDs are further SPIFFE IDs served on the same socket, as a SPIRE
	// agent serves a workload that several registration entries match:
	// FetchX509SVID then streams one X.509-SVID per ID, ID first (the
	// default), and FetchJWTSVID and FetchWITSVID answer for the requested
	// spiffe_id among them, or for all of them when none is requested.
	// Each must belong to the authority's trust domain, differ from ID and
	// the others, and not be served by another socket. Empty for an agent
	// plugin, whose socket serves its own identity only.
	ExtraIDs []spiffeid.ID

	// SocketPath is the absolute path of the unix socket. Its directory
	// must exist, belong to this process's user and have mode 0700 or
	// stricter.
	SocketPath string

	// AllowedUIDs are the user IDs whose processes may use the socket.
	// Empty means only the user this process runs as.
	AllowedUIDs []int

	// PeerCheck, if set, is called with the credentials of each connecting
	// process after the uid check; an error refuses the connection's calls
	// with PermissionDenied and the error's text. It may check, for example,
	// that the pid belongs to the plugin process.
	PeerCheck func(Peer) error
}

// Peer holds the credentials of the process at the other end of a socket
// connection, as the kernel recorded them when the process connected.
type Peer = attest.Peer

// SVIDKind names a kind of SVID in an [IssueEvent].
type SVIDKind string

// SVID kinds.
const (
	KindX509SVID SVIDKind = "x509-svid"
	KindJWTSVID  SVIDKind = "jwt-svid"
	KindWITSVID  SVIDKind = "wit-svid"
)

// IssueEvent describes one SVID the server obtained from the authority for a
// workload.
type IssueEvent struct {
	// Workload is the SPIFFE ID the SVID names.
	Workload spiffeid.ID
	// Kind is the kind of SVID.
	Kind SVIDKind
	// Peer is the caller the SVID was issued for, or nil when the server
	// issued it on its own (registration, rotation).
	Peer *Peer
	// Serial is the X.509-SVID's serial number in hexadecimal; empty for
	// other kinds.
	Serial string
	// ExpiresAt is the SVID's expiry.
	ExpiresAt time.Time
}

// RefuseEvent describes a connection to a workload socket whose caller
// may not use it.
type RefuseEvent struct {
	// Workload is the SPIFFE ID the socket serves.
	Workload spiffeid.ID
	// SocketPath is the socket's path.
	SocketPath string
	// Peer holds the caller's credentials; it is zero when they could
	// not be read.
	Peer Peer
	// Reason says why the caller was refused (the uid check, the
	// workload's PeerCheck, or unreadable credentials). Its text is what
	// the caller's calls fail with.
	Reason error
}

// workload is the server's state for one registered [Workload]. Its SVID
// maps are guarded by Server.mu.
type workload struct {
	id spiffeid.ID
	// ids are the IDs the socket serves: id first, then Workload.ExtraIDs.
	ids        []spiffeid.ID
	socketPath string
	allowed    map[int]struct{}
	peerCheck  func(Peer) error

	ln   *net.UnixListener
	grpc *grpc.Server
	// done is closed when the workload is removed; its streams end.
	done chan struct{}

	serving bool
	// x509 holds the current X.509-SVID of every ID in ids.
	x509 map[spiffeid.ID]*x509Entry
	// wit holds the current WIT-SVID of the IDs a caller has asked for one.
	wit map[spiffeid.ID]*witEntry
}

// serves reports whether id is one of the IDs the socket serves.
func (w *workload) serves(id spiffeid.ID) bool {
	return slices.Contains(w.ids, id)
}

// x509Entry is a workload's current X.509-SVID in wire form.
type x509Entry struct {
	svid    *x509svid.SVID
	certDER []byte // chain, leaf first, concatenated DER
	keyDER  []byte // PKCS #8
}

// witEntry is a workload's current WIT-SVID.
type witEntry struct {
	token     string
	key       crypto.Signer
	keyJWK    string
	issuedAt  time.Time
	expiresAt time.Time
}

// admit decides whether the process p may use the workload's socket.
func (w *workload) admit(p Peer) error {
	if _, ok := w.allowed[p.UID]; !ok {
		return fmt.Errorf("uid %d may not use the workload api socket of %s", p.UID, w.id)
	}
	if w.peerCheck != nil {
		if err := w.peerCheck(p); err != nil {
			return fmt.Errorf("peer check for pid %d on the socket of %s: %w", p.PID, w.id, err)
		}
	}
	return nil
}

// rotationDue reports whether a credential valid from notBefore to notAfter
// should be replaced at now: from half its lifetime on (DESIGN.md §5,
// "rotated at half life"). A credential with an empty or inverted validity
// window is always due.
func rotationDue(now, notBefore, notAfter time.Time) bool {
	if !notAfter.After(notBefore) {
		return true
	}
	half := notBefore.Add(notAfter.Sub(notBefore) / 2)
	return !now.Before(half)
}
