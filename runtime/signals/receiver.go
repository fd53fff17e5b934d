package signals

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// MediaTypeSET is the media type of a SET in a push delivery (RFC 8417
// §8.2, RFC 8935 §2).
const MediaTypeSET = "application/secevent+jwt"

// DefaultMaxBodyBytes caps a push request body.
const DefaultMaxBodyBytes = 64 << 10

// Handler acts on verified CAEP events. The host implements it (revoke a
// session, re-evaluate a grant, ...). An error means the event was not
// handled; the SET is then delivered again.
type Handler interface {
	HandleEvent(ctx context.Context, ev Event) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, ev Event) error

// HandleEvent calls f.
func (f HandlerFunc) HandleEvent(ctx context.Context, ev Event) error { return f(ctx, ev) }

// ReceiverConfig configures a [Receiver].
type ReceiverConfig struct {
	// Issuer, Audience, Keys, Algorithms, Replay, MaxAge, Leeway, Now,
	// CriticalSubjectMembers and EventTypes are as in [VerifierConfig].
	Issuer                 string
	Audience               string
	Keys                   jose.KeyFunc
	Algorithms             []jose.Alg
	Replay                 Replay
	MaxAge                 time.Duration
	Leeway                 time.Duration
	Now                    func() time.Time
	CriticalSubjectMembers []string
	EventTypes             []string
	ForbidExp              bool

	// StreamID, when set, is the id of the receiver's stream: stream
	// events (verification, stream-updated) must name it in sub_id.
	StreamID string

	// Handler receives every verified CAEP event. Required.
	Handler Handler
	// OnStreamUpdated, when set, is told of verified stream-updated
	// events (status changes of the stream).
	OnStreamUpdated func(ctx context.Context, ev Event)

	// Authorize, when set, authenticates a push request before its body
	// is read (for example by checking the bearer token the receiver gave
	// the transmitter as authorization_header). Return an error wrapping
	// [ErrAccessDenied] for an authenticated but unauthorized caller; any
	// other error reports authentication_failed.
	Authorize func(r *http.Request) error
	// MaxBodyBytes caps a push body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives rejections and handler failures; nil is silent.
	Logger *slog.Logger
}

// Stats counts what a [Receiver] did with the SETs it was given.
type Stats struct {
	// Accepted counts verified SETs: CAEP events handled plus stream
	// events.
	Accepted uint64
	// Handled counts CAEP events the Handler accepted.
	Handled uint64
	// Rejected counts rejected SETs and refused push requests.
	Rejected uint64
	// RejectedByCode splits Rejected by RFC 8935 error code.
	RejectedByCode map[string]uint64
	// Verifications and StreamUpdates count SSF stream events.
	Verifications uint64
	StreamUpdates uint64
	// HandlerFailures counts events the Handler failed (or panicked) on.
	HandlerFailures uint64
	// Transient counts SETs that could not be checked for now (keys or
	// replay store unavailable).
	Transient uint64
}

// Receiver receives SETs from one transmitter: over push, as an
// http.Handler (RFC 8935), or from a [Poller] (RFC 8936). Verified CAEP
// events go to the Handler; stream events update the receiver's view of
// the stream; rejected SETs are logged and counted, and nothing else is
// done with them. It is safe for concurrent use.
type Receiver struct {
	v         *Verifier
	replay    Replay
	handler   Handler
	onUpdate  func(context.Context, Event)
	authorize func(*http.Request) error
	streamID  string
	maxBody   int64
	log       *slog.Logger

	accepted, handled, rejected    atomic.Uint64
	verifications, updates, hfails atomic.Uint64
	transient                      atomic.Uint64

	mu     sync.Mutex
	byCode map[string]uint64
	states map[string]bool
	status string
	reason string
}

