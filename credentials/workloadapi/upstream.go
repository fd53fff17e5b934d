package workloadapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultUpstreamStartTimeout is how long [Upstream.Start] waits for the
// first snapshot when UpstreamConfig.StartTimeout is zero.
const DefaultUpstreamStartTimeout = 30 * time.Second

// Log attribute keys of the upstream.
const (
	logKeyUpstream    = "upstream"
	logKeyStream      = "stream"
	logKeyDetail      = "detail"
	logKeyTrustDomain = "trust_domain"
	logKeySVIDs       = "svids"
	logKeyWITSVIDs    = "wit_svids"
	logKeyWaited      = "waited"
)

// UpstreamConfig configures an [Upstream].
type UpstreamConfig struct {
	// Addr is the address of the upstream Workload API (SPECS.md §10.6):
	// "unix:///path/to/socket" or "tcp://<ip>:<port>". Required; a caller
	// that follows the SPIFFE_ENDPOINT_SOCKET convention reads the variable
	// itself and passes its value here.
	Addr string

	// StartTimeout bounds how long Start waits for the first snapshot;
	// zero means DefaultUpstreamStartTimeout.
	StartTimeout time.Duration

	// Now is the clock against which SVID expiry and JWT-SVID validity
	// are checked; nil means time.Now.
	Now func() time.Time

	// Logger receives the upstream's logs; nil means silent.
	Logger *slog.Logger
}

// Upstream is an [Authority] that takes its SVIDs and bundles from another
// SPIFFE Workload API, typically a SPIRE agent's socket, instead of issuing
// them: the host's own SVID and those of its agents are registration
// entries of the upstream that all match the host process, so the upstream
// streams every one of them to the host, and the host's [Server] relays
// each agent's SVIDs to that agent's socket.
//
// It watches the upstream's X.509-SVIDs with their bundles (federated
// bundles included), its JWT bundles and, when the upstream implements the
// WIT-SVID profile, its WIT-SVIDs and WIT bundles. NewX509SVID and
// NewWITSVID hand out the SVID the upstream currently gives for an ID,
// NewJWTSVID asks the upstream for a JWT-SVID of the ID, and
// ValidateJWTSVID validates locally against the JWT bundle of the trust
// domain. Reconnection after the upstream goes away is left to go-spiffe's
// client, which retries with a linear backoff; meanwhile the last snapshot
// is kept, and an SVID that expires in the meantime is refused.
//
// Create it with [NewUpstream], call [Upstream.Start] before any other
// method, and [Upstream.Close] when done. Its methods are safe for
// concurrent use.
type Upstream struct {
	addr    string
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	// ready is closed once X.509-SVIDs and JWT bundles have arrived;
	// complete once the WIT-SVID profile has answered too.
	ready        chan struct{}
	complete     chan struct{}
	readyOnce    sync.Once
	completeOnce sync.Once

	lifeMu   sync.Mutex // guards started, closed, client, cancel
	started  bool
	closed   bool
	client   *spiffewl.Client
	cancel   context.CancelFunc
	watchers sync.WaitGroup
	// closing is closed when Close begins, closeFinished when it ends,
	// after which closeErr holds its result.
	closing       chan struct{}
	closeFinished chan struct{}
	closeErr      error
	// logCtx carries Start's context values to the logs of the watches.
	// Start sets it before it starts them and it never changes after.
	logCtx context.Context

	mu          sync.RWMutex
	td          spiffeid.TrustDomain
	svids       []*x509svid.SVID // nil until the first X.509 update
	x509Bundles *x509bundle.Set
	jwtBundles  *jwtbundle.Set // nil until the first JWT bundle update
	wit         witUpstream
	errs        [numStreams]error // last error of each stream; nil after an update

	subMu   sync.Mutex
	subs    map[int]chan struct{}
	nextSub int
}

