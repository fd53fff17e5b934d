package oauth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// AssertionSource mints a fresh client assertion (for an agent, a
// JWT-SVID) whose sole audience is the authorization server's issuer.
type AssertionSource func(ctx context.Context, audience string) (string, error)

// ClientConfig configures a token Client.
type ClientConfig struct {
	// ClientID is sent with every request.
	ClientID string
	// Assertion authenticates the client (and, in token exchange, is the
	// actor token). Required.
	Assertion AssertionSource
	// AssertionType is the client_assertion_type. Empty means by the
	// server's metadata: jwt-spiffe (OAuth SPIFFE client authentication)
	// unless the server lists private_key_jwt and not spiffe_jwt among its
	// token_endpoint_auth_methods_supported, then jwt-bearer (RFC 7523
	// §2.2) with the same assertion.
	AssertionType string
	// DPoPKey, when set, binds tokens to this key where the server
	// advertises DPoP.
	DPoPKey crypto.Signer
	// HTTPClient posts to token endpoints; nil means a client with a 10 s
	// timeout that follows no redirects.
	HTTPClient *http.Client
	// ExpiryMargin: a cached token is renewed this long before it
	// expires; default 30 s.
	ExpiryMargin time.Duration
	Now          func() time.Time
}

// TokenRequest says which token is wanted.
type TokenRequest struct {
	// Server is the authorization server's metadata (from DiscoverServer).
	Server *ServerMetadata
	// Resource is the RFC 8707 resource indicator.
	Resource string
	// Scopes wanted: the minimum for the call.
	Scopes []string
	// SubjectToken, when set, asks for a token exchange (RFC 8693) acting
	// for that subject, with the client's own assertion as actor_token;
	// otherwise client_credentials.
	SubjectToken     string
	SubjectTokenType string
	// SubjectTokenSource, when set, also asks for a token exchange, with
	// the subject token it returns when a token has to be acquired (not
	// when one is cached). SubjectKey then stands for the subject in the
	// cache: a value that stays the same for as long as the source would
	// give an equivalent token (a hash of the user's token and the
	// delegation chain, never a token). SubjectToken must be empty.
	SubjectTokenSource func(ctx context.Context) (string, error)
	SubjectKey         string
	// Subject is who SubjectToken names (its sub), so that
	// [Client.ForgetSubject] can drop that user's tokens. It is not sent.
	Subject string
}

// Token is an acquired access token.
type Token struct {
	AccessToken string
	// TokenType is Bearer or DPoP.
	TokenType string
	ExpiresAt time.Time
	Scopes    []string
}

// Client acquires tokens on the client's own authority or for a subject,
// and caches them by (issuer, resource, scope, subject) with one request
// in flight per key.
type Client struct {
	cfg ClientConfig

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*call
	// epoch counts ForgetSubject calls; forgotten holds, per subject, the
	// epoch of the last one, so that a token whose request began before
	// it is not cached.
	epoch     uint64
	forgotten map[string]uint64
}

type cached struct {
	tok     *Token
	subject string
}

type call struct {
	done chan struct{}
	tok  *Token
	err  error
}

// NewClient checks cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.ClientID == "" || cfg.Assertion == nil {
		return nil, errors.New("oauth: client needs a ClientID and an Assertion source")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, cache: map[string]cached{}, inflight: map[string]*call{}, forgotten: map[string]uint64{}}, nil
}

// exchange reports whether req asks for a token exchange.
func (req TokenRequest) exchange() bool {
	return req.SubjectToken != "" || req.SubjectTokenSource != nil
}

func cacheKey(req TokenRequest) string {
	scopes := slices.Clone(req.Scopes)
	slices.Sort(scopes)
	// The subject token itself (or the key standing for the subject
	// token a source gives) is the key's subject part: a different token
	// (another user, or a refreshed one) is another entry. The two kinds
	// never meet: a source's key is marked.
	subject := req.SubjectToken
	if req.SubjectTokenSource != nil {
		subject = "source:" + req.SubjectKey
	}
	return strings.Join([]string{req.Server.Issuer, req.Resource, strings.Join(scopes, " "), subject}, "\x00")
}

// maxCached is the number of cached tokens above which expired ones are
// swept out before another is added.
const maxCached = 1024