// NewReceiver returns a Receiver for cfg.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("%w: receiver needs a handler", ErrInvalidConfig)
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemoryReplay(0, cfg.Now)
	}
	v, err := NewVerifier(VerifierConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, Keys: cfg.Keys, Algorithms: cfg.Algorithms,
		Replay: cfg.Replay, MaxAge: cfg.MaxAge, Leeway: cfg.Leeway, Now: cfg.Now,
		CriticalSubjectMembers: cfg.CriticalSubjectMembers, EventTypes: cfg.EventTypes, ForbidExp: cfg.ForbidExp,
	})
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		v: v, replay: cfg.Replay, handler: cfg.Handler, onUpdate: cfg.OnStreamUpdated,
		authorize: cfg.Authorize, streamID: cfg.StreamID, maxBody: cfg.MaxBodyBytes, log: cfg.Logger,
		byCode: make(map[string]uint64), states: make(map[string]bool), status: StatusEnabled,
	}
	if r.maxBody <= 0 {
		r.maxBody = DefaultMaxBodyBytes
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// ExpectVerification records state as the state of a verification the
// receiver requested; a verification event echoing it is accepted once.
// A verification event carrying any other state is rejected with
// invalid_state; one without state (transmitter-initiated) is accepted.
func (r *Receiver) ExpectVerification(state string) {
	if state == "" {
		return
	}
	r.mu.Lock()
	r.states[state] = true
	r.mu.Unlock()
}

// StreamStatus returns the stream status last announced by a
// stream-updated event (enabled until one arrives) and its reason. While
// it is paused or disabled, silence does not mean "no revocations".
func (r *Receiver) StreamStatus() (status, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.reason
}

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	by := make(map[string]uint64, len(r.byCode))
	for k, v := range r.byCode {
		by[k] = v
	}
	r.mu.Unlock()
	return Stats{
		Accepted: r.accepted.Load(), Handled: r.handled.Load(), Rejected: r.rejected.Load(),
		RejectedByCode: by, Verifications: r.verifications.Load(), StreamUpdates: r.updates.Load(),
		HandlerFailures: r.hfails.Load(), Transient: r.transient.Load(),
	}
}

func (r *Receiver) countRejection(code string, err error) {
	r.rejected.Add(1)
	r.mu.Lock()
	r.byCode[code]++
	r.mu.Unlock()
	r.log.Warn("signals: SET rejected, no action taken", "code", code, "error", err)
}

// Receive verifies set and acts on it: a CAEP event goes to the Handler,
// a verification event is checked against the expected states, a
// stream-updated event updates [Receiver.StreamStatus]. A rejected SET
// yields a [*SETError] (and is logged and counted); an error wrapping
// [ErrHandler] or any other error means the SET should be delivered again.
func (r *Receiver) Receive(ctx context.Context, set string) (*Event, error) {
	ev, err := r.v.Verify(ctx, set)
	if err != nil {
		if code := ErrorCode(err); code != "" {
			r.countRejection(code, err)
			return nil, err
		}
		r.transient.Add(1)
		r.log.Error("signals: SET could not be checked", "error", err)
		return nil, err
	}
	if r.streamID != "" && IsStreamEvent(ev.Type) && ev.Subject.ID != r.streamID {
		serr := reject(CodeInvalidRequest, "stream event names another stream", nil)
		r.countRejection(serr.Code, serr)
		return nil, serr
	}
	switch ev.Type {
	case EventVerification:
		if ev.State != "" {
			r.mu.Lock()
			ok := r.states[ev.State]
			delete(r.states, ev.State)
			r.mu.Unlock()
			if !ok {
				serr := reject(CodeInvalidState, "verification state was not requested", nil)
				r.countRejection(serr.Code, serr)
				return nil, serr
			}
		}
		r.verifications.Add(1)
		r.accepted.Add(1)
		r.log.Info("signals: stream verified", "stream", ev.Subject.ID, "jti", ev.JTI)
		return ev, nil
	case EventStreamUpdated:
		r.mu.Lock()
		r.status, r.reason = ev.Status, ev.Reason
		r.mu.Unlock()
		r.updates.Add(1)
		r.accepted.Add(1)
		r.log.Info("signals: stream status changed", "stream", ev.Subject.ID, "status", ev.Status, "reason", ev.Reason)
		if r.onUpdate != nil {
			r.safeUpdate(ctx, *ev)
		}
		return ev, nil
	}
	if err := r.callHandler(ctx, *ev); err != nil {
		r.hfails.Add(1)
		r.log.Error("signals: event handler failed", "type", ev.Type, "jti", ev.JTI, "error", err)
		if f, ok := r.replay.(Forgetter); ok {
			if ferr := f.Forget(ctx, ev.Issuer, ev.JTI); ferr != nil {
				r.log.Error("signals: replay cache forget failed", "jti", ev.JTI, "error", ferr)
			}
		}
		return ev, fmt.Errorf("%w: %w", ErrHandler, err)
	}
	r.handled.Add(1)
	r.accepted.Add(1)
	return ev, nil
}

