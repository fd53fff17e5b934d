package federation

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Log attribute keys.
const (
	logKeyTrustDomain = "trust_domain"
	logKeyEndpoint    = "endpoint"
	logKeySequence    = "sequence"
	logKeyKeys        = "keys"
	logKeyNext        = "next_refresh"
	logKeyError       = "error"
)

// Set is the bundle set of the own trust domain and the federated ones,
// and the refresher of the federated bundles. It implements
// x509bundle.Source, jwtbundle.Source and spiffebundle.Source. Its methods
// are safe for concurrent use.
type Set struct {
	own   func() *spiffebundle.Bundle
	ownTD spiffeid.TrustDomain
	peers map[spiffeid.TrustDomain]*peer
	order []*peer
	store Store

	minRefresh, maxRefresh, retry time.Duration

	now      func() time.Time
	log      *slog.Logger
	onUpdate func(td string, sequence uint64)
	onRefuse func(td, endpoint string, err error)
	// after returns a channel that fires once d has passed, and a func
	// that stops it. Tests replace it to drive Run without waiting.
	after func(d time.Duration) (<-chan time.Time, func() bool)

	running atomic.Bool

	mu sync.RWMutex // guards the mutable fields of every peer
}

var (
	_ x509bundle.Source   = (*Set)(nil)
	_ jwtbundle.Source    = (*Set)(nil)
	_ spiffebundle.Source = (*Set)(nil)
)

// peer is the state of one federated trust domain.
type peer struct {
	td       spiffeid.TrustDomain
	endpoint string
	profile  Profile
	fetcher  *fetch.Fetcher
	wake     chan struct{} // tells the refresh loop its schedule changed

	refreshMu sync.Mutex // one refresh at a time

	// Guarded by Set.mu.
	bundle      *spiffebundle.Bundle
	next        time.Time
	failures    int
	lastSuccess time.Time
	lastErr     error
}

