package signals

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Defaults applied to zero fields of [TransmitterConfig].
const (
	DefaultPushAttempts            = 5
	DefaultPushBackoff             = time.Second
	DefaultPushMaxBackoff          = 30 * time.Second
	DefaultPushTimeout             = 10 * time.Second
	DefaultMaxQueue                = 1000
	DefaultLongPollMax             = 10 * time.Second
	MaxLongPoll                    = 30 * time.Second
	DefaultMaxPollEvents           = 100
	DefaultMinVerificationInterval = 30 * time.Second
	maxRecordedErrors              = 1000
)

// Values of default_subjects (SSF 1.0 §7.1).
const (
	DefaultSubjectsAll  = "ALL"
	DefaultSubjectsNone = "NONE"
)

// TransmitterConfig configures a [Transmitter].
type TransmitterConfig struct {
	// Issuer is the host's issuer: iss of every SET and of the metadata.
	// Required.
	Issuer string
	// Signer signs SETs and KeyID is its kid. Required.
	Signer crypto.Signer
	KeyID  string
	// PublishedKeys are further keys served in the JWK Set (for example
	// the previous key during a rotation).
	PublishedKeys []jose.SetKey
	// BaseURL is where [Transmitter.Handler] is reachable; endpoint URLs
	// in the metadata are built from it. Empty means Issuer.
	BaseURL string
	// JWKSURI overrides the published jwks_uri; empty means the JWK Set
	// the Handler serves.
	JWKSURI string
	// Store keeps the streams; nil means a new [MemoryStreamStore].
	Store StreamStore
	// Authorize authenticates a caller of the stream management and poll
	// endpoints and returns its client id; streams belong to the client
	// that created them. An error wrapping [ErrAccessDenied] answers 403,
	// any other error 401. Required.
	Authorize func(r *http.Request) (clientID string, err error)
	// AudienceFor decides a new stream's aud from the caller and the aud
	// it asked for. Nil means the client id, and a requested aud other
	// than the client id is refused.
	AudienceFor func(clientID string, requested []string) ([]string, error)
	// EventsSupported lists the event types offered; empty means
	// [CAEPEvents].
	EventsSupported []string
	// DefaultSubjects is ALL (every subject unless removed) or NONE (only
	// added subjects; the default).
	DefaultSubjects string
	// AuthorizationSchemes published in the metadata; empty means OAuth
	// 2.0 (urn:ietf:rfc:6749).
	AuthorizationSchemes []AuthorizationScheme
	// MaxStreamsPerClient caps streams per client (409 beyond); zero
	// means no cap.
	MaxStreamsPerClient int
	// MinVerificationInterval is the least time between verification
	// requests on a stream (429 sooner); zero means
	// DefaultMinVerificationInterval, negative none.
	MinVerificationInterval time.Duration
	// AllowHTTPPush permits http push endpoints; AllowPrivatePush permits
	// push to loopback, private and other non-public addresses. Both are
	// for tests and loopback development.
	AllowHTTPPush    bool
	AllowPrivatePush bool
	// Client sends push deliveries; nil means a client that refuses
	// non-public addresses (unless AllowPrivatePush). Redirects are never
	// followed.
	Client *http.Client
	// PushAttempts, PushBackoff, PushMaxBackoff and PushTimeout bound push
	// retries; zero means the defaults.
	PushAttempts   int
	PushBackoff    time.Duration
	PushMaxBackoff time.Duration
	PushTimeout    time.Duration
	// MaxQueue caps undelivered SETs per stream; zero means
	// DefaultMaxQueue.
	MaxQueue int
	// Queues, when set, keeps undelivered SETs across restarts; nil keeps
	// them in memory only.
	Queues QueueStore
	// LongPollMax is how long a poll with returnImmediately false may be
	// held; zero means DefaultLongPollMax, and it is capped at MaxLongPoll.
	LongPollMax time.Duration
	// MaxPollEvents caps SETs per poll response; zero means
	// DefaultMaxPollEvents.
	MaxPollEvents int
	// Logger receives delivery failures; nil is silent.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TransmitterStats counts deliveries.
type TransmitterStats struct {
	// Queued counts SETs put on stream queues.
	Queued uint64
	// Pushed counts SETs a push endpoint accepted; Acked SETs a poller
	// acknowledged.
	Pushed uint64
	Acked  uint64
	// Failed counts SETs dropped after a rejection or after the last push
	// attempt, or reported in setErrs.
	Failed uint64
}

// queued is one signed SET waiting for delivery.
type queued struct {
	jti, set, typ string
	// control marks stream events (stream-updated, verification), which
	// are delivered even while the stream is paused.
	control bool
}

// queue holds a stream's undelivered SETs.
type queue struct {
	items   []queued
	notify  chan struct{} // closed and replaced on every enqueue
	pushing bool
	errs    map[string]ErrorBody
}

// Transmitter is the host's SSF transmitter: it signs SETs about the
// host's own subjects (agents quarantined, credentials changed), queues
// them on every enabled stream that asked for the event type and
// subject, and delivers them by push (RFC 8935) or poll (RFC 8936). Its
// Handler serves the metadata, JWK Set, stream management and poll
// endpoints. It is safe for concurrent use.
type Transmitter struct {
	cfg      TransmitterConfig
	alg      jose.Alg
	log      *slog.Logger
	client   *http.Client
	base     string // BaseURL without trailing slash
	basePath string // its path
	jwksURI  string
	mux      *http.ServeMux

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mgmtMu sync.Mutex // serializes stream read-modify-write

	mu     sync.Mutex
	closed bool
	queues map[string]*queue
	saver  *queueSaver
	saving sync.WaitGroup

	queuedN, pushed, acked, failed atomic.Uint64
}

// NewTransmitter returns a Transmitter for cfg. Call Close to stop its
// push deliveries.
func NewTransmitter(cfg TransmitterConfig) (*Transmitter, error) {
	if cfg.Issuer == "" || cfg.Signer == nil || cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: transmitter needs issuer, signer and authorize", ErrInvalidConfig)
	}
	if _, err := MetadataURL(cfg.Issuer); err != nil {
		return nil, err
	}
	alg, err := jose.AlgorithmForKey(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Issuer
	}
	bu, err := url.Parse(cfg.BaseURL)
	if err != nil || bu.Scheme == "" || bu.Host == "" || bu.RawQuery != "" || bu.Fragment != "" {
		return nil, fmt.Errorf("%w: base URL %q", ErrInvalidConfig, cfg.BaseURL)
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStreamStore()
	}
	if len(cfg.EventsSupported) == 0 {
		cfg.EventsSupported = CAEPEvents
	}
	switch cfg.DefaultSubjects {
	case "":
		cfg.DefaultSubjects = DefaultSubjectsNone
	case DefaultSubjectsAll, DefaultSubjectsNone:
	default:
		return nil, fmt.Errorf("%w: default subjects %q", ErrInvalidConfig, cfg.DefaultSubjects)
	}
	if len(cfg.AuthorizationSchemes) == 0 {
		cfg.AuthorizationSchemes = []AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6749"}}
	}
	if cfg.MinVerificationInterval == 0 {
		cfg.MinVerificationInterval = DefaultMinVerificationInterval
	}
	if cfg.PushAttempts <= 0 {
		cfg.PushAttempts = DefaultPushAttempts
	}
	if cfg.PushBackoff <= 0 {
		cfg.PushBackoff = DefaultPushBackoff
	}
	if cfg.PushMaxBackoff < cfg.PushBackoff {
		cfg.PushMaxBackoff = max(DefaultPushMaxBackoff, cfg.PushBackoff)
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = DefaultPushTimeout
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.LongPollMax <= 0 {
		cfg.LongPollMax = DefaultLongPollMax
	}
	cfg.LongPollMax = min(cfg.LongPollMax, MaxLongPoll)
	if cfg.MaxPollEvents <= 0 {
		cfg.MaxPollEvents = DefaultMaxPollEvents
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Transmitter{
		cfg:      cfg,
		alg:      alg,
		log:      cfg.Logger,
		base:     strings.TrimSuffix(cfg.BaseURL, "/"),
		basePath: strings.TrimSuffix(bu.EscapedPath(), "/"),
		queues:   make(map[string]*queue),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.jwksURI = cfg.JWKSURI
	if t.jwksURI == "" {
		t.jwksURI = t.base + pathJWKS
	}
	t.client = t.pushClient()
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if t.mux, err = t.routes(); err != nil {
		return nil, err
	}
	if cfg.Queues != nil {
		t.saver = &queueSaver{t: t, store: cfg.Queues, saved: map[string][sha256.Size]byte{}}
		if err := t.loadQueues(t.ctx); err != nil {
			t.Close()
			return nil, fmt.Errorf("signals: load stream queues: %w", err)
		}
		t.saving.Add(1)
		go func() {
			defer t.saving.Done()
			t.saver.run(t.ctx)
		}()
	}
	return t, nil
}

// Close stops push deliveries and waits for them to end. Queued SETs are
// no longer pushed; with a QueueStore they are saved for the next start.
func (t *Transmitter) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	t.saving.Wait()
	if t.saver != nil {
		t.saver.saveChanged(context.Background()) // after the last delivery
	}
}

// Stats returns a snapshot of the delivery counters.
func (t *Transmitter) Stats() TransmitterStats {
	return TransmitterStats{Queued: t.queuedN.Load(), Pushed: t.pushed.Load(), Acked: t.acked.Load(), Failed: t.failed.Load()}
}

// Pending returns the number of undelivered SETs of a stream.
func (t *Transmitter) Pending(streamID string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if q := t.queues[streamID]; q != nil {
		return len(q.items)
	}
	return 0
}

// SETErrors returns the errors receivers reported for a stream's SETs
// (poll setErrs and push error responses), by jti.
func (t *Transmitter) SETErrors(streamID string) map[string]ErrorBody {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]ErrorBody{}
	if q := t.queues[streamID]; q != nil {
		for k, v := range q.errs {
			out[k] = v
		}
	}
	return out
}

// randomID returns 128 random bits, base64url-encoded.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SignSET returns ev as a SET for the audience aud, signed with typ
// secevent+jwt, with a fresh jti, iat now, sub_id ev.Subject and events
// holding ev alone. It returns the SET and its jti.
func (t *Transmitter) SignSET(ctx context.Context, ev Event, aud []string) (set, jti string, err error) {
	if len(aud) == 0 {
		return "", "", fmt.Errorf("signals: sign SET: %w: no audience", ErrInvalidConfig)
	}
	if err := ev.Subject.Validate(); err != nil {
		return "", "", fmt.Errorf("signals: sign SET: %w", err)
	}
	payload, err := ev.payload()
	if err != nil {
		return "", "", fmt.Errorf("signals: sign SET: %w", err)
	}
	jti = randomID()
	claims := map[string]any{
		"iss":    t.cfg.Issuer,
		"aud":    Audience(aud),
		"iat":    t.cfg.Now().Unix(),
		"jti":    jti,
		"sub_id": ev.Subject,
		"events": map[string]any{ev.Type: payload},
	}
	if ev.TXN != "" {
		claims["txn"] = ev.TXN
	}
	set, err = jose.Sign(ctx, t.cfg.Signer, t.cfg.KeyID, jose.TypSecEvent, claims)
	if err != nil {
		return "", "", fmt.Errorf("signals: sign SET: %w", err)
	}
	return set, jti, nil
}

// Transmit queues ev on every stream that is not disabled, whose
// events_delivered holds ev.Type and which includes ev.Subject (added to
// the stream, or not removed when default_subjects is ALL). Each stream
// gets its own SET (own aud and jti). Stream events (verification,
// stream-updated) are sent by the transmitter itself and refused here.
func (t *Transmitter) Transmit(ctx context.Context, ev Event) error {
	if IsStreamEvent(ev.Type) {
		return fmt.Errorf("signals: transmit: %w: stream events are sent by the transmitter", ErrUnsupportedEvent)
	}
	if err := ev.checkMembers(); err != nil {
		return fmt.Errorf("signals: transmit: %w", err)
	}
	if err := ev.Subject.Validate(); err != nil {
		return fmt.Errorf("signals: transmit: %w", err)
	}
	streams, err := t.cfg.Store.ListStreams(ctx, "")
	if err != nil {
		return fmt.Errorf("signals: transmit: %w", err)
	}
	var errs []error
	for _, s := range streams {
		if s.Status == StatusDisabled || !slices.Contains(s.Config.EventsDelivered, ev.Type) || !t.includes(s, ev.Subject) {
			continue
		}
		set, jti, err := t.SignSET(ctx, ev, s.Config.Aud)
		if err != nil {
			return fmt.Errorf("signals: transmit: %w", err)
		}
		if err := t.enqueue(s, queued{jti: jti, set: set, typ: ev.Type}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("signals: transmit: %w", err)
	}
	return nil
}

// includes reports whether stream s carries events about sub.
func (t *Transmitter) includes(s Stream, sub Subject) bool {
	for _, x := range s.Excluded {
		if x.Matches(sub) {
			return false
		}
	}
	if t.cfg.DefaultSubjects == DefaultSubjectsAll {
		return true
	}
	for _, x := range s.Subjects {
		if x.Matches(sub) {
			return true
		}
	}
	return false
}

// sendControl signs and queues a stream event on s regardless of its
// status and filters.
func (t *Transmitter) sendControl(ctx context.Context, s Stream, ev Event) error {
	ev.Subject = OpaqueSubject(s.Config.StreamID)
	set, jti, err := t.SignSET(ctx, ev, s.Config.Aud)
	if err != nil {
		return err
	}
	return t.enqueue(s, queued{jti: jti, set: set, typ: ev.Type, control: true})
}

// queueFor returns the queue of stream id; t.mu must be held.
func (t *Transmitter) queueFor(id string) *queue {
	q := t.queues[id]
	if q == nil {
		q = &queue{notify: make(chan struct{}), errs: make(map[string]ErrorBody)}
		t.queues[id] = q
	}
	return q
}

func isPush(s Stream) bool {
	return s.Config.Delivery != nil && s.Config.Delivery.Method == DeliveryPush
}

// enqueue adds item to stream s's queue and starts a push worker when s
// uses push.
func (t *Transmitter) enqueue(s Stream, item queued) error {
	id := s.Config.StreamID
	t.mu.Lock()
	q := t.queueFor(id)
	if len(q.items) >= t.cfg.MaxQueue {
		t.mu.Unlock()
		t.failed.Add(1)
		t.log.Warn("signals: stream queue full, SET dropped", "stream", id, "type", item.typ)
		return fmt.Errorf("%w: stream %q", ErrQueueFull, id)
	}
	q.items = append(q.items, item)
	close(q.notify)
	q.notify = make(chan struct{})
	t.queuedN.Add(1)
	start := isPush(s) && !q.pushing && !t.closed
	if start {
		q.pushing = true
		t.wg.Add(1)
	}
	t.mu.Unlock()
	if start {
		go t.pushLoop(id)
	}
	return nil
}

// kick starts a push worker for stream id if it has SETs waiting.
func (t *Transmitter) kick(s Stream) {
	if !isPush(s) {
		return
	}
	id := s.Config.StreamID
	t.mu.Lock()
	q := t.queues[id]
	start := q != nil && len(q.items) > 0 && !q.pushing && !t.closed
	if start {
		q.pushing = true
		t.wg.Add(1)
	}
	t.mu.Unlock()
	if start {
		go t.pushLoop(id)
	}
}

// next returns the first SET of q deliverable under status; on a
// disabled stream it drops all but stream events. t.mu must be held.
func (q *queue) next(status string) (queued, bool) {
	if status == StatusDisabled {
		q.items = slices.DeleteFunc(q.items, func(it queued) bool { return !it.control })
	}
	for _, it := range q.items {
		if status == StatusEnabled || it.control {
			return it, true
		}
	}
	return queued{}, false
}

// remove drops the SET jti from q; t.mu must be held.
func (q *queue) remove(jti string) bool {
	n := len(q.items)
	q.items = slices.DeleteFunc(q.items, func(it queued) bool { return it.jti == jti })
	return len(q.items) != n
}

// recordErr keeps a receiver's error report, bounded; t.mu must be held.
func (q *queue) recordErr(jti string, e ErrorBody) {
	if len(q.errs) >= maxRecordedErrors {
		for k := range q.errs {
			delete(q.errs, k)
			break
		}
	}
	q.errs[jti] = e
}

// pushLoop delivers stream id's SETs in order until none is deliverable.
func (t *Transmitter) pushLoop(id string) {
	defer t.wg.Done()
	for {
		s, err := t.cfg.Store.GetStream(t.ctx, id)
		t.mu.Lock()
		q := t.queues[id]
		if q == nil {
			t.mu.Unlock()
			return
		}
		var item queued
		ok := false
		if err == nil && isPush(s) && t.ctx.Err() == nil {
			item, ok = q.next(s.Status)
		}
		if !ok {
			q.pushing = false
			t.mu.Unlock()
			if err != nil && !errors.Is(err, ErrStreamNotFound) && t.ctx.Err() == nil {
				t.log.Error("signals: push: stream lookup failed", "stream", id, "error", err)
			}
			return
		}
		t.mu.Unlock()

		perr := t.push(t.ctx, s, item)
		if perr != nil && t.ctx.Err() != nil {
			t.mu.Lock()
			q.pushing = false
			t.mu.Unlock()
			return // closing: keep the SET queued
		}
		t.mu.Lock()
		q.remove(item.jti)
		var he *HTTPError
		if errors.As(perr, &he) && he.Err != nil {
			q.recordErr(item.jti, *he.Err)
		}
		t.mu.Unlock()
	}
}

// push delivers one SET to s's push endpoint, retrying transient
// failures with exponential backoff. 2xx (202 per RFC 8935) is success;
// a redirect (never followed) or a 4xx other than 408 and 429 is a
// permanent rejection.
func (t *Transmitter) push(ctx context.Context, s Stream, item queued) error {
	backoff := t.cfg.PushBackoff
	for attempt := 1; ; attempt++ {
		status, body, hdr, err := t.post(ctx, s, item.set)
		if err == nil && status/100 == 2 {
			t.pushed.Add(1)
			return nil
		}
		var wait time.Duration
		if err == nil {
			herr := httpError(status, body)
			if status/100 == 3 || status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
				t.failed.Add(1)
				t.log.Warn("signals: push rejected", "stream", s.Config.StreamID, "jti", item.jti, "status", status, "error", herr)
				return fmt.Errorf("%w: %w", ErrDeliveryRejected, herr)
			}
			err = herr
			wait = retryAfter(hdr)
		}
		if attempt >= t.cfg.PushAttempts || ctx.Err() != nil {
			if ctx.Err() == nil {
				t.failed.Add(1)
				t.log.Error("signals: push failed, SET dropped", "stream", s.Config.StreamID, "jti", item.jti, "attempts", attempt, "error", err)
			}
			return fmt.Errorf("signals: push: %w", err)
		}
		wait = min(max(wait, backoff), t.cfg.PushMaxBackoff)
		backoff = min(backoff*2, t.cfg.PushMaxBackoff)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("signals: push: %w", ctx.Err())
		case <-timer.C:
		}
	}
}

