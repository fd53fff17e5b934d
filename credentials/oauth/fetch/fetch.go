package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultTimeout   = 5 * time.Second
	DefaultMaxBytes  = 256 << 10
	MaxRedirects     = 3
	maxURLLength     = 4096
	maxHeaderBytes   = 64 << 10
	dialTimeout      = 5 * time.Second
	keepAliveTimeout = 30 * time.Second
)

// Config configures a [Fetcher]. The zero value is usable.
type Config struct {
	// Client sends the requests. Nil means a client built by [New] with
	// no proxy and the address checks in its dialer.
	//
	// A given client is copied, never modified. When its Transport is nil
	// or an *http.Transport and AllowPrivate is false, the copy uses a
	// clone of that transport whose DialContext checks every address and
	// whose Proxy and DialTLSContext are cleared (a proxy or a custom TLS
	// dialer would connect where the check cannot see). Any other
	// RoundTripper is used as it is: the caller owns its dialing, and only
	// IP literals in URLs are checked. The client's CheckRedirect is
	// replaced by the same-origin rule.
	Client *http.Client

	// Timeout bounds one fetch, body included. Zero means DefaultTimeout.
	Timeout time.Duration

	// MaxBytes caps a response body. Zero means DefaultMaxBytes.
	MaxBytes int64

	// AllowHTTP permits the http scheme. It is for tests and loopback
	// development; by default only https URLs are fetched.
	AllowHTTP bool

	// AllowPrivate permits loopback, private, link-local, CGNAT and other
	// special-purpose targets, which are refused by default.
	AllowPrivate bool

	// Logger receives debug records of refused fetches. Nil means silent.
	Logger *slog.Logger
}

// Response is a successful (2xx) response.
type Response struct {
	// URL is the URL the body came from, after same-origin redirects.
	URL string
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the whole body, at most the configured MaxBytes.
	Body []byte
}

// Fetcher fetches documents under the rules in the package documentation.
// It is safe for concurrent use.
type Fetcher struct {
	client       *http.Client
	timeout      time.Duration
	maxBytes     int64
	maxRedirects int
	allowHTTP    bool
	allowPrivate bool
	log          *slog.Logger
}

type redirectLimitKey struct{}

// New returns a Fetcher for cfg, with defaults for zero fields.
func New(cfg Config) *Fetcher {
	f := &Fetcher{
		timeout:      cfg.Timeout,
		maxBytes:     cfg.MaxBytes,
		maxRedirects: MaxRedirects,
		allowHTTP:    cfg.AllowHTTP,
		allowPrivate: cfg.AllowPrivate,
		log:          cfg.Logger,
	}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.maxBytes <= 0 {
		f.maxBytes = DefaultMaxBytes
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	var c http.Client
	if cfg.Client != nil {
		c = *cfg.Client
	} else {
		c.Transport = f.ownTransport()
	}
	if cfg.Client != nil && !cfg.AllowPrivate {
		switch t := c.Transport.(type) {
		case nil:
			c.Transport = f.wrapTransport(baseTransport())
		case *http.Transport:
			c.Transport = f.wrapTransport(t)
		default:
			f.log.Warn("fetch transport is not an *http.Transport; resolved addresses are not checked")
		}
	}
	c.CheckRedirect = f.checkRedirect
	f.client = &c
	return f
}

// Restrict returns a Fetcher that shares f's client and is at least as
// strict: its body cap is the smaller of f's and maxBytes (maxBytes <= 0
// keeps f's), and it follows at most maxRedirects redirects (maxRedirects
// < 0 keeps f's; 0 refuses every redirect).
func (f *Fetcher) Restrict(maxBytes int64, maxRedirects int) *Fetcher {
	g := *f
	if maxBytes > 0 && maxBytes < g.maxBytes {
		g.maxBytes = maxBytes
	}
	if maxRedirects >= 0 && maxRedirects < g.maxRedirects {
		g.maxRedirects = maxRedirects
	}
	return &g
}

// MaxBytes is the body cap of f.
func (f *Fetcher) MaxBytes() int64 { return f.maxBytes }

func (f *Fetcher) dialer() *net.Dialer {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAliveTimeout}
	if !f.allowPrivate {
		d.ControlContext = checkDial
	}
	return d
}

// ownTransport is the transport of a Fetcher built without a client.
func (f *Fetcher) ownTransport() *http.Transport {
	return f.wrapTransport(baseTransport())
}

// baseTransport is http.DefaultTransport when it is an *http.Transport,
// else a transport with the standard library's usual settings.
func baseTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t
	}
	return &http.Transport{
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// wrapTransport clones t with the checking dialer, no proxy and a cap on
// response headers.
func (f *Fetcher) wrapTransport(t *http.Transport) *http.Transport {
	t = t.Clone()
	t.Proxy = nil
	t.DialContext = f.dialer().DialContext
	t.DialTLSContext = nil
	t.DialTLS = nil // deprecated dial hooks would bypass the check
	t.Dial = nil
	if t.MaxResponseHeaderBytes <= 0 || t.MaxResponseHeaderBytes > maxHeaderBytes {
		t.MaxResponseHeaderBytes = maxHeaderBytes
	}
	return t
}

// checkURL applies the URL rules to raw and returns the parsed URL.
func (f *Fetcher) checkURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	if len(raw) > maxURLLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, maxURLLength)
	}
	if strings.ContainsAny(raw, "# \t\r\n\\") {
		return nil, fmt.Errorf("%w: fragment, whitespace or backslash", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, unwrapURLError(err))
	}
	if err := f.checkParsed(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (f *Fetcher) checkParsed(u *url.URL) error {
	if !u.IsAbs() || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: not an absolute URL with a host", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo is not allowed", ErrInvalidURL)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%w: fragment is not allowed", ErrInvalidURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !f.allowHTTP {
			return fmt.Errorf("%w: scheme http is not allowed, only https", ErrInvalidURL)
		}
	default:
		return fmt.Errorf("%w: scheme %q is not allowed", ErrInvalidURL, truncate(u.Scheme, 16))
	}
	if !f.allowPrivate {
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !publicAddr(a) {
			return &addrError{addr: a.String()}
		}
	}
	return nil
}