// witUpstream is what the upstream said about the WIT-SVID profile.
type witUpstream struct {
	// unsupported is set once either WIT stream answered Unimplemented.
	unsupported bool
	// svidsAnswered and bundlesAnswered are set once the stream sent an
	// update or failed.
	svidsAnswered, bundlesAnswered bool
	// svids is nil until the first update.
	svids   []*witsvid.SVID
	bundles *witbundle.Set
}

func (w *witUpstream) answered() bool {
	return w.unsupported || (w.svidsAnswered && w.bundlesAnswered)
}

var _ FederatingAuthority = (*Upstream)(nil)

// upstreamStream names one of the upstream streams the Upstream watches.
type upstreamStream int

const (
	streamX509 upstreamStream = iota
	streamJWTBundles
	streamWITSVIDs
	streamWITBundles
	numStreams
)

func (s upstreamStream) String() string {
	return [...]string{"x509-svids", "jwt-bundles", "wit-svids", "wit-bundles"}[s]
}

// NewUpstream returns an upstream for cfg. It checks the configuration
// only; [Upstream.Start] connects.
func NewUpstream(cfg UpstreamConfig) (*Upstream, error) {
	if cfg.Addr == "" {
		return nil, errors.New("workloadapi: upstream config has no address")
	}
	if err := spiffewl.ValidateAddress(cfg.Addr); err != nil {
		return nil, fmt.Errorf("workloadapi: upstream address %q: %w", cfg.Addr, err)
	}
	if cfg.StartTimeout < 0 {
		return nil, fmt.Errorf("workloadapi: upstream start timeout %s is negative", cfg.StartTimeout)
	}
	u := &Upstream{
		addr:          cfg.Addr,
		timeout:       cfg.StartTimeout,
		now:           cfg.Now,
		log:           cfg.Logger,
		ready:         make(chan struct{}),
		complete:      make(chan struct{}),
		closing:       make(chan struct{}),
		closeFinished: make(chan struct{}),
		logCtx:        context.Background(),
		subs:          make(map[int]chan struct{}),
	}
	if u.timeout == 0 {
		u.timeout = DefaultUpstreamStartTimeout
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	return u, nil
}

// Start connects to the upstream, starts watching it and waits until the
// first snapshot is complete: X.509-SVIDs with their bundles, JWT bundles,
// and an answer on the WIT-SVID profile (WIT-SVIDs, an error, or
// Unimplemented, which means the upstream has no WIT-SVIDs). It returns an
// error naming the upstream and what is missing when the X.509-SVIDs or
// the JWT bundles have not arrived within the start timeout, for example
// "workloadapi: upstream unix:///run/spire/agent.sock: no X.509-SVID
// within 30s: …" with the upstream's last error; an upstream that answers
// on X.509 and JWT but not yet on WIT does not fail the start. On an error
// the upstream is closed. The watches continue in the background until
// Close; ctx bounds the start only, its values reach the logs.
func (u *Upstream) Start(ctx context.Context) error {
	u.lifeMu.Lock()
	switch {
	case u.closed:
		u.lifeMu.Unlock()
		return ErrUpstreamClosed
	case u.started:
		u.lifeMu.Unlock()
		return fmt.Errorf("workloadapi: upstream %s: already started", u.addr)
	}
	u.started = true
	u.logCtx = context.WithoutCancel(ctx)
	client, err := spiffewl.New(ctx, spiffewl.WithAddr(u.addr), spiffewl.WithLogger(clientLogger{u: u}))
	if err != nil {
		u.lifeMu.Unlock()
		_ = u.Close()
		return fmt.Errorf("workloadapi: upstream %s: %w", u.addr, err)
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.client, u.cancel = client, cancel
	w := upstreamWatcher{u: u}
	u.watch(watchCtx, streamX509, func(ctx context.Context) error { return client.WatchX509Context(ctx, w) })
	u.watch(watchCtx, streamJWTBundles, func(ctx context.Context) error { return client.WatchJWTBundles(ctx, w) })
	u.watch(watchCtx, streamWITSVIDs, func(ctx context.Context) error { return client.WatchWITSVIDs(ctx, w, "") })
	u.watch(watchCtx, streamWITBundles, func(ctx context.Context) error { return client.WatchWITBundles(ctx, w) })
	u.lifeMu.Unlock()

	timer := time.NewTimer(u.timeout)
	defer timer.Stop()
	select {
	case <-u.complete:
		u.log.InfoContext(ctx, "upstream workload api ready", u.readyAttrs()...)
		return nil
	case <-ctx.Done():
		_ = u.Close()
		return fmt.Errorf("workloadapi: upstream %s: start: %w", u.addr, ctx.Err())
	case <-u.closing:
		return ErrUpstreamClosed
	case <-timer.C:
	}
	select {
	case <-u.ready:
		u.mu.RLock()
		cause := u.errs[streamWITSVIDs]
		u.mu.RUnlock()
		attrs := append(u.readyAttrs(), slog.Duration(logKeyWaited, u.timeout))
		if cause != nil {
			attrs = append(attrs, slog.String(logKeyError, cause.Error()))
		}
		u.log.WarnContext(ctx, "upstream workload api ready without an answer on wit-svids", attrs...)
		return nil
	default:
	}
	err = u.startError()
	_ = u.Close()
	return err
}

// watch runs one of go-spiffe's watch loops until ctx is done.
func (u *Upstream) watch(ctx context.Context, s upstreamStream, run func(context.Context) error) {
	u.watchers.Add(1)
	go func() {
		defer u.watchers.Done()
		err := run(ctx)
		switch {
		case ctx.Err() != nil:
		case status.Code(err) == codes.Unimplemented:
			// Recorded by the watcher; the WIT profile is absent.
		default:
			u.log.ErrorContext(u.logContext(), "upstream workload api watch ended",
				slog.String(logKeyUpstream, u.addr), slog.String(logKeyStream, s.String()), slog.Any(logKeyError, err))
		}
	}()
}

func (u *Upstream) readyAttrs() []any {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return []any{
		slog.String(logKeyUpstream, u.addr),
		slog.String(logKeyTrustDomain, u.td.Name()),
		slog.Int(logKeySVIDs, len(u.svids)),
		slog.Bool(logKeyWITSVIDs, !u.wit.unsupported && u.wit.svids != nil),
	}
}

// startError says what Start is missing at the timeout and why.
func (u *Upstream) startError() error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	what, cause := "no X.509-SVID", u.errs[streamX509]
	if u.svids != nil {
		what, cause = "no JWT bundles", u.errs[streamJWTBundles]
	}
	if cause == nil {
		cause = errors.New("the upstream sent nothing")
	}
	return fmt.Errorf("workloadapi: upstream %s: %s within %s: %w", u.addr, what, u.timeout, cause)
}

// Ready returns a channel that is closed once the upstream has sent its
// X.509-SVIDs and JWT bundles, from which point the upstream can back a
// [Server].
func (u *Upstream) Ready() <-chan struct{} { return u.ready }

// Close stops watching the upstream and closes the connection. Later calls
// of the other methods fail with ErrUpstreamClosed or ErrUpstreamNotReady.
// It is idempotent.
func (u *Upstream) Close() error {
	u.lifeMu.Lock()
	if u.closed {
		u.lifeMu.Unlock()
		<-u.closeFinished
		return u.closeErr
	}
	u.closed = true
	close(u.closing)
	cancel, client := u.cancel, u.client
	u.lifeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	u.watchers.Wait()
	if client != nil {
		if err := client.Close(); err != nil {
			u.closeErr = fmt.Errorf("workloadapi: upstream %s: close: %w", u.addr, err)
		}
	}
	close(u.closeFinished)
	return u.closeErr
}

// liveClient returns the connected client, or why there is none.
func (u *Upstream) liveClient() (*spiffewl.Client, error) {
	u.lifeMu.Lock()
	defer u.lifeMu.Unlock()
	switch {
	case u.closed:
		return nil, ErrUpstreamClosed
	case u.client == nil:
		return nil, fmt.Errorf("%w: %s has not been started", ErrUpstreamNotReady, u.addr)
	}
	return u.client, nil
}

func (u *Upstream) logContext() context.Context { return u.logCtx }

// checkOpen fails once the upstream is closed.
func (u *Upstream) checkOpen() error {
	u.lifeMu.Lock()
	defer u.lifeMu.Unlock()
	if u.closed {
		return ErrUpstreamClosed
	}
	return nil
}

// TrustDomain returns the trust domain of the upstream's SVIDs, which all
// share one; the zero value before the first snapshot.
func (u *Upstream) TrustDomain() spiffeid.TrustDomain {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.td
}

// IDs returns the SPIFFE IDs of the X.509-SVIDs the upstream currently
// hands out, in its order (the first is its default identity).
func (u *Upstream) IDs() []spiffeid.ID {
	u.mu.RLock()
	defer u.mu.RUnlock()
	ids := make([]spiffeid.ID, len(u.svids))
	for i, s := range u.svids {
		ids[i] = s.ID
	}
	return ids
}

// NewX509SVID returns a copy of the X.509-SVID the upstream currently
// hands out for id; nothing is issued. It fails with
// ErrNoRegistrationEntry when the upstream gives no SVID for id, and when
// the upstream's SVID for id has expired at Now (the upstream has not
// rotated it, typically because it is unreachable).
func (u *Upstream) NewX509SVID(ctx context.Context, id spiffeid.ID) (*x509svid.SVID, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("workloadapi: upstream %s: x509-svid for %s: %w", u.addr, id, err)
	}
	if err := u.checkOpen(); err != nil {
		return nil, err
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.svids == nil {
		return nil, u.notReadyLocked()
	}
	for _, svid := range u.svids {
		if svid.ID != id {
			continue
		}
		if leaf := svid.Certificates[0]; !u.now().Before(leaf.NotAfter) {
			return nil, fmt.Errorf("workloadapi: upstream %s: the x509-svid of %s expired at %s and no new one arrived%s",
				u.addr, id, leaf.NotAfter.UTC().Format(time.RFC3339), causeSuffix(u.errs[streamX509]))
		}
		cp := *svid
		cp.Certificates = slices.Clone(svid.Certificates)
		return &cp, nil
	}
	return nil, fmt.Errorf("%w for %s: upstream %s hands out x509-svids for %s", ErrNoRegistrationEntry, id, u.addr, idList(u.svids))
}

// NewJWTSVID asks the upstream for a JWT-SVID of id for audience
// (FetchJWTSVID with that spiffe_id) and returns it with its expiry. It
// fails with ErrNoRegistrationEntry when the upstream refuses the ID with
// PermissionDenied.
func (u *Upstream) NewJWTSVID(ctx context.Context, id spiffeid.ID, audience []string) (string, time.Time, error) {
	client, err := u.liveClient()
	if err != nil {
		return "", time.Time{}, err
	}
	if len(audience) == 0 || slices.Contains(audience, "") {
		return "", time.Time{}, fmt.Errorf("workloadapi: upstream %s: jwt-svid for %s: audience is required", u.addr, id)
	}
	svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience[0], ExtraAudiences: audience[1:], Subject: id})
	if err != nil {
		if status.Code(err) == codes.PermissionDenied {
			return "", time.Time{}, fmt.Errorf("%w for %s: upstream %s refuses a jwt-svid: %w", ErrNoRegistrationEntry, id, u.addr, err)
		}
		return "", time.Time{}, fmt.Errorf("workloadapi: upstream %s: jwt-svid for %s: %w", u.addr, id, err)
	}
	if svid.ID != id {
		return "", time.Time{}, fmt.Errorf("workloadapi: upstream %s: jwt-svid for %s names %s", u.addr, id, svid.ID)
	}
	return svid.Marshal(), svid.Expiry, nil
}