// Token returns a cached token with more than ExpiryMargin left, or
// acquires one; concurrent callers for the same key share one request.
func (c *Client) Token(ctx context.Context, req TokenRequest) (*Token, error) {
	if req.Server == nil || req.Server.TokenEndpoint == "" {
		return nil, errors.New("oauth: token request without server metadata")
	}
	if req.SubjectTokenSource != nil && (req.SubjectToken != "" || req.SubjectKey == "") {
		return nil, errors.New("oauth: a subject token source needs a SubjectKey and no SubjectToken")
	}
	key := cacheKey(req)
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && c.cfg.Now().Add(c.cfg.ExpiryMargin).Before(e.tok.ExpiresAt) {
		c.mu.Unlock()
		return e.tok, nil
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.tok, cl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	began := c.epoch
	c.mu.Unlock()

	cl.tok, cl.err = c.acquire(ctx, req)
	c.mu.Lock()
	delete(c.inflight, key)
	if cl.err == nil && (req.Subject == "" || c.forgotten[req.Subject] <= began) {
		if len(c.cache) >= maxCached {
			c.sweep()
		}
		c.cache[key] = cached{tok: cl.tok, subject: req.Subject}
	}
	if len(c.inflight) == 0 {
		// No request began before the last ForgetSubject any more.
		clear(c.forgotten)
	}
	c.mu.Unlock()
	close(cl.done)
	return cl.tok, cl.err
}

// sweep drops the cached tokens too close to expiry to be handed out
// (subject tokens change, so their entries would otherwise pile up).
// c.mu is held.
func (c *Client) sweep() {
	limit := c.cfg.Now().Add(c.cfg.ExpiryMargin)
	for k, e := range c.cache {
		if !limit.Before(e.tok.ExpiresAt) {
			delete(c.cache, k)
		}
	}
}

// Forget drops a cached token (after the resource refused it).
func (c *Client) Forget(req TokenRequest) {
	c.mu.Lock()
	delete(c.cache, cacheKey(req))
	c.mu.Unlock()
}

// ForgetSubject drops every cached token acquired for subject (requests
// with that Subject), and keeps one being acquired now from being cached.
// It returns how many it dropped.
func (c *Client) ForgetSubject(subject string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.forgotten[subject] = c.epoch
	n := 0
	for k, e := range c.cache {
		if e.subject == subject {
			delete(c.cache, k)
			n++
		}
	}
	return n
}

func (c *Client) acquire(ctx context.Context, req TokenRequest) (*Token, error) {
	md := req.Server
	subject := req.SubjectToken
	if req.SubjectTokenSource != nil {
		var err error
		if subject, err = req.SubjectTokenSource(ctx); err != nil {
			return nil, fmt.Errorf("oauth: subject token: %w", err)
		}
		if subject == "" {
			return nil, errors.New("oauth: subject token: the source gave none")
		}
	}
	assertion, err := c.cfg.Assertion(ctx, md.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oauth: client assertion: %w", err)
	}
	form := url.Values{
		"client_id":             {c.cfg.ClientID},
		"client_assertion_type": {c.assertionType(md)},
		"client_assertion":      {assertion},
	}
	if req.Resource != "" {
		form.Set("resource", req.Resource)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", FormatScope(req.Scopes))
	}
	if req.exchange() {
		actor, err := c.cfg.Assertion(ctx, md.Issuer)
		if err != nil {
			return nil, fmt.Errorf("oauth: actor token: %w", err)
		}
		typ := req.SubjectTokenType
		if typ == "" {
			typ = TokenTypeAccessToken
		}
		form.Set("grant_type", GrantTokenExchange)
		form.Set("subject_token", subject)
		form.Set("subject_token_type", typ)
		form.Set("actor_token", actor)
		form.Set("actor_token_type", TokenTypeJWT)
		form.Set("requested_token_type", TokenTypeAccessToken)
	} else {
		form.Set("grant_type", GrantClientCredentials)
	}
	useDPoP := c.cfg.DPoPKey != nil && len(md.DPoPSigningAlgValuesSupported) > 0
	nonce := ""
	for attempt := 0; ; attempt++ {
		resp, err := c.post(ctx, md.TokenEndpoint, form, useDPoP, nonce)
		if err != nil {
			return nil, err
		}
		if resp.err != nil && resp.err.Code == CodeUseDPoPNonce && resp.nonce != "" && attempt == 0 {
			nonce = resp.nonce
			// The assertions were consumed: mint fresh ones for the retry.
			if err := c.refreshAssertions(ctx, form, md.Issuer); err != nil {
				return nil, err
			}
			continue
		}
		if resp.err != nil {
			return nil, resp.err
		}
		tr := resp.token
		if tr.AccessToken == "" || (tr.TokenType != TokenTypeBearer && !strings.EqualFold(tr.TokenType, TokenTypeDPoP)) {
			return nil, fmt.Errorf("oauth: token response without a usable access token (token_type %q)", tr.TokenType)
		}
		if useDPoP != strings.EqualFold(tr.TokenType, TokenTypeDPoP) {
			return nil, fmt.Errorf("oauth: asked for a %s token, got token_type %q", map[bool]string{true: "DPoP", false: "Bearer"}[useDPoP], tr.TokenType)
		}
		scopes, err := ParseScope(tr.Scope)
		if err != nil {
			return nil, fmt.Errorf("oauth: token response scope: %w", err)
		}
		if tr.Scope == "" {
			scopes = req.Scopes
		}
		exp := c.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		if tr.ExpiresIn <= 0 {
			exp = c.cfg.Now().Add(time.Minute)
		}
		return &Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, ExpiresAt: exp, Scopes: scopes}, nil
	}
}

