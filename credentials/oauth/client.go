package oauth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// ClientID is sent with every request, unless Identify names another
	// client_id for the server. Required unless Identify is set.
	ClientID string
	// Assertion authenticates the client (and, in token exchange, is the
	// actor token unless ActorToken is set). Required.
	Assertion AssertionSource
	// Identify, when set, says how the client is known at an
	// authorization server, the first time a request goes there: its
	// client_id, its assertion source (nil: Assertion) and its
	// client_assertion_type (empty: as AssertionType says). The answer is
	// kept per issuer for the Client's life, or until the server refuses
	// it ([ClientIdentity.Rejected]); an error is not kept. Nil means
	// ClientID, Assertion and AssertionType at every server.
	Identify func(ctx context.Context, md *ServerMetadata) (*ClientIdentity, error)
	// ActorToken is the actor_token source of token exchange (RFC 8693
	// §2.1): the workload's own credential (for an agent, its JWT-SVID),
	// whatever the client authenticates with. Nil means Assertion.
	ActorToken AssertionSource
	// AssertionType is the client_assertion_type. Empty means by the
	// server's metadata: jwt-spiffe (OAuth SPIFFE client authentication)
	// unless the server lists private_key_jwt and not spiffe_jwt among its
	// token_endpoint_auth_methods_supported, then jwt-bearer (RFC 7523
	// §2.2) with the same assertion.
	AssertionType string
	// DPoPKeys, when set, are the client's DPoP key pairs: a token is
	// bound to one of them (RFC 9449 §5) whenever the server advertises
	// dpop_signing_alg_values_supported with an algorithm of
	// [dpop.ClientAlgorithms] (ES256 first) and the request does not ask
	// for a bearer token; every token request to such a server carries a
	// proof. Nil means bearer tokens only.
	DPoPKeys *dpop.Keys
	// DPoPKey is a single key instead of DPoPKeys (dpop.KeysFrom): used
	// with servers that list its algorithm. Set one or neither.
	DPoPKey crypto.Signer
	// HTTPClient posts to token endpoints; nil means a client with a 10 s
	// timeout that follows no redirects.
	HTTPClient *http.Client
	// ExpiryMargin: a cached token is renewed this long before it
	// expires; default 30 s.
	ExpiryMargin time.Duration
	Now          func() time.Time
	// Logger receives a warning when a server answers a DPoP token
	// request with a bearer token, and debug records; nil means silent.
	// Tokens are never logged.
	Logger *slog.Logger
	// OnCache, when set, is told of every [Client.Token] call whether
	// the cache answered it (hit) or a token had to be acquired or
	// waited for (miss). It must not block.
	OnCache func(hit bool)
}

// ClientIdentity is how the client is known at one authorization server
// (see [ClientConfig.Identify]).
type ClientIdentity struct {
	// ClientID is the client_id sent there. Required.
	ClientID string
	// Assertion authenticates the client there: for private_key_jwt, an
	// RFC 7523 §3 assertion with iss and sub the ClientID. Nil means
	// ClientConfig.Assertion.
	Assertion AssertionSource
	// AssertionType is the client_assertion_type. Empty means
	// ClientConfig.AssertionType, else by the server's metadata.
	AssertionType string
	// Rejected, when set, is asked for a replacement when the server
	// answers a token request with invalid_client (RFC 6749 §5.2): the
	// request is then sent once more as the identity it returns, which
	// is kept instead of this one. An identity the server may have
	// forgotten (a dynamically registered client) sets it; nil means a
	// refusal is final.
	Rejected func(ctx context.Context) (*ClientIdentity, error)
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
	// for that subject, with the client's own credential as actor_token
	// (ClientConfig.ActorToken, else its Assertion); otherwise
	// client_credentials.
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
	// GrantAssertion, when set, asks for the JWT bearer grant (RFC 7523
	// §2.1) with the authorization grant it returns when a token has to
	// be acquired: the second step of identity chaining, with
	// [Client.IDJAGSource] as the source. SubjectKey then stands for the
	// subject in the cache, as for SubjectTokenSource; SubjectToken and
	// SubjectTokenSource must be empty. The client authenticates with its
	// own assertion as for any request.
	GrantAssertion GrantAssertionSource
	// Subject is who SubjectToken names (its sub), so that
	// [Client.ForgetSubject] can drop that user's tokens. It is not sent.
	Subject string
	// Bearer asks for a bearer token even from a server that advertises
	// DPoP: the token goes to a resource that does not take DPoP-bound
	// tokens, or is itself a subject token for a later exchange (an
	// authorization server refuses a sender-constrained subject_token).
	Bearer bool
	// DPoPAlgs, when not empty, are the proof algorithms the resource
	// accepts (its metadata's dpop_signing_alg_values_supported, or the
	// algs of its DPoP challenge): the key is chosen among those the
	// server lists and these; with none in common the token is bearer.
	DPoPAlgs []string
}

