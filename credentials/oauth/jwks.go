package oauth

// An authorization server's signing keys, read from the JWK Set (RFC 7517
// §5) at its jwks_uri (RFC 8414 §2), and the discovery of an external
// issuer whose access tokens a protected resource accepts (RFC 9068 §4).

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// Defaults of [RemoteKeysConfig].
const (
	DefaultKeysMinTTL     = 5 * time.Minute
	DefaultKeysMaxTTL     = 24 * time.Hour
	DefaultKeysMinRefetch = time.Minute
	DefaultKeysMaxStale   = 24 * time.Hour
)

// ErrKeysUnavailable reports that an issuer's signing keys could not be
// fetched and that no copy fetched before is young enough to use.
var ErrKeysUnavailable = errors.New("oauth: signing keys unavailable")

// RemoteKeysConfig configures [NewRemoteKeys].
type RemoteKeysConfig struct {
	// URL is the issuer's jwks_uri. Required.
	URL string
	// Fetcher fetches the key set under the rules of package fetch (no
	// redirect to another origin, a size cap, a timeout, no private
	// addresses unless it allows them). Nil means fetch.New with
	// HTTPClient and Logger.
	Fetcher *fetch.Fetcher
	// HTTPClient is the client of the default Fetcher; nil means its own.
	HTTPClient *http.Client
	// MaxBytes caps the key set; zero means jose.DefaultMaxKeySetSize.
	// The Fetcher's own cap applies when it is smaller.
	MaxBytes int64
	// MinTTL and MaxTTL bound how long a fetched key set is used before
	// it is fetched again: the response's Cache-Control max-age, clamped
	// between MinTTL and MaxTTL; MinTTL without max-age or with no-cache
	// or no-store. Zero means DefaultKeysMinTTL and DefaultKeysMaxTTL.
	MinTTL time.Duration
	MaxTTL time.Duration
	// MinRefetch is the least time between two fetches that a request
	// triggers (a kid the cached set lacks, a set past its TTL), so that
	// tokens naming made-up kids cannot make the resource hammer the
	// server. Zero means DefaultKeysMinRefetch.
	MinRefetch time.Duration
	// MaxStale is how old (since it was fetched) a key set may get while
	// fetches fail; older, every lookup fails with ErrKeysUnavailable. No
	// key set is used longer, whatever its max-age. Zero means
	// DefaultKeysMaxStale; it must not be below MinTTL.
	MaxStale time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a warning for each failed fetch; nil means silent.
	Logger *slog.Logger
}

// RemoteKeys is an authorization server's JWK Set, fetched from its
// jwks_uri and cached. A lookup of a kid the cached set lacks fetches the
// set again, at most once per MinRefetch; concurrent lookups share one
// fetch; a failed fetch keeps the last good set until it is MaxStale old.
// It is safe for concurrent use.
type RemoteKeys struct {
	cfg      RemoteKeysConfig
	f        *fetch.Fetcher
	maxBytes int64

	mu        sync.Mutex
	keys      map[string]crypto.PublicKey
	fetched   time.Time // when keys were fetched
	expires   time.Time // when keys are to be fetched again
	attempted time.Time // when the last fetch began
	lastErr   error
	inflight  *keysFetch
}

// keysFetch is a fetch in flight; done is closed when it ends.
type keysFetch struct {
	done chan struct{}
	err  error
}

