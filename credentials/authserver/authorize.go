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
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Limits of the authorization endpoint.
const (
	// requestTTL is how long a validated authorization request waits for
	// the user to sign in and decide.
	requestTTL = 10 * time.Minute
	// maxStateBytes and maxNonceBytes cap the values echoed back to the
	// client and into the ID token.
	maxStateBytes = 2048
	maxNonceBytes = 2048
	// maxLoginHint caps the login_hint used to prefill the login form.
	maxLoginHint = 128
)

// OpenID Connect Core §3.1.2.6 error codes for request objects, which
// this server does not take.
const (
	codeRequestNotSupported    = "request_not_supported"
	codeRequestURINotSupported = "request_uri_not_supported"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1, RFC
// 7636 §4.3, RFC 8707 §2, RFC 9396 §2) waiting for the user. It is stored
// in nsRequests under the SHA-256 of a random id that the login and
// consent forms carry.
type authRequest struct {
	ClientID    string `json:"client_id"`
	ClientName  string `json:"client_name,omitempty"`
	ClientURI   string `json:"client_uri,omitempty"`
	RedirectURI string `json:"redirect_uri"`
	// RedirectURISent records that the request named redirect_uri, which
	// makes it required at the token endpoint (RFC 6749 §4.1.3).
	RedirectURISent bool     `json:"redirect_uri_sent,omitempty"`
	State           string   `json:"state,omitempty"`
	Scopes          []string `json:"scopes,omitempty"`
	// Resources are the RFC 8707 resource indicators the user grants; none
	// means the token's audience is this server.
	Resources            []string        `json:"resources,omitempty"`
	CodeChallenge        string          `json:"code_challenge"`
	Nonce                string          `json:"nonce,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// User is the signed-in user the consent page was shown to, and
	// AuthTime when that user signed in.
	User     string    `json:"user,omitempty"`
	AuthTime time.Time `json:"auth_time,omitzero"`

	// Request-time options that are not kept.
	loginHint   string
	promptNone  bool
	promptLogin bool
	maxAge      time.Duration // < 0: not given
}

// pageError is an authorization request error that must not be sent to
// the redirect_uri (RFC 6749 §4.1.2.1): the client or the redirect_uri is
// not trusted, so the user sees an error page instead.
type pageError struct {
	status  int
	title   string
	message string
}

func (e *pageError) Error() string { return "authserver: " + e.message }

func badRequestPage(message string) *pageError {
	return &pageError{status: http.StatusBadRequest, title: "Invalid authorization request", message: message}
}

// handleAuthorize serves the authorization endpoint (RFC 6749 §4.1.1)
// for GET and POST. A request that passes validation is stored and the
// user sees the login page, or the consent page when a session exists.
// Consent is asked every time.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var (
		f   oauth.Form
		err error
	)
	switch r.Method {
	case http.MethodGet:
		f, err = oauth.ParseQuery(r)
	case http.MethodPost:
		f, err = oauth.ParseForm(r)
	default:
		w.Header().Set("Allow", "GET, POST")
		s.renderError(ctx, w, &pageError{status: http.StatusMethodNotAllowed, title: "Method not allowed",
			message: "The authorization endpoint accepts GET and POST."})
		return
	}
	if err != nil {
		s.renderError(ctx, w, badRequestPage("The request parameters are malformed: "+oauth.AsError(err).Description+"."))
		return
	}
	req, err := s.validateAuthorize(ctx, f)
	if err != nil {
		s.authorizeFailed(w, r, req, err)
		return
	}

	sess, sessErr := s.session(ctx, r)
	signedIn := sessErr == nil && !req.promptLogin &&
		(req.maxAge < 0 || !s.now().After(sess.AuthTime.Add(req.maxAge)))
	if signedIn {
		// A user removed from the directory keeps no session.
		_, signedIn = s.cfg.Users.Lookup(sess.User)
	}
	if req.promptNone {
		// Without interaction nothing can be granted: the user must sign
		// in, or consent, which is asked every time (OpenID Connect Core
		// §3.1.2.6).
		if !signedIn {
			s.redirectError(w, r, req, oauth.Errorf(oauth.CodeLoginRequired, "the user is not signed in"))
		} else {
			s.redirectError(w, r, req, oauth.Errorf(oauth.CodeConsentRequired, "the user must consent"))
		}
		return
	}
	if signedIn {
		req.User, req.AuthTime = sess.User, sess.AuthTime
	}
	id, err := s.saveRequest(ctx, req)
	if err != nil {
		s.redirectError(w, r, req, err)
		return
	}
	if !signedIn {
		s.showLogin(w, r, id, req, req.loginHint, "", http.StatusOK)
		return
	}
	s.showConsent(w, r, id, req, sess)
}

// validateAuthorize checks an authorization request. Until client_id and
// redirect_uri are trusted it fails with a *pageError and a nil request;
// after that every error comes with the request, whose redirect_uri and
// state carry the error back to the client.
func (s *Server) validateAuthorize(ctx context.Context, f oauth.Form) (*authRequest, error) {
	clientID, err := f.Get("client_id")
	if err != nil {
		return nil, badRequestPage("The request names more than one client.")
	}
	if clientID == "" {
		return nil, badRequestPage("The request does not name a client (client_id is missing).")
	}
	c, err := s.clients.lookup(ctx, clientID)
	if err != nil {
		if errors.Is(err, errDocumentUnusable) {
			return nil, badRequestPage("The application identifies itself by the client ID metadata document at " +
				clientID + ", which this server could not use: it could not be fetched from there, or it is not a " +
				"valid document for this application. Its developer can find why in this server's log.")
		}
		if oauth.AsError(err).Code == oauth.CodeInvalidClient {
			return nil, badRequestPage("The application is not registered with this server.")
		}
		return nil, err
	}
	sent, err := f.Get("redirect_uri")
	if err != nil {
		return nil, badRequestPage("The request names more than one redirect URI.")
	}
	redirectURI, perr := redirectFor(c, sent)
	if perr != nil {
		return nil, perr
	}
	req := &authRequest{ClientID: c.ID, ClientName: c.Name, ClientURI: c.URI, RedirectURI: redirectURI,
		RedirectURISent: sent != "", maxAge: -1}

	// From here on, errors go back to the client (RFC 6749 §4.1.2.1).
	state, err := f.Get("state")
	if err != nil {
		return req, err
	}
	if len(state) > maxStateBytes {
		return req, oauth.Errorf(oauth.CodeInvalidRequest, "state exceeds %d bytes", maxStateBytes)
	}
	req.State = state

	responseType, err := f.Get("response_type")
	if err != nil {
		return req, err
	}
	switch responseType {
	case "code":
	case "":
		return req, oauth.Errorf(oauth.CodeInvalidRequest, "parameter response_type is missing")
	default:
		return req, oauth.Errorf(oauth.CodeUnsupportedResponseType, "only response_type code is supported")
	}
	if mode, err := f.Get("response_mode"); err != nil {
		return req, err
	} else if mode != "" && mode != "query" {
		return req, oauth.Errorf(oauth.CodeInvalidRequest, "only response_mode query is supported")
	}
	if f.Has("request") {
		return req, oauth.Errorf(codeRequestNotSupported, "request objects are not supported")
	}
	if f.Has("request_uri") {
		return req, oauth.Errorf(codeRequestURINotSupported, "request_uri is not supported")
	}
	if !c.allowsGrant(oauth.GrantAuthorizationCode) {
		return req, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use the authorization code grant")
	}

	if req.CodeChallenge, err = codeChallenge(f); err != nil {
		return req, err
	}

	ac := s.authorizing(c, f)
	if f, err = narrowScope(f, ac); err != nil {
		return req, err
	}
	scopes, aud, err := s.target(f, ac, nil)
	if err != nil {
		return req, err
	}
	req.Scopes = scopes
	if f.Has("resource") {
		req.Resources = aud
	}
	if req.AuthorizationDetails, err = s.authorizationDetails(f); err != nil {
		return req, err
	}

	if req.Nonce, err = f.Get("nonce"); err != nil {
		return req, err
	}
	if len(req.Nonce) > maxNonceBytes {
		return req, oauth.Errorf(oauth.CodeInvalidRequest, "nonce exceeds %d bytes", maxNonceBytes)
	}
	if req.DPoPJKT, err = f.Get("dpop_jkt"); err != nil {
		return req, err
	}
	if req.DPoPJKT != "" && !validThumbprint(req.DPoPJKT) {
		return req, oauth.Errorf(oauth.CodeInvalidRequest, "dpop_jkt is not a base64url SHA-256 JWK thumbprint")
	}
	if err := parsePrompt(f, req); err != nil {
		return req, err
	}
	hint, err := f.Get("login_hint")
	if err != nil {
		return req, err
	}
	if len(hint) <= maxLoginHint {
		req.loginHint = hint
	}
	return req, nil
}

// redirectFor returns the redirect URI to use: the one sent when it is
// registered (exact string comparison, RFC 9700 §4.1.3), or the only
// registered one when none is sent and the client is confidential.
func redirectFor(c *client, sent string) (string, *pageError) {
	if sent == "" {
		if c.public() {
			return "", badRequestPage("The request has no redirect URI, which this application must send.")
		}
		if len(c.RedirectURIs) != 1 {
			return "", badRequestPage("The request has no redirect URI and the application has several.")
		}
		return c.RedirectURIs[0], nil
	}
	if !redirectPortValid(sent) {
		// Also for a registered URI: none is registered with such a
		// port any more, and a loopback URI may vary only its port.
		return "", badRequestPage("The redirect URI's port is not a number from 1 to 65535.")
	}
	for _, u := range c.RedirectURIs {
		if u == sent || loopbackMatch(u, sent) {
			return sent, nil
		}
	}
	return "", badRequestPage("The redirect URI is not registered for this application.")
}

// loopbackMatch implements the one exception to exact matching (RFC 8252
// §7.3, RFC 9700 §4.1.3): a registered http redirect URI on a loopback IP
// literal matches the same URI with any port (a valid one: see
// redirectFor), because native apps listen on a port the operating system
// picks. Everything else must be equal.
func loopbackMatch(registered, sent string) bool {
	r, err := url.Parse(registered)
	if err != nil || r.Scheme != "http" || !isLoopbackIP(r.Hostname()) {
		return false
	}
	u, err := url.Parse(sent)
	if err != nil || !strings.HasPrefix(sent, "http://") || u.Hostname() != r.Hostname() || u.User != nil || u.Fragment != "" || strings.Contains(sent, "#") {
		return false
	}
	return u.EscapedPath() == r.EscapedPath() && u.RawQuery == r.RawQuery
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// codeChallenge reads the PKCE parameters (RFC 7636 §4.3). A challenge is
// required and only S256 is accepted: a missing method means plain
// (§4.3), which is refused (RFC 9700 §2.1.1).
func codeChallenge(f oauth.Form) (string, error) {
	challenge, err := f.Get("code_challenge")
	if err != nil {
		return "", err
	}
	method, err := f.Get("code_challenge_method")
	if err != nil {
		return "", err
	}
	switch {
	case challenge == "":
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "code_challenge is required (PKCE with S256)")
	case method == "":
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "code_challenge_method is missing, which means plain; use S256")
	case method != oauth.PKCES256:
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "code_challenge_method %q is not supported; use S256", truncate(method, 20))
	case !validPKCEValue(challenge):
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	return challenge, nil
}

// validPKCEValue reports whether v is 43 to 128 characters of the
// unreserved set, the syntax of a code verifier and a code challenge
// (RFC 7636 §4.1, §4.2).
func validPKCEValue(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// s256 is the S256 code challenge of a verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validThumbprint reports whether t is an unpadded base64url SHA-256
// value, the form of an RFC 7638 thumbprint.
func validThumbprint(t string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(t)
	return err == nil && len(b) == sha256.Size
}

// parsePrompt reads prompt and max_age (OpenID Connect Core §3.1.2.1).
func parsePrompt(f oauth.Form, req *authRequest) error {
	prompt, err := f.Get("prompt")
	if err != nil {
		return err
	}
	values := strings.Fields(prompt)
	for _, v := range values {
		switch v {
		case "none":
			if len(values) > 1 {
				return oauth.Errorf(oauth.CodeInvalidRequest, "prompt none cannot be combined with other values")
			}
			req.promptNone = true
		case "login":
			req.promptLogin = true
		}
	}
	raw, err := f.Get("max_age")
	if err != nil || raw == "" {
		return err
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 || n > int64(365*24*time.Hour/time.Second) {
		return oauth.Errorf(oauth.CodeInvalidRequest, "max_age must be a non-negative number of seconds")
	}
	req.maxAge = time.Duration(n) * time.Second
	return nil
}

// authorizeFailed answers a request that validateAuthorize refused.
func (s *Server) authorizeFailed(w http.ResponseWriter, r *http.Request, req *authRequest, err error) {
	var pe *pageError
	if errors.As(err, &pe) {
		s.renderError(r.Context(), w, pe)
		return
	}
	if req == nil {
		s.log.ErrorContext(r.Context(), "authorization request failed", "err", err)
		s.renderError(r.Context(), w, serverErrorPage)
		return
	}
	s.redirectError(w, r, req, err)
}

var serverErrorPage = &pageError{status: http.StatusInternalServerError, title: "Something went wrong",
	message: "The server could not complete the request. Try again later."}

// redirectError sends an error response to the client's redirect URI
// (RFC 6749 §4.1.2.1) with the issuer (RFC 9207 §2).
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, err error) {
	oe := oauth.AsError(err)
	if oe.Code == oauth.CodeServerError {
		s.log.ErrorContext(r.Context(), "authorization request failed", "client_id", req.ClientID, "err", err)
	}
	params := url.Values{"error": {oe.Code}}
	if oe.Description != "" {
		params.Set("error_description", oe.Description)
	}
	s.redirectToClient(w, r, req, params)
}

// redirectToClient sends the browser to the request's redirect URI with
// params, state and iss added to any query the registered URI has.
func (s *Server) redirectToClient(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values) {
	if req.State != "" {
		params.Set("state", req.State)
	}
	params.Set("iss", s.issuer)
	target, _, _ := strings.Cut(req.RedirectURI, "#")
	switch {
	case !strings.Contains(target, "?"):
		target += "?"
	case !strings.HasSuffix(target, "?") && !strings.HasSuffix(target, "&"):
		target += "&"
	}
	target += params.Encode()
	h := w.Header()
	h.Set("Location", target)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	// After a form post, 303 makes the browser follow with GET and never
	// re-send the form (RFC 9700 §4.12).
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.WriteHeader(status)
}

// saveRequest stores req under a new random id and returns the id.
func (s *Server) saveRequest(ctx context.Context, req *authRequest) (string, error) {
	id, err := randomToken(32)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("authserver: encode authorization request: %w", err)
	}
	if _, err := s.store.Put(ctx, nsRequests, tokenHash(id), data, Write{IfAbsent: true, TTL: requestTTL}); err != nil {
		return "", fmt.Errorf("authserver: save authorization request: %w", err)
	}
	return id, nil
}

var errUnknownRequest = &pageError{status: http.StatusBadRequest, title: "Sign-in request expired",
	message: "This sign-in request is unknown, expired or already answered. Start again from the application."}

// loadRequest reads the authorization request named by the form's
// request field.
func (s *Server) loadRequest(ctx context.Context, f oauth.Form) (id string, req *authRequest, version int64, err error) {
	id, err = f.Get("request")
	if err != nil || id == "" || len(id) > 128 {
		return "", nil, 0, errUnknownRequest
	}
	req, version, err = getRecord[authRequest](ctx, s.store, nsRequests, tokenHash(id), "authorization request")
	if errors.Is(err, ErrNotFound) {
		return "", nil, 0, errUnknownRequest
	}
	if err != nil {
		return "", nil, 0, err
	}
	return id, req, version, nil
}

// handleLogin checks the login form and, when the user is who they say,
// starts a session and shows the consent page.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// Before sign-in there is no session: the login form's token is bound
	// to the browser's CSRF cookie.
	f, ok := s.parsePageForm(w, r, func(token string) error { return s.sessions.CheckCSRF(r, token) })
	if !ok {
		return
	}
	id, req, version, err := s.loadRequest(ctx, f)
	if err != nil {
		s.pageFailed(ctx, w, err)
		return
	}
	username, err := f.Get("username")
	if err != nil {
		s.renderError(ctx, w, badRequestPage("The form is malformed."))
		return
	}
	password, err := f.Get("password")
	if err != nil {
		s.renderError(ctx, w, badRequestPage("The form is malformed."))
		return
	}
	// The sign-in throttle and the password check (signin_check.go).
	user, ok := s.checkSignIn(w, r, username, password, func(message string, status int) {
		s.showLogin(w, r, id, req, loginHint(username), message, status)
	}, "client_id", req.ClientID)
	if !ok {
		return
	}
	sess, err := s.sessions.Start(w, user.Name)
	if err != nil {
		s.pageFailed(ctx, w, fmt.Errorf("authserver: start session: %w", err))
		return
	}
	req.User, req.AuthTime = sess.User, sess.AuthTime
	if err := s.updateRequest(ctx, id, req, version); err != nil {
		s.pageFailed(ctx, w, err)
		return
	}
	s.showConsent(w, r, id, req, sess)
}

// updateRequest rewrites a stored request if it is still at version.
func (s *Server) updateRequest(ctx context.Context, id string, req *authRequest, version int64) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("authserver: encode authorization request: %w", err)
	}
	_, err = s.store.Put(ctx, nsRequests, tokenHash(id), data, Write{IfVersion: version, TTL: requestTTL})
	if errors.Is(err, ErrConflict) {
		return errUnknownRequest
	}
	if err != nil {
		return fmt.Errorf("authserver: save authorization request: %w", err)
	}
	return nil
}

// handleConsent records the user's decision. The request is used once:
// allow sends a code to the client, deny sends access_denied.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The consent form's token is bound to the sign-in session it was
	// shown in: a token of another session, or a CSRF cookie and token
	// made where there was no session, is refused.
	var sess userauth.Session
	f, ok := s.parsePageForm(w, r, func(token string) error {
		var err error
		if sess, err = s.session(ctx, r); err != nil {
			return errNotSignedIn
		}
		return s.sessions.CheckSessionCSRF(sess, token)
	})
	if !ok {
		return
	}
	id, req, version, err := s.loadRequest(ctx, f)
	if err != nil {
		s.pageFailed(ctx, w, err)
		return
	}
	if req.User == "" || sess.User != req.User {
		s.renderError(ctx, w, &pageError{status: http.StatusForbidden, title: "Wrong user",
			message: "This request was shown to another user. Start again from the application."})
		return
	}
	decision, err := f.Get("decision")
	if err != nil || (decision != "allow" && decision != "deny") {
		s.renderError(ctx, w, badRequestPage("The form has no valid decision."))
		return
	}
	if err := s.store.Delete(ctx, nsRequests, tokenHash(id), version); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			s.renderError(ctx, w, errUnknownRequest)
			return
		}
		s.pageFailed(ctx, w, fmt.Errorf("authserver: delete authorization request: %w", err))
		return
	}
	if decision == "deny" {
		s.log.InfoContext(ctx, "authorization denied", "client_id", req.ClientID, "sub", req.User)
		s.redirectError(w, r, req, oauth.Errorf(oauth.CodeAccessDenied, "the user denied the request"))
		return
	}
	code, err := s.issueCode(ctx, req)
	if err != nil {
		s.redirectError(w, r, req, err)
		return
	}
	s.log.InfoContext(ctx, "authorization granted", "client_id", req.ClientID, "sub", req.User,
		"scope", oauth.FormatScope(req.Scopes))
	s.redirectToClient(w, r, req, url.Values{"code": {code}})
}

var errNotSignedIn = &pageError{status: http.StatusUnauthorized, title: "Not signed in",
	message: "Your session has ended. Start again from the application."}

// parsePageForm reads a login or consent form post and checks its CSRF
// token with check. It answers the request itself when it returns false:
// a *pageError from check as that page, any other error as an expired
// form.
func (s *Server) parsePageForm(w http.ResponseWriter, r *http.Request, check func(token string) error) (oauth.Form, bool) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.renderError(ctx, w, &pageError{status: http.StatusMethodNotAllowed, title: "Method not allowed",
			message: "This page only accepts form posts."})
		return oauth.Form{}, false
	}
	f, err := oauth.ParseForm(r)
	if err != nil {
		s.renderError(ctx, w, badRequestPage("The form is malformed."))
		return oauth.Form{}, false
	}
	token, err := f.Get("csrf")
	if err == nil {
		err = check(token)
	}
	var pe *pageError
	if errors.As(err, &pe) {
		s.renderError(ctx, w, pe)
		return oauth.Form{}, false
	}
	if err != nil {
		s.renderError(ctx, w, &pageError{status: http.StatusForbidden, title: "Form expired",
			message: "The form was not sent from this site or has expired. Start again from the application."})
		return oauth.Form{}, false
	}
	return f, true
}

// showLogin renders the login page for the request id.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, id string, req *authRequest, username, message string, status int) {
	csrf := s.sessions.CSRFToken(w, r)
	err := userauth.RenderLogin(w, status, userauth.LoginPage{
		Action:     s.pathPrefix() + PathLogin,
		CSRF:       csrf,
		Username:   username,
		Error:      message,
		ClientName: req.ClientName,
		Hidden:     map[string]string{"request": id},
	})
	if err != nil {
		s.log.ErrorContext(r.Context(), "render login page", "err", err)
	}
}

// showConsent renders the consent page for the request id, whose User is
// set, shown in the session sess; its CSRF token is good only in sess.
func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, id string, req *authRequest, sess userauth.Session) {
	err := userauth.RenderConsent(w, http.StatusOK, userauth.ConsentPage{
		Action:               s.pathPrefix() + PathConsent,
		CSRF:                 s.sessions.SessionCSRFToken(sess),
		User:                 req.User,
		ClientID:             req.ClientID,
		ClientName:           req.ClientName,
		ClientURI:            req.ClientURI,
		Scopes:               req.Scopes,
		Resources:            req.Resources,
		AuthorizationDetails: detailLines(req.AuthorizationDetails),
		RedirectURI:          req.RedirectURI,
		Hidden:               map[string]string{"request": id},
	})
	if err != nil {
		s.log.ErrorContext(r.Context(), "render consent page", "err", err)
	}
}

// detailLines describes each RFC 9396 authorization detail on one line:
// its type, then its other members as compact JSON.
func detailLines(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var details []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &details); err != nil {
		return []string{"(unreadable authorization details)"}
	}
	out := make([]string, 0, len(details))
	for _, d := range details {
		var typ string
		_ = json.Unmarshal(d["type"], &typ)
		delete(d, "type")
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString(typ)
		for i, k := range keys {
			if i == 0 {
				b.WriteString(": ")
			} else {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString("=")
			b.Write(d[k])
		}
		out = append(out, truncate(b.String(), 400))
	}
	return out
}

// pageFailed renders err as an error page: a *pageError as itself,
// anything else as a logged server error.
func (s *Server) pageFailed(ctx context.Context, w http.ResponseWriter, err error) {
	var pe *pageError
	if errors.As(err, &pe) {
		s.renderError(ctx, w, pe)
		return
	}
	s.log.ErrorContext(ctx, "authorization page failed", "err", err)
	s.renderError(ctx, w, serverErrorPage)
}

func (s *Server) renderError(ctx context.Context, w http.ResponseWriter, pe *pageError) {
	if err := userauth.RenderError(w, pe.status, pe.title, pe.message); err != nil {
		s.log.ErrorContext(ctx, "render error page", "err", err)
	}
}

// authorizing returns c as the authorization endpoint caps its scope. A
// dynamically registered client's scope is what the client said of itself
// at registration (RFC 7591 §2; anyone may register any known scope, or
// none), not an administrator's decision, so it does not cap what a user
// may grant it: a request that names a resource and asks for scopes may ask,
// besides the registered scope, for any scope of that resource. That is
// how an MCP client steps up (SPECS.md §3.2 item 10: it authorizes again
// with more scopes of the same server) without registering again. The user
// decides: consent is asked on every request and the page lists every
// scope asked for. A request without scope still gets the registered
// scope (target's default). Static clients, agents and metadata-document
// clients keep their cap; a refresh is capped by its grant
// (client.refreshing).
func (s *Server) authorizing(c *client, f oauth.Form) *client {
	if c.Kind != kindDynamic || c.Scopes == nil {
		return c
	}
	raw, err := f.Get("scope")
	if err != nil || raw == "" {
		return c
	}
	resources, err := f.All("resource")
	if err != nil || len(resources) == 0 {
		return c
	}
	widened := slices.Clone(c.Scopes)
	for _, res := range resources {
		for _, sc := range s.resources[res].Scopes {
			if !slices.Contains(widened, sc) {
				widened = append(widened, sc)
			}
		}
	}
	cc := *c
	cc.Scopes = widened
	return &cc
}

// narrowScope drops from an authorization request the scopes the client
// may not ask for (RFC 6749 §3.3 lets the server ignore part of the
// requested scope; the token response's scope tells the client what it
// got). MCP clients ask for every scope a resource's challenge lists.
// Nothing left of a non-empty request is invalid_scope; unknown or
// malformed scopes are still refused by target.
func narrowScope(f oauth.Form, c *client) (oauth.Form, error) {
	raw, err := f.Get("scope")
	if err != nil || raw == "" || c.Scopes == nil {
		return f, err
	}
	requested, err := oauth.ParseScope(raw)
	if err != nil {
		return f, err
	}
	kept := oauth.ScopeIntersect(requested, c.Scopes)
	if len(kept) == len(requested) {
		return f, nil
	}
	if len(kept) == 0 {
		return f, oauth.Errorf(oauth.CodeInvalidScope, "the client may not request any of the scopes asked for")
	}
	v := f.Values()
	v.Set("scope", oauth.FormatScope(kept))
	return oauth.NewForm(v), nil
}
