package authserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// busyRetryAfter is the Retry-After of a sign-in answered 503 because the
// password could not be checked in time.
const busyRetryAfter = 2 * time.Second

// Messages of the login page.
const (
	msgBadLogin   = "The user name or password is incorrect."
	msgBusy       = "The server is busy. Try again in a moment."
	msgTooManyFmt = "Too many failed sign-ins. Try again in %d minutes."
)

// loginHint is the user name to prefill a login form shown again with:
// the one posted, unless it is too long to show.
func loginHint(username string) string {
	if len(username) > maxLoginHint {
		return ""
	}
	return username
}

// checkSignIn checks username and password, posted on a login form (the
// authorization endpoint's or the sign-in page's), and returns the user
// when they are right. Otherwise it has answered the request itself with
// show, which renders that form again with a message and a status: 429
// when the sign-in throttle refuses the attempt, 401 for a wrong user name
// or password, 503 with Retry-After when the password could not be
// checked in time. logAttrs (say, the authorization request's client_id)
// are added to its log records.
//
// The attempt is counted against the throttle before the password is
// hashed (reserveLogin), so concurrent attempts never check more
// passwords than the limit; a right password clears the count, and an
// attempt whose password was not checked gives it back.
func (s *Server) checkSignIn(w http.ResponseWriter, r *http.Request, username, password string, show func(message string, status int), logAttrs ...any) (userauth.User, bool) {
	ctx := r.Context()
	log := s.log
	if len(logAttrs) > 0 {
		log = log.With(logAttrs...)
	}
	busy := func() {
		w.Header().Set("Retry-After", strconv.Itoa(int(busyRetryAfter/time.Second)))
		show(msgBusy, http.StatusServiceUnavailable)
	}
	res, wait, err := s.reserveLogin(ctx, r, username)
	switch {
	case err != nil && (errors.Is(err, errLoginBusy) || ctx.Err() != nil):
		log.WarnContext(ctx, "sign-in not checked: throttle busy", "err", err)
		busy()
		return userauth.User{}, false
	case err != nil:
		s.pageFailed(ctx, w, err)
		return userauth.User{}, false
	case wait > 0:
		// Too many failures for this user name from this address, or
		// from this address at all: refuse further tries for a while,
		// without spending a password hash on them.
		log.WarnContext(ctx, "sign-in refused: too many failures")
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		minutes := int(wait.Round(time.Minute) / time.Minute)
		show(fmt.Sprintf(msgTooManyFmt, max(minutes, 1)), http.StatusTooManyRequests)
		return userauth.User{}, false
	}
	user, err := s.cfg.Users.Authenticate(ctx, username, password)
	switch {
	case err == nil:
		res.succeeded(ctx)
		return user, true
	case errors.Is(err, userauth.ErrBadCredentials):
		// The attempt stays counted: it is the failure.
		log.InfoContext(ctx, "sign-in failed")
		show(msgBadLogin, http.StatusUnauthorized)
	case errors.Is(err, userauth.ErrBusy) || ctx.Err() != nil:
		res.unchecked(ctx)
		log.WarnContext(ctx, "sign-in not checked: password hashing busy", "err", err)
		busy()
	default:
		// The attempt stays counted: an error never earns another try.
		s.pageFailed(ctx, w, err)
	}
	return userauth.User{}, false
}
