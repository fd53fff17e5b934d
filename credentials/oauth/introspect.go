package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// IntrospectorConfig configures an Introspector.
type IntrospectorConfig struct {
	// Endpoint is the authorization server's introspection_endpoint.
	Endpoint string
	// ClientID and Assertion authenticate the caller (RFC 7662 §2.1
	// requires it); the assertion's audience is Issuer.
	ClientID  string
	Assertion AssertionSource
	Issuer    string
	// HTTPClient; nil means a 10 s timeout and no redirects.
	HTTPClient *http.Client
	// CacheTTL caps how long an active result is reused (never past the
	// token's exp); default 30 s. Inactive results are not cached.
	CacheTTL time.Duration
	Now      func() time.Time
}

// Introspector asks an authorization server about opaque tokens (RFC
// 7662) and caches active answers briefly. It fails closed: an unreachable
// or malformed endpoint is an error, never "active".
type Introspector struct {
	cfg   IntrospectorConfig
	mu    sync.Mutex
	cache map[[32]byte]cachedIntrospection
}

type cachedIntrospection struct {
	resp  *IntrospectionResponse
	until time.Time
}

// NewIntrospector checks cfg.
func NewIntrospector(cfg IntrospectorConfig) (*Introspector, error) {
	if cfg.Endpoint == "" || cfg.ClientID == "" || cfg.Assertion == nil || cfg.Issuer == "" {
		return nil, errors.New("oauth: introspector needs Endpoint, ClientID, Assertion and Issuer")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Introspector{cfg: cfg, cache: map[[32]byte]cachedIntrospection{}}, nil
}

// Introspect returns the server's answer about token.
func (in *Introspector) Introspect(ctx context.Context, token string) (*IntrospectionResponse, error) {
	key := sha256.Sum256([]byte(token))
	now := in.cfg.Now()
	in.mu.Lock()
	if c, ok := in.cache[key]; ok && now.Before(c.until) {
		in.mu.Unlock()
		return c.resp, nil
	}
	in.mu.Unlock()

	assertion, err := in.cfg.Assertion(ctx, in.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oauth: introspection client assertion: %w", err)
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}, "client_id": {in.cfg.ClientID},
		"client_assertion_type": {AssertionJWTSPIFFE}, "client_assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.Endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth: introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := in.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth: introspection: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil || len(body) > maxTokenResponse {
		return nil, errors.New("oauth: introspection response unreadable or too large")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oauth: introspection endpoint answered %d", resp.StatusCode)
	}
	var ir IntrospectionResponse
	if err := json.Unmarshal(body, &ir); err != nil {
		return nil, errors.New("oauth: introspection response is not valid JSON")
	}
	if ir.Active {
		until := now.Add(in.cfg.CacheTTL)
		if ir.ExpiresAt != 0 && time.Unix(ir.ExpiresAt, 0).Before(until) {
			until = time.Unix(ir.ExpiresAt, 0)
		}
		in.mu.Lock()
		if len(in.cache) > 10000 {
			clear(in.cache)
		}
		in.cache[key] = cachedIntrospection{resp: &ir, until: until}
		in.mu.Unlock()
	}
	return &ir, nil
}
