package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Sign-in throttling defaults (Config.MaxLoginFailures, Config.LoginLockout).
const (
	DefaultMaxLoginFailures = 5
	DefaultLoginLockout     = 15 * time.Minute
	// loginFailuresPerAddress is how many failed sign-ins one network
	// address may make, for any user names, within a lockout period.
	loginFailuresPerAddress = 10 * DefaultMaxLoginFailures
)

// Retries of a contended sign-in counter.
const (
	// loginCounterBudget is how long one change of a sign-in counter keeps
	// retrying against concurrent writers (of this host or another sharing
	// the store) before the attempt is answered 503, its password unchecked.
	loginCounterBudget = 2 * time.Second
	// loginCounterMaxBackoff caps the randomized pause between retries.
	loginCounterMaxBackoff = 20 * time.Millisecond
)

// nsLogin holds failed sign-in counters.
const nsLogin = "as.login"

// loginFailures counts the sign-in attempts of one key within a window
// that failed or are being checked: an attempt is counted before its
// password is hashed, and only a right password or an attempt whose
// password could not be checked gives its count back.
type loginFailures struct {
	Count       int   `json:"count"`
	First       int64 `json:"first"`
	LockedUntil int64 `json:"locked_until,omitempty"`
}

// errLoginBusy: a sign-in counter stayed contended for loginCounterBudget.
var errLoginBusy = errors.New("authserver: sign-in counter is too contended")

// loginKeys are the counters a sign-in attempt from r for username is
// subject to: the (user name, address) pair and the address alone. The
// address is the client's as registration limits see it (clientAddr,
// limitKey): X-Forwarded-For only from a trusted proxy, and an IPv6
// address's /64, so a client cannot earn fresh counters by moving within
// its block.
func (s *Server) loginKeys(r *http.Request, username string) (pair, addr string) {
	host := limitKey(clientAddr(r, s.cfg.TrustedProxies)).String()
	sum := sha256.Sum256([]byte(strings.ToLower(username) + "\x00" + host))
	a := sha256.Sum256([]byte(host))
	return "u:" + base64.RawURLEncoding.EncodeToString(sum[:]), "a:" + base64.RawURLEncoding.EncodeToString(a[:])
}

// loginSlot is one counted attempt: the counter's key and the start of
// the window it was counted in.
type loginSlot struct {
	key   string
	limit int
	first int64
}

// loginReservation is a sign-in attempt counted against both of its
// counters before its password is checked. A wrong password keeps both
// counts: they are the failure. Its methods may be called on a nil
// reservation (throttling off).
type loginReservation struct {
	s          *Server
	pair, addr loginSlot
}

// reserveLogin counts a sign-in attempt for username from r's address
// against the pair's counter and the address's, in the store, before any
// password work, so that concurrent attempts, on this host or on others
// sharing the store, never check more passwords than the limits allow.
// When either counter is locked it returns how long (and counts nothing).
// A counter that stays contended for loginCounterBudget gives errLoginBusy.
func (s *Server) reserveLogin(ctx context.Context, r *http.Request, username string) (*loginReservation, time.Duration, error) {
	if s.cfg.MaxLoginFailures < 0 {
		return nil, 0, nil
	}
	pairKey, addrKey := s.loginKeys(r, username)
	pair, wait, err := s.reserveSlot(ctx, pairKey, s.cfg.MaxLoginFailures)
	if err != nil || wait > 0 {
		return nil, wait, err
	}
	addr, wait, err := s.reserveSlot(ctx, addrKey, loginFailuresPerAddress)
	if err != nil || wait > 0 {
		s.releaseSlot(ctx, pair)
		return nil, wait, err
	}
	return &loginReservation{s: s, pair: pair, addr: addr}, 0, nil
}

