package svidtls

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Defaults applied by [NewRotating] to zero RotatingConfig fields.
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = time.Minute
)

// IssueFunc returns a new X509-SVID for the workload, such as the host's
// CA (credentials/ca) or an upstream Workload API issues.
type IssueFunc func(ctx context.Context) (*x509svid.SVID, error)

// RotatingConfig configures a [Rotating].
type RotatingConfig struct {
	// Issue returns a fresh X509-SVID. Required. Every SVID it returns
	// must name the same SPIFFE ID as the first.
	Issue IssueFunc
	// RetryMin is the wait after a first failed renewal; it doubles with
	// each further failure up to RetryMax. Zero means DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// After returns a channel that receives once d has passed, as
	// time.After does (nil means time.After). Run waits on it between
	// renewals; a test substitutes a channel it fires itself.
	After func(d time.Duration) <-chan time.Time
	// Logger receives renewals (info) and failed renewals (warning); nil
	// means silent.
	Logger *slog.Logger
}

// Rotating holds a workload's current X509-SVID and renews it at half its
// lifetime. It is an x509svid.Source: give it to [ServerConfig] or
// [NewTransport] and every new handshake presents the current SVID. A
// failed renewal keeps the current SVID and is retried with exponential
// backoff; once the SVID expires, GetX509SVID fails with [ErrExpired]
// rather than present it. Its methods are safe for concurrent use.
type Rotating struct {
	issue    IssueFunc
	retryMin time.Duration
	retryMax time.Duration
	now      func() time.Time
	after    func(time.Duration) <-chan time.Time
	log      *slog.Logger
	id       spiffeid.ID

	renewMu sync.Mutex // serialises Renew

	mu          sync.RWMutex
	svid        *x509svid.SVID
	failures    int       // consecutive failed renewals
	lastFailure time.Time // time of the last failed renewal
}

var _ x509svid.Source = (*Rotating)(nil)

// NewRotating checks cfg and obtains the first X509-SVID from cfg.Issue,
// blocking until it returns; it fails if that first issue fails.
func NewRotating(ctx context.Context, cfg RotatingConfig) (*Rotating, error) {
	if cfg.Issue == nil {
		return nil, fmt.Errorf("%w: rotating: no issue function", ErrConfig)
	}
	if cfg.RetryMin < 0 || cfg.RetryMax < 0 {
		return nil, fmt.Errorf("%w: rotating: negative retry interval", ErrConfig)
	}
	r := &Rotating{
		issue:    cfg.Issue,
		retryMin: cfg.RetryMin,
		retryMax: cfg.RetryMax,
		now:      orNow(cfg.Now),
		after:    cfg.After,
		log:      orDiscard(cfg.Logger),
	}
	if r.retryMin == 0 {
		r.retryMin = DefaultRetryMin
	}
	if r.retryMax == 0 {
		r.retryMax = max(DefaultRetryMax, r.retryMin)
	}
	if r.retryMax < r.retryMin {
		return nil, fmt.Errorf("%w: rotating: RetryMax %s below RetryMin %s", ErrConfig, r.retryMax, r.retryMin)
	}
	if r.after == nil {
		r.after = time.After
	}
	svid, err := r.issueChecked(ctx)
	if err != nil {
		return nil, fmt.Errorf("svidtls: rotating: first X509-SVID: %w", err)
	}
	r.id = svid.ID
	r.svid = svid
	return r, nil
}

// ID returns the SPIFFE ID of the workload, fixed by the first SVID.
func (r *Rotating) ID() spiffeid.ID { return r.id }

// GetX509SVID returns the current X509-SVID, or [ErrExpired] once it has
// expired. It implements x509svid.Source.
func (r *Rotating) GetX509SVID() (*x509svid.SVID, error) {
	r.mu.RLock()
	svid := r.svid
	r.mu.RUnlock()
	if notAfter := svid.Certificates[0].NotAfter; !r.now().Before(notAfter) {
		return nil, fmt.Errorf("%w: %s expired at %s", ErrExpired, svid.ID, notAfter.UTC().Format(time.RFC3339))
	}
	return svid, nil
}