// NewWITSVID returns the WIT-SVID the upstream currently hands out for id,
// with its private key and expiry; nothing is issued. It fails with
// ErrUpstreamNoWIT when the upstream does not implement the WIT-SVID
// profile, and with ErrNoRegistrationEntry when it gives no WIT-SVID for
// id or the one it gave has expired at Now.
func (u *Upstream) NewWITSVID(ctx context.Context, id spiffeid.ID) (token string, key crypto.Signer, expiresAt time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("workloadapi: upstream %s: wit-svid for %s: %w", u.addr, id, err)
	}
	if err := u.checkOpen(); err != nil {
		return "", nil, time.Time{}, err
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	switch {
	case u.svids == nil:
		return "", nil, time.Time{}, u.notReadyLocked()
	case u.wit.unsupported:
		return "", nil, time.Time{}, fmt.Errorf("%w: %s answers the WIT-SVID profile with Unimplemented, so it has no WIT-SVIDs to relay", ErrUpstreamNoWIT, u.addr)
	case u.wit.svids == nil:
		return "", nil, time.Time{}, fmt.Errorf("workloadapi: upstream %s: no wit-svids received%s", u.addr, causeSuffix(u.errs[streamWITSVIDs]))
	}
	for _, svid := range u.wit.svids {
		if svid.ID != id {
			continue
		}
		if !u.now().Before(svid.Expiry) {
			return "", nil, time.Time{}, fmt.Errorf("workloadapi: upstream %s: the wit-svid of %s expired at %s and no new one arrived%s",
				u.addr, id, svid.Expiry.UTC().Format(time.RFC3339), causeSuffix(u.errs[streamWITSVIDs]))
		}
		signer, ok := svid.PrivateKey.(crypto.Signer)
		if !ok {
			return "", nil, time.Time{}, fmt.Errorf("workloadapi: upstream %s: the wit-svid key of %s is a %T, not a signer", u.addr, id, svid.PrivateKey)
		}
		return svid.Marshal(), signer, svid.Expiry, nil
	}
	ids := make([]string, len(u.wit.svids))
	for i, s := range u.wit.svids {
		ids[i] = s.ID.String()
	}
	return "", nil, time.Time{}, fmt.Errorf("%w for %s: upstream %s hands out wit-svids for %s", ErrNoRegistrationEntry, id, u.addr, listOrNone(ids))
}