// checkRedirect is the client's CheckRedirect: same origin only, within
// the limit carried by the request context.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	limit, ok := req.Context().Value(redirectLimitKey{}).(int)
	if !ok {
		limit = f.maxRedirects
	}
	if len(via) > limit {
		if limit == 0 {
			return fmt.Errorf("%w: redirects are not followed", ErrRedirect)
		}
		return fmt.Errorf("%w: more than %d redirects", ErrRedirect, limit)
	}
	if err := f.checkParsed(req.URL); err != nil {
		return fmt.Errorf("%w: target: %w", ErrRedirect, err)
	}
	if origin(req.URL) != origin(via[0].URL) {
		return fmt.Errorf("%w: %s is another origin than %s", ErrRedirect, origin(req.URL), origin(via[0].URL))
	}
	return nil
}

// origin is the scheme, host and port of u (RFC 6454), with the default
// port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// Get fetches rawURL with GET and returns the 2xx response with its whole
// body.
func (f *Fetcher) Get(ctx context.Context, rawURL string) (*Response, error) {
	return f.get(ctx, rawURL, "")
}

// JSON fetches rawURL, requires a JSON media type (application/json or
// application/<subtype>+json, parameters allowed) and a body that is
// exactly one JSON object in UTF-8, and decodes it into v. A nil v only
// checks the body.
func (f *Fetcher) JSON(ctx context.Context, rawURL string, v any) (*Response, error) {
	resp, err := f.get(ctx, rawURL, "application/json")
	if err != nil {
		return nil, err
	}
	if err := checkJSONType(resp.Header.Get("Content-Type")); err != nil {
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	if err := decodeObject(resp.Body, v); err != nil {
		f.refused(ctx, rawURL, err)
		return nil, err
	}
	return resp, nil
}

func (f *Fetcher) get(parent context.Context, rawURL, accept string) (*Response, error) {
	u, err := f.checkURL(rawURL)
	if err != nil {
		f.refused(parent, rawURL, err)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithValue(parent, redirectLimitKey{}, f.maxRedirects), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		err = f.failure(parent, ctx, http.MethodGet, u, err)
		f.refused(parent, rawURL, err)
		return nil, err
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, maxExcerpt))
		err := &StatusError{Code: resp.StatusCode, Excerpt: excerpt(head)}
		f.refused(parent, rawURL, err)
		return nil, err
	}
	if resp.ContentLength > f.maxBytes {
		err := fmt.Errorf("%w: content length %d exceeds %d bytes", ErrTooLarge, resp.ContentLength, f.maxBytes)
		f.refused(parent, rawURL, err)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		err = f.failure(parent, ctx, http.MethodGet, u, err)
		f.refused(parent, rawURL, err)
		return nil, err
	}
	if int64(len(body)) > f.maxBytes {
		err := fmt.Errorf("%w: body exceeds %d bytes", ErrTooLarge, f.maxBytes)
		f.refused(parent, rawURL, err)
		return nil, err
	}
	return &Response{
		URL:    resp.Request.URL.String(),
		Status: resp.StatusCode,
		Header: resp.Header,
		Body:   body,
	}, nil
}

// failure turns a transport or body error of a request with method into
// one that wraps the right sentinel.
func (f *Fetcher) failure(parent, ctx context.Context, method string, u *url.URL, err error) error {
	inner := unwrapURLError(err)
	var ae *addrError
	switch {
	case errors.Is(inner, ErrRedirect):
		return inner
	case errors.As(inner, &ae):
		return fmt.Errorf("%w: %s connects to %s", ErrPrivateAddress, u.Redacted(), ae.addr)
	case errors.Is(parent.Err(), context.Canceled):
		return fmt.Errorf("fetch: %s %s: %w", method, u.Redacted(), context.Canceled)
	case ctx.Err() != nil || errors.Is(inner, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s %s: no complete response in time: %w",
			ErrTimeout, method, u.Redacted(), context.DeadlineExceeded)
	default:
		return fmt.Errorf("fetch: %s %s: %w", method, u.Redacted(), inner)
	}
}

func (f *Fetcher) refused(ctx context.Context, rawURL string, err error) {
	f.log.LogAttrs(ctx, slog.LevelDebug, "fetch refused",
		slog.String("url", truncate(rawURL, 256)), slog.String("err", err.Error()))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkJSONType accepts application/json and application/<x>+json.
func checkJSONType(ct string) error {
	if ct == "" {
		return fmt.Errorf("%w: no content type", ErrBadJSON)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: malformed content type", ErrBadJSON)
	}
	if mt == "application/json" {
		return nil
	}
	if sub, ok := strings.CutPrefix(mt, "application/"); ok && len(sub) > len("+json") && strings.HasSuffix(sub, "+json") {
		return nil
	}
	return fmt.Errorf("%w: content type %q", ErrBadJSON, truncate(mt, 64))
}

// decodeObject requires body to be exactly one JSON object in UTF-8 and
// decodes it into v (when v is not nil).
func decodeObject(body []byte, v any) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: body is not UTF-8", ErrBadJSON)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: body is not a JSON object", ErrBadJSON)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%w: malformed JSON or trailing data", ErrBadJSON)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
