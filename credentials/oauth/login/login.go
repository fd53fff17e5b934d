package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// DefaultTimeout is how long [Client.Login] waits for the user by default.
const DefaultTimeout = 5 * time.Minute

// CallbackPath is the path of the loopback redirect URI.
const CallbackPath = "/callback"

// expiryMargin: an access token this close to its expiry is refreshed.
const expiryMargin = 10 * time.Second

var (
	// ErrNotSignedIn: the store holds no sign-in for the issuer.
	ErrNotSignedIn = errors.New("login: not signed in")
	// ErrExpired: the access token expired and the refresh token is gone
	// or was refused; the user must sign in again.
	ErrExpired = errors.New("login: the sign-in has expired")
	// ErrNoRevocation: the authorization server has no revocation
	// endpoint, so a refresh token can only be forgotten.
	ErrNoRevocation = errors.New("login: the authorization server has no revocation endpoint")
)

// AuthorizationError is an error redirect from the authorization endpoint
// (RFC 6749 §4.1.2.1): the user declined, or the server refused the
// request.
type AuthorizationError struct {
	Code        string
	Description string
}

func (e *AuthorizationError) Error() string {
	msg := "login: the authorization server refused the sign-in: " + e.Code
	if e.Code == oauth.CodeAccessDenied {
		msg = "login: the sign-in was declined (" + e.Code + ")"
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Config configures a [Client].
type Config struct {
	// Issuer is the authorization server's issuer identifier (RFC 8414
	// §2): an https URL, or http on a loopback host. Required.
	Issuer string
	// Metadata is the server's metadata. Nil means [Client.Login]
	// discovers it from Issuer; a document for another issuer is refused.
	Metadata *oauth.ServerMetadata
	// ClientID is a public client of the server that may use the
	// authorization code grant with a loopback redirect URI
	// http://127.0.0.1/callback on any port. Required.
	ClientID string
	// Scopes are asked for; nil asks for none (the client's default).
	Scopes []string
	// Resource, when set, is sent as the RFC 8707 resource parameter in
	// the authorization and token requests: the access token's audience.
	Resource string
	// OpenBrowser opens the authorization URL for the user. Nil means
	// [OpenBrowser]. Its failure is reported on Out, not returned: the URL
	// is printed too, and the login waits either way.
	OpenBrowser func(url string) error
	// Out receives what the user must read (the URL to open). Nil means
	// io.Discard.
	Out io.Writer
	// HTTPClient sends the metadata, token and revocation requests. Nil
	// means a client with a 30 s timeout that follows no redirects.
	HTTPClient *http.Client
	// Timeout bounds the wait for the user's sign-in. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Now is the clock that expiry decisions use. Nil means time.Now.
	Now func() time.Time
	// Logger receives debug records. Nil means silent.
	Logger *slog.Logger
}

// Client signs a user in at one authorization server and keeps the
// resulting session fresh.
type Client struct {
	cfg Config
	hc  *http.Client
	log *slog.Logger
}

// New checks cfg and fills in its defaults.
func New(cfg Config) (*Client, error) {
	if err := checkIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("login: a client_id is required")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.OpenBrowser == nil {
		cfg.OpenBrowser = OpenBrowser
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// checkIssuer accepts an https issuer, or an http one on a loopback host
// (a host on this machine, as the embedded authorization server allows),
// without query or fragment.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") {
		return fmt.Errorf("login: %q is not an issuer identifier (an https URL without query or fragment)", issuer)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("login: the issuer %q must be an https URL (http only on a loopback host)", issuer)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// metadata returns the configured or discovered server metadata.
func (c *Client) metadata(ctx context.Context) (*oauth.ServerMetadata, error) {
	if c.cfg.Metadata != nil {
		if c.cfg.Metadata.Issuer != c.cfg.Issuer {
			return nil, fmt.Errorf("login: the metadata names the issuer %q, not %q", c.cfg.Metadata.Issuer, c.cfg.Issuer)
		}
		return c.cfg.Metadata, nil
	}
	// A command line fetches what its user named: loopback and private
	// addresses are allowed, http only for a loopback issuer (checked by
	// New), and redirects only within the origin.
	f := fetch.New(fetch.Config{Client: c.hc, AllowHTTP: strings.HasPrefix(c.cfg.Issuer, "http://"), AllowPrivate: true,
		Timeout: 10 * time.Second, Logger: c.log})
	md, err := oauth.DiscoverServer(ctx, f, c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	return md, nil
}

// oauth2Config is the x/oauth2 view of the client at md.
func (c *Client) oauth2Config(md *oauth.ServerMetadata, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.cfg.ClientID,
		Endpoint: oauth2.Endpoint{AuthURL: md.AuthorizationEndpoint, TokenURL: md.TokenEndpoint,
			// A public client: client_id in the form, no Basic header.
			AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: redirectURI,
		Scopes:      c.cfg.Scopes,
	}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.hc)
}

// Login runs the authorization code flow with PKCE for a native app
// (RFC 8252) and returns the new session; see the package documentation.
// It returns once the tokens are issued, the redirect carries an error
// ([*AuthorizationError]), the wait exceeds Config.Timeout, or ctx ends.
func (c *Client) Login(ctx context.Context) (*Session, error) {
	md, err := c.metadata(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case md.AuthorizationEndpoint == "":
		return nil, fmt.Errorf("login: the authorization server %s has no authorization endpoint: nobody can sign in there", c.cfg.Issuer)
	case md.TokenEndpoint == "":
		return nil, fmt.Errorf("login: the authorization server %s has no token endpoint", c.cfg.Issuer)
	case len(md.CodeChallengeMethodsSupported) > 0 && !slices.Contains(md.CodeChallengeMethodsSupported, oauth.PKCES256):
		return nil, fmt.Errorf("login: the authorization server %s does not support PKCE with S256", c.cfg.Issuer)
	}
	state, err := randomString()
	if err != nil {
		return nil, err
	}
	cb, err := listenCallback(state)
	if err != nil {
		return nil, err
	}
	defer cb.close()
	oc := c.oauth2Config(md, cb.redirectURI)
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if c.cfg.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", c.cfg.Resource))
	}
	authURL := oc.AuthCodeURL(state, opts...)

	fmt.Fprintf(c.cfg.Out, "Sign in at %s in your browser. If it does not open, open this URL:\n\n  %s\n\n", c.cfg.Issuer, authURL)
	if err := c.cfg.OpenBrowser(authURL); err != nil {
		fmt.Fprintf(c.cfg.Out, "(could not open a browser: %v)\n", err)
	}
	fmt.Fprintf(c.cfg.Out, "Waiting for the sign-in (at most %s)…\n", c.cfg.Timeout)

	wait, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var res callbackResult
	select {
	case res = <-cb.result:
	case <-wait.Done():
		if ctx.Err() != nil {
			return nil, fmt.Errorf("login: %w", ctx.Err())
		}
		return nil, fmt.Errorf("login: no sign-in arrived within %s; run the command again to start over", c.cfg.Timeout)
	}
	if res.err != nil {
		return nil, res.err
	}
	// RFC 9207 §2.4: the response's iss must be the issuer; a server
	// that promises iss must send it.
	if res.iss != "" && res.iss != c.cfg.Issuer {
		return nil, fmt.Errorf("login: the authorization response comes from the issuer %q, not %q (a mix-up attack?)", res.iss, c.cfg.Issuer)
	}
	if res.iss == "" && md.AuthorizationResponseIssParameterSupported {
		return nil, errors.New("login: the authorization response lacks the iss parameter its server promises (RFC 9207)")
	}
	c.log.DebugContext(ctx, "authorization code received", slog.String("issuer", c.cfg.Issuer))

	xopts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if c.cfg.Resource != "" {
		xopts = append(xopts, oauth2.SetAuthURLParam("resource", c.cfg.Resource))
	}
	tok, err := oc.Exchange(c.ctx(ctx), res.code, xopts...)
	if err != nil {
		return nil, tokenError("the code exchange", err)
	}
	s := &Session{
		Issuer:             c.cfg.Issuer,
		ClientID:           c.cfg.ClientID,
		Resource:           c.cfg.Resource,
		Scope:              strings.Join(c.cfg.Scopes, " "),
		TokenEndpoint:      md.TokenEndpoint,
		RevocationEndpoint: md.RevocationEndpoint,
		UserinfoEndpoint:   md.UserinfoEndpoint,
	}
	if sc, ok := tok.Extra("scope").(string); ok && sc != "" {
		s.Scope = sc
	}
	s.update(tok, c.cfg.Now())
	if s.AccessToken == "" {
		return nil, errors.New("login: the token response has no access token")
	}
	return s, nil
}

// tokenError describes a failed token request.
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return fmt.Errorf("login: %s failed: %s", what, msg)
	}
	return fmt.Errorf("login: %s failed: %w", what, err)
}

func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// callbackResult is what the redirect brought.
type callbackResult struct {
	code string
	iss  string
	err  error
}

// callback is the loopback server the browser is redirected to.
type callback struct {
	redirectURI string
	result      chan callbackResult
	srv         *http.Server
	ln          net.Listener
	done        chan struct{}
}

// listenCallback listens on a port of 127.0.0.1 the system picks (RFC 8252
// §7.3: the server allows any port for a loopback IP literal) and serves
// CallbackPath there. The first request to it decides: a response with the
// right state (its code, or its error), or a wrong state, which ends the
// sign-in (a page other than the authorization server's sent the browser
// there).
func listenCallback(state string) (*callback, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("login: listen for the redirect: %w", err)
	}
	cb := &callback{
		redirectURI: "http://" + ln.Addr().String() + CallbackPath,
		result:      make(chan callbackResult, 1),
		ln:          ln,
		done:        make(chan struct{}),
	}
	var once sync.Once
	deliver := func(r callbackResult) {
		once.Do(func() { cb.result <- r })
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case q.Get("state") != state:
			page(w, http.StatusBadRequest, "This sign-in response is not the one agenthost is waiting for",
				"Its state does not match. Start the sign-in again from the command line.")
			deliver(callbackResult{err: errors.New("login: the redirect's state does not match the request's (a response to another sign-in, or forged); start again")})
		case q.Get("error") != "":
			e := &AuthorizationError{Code: q.Get("error"), Description: q.Get("error_description")}
			page(w, http.StatusOK, "Not signed in", e.Error())
			deliver(callbackResult{err: e, iss: q.Get("iss")})
		case q.Get("code") == "":
			page(w, http.StatusBadRequest, "Not signed in", "The response has neither a code nor an error.")
			deliver(callbackResult{err: errors.New("login: the redirect has neither a code nor an error")})
		default:
			page(w, http.StatusOK, "Signed in", "You can close this window and return to the command line.")
			deliver(callbackResult{code: q.Get("code"), iss: q.Get("iss")})
		}
	})
	cb.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(cb.done)
		_ = cb.srv.Serve(ln)
	}()
	return cb, nil
}

// close lets the page in flight finish, then stops the server.
func (cb *callback) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := cb.srv.Shutdown(ctx); err != nil {
		_ = cb.srv.Close()
	}
	<-cb.done
}

func page(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s · agenthost</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}