// New returns the set for cfg. It validates the configuration and loads
// every peer's kept bundle from the store (or takes the configured one when
// its sequence number is higher); it fetches nothing. An error of the store
// other than ErrNotFound fails New; a stored bundle that is not valid is
// reported to OnRefuse and left aside.
func New(ctx context.Context, cfg Config) (*Set, error) {
	s := &Set{
		own:        cfg.Own,
		peers:      make(map[spiffeid.TrustDomain]*peer, len(cfg.Peers)),
		store:      cfg.Store,
		minRefresh: orDefault(cfg.MinRefresh, DefaultMinRefresh),
		maxRefresh: orDefault(cfg.MaxRefresh, DefaultMaxRefresh),
		retry:      orDefault(cfg.RetryInterval, DefaultRetryInterval),
		now:        cfg.Now,
		log:        cfg.Logger,
		onUpdate:   cfg.OnUpdate,
		onRefuse:   cfg.OnRefuse,
		after:      realAfter,
	}
	if s.store == nil {
		s.store = &MemoryStore{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.minRefresh < 0 || s.maxRefresh < 0 || s.retry < 0 || cfg.MaxBytes < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: negative duration or size", ErrInvalidConfig)
	}
	if s.minRefresh > s.maxRefresh {
		return nil, fmt.Errorf("%w: MinRefresh %s is longer than MaxRefresh %s", ErrInvalidConfig, s.minRefresh, s.maxRefresh)
	}
	if s.own != nil {
		b := s.own()
		if b == nil {
			return nil, fmt.Errorf("%w: Own returned no bundle", ErrInvalidConfig)
		}
		s.ownTD = b.TrustDomain()
	}
	fc := fetch.Config{
		Timeout:      orDefault(cfg.Timeout, DefaultTimeout),
		MaxBytes:     cfg.MaxBytes,
		AllowHTTP:    cfg.AllowHTTP,
		AllowPrivate: cfg.AllowPrivate,
		Logger:       s.log,
	}
	if fc.MaxBytes == 0 {
		fc.MaxBytes = DefaultMaxBytes
	}
	for i, pc := range cfg.Peers {
		p, initial, err := s.newPeer(cfg, pc, fc)
		if err != nil {
			return nil, fmt.Errorf("%w: peer %d: %w", ErrInvalidConfig, i, err)
		}
		if _, dup := s.peers[p.td]; dup {
			return nil, fmt.Errorf("%w: trust domain %s is configured twice", ErrInvalidConfig, p.td.Name())
		}
		stored, err := s.loadStored(ctx, p)
		if err != nil {
			return nil, err
		}
		p.bundle = newer(stored, initial)
		s.peers[p.td] = p
		s.order = append(s.order, p)
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func realAfter(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// newPeer validates pc and builds its peer and fetcher; it returns the
// configured initial bundle, if any.
func (s *Set) newPeer(cfg Config, pc Peer, fc fetch.Config) (*peer, *spiffebundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(pc.TrustDomain)
	if err != nil {
		return nil, nil, fmt.Errorf("trust domain %q: %w", pc.TrustDomain, err)
	}
	if s.own != nil && td == s.ownTD {
		return nil, nil, fmt.Errorf("trust domain %s is the own trust domain", td.Name())
	}
	p := &peer{td: td, endpoint: pc.EndpointURL, profile: pc.Profile, wake: make(chan struct{}, 1)}
	if p.profile == "" {
		p.profile = ProfileHTTPSWeb
	}
	if !p.profile.Valid() {
		return nil, nil, fmt.Errorf("trust domain %s: unknown profile %q", td.Name(), pc.Profile)
	}
	if err := checkEndpoint(pc.EndpointURL, p.profile, cfg.AllowHTTP); err != nil {
		return nil, nil, fmt.Errorf("trust domain %s: %w", td.Name(), err)
	}
	var initial *spiffebundle.Bundle
	if pc.Bundle != nil {
		if initial, err = parseBundle(td, pc.Bundle); err != nil {
			return nil, nil, fmt.Errorf("trust domain %s: configured bundle: %w", td.Name(), err)
		}
	}

	var tc *tls.Config
	switch p.profile {
	case ProfileHTTPSWeb:
		if pc.EndpointSPIFFEID != "" {
			return nil, nil, fmt.Errorf("trust domain %s: an endpoint SPIFFE ID needs profile %s", td.Name(), ProfileHTTPSSPIFFE)
		}
		tc = &tls.Config{RootCAs: pc.Roots, MinVersion: tls.VersionTLS12}
	case ProfileHTTPSSPIFFE:
		id, err := spiffeid.FromString(pc.EndpointSPIFFEID)
		if err != nil {
			return nil, nil, fmt.Errorf("trust domain %s: endpoint SPIFFE ID %q: %w", td.Name(), pc.EndpointSPIFFEID, err)
		}
		if !id.MemberOf(td) {
			return nil, nil, fmt.Errorf("trust domain %s: endpoint SPIFFE ID %s is not a member of it", td.Name(), id)
		}
		if initial == nil {
			return nil, nil, fmt.Errorf("trust domain %s: profile %s needs the domain's bundle", td.Name(), ProfileHTTPSSPIFFE)
		}
		tc = tlsconfig.TLSClientConfig(peerX509Source{s: s, p: p}, tlsconfig.AuthorizeID(id))
	}

	client := http.Client{}
	if cfg.Client != nil {
		client = *cfg.Client
	}
	var tr *http.Transport
	switch t := client.Transport.(type) {
	case nil:
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone()
		} else {
			tr = &http.Transport{TLSHandshakeTimeout: 10 * time.Second}
		}
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, nil, fmt.Errorf("client transport %T is not an *http.Transport", t)
	}
	// Each fetch opens its own connection, verified under the TLS rules
	// and the peer bundle of that moment.
	tr.DisableKeepAlives = true
	tr.TLSClientConfig = tc
	client.Transport = tr
	client.Jar = nil
	fc.Client = &client
	p.fetcher = fetch.New(fc)
	return p, initial, nil
}

// checkEndpoint requires an absolute https URL, or an http URL on a
// loopback host when allowHTTP is set and the profile is https_web.
func checkEndpoint(raw string, profile Profile, allowHTTP bool) error {
	if raw == "" {
		return errors.New("endpoint URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("endpoint URL: %w", err)
	}
	if u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("endpoint URL %q: not an absolute URL with a host, without userinfo and fragment", raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP && profile == ProfileHTTPSWeb && loopbackHost(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("endpoint URL %q: the bundle endpoint must use https", raw)
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loadStored reads and checks the stored bundle of p; nil when there is
// none or it is refused.
func (s *Set) loadStored(ctx context.Context, p *peer) (*spiffebundle.Bundle, error) {
	data, err := s.store.Load(ctx, p.td.Name())
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("federation: load the stored bundle of %s: %w", p.td.Name(), err)
	}
	b, err := parseBundle(p.td, data)
	if err != nil {
		s.refused(ctx, p, fmt.Errorf("federation: stored bundle of %s: %w", p.td.Name(), err))
		return nil, nil
	}
	return b, nil
}

// newer returns the bundle to start with: the stored one, unless the
// configured one has a higher sequence number.
func newer(stored, configured *spiffebundle.Bundle) *spiffebundle.Bundle {
	switch {
	case stored == nil:
		return configured
	case configured == nil:
		return stored
	}
	cs, ok := configured.SequenceNumber()
	if !ok {
		return stored
	}
	if ss, ok := stored.SequenceNumber(); ok && ss >= cs {
		return stored
	}
	return configured
}

// peerX509Source gives the TLS verification of an https_spiffe endpoint
// the peer's own current bundle, and nothing else.
type peerX509Source struct {
	s *Set
	p *peer
}

func (ps peerX509Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != ps.p.td {
		return nil, fmt.Errorf("federation: the bundle endpoint of %s presented an SVID of trust domain %s", ps.p.td.Name(), td.Name())
	}
	b := ps.s.kept(ps.p)
	if b == nil {
		return nil, fmt.Errorf("%w for trust domain %s", ErrNoBundle, td.Name())
	}
	return b.X509Bundle(), nil
}

// kept returns the current bundle of p (nil when none).
func (s *Set) kept(p *peer) *spiffebundle.Bundle {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return p.bundle
}

// bundleFor returns the current bundle of td, which the caller must not
// modify.
func (s *Set) bundleFor(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	if s.own != nil && td == s.ownTD {
		b := s.own()
		if b == nil || b.TrustDomain() != td {
			return nil, fmt.Errorf("%w for the own trust domain %s", ErrNoBundle, td.Name())
		}
		return b, nil
	}
	p, ok := s.peers[td]
	if !ok {
		return nil, notFederated(td)
	}
	b := s.kept(p)
	if b == nil {
		return nil, fmt.Errorf("%w for trust domain %s", ErrNoBundle, td.Name())
	}
	return b, nil
}

func notFederated(td spiffeid.TrustDomain) error {
	return fmt.Errorf("federation: trust domain %s is not federated: %w", td.Name(), credentials.ErrUntrustedDomain)
}

// GetBundleForTrustDomain returns a copy of the SPIFFE bundle of td, the
// own trust domain or a federated one. It implements spiffebundle.Source.
func (s *Set) GetBundleForTrustDomain(td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	b, err := s.bundleFor(td)
	if err != nil {
		return nil, err
	}
	return b.Clone(), nil
}

// GetX509BundleForTrustDomain returns the X.509 authorities of td. It
// implements x509bundle.Source.
func (s *Set) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b, err := s.bundleFor(td)
	if err != nil {
		return nil, err
	}
	return b.X509Bundle(), nil
}

// GetJWTBundleForTrustDomain returns the JWT authorities of td. It
// implements jwtbundle.Source.
func (s *Set) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	b, err := s.bundleFor(td)
	if err != nil {
		return nil, err
	}
	return b.JWTBundle(), nil
}

// WITKeys returns the lookup by kid of the WIT authority keys of trust
// domain td, the own or a federated one, as wimse.Authority takes it. Each
// lookup reads the bundle the set holds for td at that moment, so a
// refreshed bundle applies at once. A kid td's bundle does not hold is
// jose.ErrUnknownKey; a domain the set does not federate with,
// credentials.ErrUntrustedDomain.
func (s *Set) WITKeys(td string) (jose.KeyFunc, error) {
	id, err := spiffeid.TrustDomainFromString(td)
	if err != nil {
		return nil, fmt.Errorf("federation: trust domain %q: %w", td, err)
	}
	return func(_ context.Context, kid string) (crypto.PublicKey, error) {
		b, err := s.bundleFor(id)
		if err != nil {
			return nil, err
		}
		k, ok := b.FindWITAuthority(kid)
		if !ok {
			return nil, fmt.Errorf("federation: no WIT authority %q in the bundle of %s: %w", kid, id.Name(), jose.ErrUnknownKey)
		}
		return k, nil
	}, nil
}

// ValidateJWTSVID validates a JWT-SVID (SPECS.md §10.3) of the own or a
// federated trust domain for audience, with the keys of its subject's trust
// domain and the checks of the own CA ([ca.ValidateJWTSVIDFrom]). It
// returns the subject and all claims. Errors wrap ca.ErrInvalidToken (with
// the jose sentinel saying why, and credentials.ErrUntrustedDomain for a
// domain that is not trusted) or ca.ErrInvalidArgument.
func (s *Set) ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error) {
	id, claims, err := ca.ValidateJWTSVIDFrom(ctx, token, audience, s, s.now)
	if err != nil {
		return spiffeid.ID{}, nil, fmt.Errorf("federation: jwt-svid: %w", err)
	}
	return id, claims, nil
}

// VerifyX509SVID verifies an X.509-SVID chain, leaf first (SPECS.md §10.2):
// path validation at Now against the X.509 authorities of the leaf's trust
// domain (own or federated, never the system roots), exactly one URI SAN,
// an end-entity leaf with digitalSignature and neither keyCertSign nor
// cRLSign. It returns the leaf's SPIFFE ID. Errors wrap ErrInvalidSVID, and
// credentials.ErrUntrustedDomain for a domain that is not trusted.
func (s *Set) VerifyX509SVID(chain []*x509.Certificate) (spiffeid.ID, error) {
	for _, c := range chain {
		if c == nil {
			return spiffeid.ID{}, fmt.Errorf("%w: nil certificate in the chain", ErrInvalidSVID)
		}
	}
	id, _, err := x509svid.Verify(chain, s, x509svid.WithTime(s.now()))
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %w", ErrInvalidSVID, err)
	}
	if chain[0].KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return spiffeid.ID{}, fmt.Errorf("%w: leaf %s lacks the digitalSignature key usage", ErrInvalidSVID, id)
	}
	return id, nil
}

// PeerStatus is the refresh state of one federated trust domain.
type PeerStatus struct {
	// TrustDomain is the trust domain name.
	TrustDomain string
	// EndpointURL is the configured bundle endpoint.
	EndpointURL string
	// Profile is the endpoint's profile.
	Profile Profile
	// HasBundle reports whether a bundle is in use.
	HasBundle bool
	// Sequence is the spiffe_sequence of the bundle in use (0 when none).
	Sequence uint64
	// LastSuccess is the time of the last successful fetch (zero when
	// none since New).
	LastSuccess time.Time
	// NextRefresh is when the refresh loop fetches next; zero means at
	// once.
	NextRefresh time.Time
	// Failures counts the refreshes that failed since the last success.
	Failures int
	// LastError is the error of the last failed refresh (nil after a
	// success).
	LastError error
}

// Status returns the state of every federated trust domain, in
// configuration order.
func (s *Set) Status() []PeerStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]PeerStatus, 0, len(s.order))
	for _, p := range s.order {
		st := PeerStatus{
			TrustDomain: p.td.Name(),
			EndpointURL: p.endpoint,
			Profile:     p.profile,
			HasBundle:   p.bundle != nil,
			LastSuccess: p.lastSuccess,
			NextRefresh: p.next,
			Failures:    p.failures,
			LastError:   p.lastErr,
		}
		if p.bundle != nil {
			st.Sequence, _ = p.bundle.SequenceNumber()
		}
		out = append(out, st)
	}
	return out
}
