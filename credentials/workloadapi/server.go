package workloadapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
)

// DefaultTickInterval is how often Run calls Tick when Config.TickInterval
// is zero.
const DefaultTickInterval = 5 * time.Second

// Log attribute keys.
const (
	logKeyWorkload = "workload"
	logKeySocket   = "socket"
	logKeyKind     = "kind"
	logKeyExpires  = "expires_at"
	logKeyError    = "error"
	logKeyPeerUID  = "peer_uid"
	logKeyPeerPID  = "peer_pid"
	logKeyExtraIDs = "extra_ids"
)

// Config configures a [Server].
type Config struct {
	// Authority issues the SVIDs and provides the bundle: the
	// trust-domain CA, or an [Upstream] that relays another Workload
	// API's. Required.
	Authority Authority

	// Now is the clock for rotation decisions; nil means time.Now.
	Now func() time.Time

	// Logger receives the server's logs; nil means silent.
	Logger *slog.Logger

	// OnIssue, if set, is called after each SVID the server obtains from
	// the authority. It must not block.
	OnIssue func(context.Context, IssueEvent)

	// OnRefuse, if set, is called once for each connection to a workload
	// socket whose caller is refused: one the uid check or the workload's
	// PeerCheck rejects, or whose credentials cannot be read. It runs
	// while the connection is being accepted, on that connection's own
	// goroutine, so a slow hook delays only the refused caller; it may be
	// called concurrently. Every call on a refused connection fails with
	// PermissionDenied whatever the hook does.
	OnRefuse func(context.Context, RefuseEvent)

	// TickInterval is how often Run calls Tick; zero means
	// DefaultTickInterval.
	TickInterval time.Duration
}

// Server serves the SPIFFE Workload API (SPECS.md §10.6) on one unix socket
// per registered workload. Create it with [New], register workloads with
// [Server.AddWorkload] and serve them with [Server.Run].
type Server struct {
	auth     Authority
	now      func() time.Time
	log      *slog.Logger
	onIssue  func(context.Context, IssueEvent)
	onRefuse func(context.Context, RefuseEvent)
	tick     time.Duration

	// regMu serializes AddWorkload, RemoveWorkload and shutdown.
	regMu sync.Mutex
	// issueMu serializes the issuance of X.509- and WIT-SVIDs, so that a
	// tick and an authority notification never rotate the same SVID twice.
	issueMu sync.Mutex

	mu        sync.Mutex
	state     serverState
	workloads map[spiffeid.ID]*workload
	bundle    *bundleSnapshot
	// changed is closed and replaced after every change of an SVID or the
	// bundle; each stream waits on it and then sends a fresh snapshot.
	changed chan struct{}
	serveWG sync.WaitGroup
}

type serverState int

const (
	stateNew serverState = iota
	stateRunning
	stateClosed
)

// bundleSnapshot is the authority's bundle, and those of the trust domains
// it federates with, in the forms the RPCs send.
type bundleSnapshot struct {
	bundle *spiffebundle.Bundle
	encodedBundle
	// federated holds the federated trust domains' bundles, keyed by
	// trust domain; empty unless the authority is a FederatingAuthority.
	federated map[spiffeid.TrustDomain]*spiffebundle.Bundle
	// fedEncoded holds the encoded forms of federated, keyed by the trust
	// domain's SPIFFE ID as the RPCs key them.
	fedEncoded map[string]encodedBundle
}

// encodedBundle is one trust domain's bundle in wire form.
type encodedBundle struct {
	x509DER []byte // X.509 authorities, concatenated DER
	jwtJWKS []byte // jwt-svid keys only
	witJWKS string // wit-svid keys only
}

// equal reports whether s and o hold the same bundles.
func (s *bundleSnapshot) equal(o *bundleSnapshot) bool {
	if !s.bundle.Equal(o.bundle) || len(s.federated) != len(o.federated) {
		return false
	}
	for td, b := range s.federated {
		if ob, ok := o.federated[td]; !ok || !b.Equal(ob) {
			return false
		}
	}
	return true
}

// x509Bundles returns the X.509 authorities of every trust domain, keyed
// by the trust domain's SPIFFE ID.
func (s *bundleSnapshot) x509Bundles() map[string][]byte {
	out := map[string][]byte{s.bundle.TrustDomain().IDString(): s.x509DER}
	for td, e := range s.fedEncoded {
		out[td] = e.x509DER
	}
	return out
}