// Bundle returns the bundle of the upstream's trust domain as assembled
// from its streams: the X.509 authorities, the JWT authorities and, when
// the upstream has the WIT-SVID profile, the WIT authorities. The Workload
// API carries no sequence number or refresh hint, so the bundle has none.
// It returns nil before the first snapshot.
func (u *Upstream) Bundle() *spiffebundle.Bundle {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.svids == nil {
		return nil
	}
	return u.bundleLocked(u.td)
}

// bundleLocked assembles the bundle of td from the streams; nil when no
// stream has one. u.mu must be held.
func (u *Upstream) bundleLocked(td spiffeid.TrustDomain) *spiffebundle.Bundle {
	b := spiffebundle.New(td)
	found := false
	if xb, ok := u.x509Bundles.Get(td); ok {
		b.SetX509Authorities(xb.X509Authorities())
		found = true
	}
	if u.jwtBundles != nil {
		if jb, ok := u.jwtBundles.Get(td); ok {
			b.SetJWTAuthorities(jb.JWTAuthorities())
			found = true
		}
	}
	if u.wit.bundles != nil {
		if wb, ok := u.wit.bundles.Get(td); ok {
			b.SetWITAuthorities(wb.WITAuthorities())
			found = true
		}
	}
	if !found && td != u.td {
		return nil
	}
	return b
}