// post sends one push request and returns the status, at most 64 KiB of
// the body, and the header.
func (t *Transmitter) post(ctx context.Context, s Stream, set string) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.PushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Config.Delivery.EndpointURL, strings.NewReader(set))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", MediaTypeSET)
	req.Header.Set("Accept", "application/json")
	if h := s.Config.Delivery.AuthorizationHeader; h != "" {
		req.Header.Set("Authorization", h)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil && resp.StatusCode/100 != 2 {
		return 0, nil, nil, err
	}
	return resp.StatusCode, body, resp.Header, nil
}

// pushClient returns the client for push deliveries: the configured one
// or one whose dialer refuses non-public addresses; never following
// redirects.
func (t *Transmitter) pushClient() *http.Client {
	var c http.Client
	if t.cfg.Client != nil {
		c = *t.cfg.Client
	} else {
		var base *http.Transport
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			base = dt.Clone()
		} else {
			base = &http.Transport{}
		}
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		if !t.cfg.AllowPrivatePush {
			d.ControlContext = publicOnly
			base.Proxy = nil
		}
		base.DialContext = d.DialContext
		c.Transport = base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// specialPrefixes are non-public ranges beyond those netip classifies.
var specialPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
}

// publicOnly is a dialer control refusing connections to addresses that
// are not publicly routable.
func publicOnly(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("signals: push: address %q: %w", address, err)
	}
	a := ap.Addr().Unmap()
	bad := !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
	for _, p := range specialPrefixes {
		bad = bad || p.Contains(a)
	}
	if bad {
		return fmt.Errorf("signals: push: address %s is not public", a)
	}
	return nil
}