// federatedX509 returns the X.509 authorities of the federated trust
// domains only, as FetchX509SVID's federated_bundles carries them.
func (s *bundleSnapshot) federatedX509() map[string][]byte {
	if len(s.fedEncoded) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(s.fedEncoded))
	for td, e := range s.fedEncoded {
		out[td] = e.x509DER
	}
	return out
}

// jwtBundles returns the JWKS of jwt-svid keys of every trust domain.
func (s *bundleSnapshot) jwtBundles() map[string][]byte {
	out := map[string][]byte{s.bundle.TrustDomain().IDString(): s.jwtJWKS}
	for td, e := range s.fedEncoded {
		out[td] = e.jwtJWKS
	}
	return out
}

// witBundles returns the JWKS of wit-svid keys of every trust domain.
func (s *bundleSnapshot) witBundles() map[string]string {
	out := map[string]string{s.bundle.TrustDomain().IDString(): s.witJWKS}
	for td, e := range s.fedEncoded {
		out[td] = e.witJWKS
	}
	return out
}

// New returns a server for cfg. It reads the authority's bundle once, so an
// authority whose bundle cannot be encoded is refused here.
func New(cfg Config) (*Server, error) {
	if cfg.Authority == nil {
		return nil, errors.New("workloadapi: config has no authority")
	}
	if cfg.TickInterval < 0 {
		return nil, fmt.Errorf("workloadapi: tick interval %s is negative", cfg.TickInterval)
	}
	s := &Server{
		auth:      cfg.Authority,
		now:       cfg.Now,
		log:       cfg.Logger,
		onIssue:   cfg.OnIssue,
		onRefuse:  cfg.OnRefuse,
		tick:      cfg.TickInterval,
		workloads: make(map[spiffeid.ID]*workload),
		changed:   make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tick == 0 {
		s.tick = DefaultTickInterval
	}
	snap, err := s.snapshotBundle()
	if err != nil {
		return nil, err
	}
	s.bundle = snap
	return s, nil
}

// AddWorkload creates the socket of w and issues the first X.509-SVID of
// each of its IDs. If the server is running, the socket is served at once;
// otherwise from the start of Run. It fails with ErrWorkloadExists (an ID
// another socket serves), ErrSocketInUse, ErrInsecureSocketDir,
// ErrNotSocket, ErrServerClosed, ErrUnsupportedPlatform,
// credentials.ErrInvalidIdentity (a zero or repeated ID) or
// credentials.ErrUntrustedDomain (an ID outside the authority's trust
// domain); on any error nothing is left behind.
func (s *Server) AddWorkload(ctx context.Context, w Workload) error {
	if err := checkPlatform(); err != nil {
		return err
	}
	if w.ID.IsZero() {
		return fmt.Errorf("workloadapi: workload has no SPIFFE ID: %w", credentials.ErrInvalidIdentity)
	}
	ids := append([]spiffeid.ID{w.ID}, w.ExtraIDs...)
	td := s.auth.TrustDomain()
	for i, id := range ids {
		if id.IsZero() {
			return fmt.Errorf("workloadapi: workload %s: extra SPIFFE ID %d is zero: %w", w.ID, i-1, credentials.ErrInvalidIdentity)
		}
		if id.TrustDomain() != td {
			return fmt.Errorf("workloadapi: workload %s is outside trust domain %s: %w", id, td, credentials.ErrUntrustedDomain)
		}
		if slices.Contains(ids[:i], id) {
			return fmt.Errorf("workloadapi: workload %s lists %s twice: %w", w.ID, id, credentials.ErrInvalidIdentity)
		}
	}
	allowed := make(map[int]struct{}, len(w.AllowedUIDs))
	for _, uid := range w.AllowedUIDs {
		if uid < 0 {
			return fmt.Errorf("workloadapi: workload %s: allowed uid %d is negative", w.ID, uid)
		}
		allowed[uid] = struct{}{}
	}
	if len(allowed) == 0 {
		allowed[os.Getuid()] = struct{}{}
	}

	s.regMu.Lock()
	defer s.regMu.Unlock()

	s.mu.Lock()
	state := s.state
	var taken, takenBy spiffeid.ID
	for _, id := range ids {
		if other := s.workloadServingLocked(id); other != nil {
			taken, takenBy = id, other.id
			break
		}
	}
	var pathTaken bool
	for _, other := range s.workloads {
		if other.socketPath == filepath.Clean(w.SocketPath) {
			pathTaken = true
		}
	}
	s.mu.Unlock()
	switch {
	case state == stateClosed:
		return ErrServerClosed
	case !taken.IsZero() && taken == takenBy:
		return fmt.Errorf("%w: %s", ErrWorkloadExists, taken)
	case !taken.IsZero():
		return fmt.Errorf("%w: %s is served by the socket of %s", ErrWorkloadExists, taken, takenBy)
	case pathTaken:
		return fmt.Errorf("%w: %q serves another workload", ErrSocketInUse, w.SocketPath)
	}

	ln, err := listenSocket(w.SocketPath)
	if err != nil {
		return err
	}
	wl := &workload{
		id:         w.ID,
		ids:        ids,
		socketPath: ln.Addr().String(),
		allowed:    allowed,
		peerCheck:  w.PeerCheck,
		ln:         ln,
		done:       make(chan struct{}),
		x509:       make(map[spiffeid.ID]*x509Entry, len(ids)),
		wit:        make(map[spiffeid.ID]*witEntry),
	}
	for _, id := range ids {
		entry, _, err := s.issueX509(ctx, id, nil)
		if err != nil {
			ln.Close()
			_ = removeSocket(wl.socketPath)
			return err
		}
		wl.x509[id] = entry
	}
	wl.grpc = s.newGRPCServer(wl)

	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		ln.Close()
		_ = removeSocket(wl.socketPath)
		return ErrServerClosed
	}
	s.workloads[wl.id] = wl
	if s.state == stateRunning {
		s.startServingLocked(wl)
	}
	s.mu.Unlock()
	attrs := []any{slog.String(logKeyWorkload, wl.id.String()), slog.String(logKeySocket, wl.socketPath)}
	if len(w.ExtraIDs) > 0 {
		attrs = append(attrs, slog.Int(logKeyExtraIDs, len(w.ExtraIDs)))
	}
	s.log.InfoContext(ctx, "workload socket added", attrs...)
	return nil
}

