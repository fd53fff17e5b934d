package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

// nsLogin holds failed sign-in counters.
const nsLogin = "as.login"

// loginFailures counts failed sign-ins of one key within a window.
type loginFailures struct {
	Count       int   `json:"count"`
	First       int64 `json:"first"`
	LockedUntil int64 `json:"locked_until,omitempty"`
}

// loginKeys are the counters a sign-in attempt from r for username is
// subject to: the (user name, address) pair and the address alone.
func loginKeys(r *http.Request, username string) (pair, addr string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	sum := sha256.Sum256([]byte(strings.ToLower(username) + "\x00" + host))
	a := sha256.Sum256([]byte(host))
	return "u:" + base64.RawURLEncoding.EncodeToString(sum[:]), "a:" + base64.RawURLEncoding.EncodeToString(a[:])
}

// loginLocked reports how long sign-ins for username from r's address are
// refused after too many failures (0: not refused).
func (s *Server) loginLocked(ctx context.Context, r *http.Request, username string) (time.Duration, error) {
	if s.cfg.MaxLoginFailures < 0 {
		return 0, nil
	}
	now := s.now()
	pair, addr := loginKeys(r, username)
	for _, key := range []string{pair, addr} {
		f, _, err := getRecord[loginFailures](ctx, s.store, nsLogin, key, "sign-in counter")
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if until := time.Unix(f.LockedUntil, 0); until.After(now) {
			return until.Sub(now), nil
		}
	}
	return 0, nil
}

// loginFailed counts a failed sign-in against the pair and the address,
// locking either once it reaches its limit within the lockout period.
func (s *Server) loginFailed(ctx context.Context, r *http.Request, username string) error {
	if s.cfg.MaxLoginFailures < 0 {
		return nil
	}
	pair, addr := loginKeys(r, username)
	if err := s.countFailure(ctx, pair, s.cfg.MaxLoginFailures); err != nil {
		return err
	}
	return s.countFailure(ctx, addr, loginFailuresPerAddress)
}

func (s *Server) countFailure(ctx context.Context, key string, limit int) error {
	window := s.cfg.LoginLockout
	for range 5 {
		now := s.now()
		f, version, err := getRecord[loginFailures](ctx, s.store, nsLogin, key, "sign-in counter")
		w := Write{TTL: 2 * window}
		switch {
		case errors.Is(err, ErrNotFound):
			f, w.IfAbsent = &loginFailures{}, true
		case err != nil:
			return err
		default:
			w.IfVersion = version
		}
		if f.First == 0 || now.Sub(time.Unix(f.First, 0)) > window {
			*f = loginFailures{First: now.Unix()}
		}
		f.Count++
		if f.Count >= limit {
			f.LockedUntil = now.Add(window).Unix()
		}
		data, _ := json.Marshal(f)
		_, err = s.store.Put(ctx, nsLogin, key, data, w)
		if err == nil || !errors.Is(err, ErrConflict) {
			if err != nil {
				return fmt.Errorf("authserver: count a failed sign-in: %w", err)
			}
			return nil
		}
	}
	return errors.New("authserver: count a failed sign-in: too many concurrent writers")
}

// loginSucceeded clears the pair's counter.
func (s *Server) loginSucceeded(ctx context.Context, r *http.Request, username string) {
	pair, _ := loginKeys(r, username)
	if err := s.store.Delete(ctx, nsLogin, pair, 0); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.WarnContext(ctx, "could not clear a sign-in counter", "err", err)
	}
}
