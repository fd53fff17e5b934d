package svidtls

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// TransportConfig is what the [Transport]s of one host share; each
// workload identity gets its own Transport from [NewTransport].
type TransportConfig struct {
	// Bundles verifies server certificates of the SPIFFE origins: each
	// against the bundle of the trust domain its SPIFFE ID names.
	// Required.
	Bundles x509bundle.Source
	// Origins maps each origin reached with SPIFFE TLS to the authorizer
	// of its server's SPIFFE ID, for example
	// "https://b.example:8443" → AuthorizeMemberOf(b). An origin is
	// https://host[:port], the port 443 when omitted, without path,
	// query or user information; host names are compared without case
	// and without a trailing dot.
	Origins map[string]Authorizer
	// Base carries the requests to every other origin, unchanged; nil
	// means http.DefaultTransport.
	Base http.RoundTripper
	// DialContext opens the TCP connections to SPIFFE origins, which are
	// always dialed directly, never through a proxy; nil means a
	// net.Dialer with a 30 s timeout and keep-alives.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock that server certificates are verified at; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives a warning for each refused server and for a
	// handshake that found no SVID to present, and a debug record per
	// verified server; nil means silent.
	Logger *slog.Logger
}

// Transport is an http.RoundTripper that reaches the configured SPIFFE
// origins over mutual TLS as one workload: it presents that workload's
// X509-SVID and accepts only a server whose certificate is a valid
// X509-SVID (verified against the bundle source, never the system roots)
// whose SPIFFE ID the origin's authorizer accepts. Requests to any other
// origin go to the base RoundTripper, unchanged.
//
// A Transport keeps its own connections, one pool per SPIFFE origin, and
// shares none with other Transports, so a connection made with one
// workload's SVID is never reused for another workload: create one
// Transport per identity and reuse it. It is safe for concurrent use.
type Transport struct {
	base    http.RoundTripper
	origins map[string]*http.Transport
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns the Transport of the workload whose X509-SVIDs svid
// provides (a [Rotating], for instance: every new connection presents the
// current SVID).
func NewTransport(svid x509svid.Source, cfg TransportConfig) (*Transport, error) {
	switch {
	case svid == nil:
		return nil, fmt.Errorf("%w: transport: no X509-SVID source", ErrConfig)
	case cfg.Bundles == nil:
		return nil, fmt.Errorf("%w: transport: no bundle source", ErrConfig)
	}
	log := orDiscard(cfg.Logger)
	now := orNow(cfg.Now)
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	getCert := tlsconfig.GetClientCertificate(svid, tlsconfig.WithTrace(certTrace(log, "no X509-SVID to present")))
	t := &Transport{
		base:    cfg.Base,
		origins: make(map[string]*http.Transport, len(cfg.Origins)),
	}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	for raw, authz := range cfg.Origins {
		origin, err := parseOrigin(raw)
		if err != nil {
			return nil, err
		}
		if authz == nil {
			return nil, fmt.Errorf("%w: transport: origin %s has no authorizer", ErrConfig, origin)
		}
		if _, dup := t.origins[origin]; dup {
			return nil, fmt.Errorf("%w: transport: origin %s given twice", ErrConfig, origin)
		}
		v := &verifier{
			bundles:  cfg.Bundles,
			authz:    authz,
			now:      now,
			log:      log.With(attrOrigin, origin),
			required: true,
			peer:     "server",
		}
		t.origins[origin] = &http.Transport{
			// No Proxy: SPIFFE origins are dialed directly.
			DialContext: dial,
			TLSClientConfig: &tls.Config{
				MinVersion:           tls.VersionTLS12,
				CipherSuites:         tls12CipherSuites,
				GetClientCertificate: getCert,
				// The server's name and the system roots do not
				// authenticate a SPIFFE server; VerifyConnection checks
				// its X509-SVID instead.
				InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
				VerifyConnection:   v.verifyConnection,
			},
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	return t, nil
}

// RoundTrip implements http.RoundTripper. A request to a SPIFFE origin
// never goes to the base RoundTripper, even when its handshake fails.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return t.base.RoundTrip(req)
	}
	origin := requestOrigin(req.URL)
	tr, ok := t.origins[origin]
	if !ok {
		return t.base.RoundTrip(req)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("svidtls: %s: %w", origin, err)
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections to the SPIFFE origins
// and those of the base RoundTripper, when it has such a method.
func (t *Transport) CloseIdleConnections() {
	for _, tr := range t.origins {
		tr.CloseIdleConnections()
	}
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// parseOrigin returns the canonical form of a configured SPIFFE origin:
// https://host:port.
func parseOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: transport: origin %q: %w", ErrConfig, raw, err)
	}
	switch {
	case !strings.EqualFold(u.Scheme, "https"):
		return "", fmt.Errorf("%w: transport: origin %q is not https", ErrConfig, raw)
	case u.Opaque != "" || u.User != nil || u.Hostname() == "":
		return "", fmt.Errorf("%w: transport: origin %q is not https://host[:port]", ErrConfig, raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("%w: transport: origin %q has a path, query or fragment", ErrConfig, raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: transport: origin %q has an invalid port", ErrConfig, raw)
		}
	}
	return requestOrigin(u), nil
}

// requestOrigin returns scheme://host:port of u, lowercased, with the
// scheme's default port filled in, the port in decimal without leading
// zeros and a trailing dot of the host removed.
func requestOrigin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	switch {
	case port == "" && scheme == "https":
		port = "443"
	case port == "" && scheme == "http":
		port = "80"
	default:
		if n, err := strconv.Atoi(port); err == nil {
			port = strconv.Itoa(n) // "0443" is port 443
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