// RemoveWorkload closes the socket of the workload id (its Workload.ID,
// not one of its ExtraIDs), ends its streams and removes the socket file.
// It waits for calls in progress to finish until ctx is done, then closes
// their connections. It fails with ErrUnknownWorkload if id has no socket.
func (s *Server) RemoveWorkload(ctx context.Context, id spiffeid.ID) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	wl, ok := s.workloads[id]
	delete(s.workloads, id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownWorkload, id)
	}
	err := s.stopWorkload(ctx, wl)
	s.log.InfoContext(ctx, "workload socket removed", slog.String(logKeyWorkload, id.String()))
	return err
}

// Run serves every registered workload's socket, and those added later,
// until ctx is done. It calls Tick every Config.TickInterval and refreshes
// all SVIDs and bundles whenever the authority reports a change. When ctx
// is done it ends all streams, stops the sockets, removes the socket files
// and returns nil; the server cannot be run again.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateRunning:
		s.mu.Unlock()
		return ErrAlreadyRunning
	case stateClosed:
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.state = stateRunning
	for _, wl := range s.workloads {
		s.startServingLocked(wl)
	}
	s.mu.Unlock()

	notify, unsubscribe := s.auth.Subscribe()
	defer unsubscribe()
	// Catch up with changes made before the subscription existed.
	if err := s.Tick(ctx); err != nil {
		s.log.ErrorContext(ctx, "rotation failed", slog.String(logKeyError, err.Error()))
	}
	ticker := time.NewTicker(s.tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			s.shutdown(ctx)
			return nil
		case _, ok := <-notify:
			if !ok {
				notify = nil
				continue
			}
			if err := s.refresh(ctx, true); err != nil {
				s.log.ErrorContext(ctx, "refresh after authority change failed", slog.String(logKeyError, err.Error()))
			}
		case <-ticker.C:
			if err := s.Tick(ctx); err != nil {
				s.log.ErrorContext(ctx, "rotation failed", slog.String(logKeyError, err.Error()))
			}
		}
	}
}