// FederatedBundles returns the bundles the upstream hands out for trust
// domains other than its own (the federated_bundles of FetchX509SVID and
// the other domains of the JWT and WIT bundle streams), keyed by trust
// domain. It implements [FederatingAuthority], so a [Server] backed by the
// upstream serves them to its workloads.
func (u *Upstream) FederatedBundles() map[spiffeid.TrustDomain]*spiffebundle.Bundle {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.svids == nil {
		return nil
	}
	tds := make(map[spiffeid.TrustDomain]struct{})
	for _, b := range u.x509Bundles.Bundles() {
		tds[b.TrustDomain()] = struct{}{}
	}
	if u.jwtBundles != nil {
		for _, b := range u.jwtBundles.Bundles() {
			tds[b.TrustDomain()] = struct{}{}
		}
	}
	if u.wit.bundles != nil {
		for _, b := range u.wit.bundles.Bundles() {
			tds[b.TrustDomain()] = struct{}{}
		}
	}
	delete(tds, u.td)
	out := make(map[spiffeid.TrustDomain]*spiffebundle.Bundle, len(tds))
	for td := range tds {
		if b := u.bundleLocked(td); b != nil {
			out[td] = b
		}
	}
	return out
}

// Subscribe returns a channel that receives a value after any change of
// the upstream's SVIDs or bundles, and a function that ends the
// subscription and closes the channel. Notifications coalesce: a
// subscriber that has not received the previous one gets one value for
// several changes. Notifying never blocks.
func (u *Upstream) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	u.subMu.Lock()
	id := u.nextSub
	u.nextSub++
	u.subs[id] = ch
	u.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			u.subMu.Lock()
			delete(u.subs, id)
			u.subMu.Unlock()
			close(ch)
		})
	}
}

