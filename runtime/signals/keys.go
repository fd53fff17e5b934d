package signals

import (
	"context"
	"crypto"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// SpecVersion is the spec_version this package implements (SSF 1.0).
const SpecVersion = "1_0"

// Delivery method URIs (SSF 1.0 §6.1).
const (
	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"
)

// WellKnownPath is the well-known path of SSF transmitter metadata.
const WellKnownPath = "/.well-known/ssf-configuration"

// AuthorizationScheme is one entry of authorization_schemes.
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// TransmitterMetadata is an SSF transmitter's configuration metadata
// (SSF 1.0 §7.1).
type TransmitterMetadata struct {
	SpecVersion              string                `json:"spec_version,omitempty"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri,omitempty"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported,omitempty"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint,omitempty"`
	StatusEndpoint           string                `json:"status_endpoint,omitempty"`
	AddSubjectEndpoint       string                `json:"add_subject_endpoint,omitempty"`
	RemoveSubjectEndpoint    string                `json:"remove_subject_endpoint,omitempty"`
	VerificationEndpoint     string                `json:"verification_endpoint,omitempty"`
	CriticalSubjectMembers   []string              `json:"critical_subject_members,omitempty"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes,omitempty"`
	DefaultSubjects          string                `json:"default_subjects,omitempty"`
}

// MetadataURL returns the URL of the metadata of the transmitter named
// issuer: the well-known path is inserted before the issuer's path
// (https://tr.example/issuer1 → https://tr.example/.well-known/ssf-configuration/issuer1).
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: issuer %q is not an absolute URL without query or fragment", ErrInvalidConfig, truncate(issuer, 128))
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + WellKnownPath + p, nil
}

// DiscoverTransmitter fetches the metadata of the transmitter named issuer
// through f and checks that its issuer equals issuer exactly (SSF 1.0
// §7.2). A mismatch wraps [ErrIssuerMismatch].
func DiscoverTransmitter(ctx context.Context, f *fetch.Fetcher, issuer string) (*TransmitterMetadata, error) {
	mdURL, err := MetadataURL(issuer)
	if err != nil {
		return nil, err
	}
	var md TransmitterMetadata
	if _, err := f.JSON(ctx, mdURL, &md); err != nil {
		return nil, fmt.Errorf("signals: transmitter metadata: %w", err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("%w: metadata issuer %q, want %q", ErrIssuerMismatch, truncate(md.Issuer, 128), issuer)
	}
	if md.SpecVersion == "" {
		md.SpecVersion = "1_0-ID1"
	}
	return &md, nil
}

// DiscoverKeys discovers the transmitter named issuer through f
// ([DiscoverTransmitter]) and returns its metadata and a [KeySet] over its
// jwks_uri, fetched through f.
func DiscoverKeys(ctx context.Context, f *fetch.Fetcher, issuer string) (*TransmitterMetadata, *KeySet, error) {
	md, err := DiscoverTransmitter(ctx, f, issuer)
	if err != nil {
		return nil, nil, err
	}
	if md.JWKSURI == "" {
		return nil, nil, fmt.Errorf("%w: transmitter metadata has no jwks_uri", ErrInvalidConfig)
	}
	ks, err := NewKeySet(KeySetConfig{Fetcher: f, URL: md.JWKSURI})
	if err != nil {
		return nil, nil, err
	}
	return md, ks, nil
}

// Defaults applied to zero fields of [KeySetConfig].
const (
	DefaultKeySetTTL        = time.Hour
	DefaultKeySetMinRefresh = 30 * time.Second
)

// KeySetConfig configures a [KeySet].
type KeySetConfig struct {
	// Fetcher fetches the JWK Set. Required.
	Fetcher *fetch.Fetcher
	// URL is the transmitter's jwks_uri. Required.
	URL string
	// TTL is how long a fetched set is used before it is fetched again;
	// zero means DefaultKeySetTTL.
	TTL time.Duration
	// MinRefresh is the least time between two fetches caused by an
	// unknown kid; zero means DefaultKeySetMinRefresh.
	MinRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// KeySet caches a transmitter's JWK Set. An unknown kid causes one
// refetch, at most once per MinRefresh. It is safe for concurrent use.
type KeySet struct {
	cfg KeySetConfig

	fetchMu sync.Mutex // serializes fetches

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time // when keys were fetched
	tried   time.Time // last fetch attempt
	lastErr error     // its error
}

// NewKeySet returns a KeySet for cfg. Nothing is fetched until a key is
// needed.
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	if cfg.Fetcher == nil || cfg.URL == "" {
		return nil, fmt.Errorf("%w: key set needs a fetcher and a URL", ErrInvalidConfig)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultKeySetTTL
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultKeySetMinRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &KeySet{cfg: cfg}, nil
}

// refresh reasons.
const (
	refreshStale      = iota // no keys yet, or older than TTL
	refreshUnknownKID        // a kid not in the set
	refreshExplicit          // Refresh called
)

// Key returns the key named kid; it has the signature of jose.KeyFunc.
// A token without kid matches only a set of exactly one key. Errors wrap
// jose.ErrUnknownKey, and also [ErrKeysUnavailable] when no set could be
// fetched at all. Fetches, failed ones included, happen at most once per
// MinRefresh except through [KeySet.Refresh].
func (k *KeySet) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	stale := k.keys == nil || k.cfg.Now().Sub(k.fetched) >= k.cfg.TTL
	k.mu.Unlock()
	if stale {
		if err := k.refresh(ctx, refreshStale); err != nil {
			k.mu.Lock()
			have := k.keys != nil
			k.mu.Unlock()
			if !have {
				return nil, fmt.Errorf("%w: %w: %w", jose.ErrUnknownKey, ErrKeysUnavailable, err)
			}
		}
	}
	if key := k.lookup(kid); key != nil {
		return key, nil
	}
	if err := k.refresh(ctx, refreshUnknownKID); err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w", jose.ErrUnknownKey, truncate(kid, 64), err)
	}
	if key := k.lookup(kid); key != nil {
		return key, nil
	}
	return nil, fmt.Errorf("%w: kid %q", jose.ErrUnknownKey, truncate(kid, 64))
}

