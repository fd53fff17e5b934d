package authserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// PathSignIn is the sign-in page for the host's own pages (an approval
// page, say) rather than for an authorization request: it starts the same
// session as the authorization endpoint's login page and sends the browser
// back to a path on the server's origin ([Server.SignInURL]).
const PathSignIn = "/oauth2/signin"

// maxReturnTo caps return_to.
const maxReturnTo = 1024

var errBadReturnTo = badRequestPage("The page to return to after signing in is missing or not a page of this site.")

// handleSignIn serves PathSignIn: GET shows the login form, POST checks
// it (CSRF, the sign-in throttle, the password) and on success starts a
// session and redirects (303) to return_to.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodGet {
		q, err := oauth.ParseQuery(r)
		if err != nil {
			s.renderError(ctx, w, badRequestPage("The request parameters are malformed."))
			return
		}
		returnTo, err := q.Get("return_to")
		if err != nil || !validReturnTo(returnTo) {
			s.renderError(ctx, w, errBadReturnTo)
			return
		}
		s.showSignIn(w, r, returnTo, "", "", http.StatusOK)
		return
	}
	// Before sign-in there is no session: the form's token is bound to the
	// browser's CSRF cookie, as on the login page.
	f, ok := s.parsePageForm(w, r, func(token string) error { return s.sessions.CheckCSRF(r, token) })
	if !ok {
		return
	}
	returnTo, err := f.Get("return_to")
	if err != nil || !validReturnTo(returnTo) {
		s.renderError(ctx, w, errBadReturnTo)
		return
	}
	username, err1 := f.Get("username")
	password, err2 := f.Get("password")
	if err1 != nil || err2 != nil {
		s.renderError(ctx, w, badRequestPage("The form is malformed."))
		return
	}
	user, ok := s.checkSignIn(w, r, username, password, func(message string, status int) {
		s.showSignIn(w, r, returnTo, loginHint(username), message, status)
	})
	if !ok {
		return
	}
	if _, err := s.sessions.Start(w, user.Name); err != nil {
		s.pageFailed(ctx, w, fmt.Errorf("authserver: start session: %w", err))
		return
	}
	s.log.InfoContext(ctx, "signed in", "sub", user.Name)
	h := w.Header()
	h.Set("Location", returnTo)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusSeeOther)
}

// validReturnTo reports whether p is a path on this origin: it starts
// with one slash (not "//", which a browser reads as another host), holds
// no backslash (which some browsers read as a slash), no control
// characters, and parses as a bare path with an optional query.
func validReturnTo(p string) bool {
	if p == "" || len(p) > maxReturnTo || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\#") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x21 || p[i] == 0x7f {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}

// showSignIn renders the login form posting to PathSignIn.
func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, returnTo, username, message string, status int) {
	err := userauth.RenderLogin(w, status, userauth.LoginPage{
		Action:   s.pathPrefix() + PathSignIn,
		CSRF:     s.sessions.CSRFToken(w, r),
		Username: username,
		Error:    message,
		Hidden:   map[string]string{"return_to": returnTo},
	})
	if err != nil {
		s.log.ErrorContext(r.Context(), "render sign-in page", "err", err)
	}
}