func (r *Receiver) callHandler(ctx context.Context, ev Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("signals: handler panicked: %v", p)
		}
	}()
	return r.handler.HandleEvent(ctx, ev)
}

func (r *Receiver) safeUpdate(ctx context.Context, ev Event) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("signals: stream update hook panicked", "panic", fmt.Sprint(p))
		}
	}()
	r.onUpdate(ctx, ev)
}

// BearerAuthorizer returns a push Authorize hook accepting exactly the
// Authorization header "Bearer <token>", compared in constant time; it is
// the counterpart of the authorization_header given to the transmitter
// in the stream's delivery. An empty token is refused.
func BearerAuthorizer(token string) func(r *http.Request) error {
	want := []byte("Bearer " + token)
	return func(r *http.Request) error {
		got := r.Header.Get("Authorization")
		if token == "" || got == "" {
			return ErrAuthenticationFailed
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			return ErrAuthenticationFailed
		}
		return nil
	}
}

// ServeHTTP is the push delivery endpoint (RFC 8935 §2). It accepts a
// POST whose Content-Type is application/secevent+jwt and whose body is
// one SET of at most MaxBodyBytes, answering 202 with an empty body when
// the SET is accepted and 400 with {"err","description"} when it is
// rejected (405 for other methods). When the SET was valid but could not
// be acted on for now, it answers 503 so that the transmitter retries.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("signals: push handler panicked", "panic", fmt.Sprint(p))
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.countRejection(CodeInvalidRequest, fmt.Errorf("method %s", truncate(req.Method, 16)))
		writeSETError(w, http.StatusMethodNotAllowed, CodeInvalidRequest, "only POST is allowed")
		return
	}
	if r.authorize != nil {
		if err := r.authorize(req); err != nil {
			code, desc := CodeAuthenticationFailed, "transmitter not authenticated"
			if errors.Is(err, ErrAccessDenied) {
				code, desc = CodeAccessDenied, "transmitter not authorized"
			}
			r.countRejection(code, err)
			writeSETError(w, http.StatusBadRequest, code, desc)
			return
		}
	}
	mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, MediaTypeSET) {
		r.countRejection(CodeInvalidRequest, fmt.Errorf("content type %q", truncate(req.Header.Get("Content-Type"), 64)))
		writeSETError(w, http.StatusBadRequest, CodeInvalidRequest, "Content-Type must be "+MediaTypeSET)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		desc := "request body could not be read"
		if errors.As(err, &tooBig) {
			desc = "request body too large"
		}
		r.countRejection(CodeInvalidRequest, err)
		writeSETError(w, http.StatusBadRequest, CodeInvalidRequest, desc)
		return
	}
	_, err = r.Receive(req.Context(), string(bytes.TrimSpace(body)))
	var serr *SETError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusAccepted)
	case errors.As(err, &serr):
		writeSETError(w, http.StatusBadRequest, serr.Code, serr.Description)
	default:
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// writeSETError writes an RFC 8935 §2.4 error response.
func writeSETError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Err: code, Description: desc})
}