// assertionType is the client_assertion_type to send to the server md.
func (c *Client) assertionType(md *ServerMetadata) string {
	if c.cfg.AssertionType != "" {
		return c.cfg.AssertionType
	}
	methods := md.TokenEndpointAuthMethodsSupported
	if slices.Contains(methods, AuthPrivateKeyJWT) && !slices.Contains(methods, AuthSPIFFEJWT) {
		return AssertionJWTBearer
	}
	return AssertionJWTSPIFFE
}

func (c *Client) refreshAssertions(ctx context.Context, form url.Values, issuer string) error {
	a, err := c.cfg.Assertion(ctx, issuer)
	if err != nil {
		return fmt.Errorf("oauth: client assertion: %w", err)
	}
	form.Set("client_assertion", a)
	if form.Has("actor_token") {
		if a, err = c.cfg.Assertion(ctx, issuer); err != nil {
			return fmt.Errorf("oauth: actor token: %w", err)
		}
		form.Set("actor_token", a)
	}
	return nil
}

type tokenResult struct {
	token *TokenResponse
	err   *Error
	nonce string
}

// maxTokenResponse caps a token endpoint response.
const maxTokenResponse = 64 << 10

func (c *Client) post(ctx context.Context, endpoint string, form url.Values, useDPoP bool, nonce string) (*tokenResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if useDPoP {
		proof, err := dpop.NewProof(ctx, c.cfg.DPoPKey, dpop.ProofParams{Method: http.MethodPost, URL: endpoint, Nonce: nonce, Now: c.cfg.Now()})
		if err != nil {
			return nil, fmt.Errorf("oauth: %w", err)
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauth: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return nil, fmt.Errorf("oauth: token endpoint: %w", err)
	}
	if len(body) > maxTokenResponse {
		return nil, fmt.Errorf("oauth: token endpoint response exceeds %d bytes", maxTokenResponse)
	}
	out := &tokenResult{nonce: resp.Header.Get("DPoP-Nonce")}
	if resp.StatusCode == http.StatusOK {
		var tr TokenResponse
		if err := json.Unmarshal(body, &tr); err != nil {
			return nil, fmt.Errorf("oauth: token endpoint returned malformed JSON")
		}
		out.token = &tr
		return out, nil
	}
	var oe Error
	if err := json.Unmarshal(body, &oe); err != nil || oe.Code == "" {
		return nil, fmt.Errorf("oauth: token endpoint answered %d without an OAuth error", resp.StatusCode)
	}
	oe.Status = resp.StatusCode
	oe.Description = cleanDescription(oe.Description)
	out.err = &oe
	return out, nil
}
