package federation

import (
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultMaxBytes      = 64 << 10
	DefaultTimeout       = 10 * time.Second
	DefaultMinRefresh    = time.Minute
	DefaultMaxRefresh    = time.Hour
	DefaultRetryInterval = 10 * time.Second
	// DefaultRefreshHint is the refresh interval of a bundle without
	// spiffe_refresh_hint, before clamping.
	DefaultRefreshHint = 5 * time.Minute
)

// Profile is how a bundle endpoint authenticates (SPECS.md §10.7).
type Profile string

// Bundle endpoint profiles.
const (
	// ProfileHTTPSWeb: the endpoint has a Web PKI server certificate.
	ProfileHTTPSWeb Profile = "https_web"
	// ProfileHTTPSSPIFFE: the endpoint presents an X.509-SVID whose
	// SPIFFE ID is configured, verified with the peer's own bundle.
	ProfileHTTPSSPIFFE Profile = "https_spiffe"
)

// Valid reports whether p is a known profile.
func (p Profile) Valid() bool { return p == ProfileHTTPSWeb || p == ProfileHTTPSSPIFFE }

// Peer is a foreign trust domain whose bundle is fetched from its bundle
// endpoint (SPECS.md §10.7: bundles do not name their trust domain, so the
// client configures it).
type Peer struct {
	// TrustDomain is the trust domain name ("b.example"). Required, unique
	// and not the own trust domain.
	TrustDomain string
	// EndpointURL is the bundle endpoint, an https URL. Required. Every
	// refresh fetches this URL, whatever it redirected to before.
	EndpointURL string
	// Profile is the endpoint's profile; empty means ProfileHTTPSWeb.
	Profile Profile
	// Roots verify an https_web endpoint's certificate; nil means the
	// system roots. Not used with https_spiffe.
	Roots *x509.CertPool
	// EndpointSPIFFEID is the SPIFFE ID the endpoint presents under
	// https_spiffe, a member of TrustDomain. Required with that profile.
	EndpointSPIFFEID string
	// Bundle is the trust domain's bundle as obtained out of band, in the
	// SPIFFE bundle format. Under https_spiffe it is required: it verifies
	// the endpoint until a fetched bundle replaces it. Under https_web it
	// is optional. A stored bundle with a higher or equal sequence number
	// takes its place.
	Bundle []byte
}

// Config configures a [Set].
type Config struct {
	// Own returns the own trust domain's current bundle; it is called on
	// every lookup. Nil means the set holds federated domains only.
	Own func() *spiffebundle.Bundle
	// Peers are the federated trust domains.
	Peers []Peer
	// Store keeps accepted bundles across restarts; nil means a new
	// MemoryStore.
	Store Store

	// MaxBytes caps a bundle document; zero means DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one fetch, body included; zero means DefaultTimeout.
	Timeout time.Duration
	// MinRefresh and MaxRefresh clamp the refresh hint; zero means
	// DefaultMinRefresh and DefaultMaxRefresh.
	MinRefresh, MaxRefresh time.Duration
	// RetryInterval is the delay before the first retry of a failed
	// refresh, doubled on each further failure; zero means
	// DefaultRetryInterval.
	RetryInterval time.Duration

	// Client is the HTTP client the fetches start from; nil means a
	// default client. Its Transport must be nil or an *http.Transport:
	// each peer gets a clone with the TLS configuration of its profile.
	Client *http.Client
	// AllowPrivate permits bundle endpoints on loopback, private and other
	// non-public addresses, which are refused by default.
	AllowPrivate bool
	// AllowHTTP permits http endpoint URLs on a loopback host with the
	// https_web profile, for development. No TLS check applies to them.
	AllowHTTP bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refresh events; nil means silent.
	Logger *slog.Logger

	// OnUpdate is called after a new bundle of a federated trust domain
	// was accepted, with its sequence number (0 when it has none).
	OnUpdate func(td string, sequence uint64)
	// OnRefuse is called for every refresh that leaves the kept bundle in
	// place (a failed fetch or a refused bundle) and for a stored bundle
	// that New refuses, so the host can audit it.
	OnRefuse func(td, endpoint string, err error)
}
