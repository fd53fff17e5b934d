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

// checkSignIn checks username and password, posted on the login form of
// the request id, and returns the user when they are right. Otherwise it
// has answered the request itself: 429 when the sign-in throttle refuses
// the attempt, 401 for a wrong user name or password, 503 with
// Retry-After when the password could not be checked in time; each on
// the login page, which keeps the request.
//
// The attempt is counted against the throttle before the password is
// hashed (reserveLogin), so concurrent attempts never check more
// passwords than the limit; a right password clears the count, and an
// attempt whose password was not checked gives it back.
func (s *Server) checkSignIn(w http.ResponseWriter, r *http.Request, id string, req *authRequest, username, password, hint string) (userauth.User, bool) {
	ctx := r.Context()
	res, wait, err := s.reserveLogin(ctx, r, username)
	switch {
	case err != nil && (errors.Is(err, errLoginBusy) || ctx.Err() != nil):
		s.log.WarnContext(ctx, "sign-in not checked: throttle busy", "client_id", req.ClientID, "err", err)
		s.showBusy(w, r, id, req, hint)
		return userauth.User{}, false
	case err != nil:
		s.pageFailed(ctx, w, err)
		return userauth.User{}, false
	case wait > 0:
		// Too many failures for this user name from this address, or
		// from this address at all: refuse further tries for a while,
		// without spending a password hash on them.
		s.log.WarnContext(ctx, "sign-in refused: too many failures", "client_id", req.ClientID)
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		minutes := int(wait.Round(time.Minute) / time.Minute)
		s.showLogin(w, r, id, req, hint, fmt.Sprintf(msgTooManyFmt, max(minutes, 1)), http.StatusTooManyRequests)
		return userauth.User{}, false
	}
	user, err := s.cfg.Users.Authenticate(ctx, username, password)
	switch {
	case err == nil:
		res.succeeded(ctx)
		return user, true
	case errors.Is(err, userauth.ErrBadCredentials):
		// The attempt stays counted: it is the failure.
		s.log.InfoContext(ctx, "sign-in failed", "client_id", req.ClientID)
		s.showLogin(w, r, id, req, hint, msgBadLogin, http.StatusUnauthorized)
	case errors.Is(err, userauth.ErrBusy) || ctx.Err() != nil:
		res.unchecked(ctx)
		s.log.WarnContext(ctx, "sign-in not checked: password hashing busy", "client_id", req.ClientID, "err", err)
		s.showBusy(w, r, id, req, hint)
	default:
		// The attempt stays counted: an error never earns another try.
		s.pageFailed(ctx, w, err)
	}
	return userauth.User{}, false
}

// showBusy answers 503 with Retry-After on the login page.
func (s *Server) showBusy(w http.ResponseWriter, r *http.Request, id string, req *authRequest, hint string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(busyRetryAfter/time.Second)))
	s.showLogin(w, r, id, req, hint, msgBusy, http.StatusServiceUnavailable)
}