// NewRemoteKeys checks cfg. It fetches nothing: the first lookup (or
// [RemoteKeys.Refresh]) does.
func NewRemoteKeys(cfg RemoteKeysConfig) (*RemoteKeys, error) {
	if cfg.URL == "" {
		return nil, errors.New("oauth: remote keys: URL is required")
	}
	if u, err := url.Parse(cfg.URL); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("oauth: remote keys: %q is not an absolute URL", truncate(cfg.URL, 200))
	}
	if cfg.MinTTL == 0 {
		cfg.MinTTL = DefaultKeysMinTTL
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = DefaultKeysMaxTTL
	}
	if cfg.MinRefetch == 0 {
		cfg.MinRefetch = DefaultKeysMinRefetch
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultKeysMaxStale
	}
	switch {
	case cfg.MinTTL < 0 || cfg.MaxTTL < 0 || cfg.MinRefetch < 0 || cfg.MaxStale < 0 || cfg.MaxBytes < 0:
		return nil, errors.New("oauth: remote keys: negative duration or size")
	case cfg.MinTTL > cfg.MaxTTL:
		return nil, errors.New("oauth: remote keys: MinTTL exceeds MaxTTL")
	case cfg.MaxStale < cfg.MinTTL:
		return nil, errors.New("oauth: remote keys: MaxStale is below MinTTL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = jose.DefaultMaxKeySetSize
	}
	f := cfg.Fetcher
	if f == nil {
		f = fetch.New(fetch.Config{Client: cfg.HTTPClient, Logger: cfg.Logger})
	}
	f = f.Restrict(maxBytes, -1)
	return &RemoteKeys{cfg: cfg, f: f, maxBytes: f.MaxBytes()}, nil
}

// URL is the jwks_uri the keys come from.
func (k *RemoteKeys) URL() string { return k.cfg.URL }

// KeyFunc returns [RemoteKeys.Key] as a jose.KeyFunc.
func (k *RemoteKeys) KeyFunc() jose.KeyFunc { return k.Key }

// Key returns the public key named kid (an empty kid matches a set of
// exactly one key). It implements jose.KeyFunc: a kid the set lacks,
// after the fetch it may trigger, wraps jose.ErrUnknownKey; keys that
// cannot be had wrap [ErrKeysUnavailable].
func (k *RemoteKeys) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	now := k.cfg.Now()
	if k.fresh(now) {
		if key, ok := pick(k.keys, kid); ok {
			k.mu.Unlock()
			return key, nil
		}
	}
	// Absent, past its TTL, or without kid: fetch again when allowed, or
	// join the fetch in flight.
	call := k.inflight
	if call == nil && k.mayFetch(now) {
		call = k.startLocked(ctx, now)
	}
	k.mu.Unlock()
	if call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("oauth: remote keys: %w", ctx.Err())
		}
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.usable(k.cfg.Now()) {
		cause := k.lastErr
		if cause == nil {
			cause = errors.New("not fetched yet")
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrKeysUnavailable, truncate(k.cfg.URL, 200), cause)
	}
	if key, ok := pick(k.keys, kid); ok {
		return key, nil
	}
	if kid == "" {
		return nil, fmt.Errorf("%w: token has no kid", jose.ErrUnknownKey)
	}
	return nil, fmt.Errorf("%w: kid %q", jose.ErrUnknownKey, truncate(kid, 64))
}

// Refresh fetches the key set now (or waits for the fetch in flight),
// whatever MinRefetch says, and returns that fetch's error. It is for
// start-up, to fail early on an issuer whose keys cannot be read.
func (k *RemoteKeys) Refresh(ctx context.Context) error {
	k.mu.Lock()
	call := k.inflight
	if call == nil {
		call = k.startLocked(ctx, k.cfg.Now())
	}
	k.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("oauth: remote keys: %w", ctx.Err())
	}
}

// fresh reports whether the cached set is within its TTL at now.
func (k *RemoteKeys) fresh(now time.Time) bool {
	return k.keys != nil && !now.Before(k.fetched) && now.Before(k.expires)
}

// usable reports whether the cached set is younger than MaxStale at now.
func (k *RemoteKeys) usable(now time.Time) bool {
	return k.keys != nil && now.Sub(k.fetched) < k.cfg.MaxStale
}

// mayFetch reports whether a request may trigger a fetch at now: none
// began within MinRefetch (or the clock went back).
func (k *RemoteKeys) mayFetch(now time.Time) bool {
	if k.attempted.IsZero() {
		return true
	}
	d := now.Sub(k.attempted)
	return d < 0 || d >= k.cfg.MinRefetch
}