// Tick applies time-based rotation at the configured clock's now: every
// X.509-SVID and WIT-SVID past half its lifetime is re-issued, and if the
// authority's bundle changed since it was last read, every SVID is
// re-issued and the new bundle is pushed. Open streams of the affected
// workloads receive the new snapshot. An SVID that cannot be re-issued is
// kept and the error is returned; the others are still rotated. An
// authority that relays SVIDs (an [Upstream]) may hand out the same SVID
// again, which changes nothing; when it reports ErrNoRegistrationEntry
// for an ID, the ID's SVIDs are dropped and its socket no longer serves
// them until the authority has them again.
func (s *Server) Tick(ctx context.Context) error {
	return s.refresh(ctx, false)
}

// refresh re-reads the bundle and re-issues the SVIDs that are due, or all
// of them when force is set or the bundle changed.
func (s *Server) refresh(ctx context.Context, force bool) error {
	s.issueMu.Lock()
	defer s.issueMu.Unlock()

	var errs []error
	changed := false
	snap, err := s.snapshotBundle()
	if err != nil {
		errs = append(errs, err)
	} else {
		s.mu.Lock()
		if !snap.equal(s.bundle) {
			s.bundle = snap
			changed = true
		}
		s.mu.Unlock()
	}
	reissueAll := force || changed

	now := s.now()
	s.mu.Lock()
	type pending struct {
		wl  *workload
		id  spiffeid.ID
		x   *x509Entry
		wit *witEntry
	}
	var work []pending
	for _, wl := range s.workloads {
		for _, id := range wl.ids {
			work = append(work, pending{wl, id, wl.x509[id], wl.wit[id]})
		}
	}
	s.mu.Unlock()

	for _, p := range work {
		if reissueAll || p.x == nil || rotationDue(now, p.x.svid.Certificates[0].NotBefore, p.x.svid.Certificates[0].NotAfter) {
			entry, fresh, err := s.issueX509(ctx, p.id, p.x)
			switch {
			case errors.Is(err, ErrNoRegistrationEntry):
				// A relaying authority lost the ID: the socket stops
				// serving it, as the upstream did. Reported once.
				s.mu.Lock()
				_, had := p.wl.x509[p.id]
				delete(p.wl.x509, p.id)
				delete(p.wl.wit, p.id)
				s.mu.Unlock()
				if had {
					errs = append(errs, err)
					changed = true
				}
				continue
			case err != nil:
				errs = append(errs, err)
			case fresh:
				s.mu.Lock()
				p.wl.x509[p.id] = entry
				s.mu.Unlock()
				changed = true
			}
		}
		if p.wit != nil && (reissueAll || rotationDue(now, p.wit.issuedAt, p.wit.expiresAt)) {
			entry, fresh, err := s.issueWIT(ctx, p.id, nil, p.wit)
			switch {
			case err != nil:
				errs = append(errs, err)
			case fresh:
				s.mu.Lock()
				p.wl.wit[p.id] = entry
				s.mu.Unlock()
				changed = true
			}
		}
	}
	if changed {
		s.broadcast()
	}
	return errors.Join(errs...)
}

// ensureWIT makes sure the workload has a current WIT-SVID for each of
// ids, issuing the first one for caller where there is none yet.
func (s *Server) ensureWIT(ctx context.Context, wl *workload, ids []spiffeid.ID, caller *Peer) error {
	s.issueMu.Lock()
	defer s.issueMu.Unlock()
	added := false
	defer func() {
		if added {
			s.broadcast()
		}
	}()
	for _, id := range ids {
		s.mu.Lock()
		have := wl.wit[id] != nil
		s.mu.Unlock()
		if have {
			continue
		}
		entry, _, err := s.issueWIT(ctx, id, caller, nil)
		if err != nil {
			return err
		}
		s.mu.Lock()
		wl.wit[id] = entry
		s.mu.Unlock()
		added = true
	}
	return nil
}

