package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Defaults applied to zero fields of [PollerConfig].
const (
	DefaultMaxEvents        = 25
	DefaultPollInterval     = 5 * time.Second
	DefaultPollMinBackoff   = time.Second
	DefaultPollMaxBackoff   = 5 * time.Minute
	DefaultPollTimeout      = 60 * time.Second
	DefaultMaxPollRespBytes = 4 << 20
)

// PollRequest is the body of an RFC 8936 §2.4 poll request.
type PollRequest struct {
	MaxEvents         *int                 `json:"maxEvents,omitempty"`
	ReturnImmediately bool                 `json:"returnImmediately"`
	Ack               []string             `json:"ack"`
	SetErrs           map[string]ErrorBody `json:"setErrs,omitempty"`
}

// PollResponse is the body of an RFC 8936 §2.5 poll response.
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// PollerConfig configures a [Poller].
type PollerConfig struct {
	// Endpoint is the stream's poll endpoint_url. Required.
	Endpoint string
	// Receiver verifies and acts on the SETs. Required.
	Receiver *Receiver
	// Token returns the bearer token for the poll endpoint; nil sends no
	// Authorization header.
	Token func(ctx context.Context) (string, error)
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
	// MaxEvents is maxEvents in each request; zero means
	// DefaultMaxEvents.
	MaxEvents int
	// ReturnImmediately asks for short polling; Run then waits Interval
	// between empty polls. Otherwise the transmitter may hold the request
	// open (long polling).
	ReturnImmediately bool
	// Interval is the pause after an empty poll; zero means
	// DefaultPollInterval (a long poll waits at least a tenth of it).
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed poll.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request; zero means DefaultPollTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps a response body; zero means
	// DefaultMaxPollRespBytes.
	MaxResponseBytes int64
	// AllowHTTP permits an http endpoint (tests, loopback); otherwise it
	// must be https.
	AllowHTTP bool
	// Logger receives poll failures; nil is silent.
	Logger *slog.Logger
}

// PollResult says what one poll did.
type PollResult struct {
	// Received is the number of SETs in the response.
	Received int
	// Accepted and Rejected count them by outcome; the rest failed
	// transiently and will be delivered again.
	Accepted, Rejected int
	// MoreAvailable is the transmitter's moreAvailable.
	MoreAvailable bool
}

// Poller polls a transmitter's poll endpoint (RFC 8936). It acknowledges
// accepted SETs and reports rejected ones in setErrs on the next request.
// PollOnce and Run must not be called concurrently.
type Poller struct {
	cfg PollerConfig
	log *slog.Logger

	mu   sync.Mutex
	acks []string
	errs map[string]ErrorBody
}

// NewPoller returns a Poller for cfg.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if cfg.Receiver == nil {
		return nil, fmt.Errorf("%w: poller needs a receiver", ErrInvalidConfig)
	}
	if err := checkEndpoint(cfg.Endpoint, cfg.AllowHTTP); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPollInterval
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultPollMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultPollMaxBackoff, cfg.MinBackoff)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPollTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxPollRespBytes
	}
	p := &Poller{cfg: cfg, log: cfg.Logger, errs: make(map[string]ErrorBody)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// PollOnce sends one poll request carrying the pending acknowledgements
// and errors, and processes the SETs of the response.
func (p *Poller) PollOnce(ctx context.Context) (PollResult, error) {
	return p.poll(ctx, p.cfg.MaxEvents, p.cfg.ReturnImmediately)
}

// Flush sends the pending acknowledgements and errors without asking for
// SETs (maxEvents 0, returnImmediately).
func (p *Poller) Flush(ctx context.Context) error {
	_, err := p.poll(ctx, 0, true)
	return err
}

// Pending returns the number of acknowledgements and errors not yet sent.
func (p *Poller) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acks) + len(p.errs)
}