// NextRenewal returns when Run renews next: half way through the current
// SVID's lifetime or, after failed renewals, at the end of the backoff.
func (r *Rotating) NextRenewal() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.failures > 0 {
		return r.lastFailure.Add(backoff(r.failures, r.retryMin, r.retryMax))
	}
	return renewalTime(r.svid)
}

// Renew obtains a new X509-SVID now and makes it current. On failure the
// current SVID stays, the failure is logged and counted for the backoff,
// and the error is returned.
func (r *Rotating) Renew(ctx context.Context) error {
	r.renewMu.Lock()
	defer r.renewMu.Unlock()
	svid, err := r.issueChecked(ctx)
	if err != nil {
		err = fmt.Errorf("svidtls: renew %s: %w", r.id, err)
		if ctx.Err() != nil {
			return err
		}
		now := r.now()
		r.mu.Lock()
		r.failures++
		r.lastFailure = now
		attempt, current := r.failures, r.svid
		r.mu.Unlock()
		r.log.WarnContext(ctx, "X509-SVID renewal failed",
			attrSPIFFEID, r.id.String(),
			attrError, err,
			attrAttempt, attempt,
			attrRetryIn, backoff(attempt, r.retryMin, r.retryMax),
			attrExpiresAt, current.Certificates[0].NotAfter)
		return err
	}
	r.mu.Lock()
	r.svid = svid
	r.failures = 0
	r.lastFailure = time.Time{}
	r.mu.Unlock()
	r.log.InfoContext(ctx, "X509-SVID renewed",
		attrSPIFFEID, r.id.String(),
		attrExpiresAt, svid.Certificates[0].NotAfter)
	return nil
}

// Run renews the SVID at [Rotating.NextRenewal] until ctx ends, then
// returns nil. Failed renewals are logged by Renew and retried.
func (r *Rotating) Run(ctx context.Context) error {
	for first := true; ; first = false {
		wait := r.NextRenewal().Sub(r.now())
		// The first renewal may be due at once (an SVID already past half
		// its life); later ones wait at least RetryMin, so an SVID with an
		// absurdly short lifetime cannot make Run spin.
		if wait < 0 {
			wait = 0
		}
		if !first && wait < r.retryMin {
			wait = r.retryMin
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.after(wait):
		}
		_ = r.Renew(ctx)
	}
}

// issueChecked calls the issue function and checks the result is usable.
func (r *Rotating) issueChecked(ctx context.Context) (*x509svid.SVID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	svid, err := r.issue(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkIssued(svid, r.id, r.now()); err != nil {
		return nil, err
	}
	return svid, nil
}

// checkIssued reports whether svid can be presented at now: a leaf that
// names svid.ID (and want, unless want is zero), a private key matching
// it, and a validity period that has not ended.
func checkIssued(svid *x509svid.SVID, want spiffeid.ID, now time.Time) error {
	if svid == nil || len(svid.Certificates) == 0 || svid.Certificates[0] == nil {
		return fmt.Errorf("%w: issued SVID has no certificate", ErrInvalidSVID)
	}
	leaf := svid.Certificates[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return fmt.Errorf("%w: issued SVID: %w", ErrInvalidSVID, err)
	}
	if id != svid.ID {
		return fmt.Errorf("%w: issued SVID names %s, its certificate %s", ErrInvalidSVID, svid.ID, id)
	}
	if !want.IsZero() && id != want {
		return fmt.Errorf("%w: issued SVID names %s, want %s", ErrInvalidSVID, id, want)
	}
	if svid.PrivateKey == nil {
		return fmt.Errorf("%w: issued SVID has no private key", ErrInvalidSVID)
	}
	pub, ok := svid.PrivateKey.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: issued SVID's private key does not match its certificate", ErrInvalidSVID)
	}
	if !now.Before(leaf.NotAfter) {
		return fmt.Errorf("%w: issued SVID expired at %s", ErrInvalidSVID, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// renewalTime is half way through the lifetime of svid's leaf.
func renewalTime(svid *x509svid.SVID) time.Time {
	leaf := svid.Certificates[0]
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
}

// backoff is the wait after the given number of consecutive failures:
// minWait doubled per failure after the first, at most maxWait.
func backoff(failures int, minWait, maxWait time.Duration) time.Duration {
	d := minWait
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}