// succeeded clears the pair's counter, as the right password forgives its
// earlier failures, and gives the address its count back.
func (res *loginReservation) succeeded(ctx context.Context) {
	if res == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loginCounterBudget)
	defer cancel()
	if err := res.s.store.Delete(ctx, nsLogin, res.pair.key, 0); err != nil && !errors.Is(err, ErrNotFound) {
		res.s.log.WarnContext(ctx, "could not clear a sign-in counter", "err", err)
	}
	res.s.releaseSlot(ctx, res.addr)
}

// unchecked gives both counts back: the password was not checked.
func (res *loginReservation) unchecked(ctx context.Context) {
	if res == nil {
		return
	}
	res.s.releaseSlot(ctx, res.pair)
	res.s.releaseSlot(ctx, res.addr)
}

// reserveSlot counts one attempt against key unless the counter is
// locked; the count that reaches limit locks the counter for the lockout.
func (s *Server) reserveSlot(ctx context.Context, key string, limit int) (loginSlot, time.Duration, error) {
	window := s.cfg.LoginLockout
	slot := loginSlot{key: key, limit: limit}
	var wait time.Duration
	err := s.updateLoginCounter(ctx, key, func(f *loginFailures, now time.Time) bool {
		wait = 0
		if until := time.Unix(f.LockedUntil, 0); f.LockedUntil != 0 && until.After(now) {
			wait = until.Sub(now)
			return false
		}
		if f.LockedUntil != 0 || f.First == 0 || now.Sub(time.Unix(f.First, 0)) > window {
			*f = loginFailures{First: now.Unix()}
		}
		if f.Count >= limit {
			// Only a lower limit than the one that wrote the counter
			// gets here.
			f.LockedUntil = now.Add(window).Unix()
			wait = window
			return true
		}
		f.Count++
		if f.Count >= limit {
			f.LockedUntil = now.Add(window).Unix()
		}
		slot.first = f.First
		return true
	})
	return slot, wait, err
}

// releaseSlot gives back the count of slot, unlocking the counter if it
// drops below the limit. A count from a window that has since ended is
// already gone. Failing to release leaves the count in place, which errs
// on the side of refusing.
func (s *Server) releaseSlot(ctx context.Context, slot loginSlot) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loginCounterBudget)
	defer cancel()
	err := s.updateLoginCounter(ctx, slot.key, func(f *loginFailures, _ time.Time) bool {
		if f.First != slot.first || f.Count == 0 {
			return false
		}
		f.Count--
		if f.Count < slot.limit {
			f.LockedUntil = 0
		}
		return true
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not release a sign-in counter", "err", err)
	}
}

// updateLoginCounter applies change to the counter at key with a
// compare-and-swap write, retrying with randomized backoff while other
// writers win, for at most loginCounterBudget. change reports whether to
// write; it may run several times. A counter that stays contended gives
// errLoginBusy; nothing is written then.
func (s *Server) updateLoginCounter(ctx context.Context, key string, change func(f *loginFailures, now time.Time) bool) error {
	ctx, cancel := context.WithTimeout(ctx, loginCounterBudget)
	defer cancel()
	backoff := time.Millisecond
	for {
		f, version, err := getRecord[loginFailures](ctx, s.store, nsLogin, key, "sign-in counter")
		w := Write{TTL: 2 * s.cfg.LoginLockout}
		switch {
		case errors.Is(err, ErrNotFound):
			f, w.IfAbsent = &loginFailures{}, true
		case err != nil:
			return s.counterError(ctx, err)
		default:
			w.IfVersion = version
		}
		if !change(f, s.now()) {
			return nil
		}
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("authserver: encode a sign-in counter: %w", err)
		}
		_, err = s.store.Put(ctx, nsLogin, key, data, w)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return s.counterError(ctx, fmt.Errorf("authserver: save a sign-in counter: %w", err))
		}
		t := time.NewTimer(rand.N(backoff) + time.Millisecond/2)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.counterError(ctx, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, loginCounterMaxBackoff)
	}
}

// counterError turns the end of updateLoginCounter's own time budget into
// errLoginBusy; any other error is returned as it is.
func (s *Server) counterError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errLoginBusy, err)
	}
	return err
}
