package wimse

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
)

// Defaults and limits applied by [NewVerifier], [MintWPT], [SignRequest]
// and [NewTransport].
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf, iat, created
	// and expires when Config.Leeway is zero.
	DefaultLeeway = 30 * time.Second
	// DefaultProofLifetime is the lifetime of a WPT or HTTP message
	// signature when the minting options leave it zero.
	DefaultProofLifetime = time.Minute
	// MaxProofLifetime caps the lifetime of a proof, both when minting
	// and, unless Config.MaxProofLifetime says otherwise, when verifying:
	// proofs live "seconds to minutes" (SPECS.md §8.3, §8.4).
	MaxProofLifetime = 5 * time.Minute
	// DefaultMaxBodySize is the largest request body digested for an
	// HTTP message signature when the configured maximum is zero.
	DefaultMaxBodySize = 10 << 20
	// maxProofIDLen caps a jti or nonce, bounding what the replay cache
	// is asked to remember.
	maxProofIDLen = 256
)

// Attribute keys of the Verifier's log records.
const (
	logKeySubject  = "sub"
	logKeyProof    = "proof"
	logKeyProofID  = "proof_id_sha256"
	logKeyAudience = "aud"
	logKeyError    = "error"
	logKeyWITHash  = "wit_sha256"
)

// Authority is the trust placed in one trust domain's WIT issuer: the
// keys its WITs are signed with and, optionally, the iss they carry.
type Authority struct {
	// Keys looks up a WIT authority public key of the trust domain by kid
	// (for a CA's bundle, see [WITAuthorityKeys]). Required. The key is
	// never taken from the token (SPECS.md X.4).
	Keys jose.KeyFunc
	// Issuer, when not empty, must equal the WIT's iss claim exactly.
	Issuer string
}

// Config configures a [Verifier], the receiving side of WIMSE
// workload-to-workload authentication.
type Config struct {
	// TrustDomains maps each trusted trust domain name (lowercase, e.g.
	// "example.org") to its WIT authority. A WIT is verified only with
	// the keys of the trust domain its sub names (SPECS.md §8.2); keys of
	// different trust domains are never mixed. Required, non-empty.
	TrustDomains map[string]Authority
	// Algorithms lists the JWS algorithms accepted for the WIT signature;
	// empty means jose.DefaultAlgorithms. The proof's algorithm is always
	// the WIT's cnf.jwk.alg.
	Algorithms []jose.Alg

	// BaseURL is this server's external URL as its clients address it
	// ("https://api.example.com", or with a path prefix that a proxy
	// strips before the request reaches the handler). The expected
	// audience of a request is BaseURL's scheme and host, its path and
	// the request's path. It is never taken from Host or
	// X-Forwarded-Host (SPECS.md §8.3). Required by [Verifier.Verify] and
	// [Verifier.Middleware].
	BaseURL string
	// Require makes [Verifier.Middleware] refuse a request that carries
	// no Workload-Identity-Token; by default such a request passes through
	// with no WIMSE peer.
	Require bool
	// OtherTokenHeaders names the request headers, beyond Authorization
	// and Txn-Token, that carry context tokens a WPT must bind through
	// its oth claim when they are present (SPECS.md §8.3). An oth entry
	// for any other header is refused.
	OtherTokenHeaders []string

	// ReplayCache remembers proof jti and nonce values; nil means a
	// [MemoryReplayCache] of DefaultReplayCacheSize entries on Clock.
	// Share one cache between every Verifier that fronts the same
	// workload.
	ReplayCache ReplayCache
	// Leeway is the clock skew allowed; zero means DefaultLeeway, a
	// negative value allows none.
	Leeway time.Duration
	// MaxProofLifetime is the longest lifetime accepted for a proof (exp
	// or expires, counted from now or from created); zero means
	// MaxProofLifetime.
	MaxProofLifetime time.Duration
	// MaxBodySize caps the body read to check a Content-Digest; zero
	// means DefaultMaxBodySize.
	MaxBodySize int64

	// ErrorHandler answers a request the Middleware refuses; nil means
	// [WriteError].
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives a debug record for each peer verified or request
	// refused (identifiers and hashes, never tokens); nil means silent.
	Logger *slog.Logger
}