func (k *KeySet) lookup(kid string) crypto.PublicKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if kid == "" {
		if len(k.keys) == 1 {
			for _, key := range k.keys {
				return key
			}
		}
		return nil
	}
	return k.keys[kid]
}

// Refresh fetches the set now.
func (k *KeySet) Refresh(ctx context.Context) error {
	return k.refresh(ctx, refreshExplicit)
}

// refresh fetches the set unless the reason no longer holds or a fetch
// was tried within MinRefresh; in that case it returns the error of that
// last attempt, if it failed.
func (k *KeySet) refresh(ctx context.Context, reason int) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.Lock()
	now := k.cfg.Now()
	if reason != refreshExplicit {
		if reason == refreshStale && k.keys != nil && now.Sub(k.fetched) < k.cfg.TTL {
			k.mu.Unlock()
			return nil // another caller refreshed meanwhile
		}
		if !k.tried.IsZero() && now.Sub(k.tried) < k.cfg.MinRefresh {
			err := k.lastErr
			k.mu.Unlock()
			return err
		}
	}
	k.tried = now
	k.mu.Unlock()

	err := k.fetch(ctx)
	k.mu.Lock()
	k.lastErr = err
	k.mu.Unlock()
	return err
}

func (k *KeySet) fetch(ctx context.Context) error {
	resp, err := k.cfg.Fetcher.Get(ctx, k.cfg.URL)
	if err != nil {
		return fmt.Errorf("signals: fetch JWK Set: %w", err)
	}
	keys, err := jose.ParseKeySet(resp.Body, 0)
	if err != nil {
		return fmt.Errorf("signals: parse JWK Set: %w", err)
	}
	k.mu.Lock()
	k.keys = keys
	k.fetched = k.cfg.Now()
	k.mu.Unlock()
	return nil
}
