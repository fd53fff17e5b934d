package oauth

import (
	"context"
	"crypto"
	"fmt"
	"sync"
	"time"
)

// DefaultIssuerRetry is the default [LazyIssuer] retry interval.
const DefaultIssuerRetry = 30 * time.Second

// LazyIssuer is an external authorization server discovered
// ([DiscoverIssuer]) when its keys or its introspection are first needed,
// so it need not answer when the resource starts, and discovered again
// after a failure at most once per retry interval: a stream of tokens
// naming it cannot make the resource hammer it. Its methods are a
// resource.Issuer's Keys and Introspect.
type LazyIssuer struct {
	cfg   IssuerConfig
	retry time.Duration
	now   func() time.Time

	mu      sync.Mutex
	found   *DiscoveredIssuer
	lastErr error
	lastTry time.Time
}

// NewLazyIssuer returns cfg's issuer, not discovered yet; retry zero
// means DefaultIssuerRetry.
func NewLazyIssuer(cfg IssuerConfig, retry time.Duration) *LazyIssuer {
	if retry <= 0 {
		retry = DefaultIssuerRetry
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &LazyIssuer{cfg: cfg, retry: retry, now: now}
}

// Discover returns the issuer's metadata and keys, discovering them if
// need be. Its errors wrap [ErrKeysUnavailable]: the issuer could not be
// asked, which says nothing about a token.
func (l *LazyIssuer) Discover(ctx context.Context) (*DiscoveredIssuer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.found != nil {
		return l.found, nil
	}
	now := l.now()
	if l.lastErr != nil && now.Sub(l.lastTry) < l.retry {
		return nil, l.lastErr
	}
	l.lastTry = now
	d, err := DiscoverIssuer(ctx, l.cfg)
	if err != nil {
		l.lastErr = fmt.Errorf("oauth: issuer %s: %w: %w", l.cfg.Issuer, ErrKeysUnavailable, err)
		if l.cfg.Logger != nil {
			l.cfg.Logger.Warn("issuer not discovered", "issuer", l.cfg.Issuer, "error", err)
		}
		return nil, l.lastErr
	}
	l.found, l.lastErr = d, nil
	return d, nil
}

// Key finds one of the issuer's signing keys (a jose.KeyFunc).
func (l *LazyIssuer) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	d, err := l.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.Keys == nil {
		return nil, fmt.Errorf("oauth: issuer %s publishes no jwks_uri", l.cfg.Issuer)
	}
	return d.Keys.Key(ctx, kid)
}

// Introspect asks the issuer about an opaque token (RFC 7662). An issuer
// without an introspection endpoint the resource can use cannot vouch
// for the token: it is inactive as far as the resource can tell.
func (l *LazyIssuer) Introspect(ctx context.Context, token string) (*IntrospectionResponse, error) {
	d, err := l.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.Introspect == nil {
		return &IntrospectionResponse{Active: false}, nil
	}
	return d.Introspect(ctx, token)
}
