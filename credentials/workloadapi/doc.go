// Package workloadapi serves the SPIFFE Workload API (SPECS.md §10.6) to the
// agent plugins agenthost hosts, one unix socket per workload.
//
// It owns the sockets, the per-connection identification of the caller and
// the delivery of SVIDs and bundles. Keys and signing belong to the
// trust-domain CA, reached through the narrow [Authority] interface, which
// credentials/ca implements.
//
// # Identification
//
// A caller is identified only by the socket it connected to: every socket is
// bound to one [Workload] and answers for that workload's SPIFFE ID alone.
// The peer credentials of each connection (uid, gid, pid, read with
// SO_PEERCRED when the connection is accepted) are checked against
// [Workload.AllowedUIDs] and [Workload.PeerCheck]; a caller that fails the
// check gets PermissionDenied on every call. Each refused connection is
// reported once to [Config.OnRefuse] as a [RefuseEvent] (workload, socket,
// caller's credentials, reason), so the host can audit attempts on sockets
// that are not the caller's; the server itself logs them at debug level
// only, so that a caller looping on connect cannot flood the log. Every call
// must carry the metadata "workload.spiffe.io: true", or it gets
// InvalidArgument.
//
// # Delivery
//
// The server keeps each workload's current X.509-SVID and re-issues it at
// half its lifetime ([Server.Tick], driven by [Server.Run]) and whenever the
// [Authority] reports a key or bundle change. Every stream
// (FetchX509SVID, FetchX509Bundles, FetchJWTBundles, FetchWITSVID,
// FetchWITBundles) sends a full snapshot at once and again after each change.
// FetchJWTSVID and ValidateJWTSVID are unary and go to the authority on
// every call.
//
// A stock go-spiffe client (NewX509Source, NewJWTSource, NewBundleSource,
// Client.FetchJWTSVID, Client.ValidateJWTSVID) works against it unmodified.
package workloadapi
