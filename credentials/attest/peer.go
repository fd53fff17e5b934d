package attest

// Peer is the process at the other end of a unix socket connection, as
// the kernel recorded it when the connection was made.
type Peer struct {
	PID int
	UID int
	GID int
}