// issueX509 obtains an X.509-SVID for id from the authority. An authority
// that is a relay rather than a CA (an [Upstream]) may hand out the SVID
// it gave before: then fresh is false, prev is returned and nothing is
// reported.
func (s *Server) issueX509(ctx context.Context, id spiffeid.ID, prev *x509Entry) (entry *x509Entry, fresh bool, err error) {
	svid, err := s.auth.NewX509SVID(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("workloadapi: issue x509-svid for %s: %w", id, err)
	}
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return nil, false, fmt.Errorf("workloadapi: issue x509-svid for %s: authority returned an incomplete svid", id)
	}
	if svid.ID != id {
		return nil, false, fmt.Errorf("workloadapi: issue x509-svid for %s: authority returned an svid for %s", id, svid.ID)
	}
	certDER, keyDER, err := svid.MarshalRaw()
	if err != nil {
		return nil, false, fmt.Errorf("workloadapi: encode x509-svid for %s: %w", id, err)
	}
	if prev != nil && bytes.Equal(prev.certDER, certDER) && bytes.Equal(prev.keyDER, keyDER) {
		return prev, false, nil
	}
	leaf := svid.Certificates[0]
	s.issued(ctx, IssueEvent{
		Workload:  id,
		Kind:      KindX509SVID,
		Serial:    leaf.SerialNumber.Text(16),
		ExpiresAt: leaf.NotAfter,
	})
	return &x509Entry{svid: svid, certDER: certDER, keyDER: keyDER}, true, nil
}

// issueWIT obtains a WIT-SVID for id from the authority; like issueX509,
// it returns prev with fresh false when the authority hands out the same
// token again.
func (s *Server) issueWIT(ctx context.Context, id spiffeid.ID, caller *Peer, prev *witEntry) (entry *witEntry, fresh bool, err error) {
	issuedAt := s.now()
	token, key, expiresAt, err := s.auth.NewWITSVID(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("workloadapi: issue wit-svid for %s: %w", id, err)
	}
	if key == nil {
		return nil, false, fmt.Errorf("workloadapi: issue wit-svid for %s: authority returned no key", id)
	}
	if prev != nil && prev.token == token {
		return prev, false, nil
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: key})
	if err != nil {
		return nil, false, fmt.Errorf("workloadapi: encode wit-svid key for %s: %w", id, err)
	}
	s.issued(ctx, IssueEvent{Workload: id, Kind: KindWITSVID, Peer: caller, ExpiresAt: expiresAt})
	return &witEntry{token: token, key: key, keyJWK: string(jwk), issuedAt: issuedAt, expiresAt: expiresAt}, true, nil
}

func (s *Server) issued(ctx context.Context, ev IssueEvent) {
	attrs := []any{
		slog.String(logKeyWorkload, ev.Workload.String()),
		slog.String(logKeyKind, string(ev.Kind)),
		slog.Time(logKeyExpires, ev.ExpiresAt),
	}
	if ev.Peer != nil {
		attrs = append(attrs, slog.Int(logKeyPeerUID, ev.Peer.UID), slog.Int(logKeyPeerPID, ev.Peer.PID))
	}
	s.log.DebugContext(ctx, "svid issued", attrs...)
	if s.onIssue != nil {
		s.onIssue(ctx, ev)
	}
}

// refused logs a refused connection at debug level (a caller that loops
// on connect must not flood the log; Config.OnRefuse may report it louder)
// and reports it to Config.OnRefuse. The accepting handshake has no context
// of its own, so the hook gets a fresh one.
func (s *Server) refused(ev RefuseEvent) {
	ctx := context.Background()
	s.log.DebugContext(ctx, "workload api connection refused",
		slog.String(logKeyWorkload, ev.Workload.String()), slog.String(logKeySocket, ev.SocketPath),
		slog.Int(logKeyPeerUID, ev.Peer.UID), slog.Int(logKeyPeerPID, ev.Peer.PID),
		slog.String(logKeyError, ev.Reason.Error()))
	if s.onRefuse != nil {
		s.onRefuse(ctx, ev)
	}
}