// Token is an acquired access token. It is not an oauth2.Token: it
// carries the scopes granted and, for a DPoP token, the key it is bound
// to, and it has no refresh token (see the package doc).
type Token struct {
	AccessToken string
	// TokenType is Bearer or DPoP.
	TokenType string
	ExpiresAt time.Time
	Scopes    []string
	// DPoPKey is the key a DPoP token is bound to (its cnf.jkt): every
	// request made with the token carries a proof signed with it (RFC
	// 9449 §7). Nil for a bearer token. It is the client's own key, held
	// in memory; it is never serialized.
	DPoPKey crypto.Signer
}

// Client acquires tokens on the client's own authority or for a subject,
// and caches them by (issuer, resource, scope, subject) with one request
// in flight per key.
type Client struct {
	cfg  ClientConfig
	log  *slog.Logger
	keys *dpop.Keys
	// nonces are the authorization servers' last DPoP-Nonce, by origin.
	nonces dpop.NonceCache

	// own is the identity of ClientConfig's ClientID, Assertion and
	// AssertionType; ids are the identities Identify gave, by issuer,
	// resolved one at a time (idSem).
	own   ClientIdentity
	idSem chan struct{}
	ids   map[string]*ClientIdentity

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
	if (cfg.ClientID == "" && cfg.Identify == nil) || cfg.Assertion == nil {
		return nil, errors.New("oauth: client needs a ClientID (or Identify) and an Assertion source")
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
	c := &Client{cfg: cfg, keys: cfg.DPoPKeys, log: cfg.Logger, cache: map[string]cached{}, inflight: map[string]*call{},
		forgotten: map[string]uint64{}, idSem: make(chan struct{}, 1), ids: map[string]*ClientIdentity{},
		own: ClientIdentity{ClientID: cfg.ClientID, Assertion: cfg.Assertion, AssertionType: cfg.AssertionType}}
	if cfg.DPoPKey != nil {
		if cfg.DPoPKeys != nil {
			return nil, errors.New("oauth: set DPoPKeys or DPoPKey, not both")
		}
		keys, err := dpop.KeysFrom(cfg.DPoPKey)
		if err != nil {
			return nil, fmt.Errorf("oauth: DPoPKey: %w", err)
		}
		c.keys = keys
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
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
	// (another user, or a refreshed one) is another entry. The kinds
	// never meet: the key of a subject token source is marked, and so is
	// the key of a grant assertion source.
	subject := req.SubjectToken
	switch {
	case req.SubjectTokenSource != nil:
		subject = "source:" + req.SubjectKey
	case req.GrantAssertion != nil:
		subject = "grant:" + req.SubjectKey
	}
	binding := "dpop:" + strings.Join(req.DPoPAlgs, " ")
	if req.Bearer {
		binding = "bearer"
	}
	return strings.Join([]string{req.Server.Issuer, req.Resource, strings.Join(scopes, " "), subject, binding}, "\x00")
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
	if req.GrantAssertion != nil && (req.exchange() || req.SubjectKey == "") {
		return nil, errors.New("oauth: a grant assertion source needs a SubjectKey and no subject token")
	}
	key := cacheKey(req)
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && c.cfg.Now().Add(c.cfg.ExpiryMargin).Before(e.tok.ExpiresAt) {
		c.mu.Unlock()
		c.observeCache(true)
		return e.tok, nil
	}
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		c.observeCache(false)
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
	c.observeCache(false)

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
	id, err := c.identity(ctx, md)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	if err := c.authenticate(ctx, form, md, id); err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	if req.Resource != "" {
		form.Set("resource", req.Resource)
	}
	if len(req.Scopes) > 0 {
		form.Set("scope", FormatScope(req.Scopes))
	}
	key, err := c.dpopKey(ctx, req)
	if err != nil {
		return nil, err
	}
	switch {
	case req.GrantAssertion != nil:
		// The grant is not consumed by a use_dpop_nonce refusal (the
		// proof is checked first), so a retry presents it again.
		grant, err := req.GrantAssertion(ctx, md.Issuer, key)
		if err != nil {
			return nil, fmt.Errorf("oauth: grant assertion: %w", err)
		}
		form.Set("grant_type", GrantJWTBearer)
		form.Set("assertion", grant)
	case req.exchange():
		actor, err := c.actorToken()(ctx, md.Issuer)
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
	default:
		form.Set("grant_type", GrantClientCredentials)
	}
	nonceRetried, reidentified := false, false
	for {
		resp, err := c.post(ctx, md.TokenEndpoint, form, key)
		if err != nil {
			return nil, err
		}
		if resp.err != nil && resp.err.Code == CodeUseDPoPNonce && key != nil && resp.nonce != "" && !nonceRetried {
			// RFC 9449 §8: once more, with the nonce the server sent
			// (now in c.nonces). The assertions were consumed: mint
			// fresh ones for the retry.
			nonceRetried = true
			if err := c.refreshAssertions(ctx, form, md, id); err != nil {
				return nil, err
			}
			continue
		}
		if resp.err != nil && resp.err.Code == CodeInvalidClient && id.Rejected != nil && !reidentified {
			// The server no longer knows the client (a registration it
			// dropped): once more, as the identity that replaces it.
			reidentified = true
			if id, err = c.replaceIdentity(ctx, md, id, resp.err); err != nil {
				return nil, err
			}
			if err := c.refreshAssertions(ctx, form, md, id); err != nil {
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
		bound := strings.EqualFold(tr.TokenType, TokenTypeDPoP)
		switch {
		case bound && key == nil:
			return nil, fmt.Errorf("oauth: asked for a Bearer token, got token_type %q", tr.TokenType)
		case !bound && key != nil:
			// RFC 9449 §5: a server may issue a bearer token to a DPoP
			// request. The token is not bound, so it is used as what it
			// is, a bearer token (RFC 6750): sending it with the DPoP
			// scheme would only be refused.
			c.log.WarnContext(ctx, "oauth: DPoP token request answered with a bearer token; using it as a bearer token",
				"issuer", md.Issuer, "resource", req.Resource, "token_type", tr.TokenType)
			key = nil
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
		typ := TokenTypeBearer
		if bound {
			typ = TokenTypeDPoP
		}
		// A refresh token in the response is dropped: see the package
		// doc ("Renewal").
		return &Token{AccessToken: tr.AccessToken, TokenType: typ, ExpiresAt: exp, Scopes: scopes, DPoPKey: key}, nil
	}
}

// dpopKey is the key to bind req's token to, or nil for a bearer token:
// DPoP when the client has keys, the request does not ask for a bearer
// token, and the client, the server and (when it says) the resource have
// an algorithm in common.
func (c *Client) dpopKey(ctx context.Context, req TokenRequest) (crypto.Signer, error) {
	algs := req.Server.DPoPSigningAlgValuesSupported
	if c.keys == nil || req.Bearer || len(algs) == 0 {
		return nil, nil
	}
	if len(req.DPoPAlgs) > 0 {
		algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !slices.Contains(req.DPoPAlgs, a) })
	}
	key, _, err := c.keys.Key(algs)
	if err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	if key == nil {
		c.log.DebugContext(ctx, "oauth: no DPoP algorithm in common with the server; asking for a bearer token",
			"issuer", req.Server.Issuer, "server_algs", req.Server.DPoPSigningAlgValuesSupported, "resource_algs", req.DPoPAlgs)
	}
	return key, nil
}

// identity is how the client is known at the server md: its own
// identity, or the one Identify gave for md's issuer (asked for the
// first time a request goes there).
func (c *Client) identity(ctx context.Context, md *ServerMetadata) (*ClientIdentity, error) {
	if c.cfg.Identify == nil {
		return &c.own, nil
	}
	c.mu.Lock()
	id, ok := c.ids[md.Issuer]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	select {
	case c.idSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.idSem }()
	c.mu.Lock()
	id, ok = c.ids[md.Issuer]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	got, err := c.cfg.Identify(ctx, md)
	if err != nil {
		return nil, fmt.Errorf("oauth: client identity at %s: %w", md.Issuer, err)
	}
	if id, err = c.fill(got); err != nil {
		return nil, fmt.Errorf("oauth: client identity at %s: %w", md.Issuer, err)
	}
	c.mu.Lock()
	c.ids[md.Issuer] = id
	c.mu.Unlock()
	return id, nil
}

// replaceIdentity asks the identity id the server md refused (refusal)
// for its replacement, and keeps that for md's issuer.
func (c *Client) replaceIdentity(ctx context.Context, md *ServerMetadata, id *ClientIdentity, refusal *Error) (*ClientIdentity, error) {
	c.log.InfoContext(ctx, "oauth: the authorization server refused the client; replacing its identity",
		"issuer", md.Issuer, "client_id", id.ClientID)
	got, err := id.Rejected(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w; no replacement for client %q: %w", refusal, id.ClientID, err)
	}
	next, err := c.fill(got)
	if err != nil {
		return nil, fmt.Errorf("%w; the replacement for client %q: %w", refusal, id.ClientID, err)
	}
	c.mu.Lock()
	c.ids[md.Issuer] = next
	c.mu.Unlock()
	return next, nil
}

// fill checks an identity Identify or Rejected gave and returns a copy
// with the configured defaults in place of what it leaves empty.
func (c *Client) fill(id *ClientIdentity) (*ClientIdentity, error) {
	if id == nil || id.ClientID == "" {
		return nil, errors.New("no client_id")
	}
	out := *id
	if out.Assertion == nil {
		out.Assertion = c.cfg.Assertion
	}
	if out.AssertionType == "" {
		out.AssertionType = c.cfg.AssertionType
	}
	return &out, nil
}

// authenticate sets the client authentication of a request to the
// server md, as id: client_id and a fresh client assertion. Its error
// has no package prefix.
func (c *Client) authenticate(ctx context.Context, form url.Values, md *ServerMetadata, id *ClientIdentity) error {
	assertion, err := id.Assertion(ctx, md.Issuer)
	if err != nil {
		return fmt.Errorf("client assertion: %w", err)
	}
	form.Set("client_id", id.ClientID)
	form.Set("client_assertion_type", assertionType(md, id))
	form.Set("client_assertion", assertion)
	return nil
}

// actorToken is the source of token exchange's actor_token.
func (c *Client) actorToken() AssertionSource {
	if c.cfg.ActorToken != nil {
		return c.cfg.ActorToken
	}
	return c.cfg.Assertion
}

// assertionType is the client_assertion_type id sends to the server md.
func assertionType(md *ServerMetadata, id *ClientIdentity) string {
	if id.AssertionType != "" {
		return id.AssertionType
	}
	methods := md.TokenEndpointAuthMethodsSupported
	if slices.Contains(methods, AuthPrivateKeyJWT) && !slices.Contains(methods, AuthSPIFFEJWT) {
		return AssertionJWTBearer
	}
	return AssertionJWTSPIFFE
}

// refreshAssertions sets fresh assertions in form for a retry at the
// server md: the client authentication as id, and the actor token if
// there is one.
func (c *Client) refreshAssertions(ctx context.Context, form url.Values, md *ServerMetadata, id *ClientIdentity) error {
	if err := c.authenticate(ctx, form, md, id); err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	if form.Has("actor_token") {
		a, err := c.actorToken()(ctx, md.Issuer)
		if err != nil {
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

// post sends one token request; with key, it carries a DPoP proof with
// the server's last nonce (RFC 9449 §5, §8). A DPoP-Nonce in the answer
// is kept for the next proof.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, key crypto.Signer) (*tokenResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oauth: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if key != nil {
		proof, err := dpop.NewProof(ctx, key, dpop.ProofParams{Method: http.MethodPost, URL: endpoint,
			Nonce: c.nonces.Nonce(endpoint), Now: c.cfg.Now()})
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
	c.nonces.Remember(endpoint, out.nonce)
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