// startLocked begins a fetch that every caller until its end shares. It
// runs apart from the cancellation of the request that began it (the
// fetcher's timeout bounds it), so that one cancelled request does not
// fail the others.
func (k *RemoteKeys) startLocked(ctx context.Context, now time.Time) *keysFetch {
	call := &keysFetch{done: make(chan struct{})}
	k.inflight = call
	k.attempted = now
	go k.run(context.WithoutCancel(ctx), call)
	return call
}

func (k *RemoteKeys) run(ctx context.Context, call *keysFetch) {
	keys, ttl, err := k.fetch(ctx)
	k.mu.Lock()
	if err != nil {
		k.lastErr = err
	} else {
		now := k.cfg.Now()
		k.keys, k.fetched, k.expires, k.lastErr = keys, now, now.Add(ttl), nil
	}
	call.err = err
	k.inflight = nil
	k.mu.Unlock()
	close(call.done)
	if err != nil {
		k.cfg.Logger.WarnContext(ctx, "jwks fetch failed", "url", truncate(k.cfg.URL, 200), "err", err)
	}
}

// fetch reads the key set and the time it may be used for.
func (k *RemoteKeys) fetch(ctx context.Context) (map[string]crypto.PublicKey, time.Duration, error) {
	resp, err := k.f.JSON(ctx, k.cfg.URL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("oauth: jwks: %w", err)
	}
	keys, err := jose.ParseKeySet(resp.Body, int(k.maxBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("oauth: jwks: %w", err)
	}
	if len(keys) == 0 {
		return nil, 0, errors.New("oauth: jwks: the key set holds no signing key")
	}
	return keys, k.ttl(resp.Header), nil
}

// ttl is how long a key set fetched with header h is used: its
// Cache-Control max-age (RFC 9111 §5.2.2.1) clamped to [MinTTL, MaxTTL];
// MinTTL without one or with no-cache or no-store; never over MaxStale.
func (k *RemoteKeys) ttl(h http.Header) time.Duration {
	ttl := k.cfg.MinTTL
	if age, ok := maxAge(h); ok && age > ttl {
		ttl = min(age, k.cfg.MaxTTL)
	}
	return min(ttl, k.cfg.MaxStale)
}

// maxAge reads max-age from the Cache-Control fields of h; no-cache and
// no-store count as zero, an unreadable value as absent.
func maxAge(h http.Header) (time.Duration, bool) {
	var (
		age     time.Duration
		found   bool
		noCache bool
	)
	for _, field := range h.Values("Cache-Control") {
		for _, d := range strings.Split(field, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-cache", "no-store":
				noCache = true
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || found {
					continue
				}
				age, found = time.Duration(min(n, 1<<32))*time.Second, true
			}
		}
	}
	if noCache {
		return 0, true
	}
	return age, found
}

// pick returns the key named kid, or the only key for an empty kid.
func pick(keys map[string]crypto.PublicKey, kid string) (crypto.PublicKey, bool) {
	if kid == "" {
		if len(keys) == 1 {
			for _, key := range keys {
				return key, true
			}
		}
		return nil, false
	}
	key, ok := keys[kid]
	return key, ok
}

// IssuerConfig configures [DiscoverIssuer].
type IssuerConfig struct {
	// Issuer is the issuer identifier, exactly as its tokens' iss.
	// Required.
	Issuer string
	// Fetcher fetches the metadata and the key set; nil means fetch.New
	// with HTTPClient and Logger.
	Fetcher *fetch.Fetcher
	// HTTPClient is the client of the default Fetcher and of
	// introspection requests; nil means theirs.
	HTTPClient *http.Client
	// Keys tunes the key cache (TTLs, MinRefetch, MaxStale, MaxBytes);
	// its URL, Fetcher, HTTPClient, Now and Logger are set from the
	// metadata and this config.
	Keys RemoteKeysConfig
	// ClientID and Assertion, when both are set, authenticate
	// introspection requests: with them, an issuer that advertises an
	// introspection_endpoint gets an Introspect function, an
	// [Introspector], which sends the assertion as a jwt-spiffe client
	// assertion (see [IntrospectorConfig]). A server that authenticates
	// its callers otherwise needs an introspection function of its own.
	ClientID  string
	Assertion AssertionSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means silent.
	Logger *slog.Logger
}

