package workloadapi

import "errors"

// Sentinel errors returned by [Server] and [Upstream] methods; test them
// with errors.Is.
var (
	// ErrUnsupportedPlatform reports a platform where the peer credentials
	// of a unix socket connection cannot be read, so no caller can be
	// identified.
	ErrUnsupportedPlatform = errors.New("workloadapi: unsupported platform: peer credentials of unix sockets are read on linux only")

	// ErrServerClosed reports a call on a server whose Run has returned.
	ErrServerClosed = errors.New("workloadapi: server closed")

	// ErrAlreadyRunning reports a second call of Run.
	ErrAlreadyRunning = errors.New("workloadapi: server already running")

	// ErrWorkloadExists reports an AddWorkload for an ID that already has a
	// socket.
	ErrWorkloadExists = errors.New("workloadapi: workload already registered")

	// ErrUnknownWorkload reports a RemoveWorkload for an ID without a
	// socket.
	ErrUnknownWorkload = errors.New("workloadapi: unknown workload")

	// ErrInsecureSocketDir reports a socket directory that is not a
	// directory owned by this process's user with mode 0700 or stricter.
	ErrInsecureSocketDir = errors.New("workloadapi: insecure socket directory")

	// ErrNotSocket reports a socket path where a file that is not a socket
	// exists; it is never removed.
	ErrNotSocket = errors.New("workloadapi: path exists and is not a socket")

	// ErrSocketInUse reports a socket path that another workload of this
	// server uses or on which another process is listening.
	ErrSocketInUse = errors.New("workloadapi: socket in use")

	// ErrNoRegistrationEntry reports a SPIFFE ID for which the upstream
	// Workload API hands out no SVID: no registration entry of the
	// upstream (a SPIRE server) names it with selectors matching this
	// process.
	ErrNoRegistrationEntry = errors.New("workloadapi: no registration entry")

	// ErrUpstreamNoWIT reports an upstream Workload API that does not
	// implement the WIT-SVID profile (it answers FetchWITSVID or
	// FetchWITBundles with Unimplemented).
	ErrUpstreamNoWIT = errors.New("workloadapi: upstream does not support WIT-SVIDs")

	// ErrUpstreamNotReady reports a call on an [Upstream] that has not yet
	// received its first snapshot: Start has not been called or has not
	// returned nil.
	ErrUpstreamNotReady = errors.New("workloadapi: upstream not ready")

	// ErrUpstreamClosed reports a call on an [Upstream] after Close.
	ErrUpstreamClosed = errors.New("workloadapi: upstream closed")

	// ErrInvalidJWTSVID reports a JWT-SVID that [Upstream.ValidateJWTSVID]
	// refuses; the error says why.
	ErrInvalidJWTSVID = errors.New("workloadapi: jwt-svid does not validate against the upstream bundle")
)