func (u *Upstream) notify() {
	u.subMu.Lock()
	defer u.subMu.Unlock()
	for _, ch := range u.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// notReadyLocked says why there is no snapshot yet; u.mu must be held.
func (u *Upstream) notReadyLocked() error {
	return fmt.Errorf("%w: %s has sent no x509-svids%s", ErrUpstreamNotReady, u.addr, causeSuffix(u.errs[streamX509]))
}

// markReadyLocked closes ready and complete when their conditions hold;
// u.mu must be held.
func (u *Upstream) markReadyLocked() {
	if u.svids == nil || u.jwtBundles == nil {
		return
	}
	u.readyOnce.Do(func() { close(u.ready) })
	if u.wit.answered() {
		u.completeOnce.Do(func() { close(u.complete) })
	}
}

// updated records a successful update of stream s, logs a recovery and
// notifies subscribers if changed; u.mu must not be held.
func (u *Upstream) updated(s upstreamStream, apply func() (changed bool, err error)) {
	u.mu.Lock()
	changed, err := apply()
	prev := u.errs[s]
	u.errs[s] = err
	u.markReadyLocked()
	u.mu.Unlock()
	ctx := u.logContext()
	switch {
	case err != nil:
		u.log.ErrorContext(ctx, "upstream workload api update refused",
			slog.String(logKeyUpstream, u.addr), slog.String(logKeyStream, s.String()), slog.String(logKeyError, err.Error()))
	case prev != nil:
		u.log.InfoContext(ctx, "upstream workload api watch recovered", slog.String(logKeyUpstream, u.addr), slog.String(logKeyStream, s.String()))
	}
	if changed {
		u.notify()
	}
}

// watchFailed records an error of stream s. The first error after an
// update is logged as a warning, repeats (go-spiffe retries with backoff)
// at debug level.
func (u *Upstream) watchFailed(s upstreamStream, err error) {
	if u.checkOpen() != nil {
		return
	}
	unimplemented := status.Code(err) == codes.Unimplemented && (s == streamWITSVIDs || s == streamWITBundles)
	u.mu.Lock()
	prev := u.errs[s]
	u.errs[s] = err
	changed := false
	switch {
	case unimplemented:
		changed = !u.wit.unsupported && (u.wit.svids != nil || u.wit.bundles != nil)
		u.wit = witUpstream{unsupported: true}
	case s == streamWITSVIDs:
		u.wit.svidsAnswered = true
	case s == streamWITBundles:
		u.wit.bundlesAnswered = true
	}
	u.markReadyLocked()
	u.mu.Unlock()
	ctx := u.logContext()
	attrs := []any{slog.String(logKeyUpstream, u.addr), slog.String(logKeyStream, s.String()), slog.String(logKeyError, err.Error())}
	switch {
	case unimplemented:
		u.log.InfoContext(ctx, "upstream workload api has no wit-svid profile", attrs...)
	case prev == nil:
		u.log.WarnContext(ctx, "upstream workload api watch failed", attrs...)
	default:
		u.log.DebugContext(ctx, "upstream workload api watch failed", attrs...)
	}
	if changed {
		u.notify()
	}
}

// applyX509 checks and takes an X.509 context from the upstream; u.mu
// must be held. Every SVID must belong to one trust domain, the one of the
// earlier snapshots, and the stream must carry that domain's bundle.
func (u *Upstream) applyX509(xc *spiffewl.X509Context) (bool, error) {
	if len(xc.SVIDs) == 0 {
		return false, errors.New("update has no x509-svids")
	}
	td := xc.SVIDs[0].ID.TrustDomain()
	svids := make([]*x509svid.SVID, 0, len(xc.SVIDs))
	for _, s := range xc.SVIDs {
		if s.ID.TrustDomain() != td {
			return false, fmt.Errorf("the x509-svids span trust domains %s and %s; all must share one", td.Name(), s.ID.TrustDomain().Name())
		}
		if len(s.Certificates) == 0 {
			return false, fmt.Errorf("the x509-svid of %s has no certificate", s.ID)
		}
		if !slices.ContainsFunc(svids, func(o *x509svid.SVID) bool { return o.ID == s.ID }) {
			svids = append(svids, s)
		}
	}
	if !u.td.IsZero() && td != u.td {
		return false, fmt.Errorf("the trust domain changed from %s to %s; restart to follow it", u.td.Name(), td.Name())
	}
	if b, ok := xc.Bundles.Get(td); !ok || b.Empty() {
		return false, fmt.Errorf("update has no x509 bundle for trust domain %s", td.Name())
	}
	changed := u.svids == nil || !sameX509SVIDs(u.svids, svids) || !sameBundles(u.x509Bundles, xc.Bundles)
	u.td, u.svids, u.x509Bundles = td, svids, xc.Bundles
	return changed, nil
}

func (u *Upstream) applyJWTBundles(set *jwtbundle.Set) (bool, error) {
	changed := u.jwtBundles == nil || !sameBundles(u.jwtBundles, set)
	u.jwtBundles = set
	return changed, nil
}

func (u *Upstream) applyWITSVIDs(svids []*witsvid.SVID) (bool, error) {
	if svids == nil {
		svids = []*witsvid.SVID{}
	}
	changed := u.wit.svids == nil || !slices.EqualFunc(u.wit.svids, svids, func(a, b *witsvid.SVID) bool {
		return a.ID == b.ID && a.Marshal() == b.Marshal()
	})
	u.wit.svidsAnswered = true
	u.wit.svids = svids
	return changed, nil
}

func (u *Upstream) applyWITBundles(set *witbundle.Set) (bool, error) {
	changed := u.wit.bundles == nil || !sameBundles(u.wit.bundles, set)
	u.wit.bundlesAnswered = true
	u.wit.bundles = set
	return changed, nil
}

// upstreamWatcher receives go-spiffe's watch callbacks for an Upstream;
// it keeps those methods out of Upstream's API.
type upstreamWatcher struct{ u *Upstream }

func (w upstreamWatcher) OnX509ContextUpdate(xc *spiffewl.X509Context) {
	w.u.updated(streamX509, func() (bool, error) { return w.u.applyX509(xc) })
}

func (w upstreamWatcher) OnX509ContextWatchError(err error) { w.u.watchFailed(streamX509, err) }

func (w upstreamWatcher) OnJWTBundlesUpdate(set *jwtbundle.Set) {
	w.u.updated(streamJWTBundles, func() (bool, error) { return w.u.applyJWTBundles(set) })
}

func (w upstreamWatcher) OnJWTBundlesWatchError(err error) { w.u.watchFailed(streamJWTBundles, err) }

func (w upstreamWatcher) OnWITSVIDsUpdate(svids []*witsvid.SVID) {
	w.u.updated(streamWITSVIDs, func() (bool, error) { return w.u.applyWITSVIDs(svids) })
}

func (w upstreamWatcher) OnWITSVIDsWatchError(err error) { w.u.watchFailed(streamWITSVIDs, err) }

func (w upstreamWatcher) OnWITBundlesUpdate(set *witbundle.Set) {
	w.u.updated(streamWITBundles, func() (bool, error) { return w.u.applyWITBundles(set) })
}

func (w upstreamWatcher) OnWITBundlesWatchError(err error) { w.u.watchFailed(streamWITBundles, err) }

// clientLogger passes the go-spiffe client's own log lines to the
// upstream's logger at debug level; the upstream logs watch failures and
// recoveries itself.
type clientLogger struct{ u *Upstream }

func (l clientLogger) logf(format string, args ...any) {
	l.u.log.DebugContext(l.u.logContext(), "upstream workload api client",
		slog.String(logKeyUpstream, l.u.addr), slog.String(logKeyDetail, fmt.Sprintf(format, args...)))
}

func (l clientLogger) Debugf(format string, args ...any) { l.logf(format, args...) }
func (l clientLogger) Infof(format string, args ...any)  { l.logf(format, args...) }
func (l clientLogger) Warnf(format string, args ...any)  { l.logf(format, args...) }
func (l clientLogger) Errorf(format string, args ...any) { l.logf(format, args...) }

func sameX509SVIDs(a, b []*x509svid.SVID) bool {
	return slices.EqualFunc(a, b, func(x, y *x509svid.SVID) bool {
		return x.ID == y.ID && slices.EqualFunc(x.Certificates, y.Certificates, func(c, d *x509.Certificate) bool {
			return bytes.Equal(c.Raw, d.Raw)
		})
	})
}

// bundleSet is what go-spiffe's X.509, JWT and WIT bundle sets have in
// common, for comparing two snapshots of one.
type bundleSet[B interface{ Equal(B) bool }] interface {
	comparable
	Len() int
	Bundles() []B
	Get(spiffeid.TrustDomain) (B, bool)
}

// trustDomainOf is what a bundle of any kind has.
type trustDomainOf interface{ TrustDomain() spiffeid.TrustDomain }

// sameBundles reports whether two snapshots of a bundle set hold equal
// bundles for the same trust domains.
func sameBundles[B interface {
	trustDomainOf
	Equal(B) bool
}, S bundleSet[B]](a, b S) bool {
	var zero S
	if a == zero || b == zero || a.Len() != b.Len() {
		return a == b
	}
	for _, x := range a.Bundles() {
		if y, ok := b.Get(x.TrustDomain()); !ok || !x.Equal(y) {
			return false
		}
	}
	return true
}

// idList names the IDs of svids for an error message.
func idList(svids []*x509svid.SVID) string {
	ids := make([]string, len(svids))
	for i, s := range svids {
		ids[i] = s.ID.String()
	}
	return listOrNone(ids)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "no ID"
	}
	return strings.Join(items, ", ")
}

// causeSuffix appends the upstream's last error to a message.
func causeSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (last upstream error: " + err.Error() + ")"
}