func (p *Poller) poll(ctx context.Context, maxEvents int, immediate bool) (PollResult, error) {
	var res PollResult
	p.mu.Lock()
	acks := append([]string{}, p.acks...)
	errs := make(map[string]ErrorBody, len(p.errs))
	for k, v := range p.errs {
		errs[k] = v
	}
	p.mu.Unlock()

	body, err := json.Marshal(PollRequest{MaxEvents: &maxEvents, ReturnImmediately: immediate, Ack: acks, SetErrs: errs})
	if err != nil {
		return res, fmt.Errorf("signals: poll: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, p.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return res, fmt.Errorf("signals: poll: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if p.cfg.Token != nil {
		tok, err := p.cfg.Token(ctx)
		if err != nil {
			return res, fmt.Errorf("signals: poll: token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return res, fmt.Errorf("signals: poll: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxResponseBytes+1))
	if err != nil {
		return res, fmt.Errorf("signals: poll: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, &pollStatusError{HTTPError: httpError(resp.StatusCode, data), retryAfter: retryAfter(resp.Header)}
	}
	if int64(len(data)) > p.cfg.MaxResponseBytes {
		return res, fmt.Errorf("signals: poll: response larger than %d bytes", p.cfg.MaxResponseBytes)
	}
	var pr PollResponse
	if err := json.Unmarshal(data, &pr); err != nil {
		return res, fmt.Errorf("signals: poll: response is not a poll response: %w", err)
	}

	// The transmitter has the acknowledgements and errors we sent.
	p.mu.Lock()
	p.acks = removeAll(p.acks, acks)
	for k := range errs {
		delete(p.errs, k)
	}
	p.mu.Unlock()

	res.Received = len(pr.Sets)
	res.MoreAvailable = pr.MoreAvailable
	for jti, set := range pr.Sets {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("signals: poll: %w", err)
		}
		_, err := p.cfg.Receiver.Receive(ctx, set)
		var serr *SETError
		switch {
		case err == nil:
			p.ack(jti)
			res.Accepted++
		case errors.Is(err, ErrReplay):
			// Already received: acknowledge again, act no more.
			p.ack(jti)
			res.Accepted++
		case errors.As(err, &serr):
			p.setErr(jti, ErrorBody{Err: serr.Code, Description: serr.Description})
			res.Rejected++
		default:
			p.log.Warn("signals: polled SET not processed, will be delivered again", "jti", truncate(jti, 64), "error", err)
		}
	}
	return res, nil
}

func (p *Poller) ack(jti string) {
	p.mu.Lock()
	p.acks = append(p.acks, jti)
	p.mu.Unlock()
}

func (p *Poller) setErr(jti string, e ErrorBody) {
	p.mu.Lock()
	p.errs[jti] = e
	p.mu.Unlock()
}

// Run polls until ctx is done: again at once while moreAvailable, after
// Interval when a short poll found nothing, and after an exponential,
// jittered backoff (or the server's Retry-After) when a poll fails. It
// returns ctx's error.
func (p *Poller) Run(ctx context.Context) error {
	backoff := p.cfg.MinBackoff
	for {
		start := time.Now()
		res, err := p.PollOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		switch {
		case err != nil:
			wait = backoff/2 + rand.N(backoff/2+1)
			var ps *pollStatusError
			if errors.As(err, &ps) && ps.retryAfter > wait {
				wait = min(ps.retryAfter, p.cfg.MaxBackoff)
			}
			backoff = min(backoff*2, p.cfg.MaxBackoff)
			p.log.Warn("signals: poll failed", "error", err, "retry_in", wait)
		case res.MoreAvailable:
			backoff = p.cfg.MinBackoff
			continue
		case p.cfg.ReturnImmediately || res.Received == 0 && time.Since(start) < p.cfg.Interval/10:
			backoff = p.cfg.MinBackoff
			wait = p.cfg.Interval
		default:
			backoff = p.cfg.MinBackoff
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

type pollStatusError struct {
	*HTTPError
	retryAfter time.Duration
}

func (e *pollStatusError) Unwrap() error { return e.HTTPError }

// retryAfter parses a Retry-After header given in seconds.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(min(s, 3600)) * time.Second
}

// removeAll returns list without the values in drop.
func removeAll(list, drop []string) []string {
	if len(drop) == 0 {
		return list
	}
	d := make(map[string]bool, len(drop))
	for _, s := range drop {
		d[s] = true
	}
	out := list[:0]
	for _, s := range list {
		if !d[s] {
			out = append(out, s)
		}
	}
	return out
}

// httpError builds an [*HTTPError] from a response, decoding an RFC 8935
// error object when the body holds one.
func httpError(status int, body []byte) *HTTPError {
	e := &HTTPError{StatusCode: status, Body: excerpt(body)}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Err != "" {
		eb.Err = excerpt([]byte(eb.Err))
		eb.Description = excerpt([]byte(eb.Description))
		e.Err = &eb
	}
	return e
}

// excerpt returns at most 128 bytes of b with control characters
// replaced, for error messages.
func excerpt(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(bytes.TrimSpace([]byte(string(out))))
}

// checkEndpoint requires raw to be an absolute https URL (http when
// allowHTTP) without userinfo or fragment.
func checkEndpoint(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: endpoint %q is not an absolute URL", ErrInvalidConfig, truncate(raw, 128))
	}
	if u.Scheme != "https" && !(allowHTTP && u.Scheme == "http") {
		return fmt.Errorf("%w: endpoint %q must use https", ErrInvalidConfig, truncate(raw, 128))
	}
	return nil
}