// Verifier verifies WITs, WPTs and WIMSE HTTP message signatures. It is
// safe for concurrent use.
type Verifier struct {
	domains     map[string]Authority
	algs        []jose.Alg
	base        *url.URL
	require     bool
	otherTokens []string
	replay      ReplayCache
	leeway      time.Duration
	maxLifetime time.Duration
	maxBody     int64
	onError     func(w http.ResponseWriter, r *http.Request, err error)
	now         func() time.Time
	log         *slog.Logger
}

// NewVerifier checks cfg and fills its defaults. An unusable Config wraps
// [ErrConfig].
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.TrustDomains) == 0 {
		return nil, fmt.Errorf("%w: no trust domains", ErrConfig)
	}
	domains := make(map[string]Authority, len(cfg.TrustDomains))
	for td, a := range cfg.TrustDomains {
		if err := credentials.ValidateTrustDomain(td); err != nil {
			return nil, fmt.Errorf("%w: trust domain %q: %w", ErrConfig, td, err)
		}
		if a.Keys == nil {
			return nil, fmt.Errorf("%w: trust domain %q has no keys", ErrConfig, td)
		}
		domains[td] = a
	}
	for _, a := range cfg.Algorithms {
		if !knownAlg(a) {
			return nil, fmt.Errorf("%w: algorithm %q", ErrConfig, a)
		}
	}
	v := &Verifier{
		domains:     domains,
		algs:        slices.Clone(cfg.Algorithms),
		require:     cfg.Require,
		replay:      cfg.ReplayCache,
		leeway:      cfg.Leeway,
		maxLifetime: cfg.MaxProofLifetime,
		maxBody:     cfg.MaxBodySize,
		onError:     cfg.ErrorHandler,
		now:         cfg.Clock,
		log:         cfg.Logger,
	}
	if cfg.BaseURL != "" {
		u, err := parseBaseURL(cfg.BaseURL)
		if err != nil {
			return nil, err
		}
		v.base = u
	}
	for _, h := range cfg.OtherTokenHeaders {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case name == "" || !isToken(name):
			return nil, fmt.Errorf("%w: other token header %q", ErrConfig, h)
		case isReservedHeader(name):
			return nil, fmt.Errorf("%w: %q cannot be an other token header", ErrConfig, h)
		}
		v.otherTokens = append(v.otherTokens, name)
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.maxLifetime < 0 || v.maxBody < 0 {
		return nil, fmt.Errorf("%w: negative lifetime or body size", ErrConfig)
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = MaxProofLifetime
	}
	if v.maxBody == 0 {
		v.maxBody = DefaultMaxBodySize
	}
	if v.onError == nil {
		v.onError = func(w http.ResponseWriter, _ *http.Request, err error) { WriteError(w, err) }
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.replay == nil {
		v.replay = NewMemoryReplayCache(DefaultReplayCacheSize, v.now)
	}
	return v, nil
}

// parseBaseURL checks a Config.BaseURL: an absolute http or https URL
// without query, fragment or userinfo. Its path loses a trailing slash.
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: base URL: %w", ErrConfig, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: base URL %q must be an absolute http(s) URL without query or fragment", ErrConfig, s)
	}
	out := &url.URL{Scheme: strings.ToLower(u.Scheme), Host: u.Host}
	out.Path = strings.TrimSuffix(u.Path, "/")
	if u.RawPath != "" {
		out.RawPath = strings.TrimSuffix(u.RawPath, "/")
	}
	return out, nil
}

// isReservedHeader reports whether name (lowercase) is a header this
// package binds by other means and cannot be bound through oth.
func isReservedHeader(name string) bool {
	switch name {
	case "authorization", "txn-token", "workload-identity-token", "workload-proof-token",
		"signature", "signature-input", "content-digest", "dpop":
		return true
	}
	return false
}