// snapshotBundle reads the authority's bundle, and the federated bundles
// of a FederatingAuthority, and encodes them for the wire.
func (s *Server) snapshotBundle() (*bundleSnapshot, error) {
	b := s.auth.Bundle()
	if b == nil {
		return nil, errors.New("workloadapi: authority returned no bundle")
	}
	td := s.auth.TrustDomain()
	if b.TrustDomain() != td {
		return nil, fmt.Errorf("workloadapi: authority bundle is for %s, not %s", b.TrustDomain(), td)
	}
	enc, err := encodeBundle(b)
	if err != nil {
		return nil, err
	}
	snap := &bundleSnapshot{bundle: b, encodedBundle: enc}
	fa, ok := s.auth.(FederatingAuthority)
	if !ok {
		return snap, nil
	}
	for ftd, fb := range fa.FederatedBundles() {
		if fb == nil || ftd == td || fb.TrustDomain() != ftd {
			continue
		}
		enc, err := encodeBundle(fb)
		if err != nil {
			return nil, err
		}
		if snap.federated == nil {
			snap.federated = make(map[spiffeid.TrustDomain]*spiffebundle.Bundle)
			snap.fedEncoded = make(map[string]encodedBundle)
		}
		snap.federated[ftd] = fb
		snap.fedEncoded[ftd.IDString()] = enc
	}
	return snap, nil
}

// encodeBundle encodes the authorities of b for the wire.
func encodeBundle(b *spiffebundle.Bundle) (encodedBundle, error) {
	jwks, err := jwtbundle.FromJWTAuthorities(b.TrustDomain(), b.JWTAuthorities()).Marshal()
	if err != nil {
		return encodedBundle{}, fmt.Errorf("workloadapi: encode jwt bundle of %s: %w", b.TrustDomain(), err)
	}
	witJWKS, err := witbundle.FromWITAuthorities(b.TrustDomain(), b.WITAuthorities()).Marshal()
	if err != nil {
		return encodedBundle{}, fmt.Errorf("workloadapi: encode wit bundle of %s: %w", b.TrustDomain(), err)
	}
	return encodedBundle{
		x509DER: concatDER(b.X509Authorities()),
		jwtJWKS: jwks,
		witJWKS: string(witJWKS),
	}, nil
}

func concatDER(certs []*x509.Certificate) []byte {
	var n int
	for _, c := range certs {
		n += len(c.Raw)
	}
	out := make([]byte, 0, n)
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

// broadcast wakes every stream.
func (s *Server) broadcast() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Server) newGRPCServer(wl *workload) *grpc.Server {
	gs := grpc.NewServer(
		grpc.Creds(socketCredentials{w: wl, refused: s.refused}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if _, err := checkCall(ctx, wl); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if _, err := checkCall(ss.Context(), wl); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	)
	workloadpb.RegisterSpiffeWorkloadAPIServer(gs, &service{s: s, w: wl})
	return gs
}

// startServingLocked starts serving wl's socket; s.mu must be held and the
// server running.
func (s *Server) startServingLocked(wl *workload) {
	if wl.serving {
		return
	}
	wl.serving = true
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := wl.grpc.Serve(wl.ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("workload socket stopped serving", slog.String(logKeyWorkload, wl.id.String()), slog.String(logKeyError, err.Error()))
		}
	}()
}

// stopWorkload ends wl's streams, stops its gRPC server (gracefully until
// ctx is done) and removes its socket file.
func (s *Server) stopWorkload(ctx context.Context, wl *workload) error {
	close(wl.done)
	stopped := make(chan struct{})
	go func() {
		wl.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		wl.grpc.Stop()
		<-stopped
	}
	wl.ln.Close()
	return removeSocket(wl.socketPath)
}

// shutdownGrace bounds how long shutdown waits for calls in progress.
const shutdownGrace = 5 * time.Second

// shutdown stops every workload and closes the server for good. runCtx is
// Run's context, already done; it only carries values.
func (s *Server) shutdown(runCtx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), shutdownGrace)
	defer cancel()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.mu.Lock()
	s.state = stateClosed
	all := make([]*workload, 0, len(s.workloads))
	for id, wl := range s.workloads {
		all = append(all, wl)
		delete(s.workloads, id)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, wl := range all {
		wg.Go(func() {
			if err := s.stopWorkload(ctx, wl); err != nil {
				s.log.ErrorContext(ctx, "stop workload socket", slog.String(logKeyWorkload, wl.id.String()), slog.String(logKeyError, err.Error()))
			}
		})
	}
	wg.Wait()
	s.serveWG.Wait()
}