// DiscoveredIssuer is an external authorization server whose tokens a
// protected resource can check.
type DiscoveredIssuer struct {
	// Metadata is the server's metadata (RFC 8414), whose issuer is
	// identical to the one asked for.
	Metadata *ServerMetadata
	// Keys are its signing keys, from its jwks_uri; nil when it names
	// none.
	Keys *RemoteKeys
	// Introspect asks its introspection_endpoint about a token (RFC
	// 7662); nil when it has none or no client credentials were given.
	Introspect func(ctx context.Context, token string) (*IntrospectionResponse, error)
}

// DiscoverIssuer reads an issuer's metadata ([DiscoverServer]: RFC 8414,
// then OpenID Connect Discovery, the issuer compared exactly), fetches its
// key set once so that an unreadable one fails here rather than on the
// first request, and sets up introspection when the server has an
// endpoint for it and cfg has client credentials. A server that offers
// neither keys nor usable introspection is an error.
func DiscoverIssuer(ctx context.Context, cfg IssuerConfig) (*DiscoveredIssuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oauth: discover issuer: Issuer is required")
	}
	f := cfg.Fetcher
	if f == nil {
		f = fetch.New(fetch.Config{Client: cfg.HTTPClient, Logger: cfg.Logger})
	}
	md, err := DiscoverServer(ctx, f, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	out := &DiscoveredIssuer{Metadata: md}
	if md.JWKSURI != "" {
		kc := cfg.Keys
		kc.URL, kc.Fetcher, kc.HTTPClient, kc.Now, kc.Logger = md.JWKSURI, f, cfg.HTTPClient, cfg.Now, cfg.Logger
		if out.Keys, err = NewRemoteKeys(kc); err != nil {
			return nil, fmt.Errorf("oauth: issuer %q: %w", cfg.Issuer, err)
		}
		if err := out.Keys.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("oauth: issuer %q: %w: %w", cfg.Issuer, ErrKeysUnavailable, err)
		}
	}
	if md.IntrospectionEndpoint != "" && cfg.ClientID != "" && cfg.Assertion != nil {
		if err := sameScheme(md.IntrospectionEndpoint, cfg.Issuer); err != nil {
			return nil, fmt.Errorf("oauth: issuer %q: introspection_endpoint: %w", cfg.Issuer, err)
		}
		in, err := NewIntrospector(IntrospectorConfig{Endpoint: md.IntrospectionEndpoint, ClientID: cfg.ClientID,
			Assertion: cfg.Assertion, Issuer: md.Issuer, HTTPClient: cfg.HTTPClient, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("oauth: issuer %q: %w", cfg.Issuer, err)
		}
		out.Introspect = in.Introspect
	}
	if out.Keys == nil && out.Introspect == nil {
		return nil, fmt.Errorf("%w: issuer %q has no jwks_uri and no introspection the host can use", ErrMetadata, cfg.Issuer)
	}
	return out, nil
}

// sameScheme requires endpoint to be an absolute URL with issuer's
// scheme, so that an https issuer's metadata cannot send tokens and
// client assertions over plain http.
func sameScheme(endpoint, issuer string) error {
	e, err := url.Parse(endpoint)
	if err != nil || !e.IsAbs() || e.Host == "" || e.User != nil || e.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL", truncate(endpoint, 200))
	}
	i, err := url.Parse(issuer)
	if err != nil || !strings.EqualFold(e.Scheme, i.Scheme) {
		return fmt.Errorf("%q does not use the issuer's scheme", truncate(endpoint, 200))
	}
	return nil
}
