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
// bound to one [Workload] and answers for that workload's SPIFFE ID alone,
// or, when [Workload.ExtraIDs] lists more, for those IDs too, as a SPIRE
// agent answers a workload that several registration entries match: then
// FetchX509SVID streams one SVID per ID with [Workload.ID] first (the
// default identity), and FetchJWTSVID and FetchWITSVID answer for the
// requested spiffe_id among them (PermissionDenied for any other), or for
// all of them when none is requested. An agent plugin's socket serves its
// own ID only.
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
//
// An authority that is a [FederatingAuthority] also has the bundles of the
// trust domains it federates with served: in FetchX509SVID's
// federated_bundles and beside the trust domain's own bundle on the bundle
// streams.
//
// # Upstream
//
// Where a SPIRE deployment already issues identities, the host takes its
// own and its agents' SVIDs from the SPIRE agent's Workload API instead of
// running its own CA. The SPIRE server holds one registration entry for
// the host's ID (spiffe://td/host) and one per agent
// (spiffe://td/agent/<name>), all with selectors that match the host
// process, so the SPIRE agent streams every one of these SVIDs to the host.
// An [Upstream] connects to that socket with go-spiffe's client:
//
//	up, err := workloadapi.NewUpstream(workloadapi.UpstreamConfig{Addr: "unix:///run/spire/agent.sock"})
//	…
//	if err := up.Start(ctx); err != nil { … } // waits for the first snapshot
//	defer up.Close()
//	srv, err := workloadapi.New(workloadapi.Config{Authority: up})
//
// [Upstream.Start] waits, up to [UpstreamConfig.StartTimeout], for the
// X.509-SVIDs with their bundles, the JWT bundles and an answer on the
// WIT-SVID profile; without X.509-SVIDs or JWT bundles by then it fails
// with an error that names the upstream and what is missing. The upstream is then an [Authority]: the
// host's [Server] relays each agent's SVIDs to that agent's socket
// unchanged (NewX509SVID and NewWITSVID hand out the SVID the upstream
// gave for the ID; NewJWTSVID asks the upstream with the ID as spiffe_id),
// validates JWT-SVIDs locally against the upstream's JWT bundle, and
// serves the upstream's trust bundle and federated bundles. Any change
// upstream reaches the plugins at once through [Upstream.Subscribe]. An ID
// the upstream has no SVID for fails with [ErrNoRegistrationEntry]; if the
// upstream drops an entry later, the socket serving that ID answers
// PermissionDenied ("no identity issued") until the entry comes back. An
// upstream that answers the WIT-SVID profile with Unimplemented has no
// WIT-SVIDs; asking for one then fails with [ErrUpstreamNoWIT].
//
// All of the upstream's SVIDs must belong to one trust domain, which
// cannot change while the host runs. If the upstream goes away, go-spiffe's
// client reconnects with backoff; meanwhile the last snapshot is used, but
// the upstream hands out no SVID past its expiry (a socket keeps serving
// the SVID it has, as it does when the CA fails to re-issue).
package workloadapi
