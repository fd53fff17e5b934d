package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// Caller is who a verified access token speaks for.
type Caller struct {
	Subject string
	// ClientID is the token's client_id or, without one, its azp.
	ClientID string
	// Issuer is the accepted issuer that vouched for the token: whose
	// keys verified it, or whose introspection said it is active.
	Issuer               string
	TokenID              string
	Scopes               []string
	Audience             []string
	Actor                *oauth.Actor
	AuthTime             time.Time
	ExpiresAt            time.Time
	JKT                  string
	AuthorizationDetails json.RawMessage
}

// HasScope reports whether the token carries scope s.
func (c *Caller) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// Config configures a Verifier.
type Config struct {
	// Resource is this resource's identifier: tokens must name it in aud
	// (exact string equality). Required.
	Resource string
	// MetadataURL is where this resource's RFC 9728 metadata is served;
	// it goes into every challenge. Required.
	MetadataURL string
	// Issuer is the authorization server whose tokens are accepted (the
	// host's embedded one, for its own resources). It is the first of the
	// accepted issuers, and Keys, Introspect, Revoked and SubjectRevoked
	// are its settings. Required unless Issuers is set.
	Issuer string
	// Keys finds Issuer's signing keys by kid. Required with Issuer.
	Keys jose.KeyFunc
	// Introspect, when set, checks tokens that are not JWTs (opaque
	// tokens) by RFC 7662 introspection at Issuer; see
	// oauth.Introspector. Without it (here and in Issuers) opaque tokens
	// are refused.
	Introspect func(ctx context.Context, token string) (*oauth.IntrospectionResponse, error)
	// Issuers are further authorization servers whose tokens are
	// accepted (an organisation's Keycloak, Okta, Entra ID or Auth0),
	// after Issuer and in this order; see [Issuer]. Every issuer
	// identifier must be distinct.
	Issuers []Issuer
	// Revoked, when set, is asked about the jti of every token of Issuer.
	Revoked func(ctx context.Context, jti string) (bool, error)
	// CheckCaller, when set, is called with every request whose token
	// verified and the caller it names, for what the resource requires
	// beyond the token (a workload proof by the token's client, say): an
	// error refuses the request, a *Challenge as it is, any other as 401
	// invalid_token with the error's text.
	CheckCaller func(r *http.Request, c *Caller) error
	// SubjectRevoked, when set, is asked about every party a token of
	// Issuer names (subject, client, actors:
	// oauth.AccessTokenClaims.Parties) and its issue time: a party's
	// credentials can be revoked all at once (a signed-out user, a
	// changed credential, a quarantined agent).
	SubjectRevoked func(ctx context.Context, subject string, issuedAt time.Time) (bool, error)
	// ScopesSupported are this resource's scopes (RFC 9728
	// scopes_supported). A step-up challenge (StepUp) keeps the caller's
	// scopes that are among them.
	ScopesSupported []string
	// ChallengeScopes go into the scope of a 401 challenge: what a client
	// without a token asks for first (MCP 2025-11-25 scope selection takes
	// the challenge's scope before scopes_supported), so the least that
	// lets a client start; more comes by step-up. Nil means
	// ScopesSupported; empty means a challenge without scope.
	ChallengeScopes []string
	// DPoP verifies proofs for DPoP-bound tokens. Nil refuses DPoP-bound
	// tokens (they cannot be used without a proof). When it requires
	// server nonces, a use_dpop_nonce challenge carries a fresh one in
	// DPoP-Nonce (RFC 9449 §9).
	DPoP *dpop.Verifier
	// Leeway is the clock skew allowed on exp; zero allows none.
	Leeway time.Duration
	// CacheSize is how many verified JWT access tokens are remembered
	// (by SHA-256), so that a token presented again skips the signature
	// check until it expires; revocation, binding and scope are still
	// checked on every request. Zero means DefaultCacheSize; negative
	// turns the cache off.
	CacheSize int
	Now       func() time.Time
	Logger    *slog.Logger
}

// DefaultCacheSize is the default Config.CacheSize.
const DefaultCacheSize = 4096

// Verifier authenticates requests to one protected resource.
type Verifier struct {
	cfg Config
	// challengeScope is Config.ChallengeScopes as a scope string.
	challengeScope string

	mu    sync.Mutex
	cache map[[sha256.Size]byte]*verified
}

// verified is a JWT access token that passed every check of verifyJWT.
type verified struct {
	claims oauth.AccessTokenClaims
	scopes []string
}

// New checks cfg.
func New(cfg Config) (*Verifier, error) {
	switch {
	case cfg.Resource == "":
		return nil, errors.New("resource: Resource is required")
	case cfg.MetadataURL == "":
		return nil, errors.New("resource: MetadataURL is required")
	case cfg.Issuer == "" && len(cfg.Issuers) == 0:
		return nil, errors.New("resource: Issuer (or Issuers) is required")
	case cfg.Issuer != "" && cfg.Keys == nil:
		return nil, errors.New("resource: Keys is required")
	case cfg.Issuer == "" && (cfg.Keys != nil || cfg.Introspect != nil || cfg.Revoked != nil || cfg.SubjectRevoked != nil):
		return nil, errors.New("resource: Keys, Introspect, Revoked and SubjectRevoked are Issuer's; without Issuer, set them in Issuers")
	}
	issuers, err := checkIssuers(cfg.Issuer, cfg.Issuers)
	if err != nil {
		return nil, err
	}
	cfg.Issuers = issuers
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.ChallengeScopes == nil {
		cfg.ChallengeScopes = cfg.ScopesSupported
	}
	return &Verifier{cfg: cfg, challengeScope: strings.Join(cfg.ChallengeScopes, " "),
		cache: map[[sha256.Size]byte]*verified{}}, nil
}

// Resource is the resource identifier.
func (v *Verifier) Resource() string { return v.cfg.Resource }

// MetadataURL is the RFC 9728 metadata URL.
func (v *Verifier) MetadataURL() string { return v.cfg.MetadataURL }

// Challenge is a failed authentication or authorization, written as a
// WWW-Authenticate challenge (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).
type Challenge struct {
	// Status is 401, 403 or 400.
	Status int
	// Scheme is "Bearer" or "DPoP".
	Scheme string
	// Code is the error code (invalid_request, invalid_token,
	// insufficient_scope, invalid_dpop_proof, use_dpop_nonce); empty when
	// the request carried no credentials (RFC 6750 §3.1).
	Code        string
	Description string
	// Scope is the scope to ask for.
	Scope            string
	ResourceMetadata string
	// DPoPAlgs, when set, adds a DPoP challenge next to the Bearer one.
	DPoPAlgs []string
	// DPoPNonce is sent in a DPoP-Nonce header.
	DPoPNonce string
}

// Error implements error.
func (c *Challenge) Error() string {
	if c.Code == "" {
		return "resource: no access token"
	}
	return "resource: " + c.Code + ": " + c.Description
}

func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `/`)
	return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
}

// header renders one challenge.
func (c *Challenge) header(scheme string, withError bool) string {
	var parts []string
	if withError && c.Code != "" {
		parts = append(parts, "error="+quote(c.Code))
		if c.Description != "" {
			parts = append(parts, "error_description="+quote(c.Description))
		}
	}
	if c.Scope != "" {
		parts = append(parts, "scope="+quote(c.Scope))
	}
	if c.ResourceMetadata != "" {
		parts = append(parts, "resource_metadata="+quote(c.ResourceMetadata))
	}
	if scheme == "DPoP" && len(c.DPoPAlgs) > 0 {
		parts = append(parts, "algs="+quote(strings.Join(c.DPoPAlgs, " ")))
	}
	if len(parts) == 0 {
		return scheme
	}
	return scheme + " " + strings.Join(parts, ", ")
}

// Write sends the challenge: WWW-Authenticate (a Bearer and, when DPoP is
// supported, a DPoP challenge; the error goes in the scheme the client
// used), a DPoP-Nonce when set, and a JSON error body.
func (c *Challenge) Write(w http.ResponseWriter) {
	h := w.Header()
	scheme := c.Scheme
	if scheme == "" {
		scheme = "Bearer"
	}
	h.Add("WWW-Authenticate", c.header("Bearer", scheme == "Bearer"))
	if len(c.DPoPAlgs) > 0 {
		h.Add("WWW-Authenticate", c.header("DPoP", scheme == "DPoP"))
	}
	if c.DPoPNonce != "" {
		h.Set("DPoP-Nonce", c.DPoPNonce)
	}
	status := c.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if c.Code == "" {
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		return
	}
	oauth.WriteJSON(w, status, &oauth.Error{Code: c.Code, Description: c.Description})
}

func (v *Verifier) challenge(status int, scheme, code, format string, args ...any) *Challenge {
	c := &Challenge{Status: status, Scheme: scheme, Code: code, Description: fmt.Sprintf(format, args...),
		Scope: v.challengeScope, ResourceMetadata: v.cfg.MetadataURL}
	c.DPoPAlgs = v.dpopAlgs()
	return c
}

// InsufficientScope is the 403 step-up challenge naming the scopes the
// request needs (RFC 6750 §3.1, MCP step-up).
func (v *Verifier) InsufficientScope(scopes ...string) *Challenge {
	c := v.challenge(http.StatusForbidden, "Bearer", oauth.CodeInsufficientScope, "the request needs scope %s", strings.Join(scopes, " "))
	c.Scope = strings.Join(scopes, " ")
	return c
}

// StepUp is the 403 insufficient_scope challenge for a caller whose token
// lacks needed. Its scope names the needed scopes together with the
// caller's scopes of this resource (those in Config.ScopesSupported), so
// that a client that authorizes again with exactly the challenged scope
// keeps what it had: the recommended approach of MCP 2025-11-25
// "Runtime Insufficient Scope Errors" (SPECS.md §3.1). The description
// names only the needed scopes.
//
// https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#runtime-insufficient-scope-errors
func (v *Verifier) StepUp(caller *Caller, needed ...string) *Challenge {
	c := v.InsufficientScope(needed...)
	var scopes []string
	for _, sc := range v.cfg.ScopesSupported {
		if slices.Contains(needed, sc) || (caller != nil && caller.HasScope(sc)) {
			scopes = append(scopes, sc)
		}
	}
	for _, sc := range needed {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	c.Scope = strings.Join(scopes, " ")
	return c
}

// Authenticate verifies the request's access token. Errors are
// *Challenge.
func (v *Verifier) Authenticate(r *http.Request) (*Caller, error) {
	c, err := v.authenticate(r)
	if err != nil || v.cfg.CheckCaller == nil {
		return c, err
	}
	if err := v.cfg.CheckCaller(r, c); err != nil {
		var ch *Challenge
		if !errors.As(err, &ch) {
			ch = &Challenge{Status: http.StatusUnauthorized, Code: oauth.CodeInvalidToken, Description: err.Error()}
		}
		if ch.ResourceMetadata == "" {
			ch.ResourceMetadata = v.cfg.MetadataURL
		}
		return nil, ch
	}
	return c, nil
}

func (v *Verifier) authenticate(r *http.Request) (*Caller, error) {
	ctx := r.Context()
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		if r.URL.Query().Has("access_token") {
			return nil, v.challenge(http.StatusBadRequest, "Bearer", oauth.CodeInvalidRequest, "access tokens are accepted in the Authorization header only")
		}
		return nil, &Challenge{Status: http.StatusUnauthorized, Scope: v.challengeScope,
			ResourceMetadata: v.cfg.MetadataURL, DPoPAlgs: v.dpopAlgs()}
	}
	if len(values) > 1 {
		return nil, v.challenge(http.StatusBadRequest, "Bearer", oauth.CodeInvalidRequest, "more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		scheme = "Bearer"
	case strings.EqualFold(scheme, "DPoP"):
		scheme = "DPoP"
	default:
		return nil, v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidRequest, "unsupported authorization scheme")
	}
	if token == "" || strings.ContainsAny(token, " \t") {
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "malformed access token")
	}
	if strings.Count(token, ".") != 2 {
		if ins := v.introspecting(); len(ins) > 0 {
			return v.introspect(r, scheme, token, ins)
		}
	}
	vt, is, err := v.verifyJWT(ctx, token)
	if err != nil {
		var ch *Challenge
		switch {
		case errors.As(err, &ch):
			ch.Scheme = scheme
			return nil, ch
		case errors.Is(err, errIntrospect):
			return v.introspect(r, scheme, token, []Issuer{is})
		case errors.Is(err, oauth.ErrKeysUnavailable):
			v.cfg.Logger.ErrorContext(ctx, "signing keys unavailable", "issuer", is.Issuer, "err", err)
			return nil, &Challenge{Status: http.StatusServiceUnavailable, Code: oauth.CodeTemporarilyUnavailable,
				Description: "the token could not be checked", ResourceMetadata: v.cfg.MetadataURL}
		}
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token is invalid: %s", reason(err))
	}
	c := vt.claims
	// A copy: the cached token's scopes stay as verified whatever a
	// handler does with the caller's.
	scopes := slices.Clone(vt.scopes)
	if is.Revoked != nil || is.SubjectRevoked != nil {
		revoked, err := isRevoked(ctx, is, &c)
		if err != nil {
			v.cfg.Logger.ErrorContext(ctx, "revocation check failed", "issuer", is.Issuer, "err", err)
			return nil, &Challenge{Status: http.StatusServiceUnavailable, Code: oauth.CodeTemporarilyUnavailable,
				Description: "the token could not be checked", ResourceMetadata: v.cfg.MetadataURL}
		}
		if revoked {
			return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token was revoked")
		}
	}
	jkt := ""
	if c.Confirmation != nil {
		jkt = c.Confirmation.JKT
		if c.Confirmation.X5TS256 != "" {
			if err := checkCertBinding(r, c.Confirmation.X5TS256); err != nil {
				return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "%s", err.Error())
			}
		}
	}
	if err := v.checkDPoP(r, scheme, token, jkt); err != nil {
		return nil, err
	}
	caller := &Caller{Subject: c.Subject, ClientID: c.ClientID, Issuer: is.Issuer, TokenID: c.ID, Scopes: scopes,
		Audience: c.Audience, Actor: c.Actor, ExpiresAt: time.Unix(c.ExpiresAt, 0), JKT: jkt,
		AuthorizationDetails: c.AuthorizationDetails}
	if c.AuthTime > 0 {
		caller.AuthTime = time.Unix(c.AuthTime, 0)
	}
	return caller, nil
}

func (v *Verifier) dpopAlgs() []string {
	if v.cfg.DPoP == nil {
		return nil
	}
	var out []string
	for _, a := range v.cfg.DPoP.Algorithms() {
		out = append(out, string(a))
	}
	return out
}

// checkDPoP enforces RFC 9449 §7: a DPoP-bound token only with the DPoP
// scheme and a valid proof for this request and token; an unbound token
// never with the DPoP scheme.
func (v *Verifier) checkDPoP(r *http.Request, scheme, token, jkt string) error {
	proofs := r.Header.Values("DPoP")
	switch {
	case jkt == "" && scheme == "DPoP":
		return v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token is not DPoP-bound")
	case jkt == "":
		return nil
	case scheme != "DPoP":
		return v.challenge(http.StatusUnauthorized, "DPoP", oauth.CodeInvalidToken, "a DPoP-bound token must be sent with the DPoP scheme and a proof")
	case v.cfg.DPoP == nil:
		return v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "DPoP-bound tokens are not accepted here")
	case len(proofs) != 1:
		return v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidDPoPProof, "exactly one DPoP proof is required")
	}
	u := requestURL(r)
	if _, err := v.cfg.DPoP.Verify(r.Context(), proofs[0], dpop.Request{Method: r.Method, URL: u, AccessToken: token, JKT: jkt}); err != nil {
		code := dpop.ErrorCode(err)
		if code == "" {
			v.cfg.Logger.Error("dpop verification failed", "err", err)
			return &Challenge{Status: http.StatusServiceUnavailable, Code: oauth.CodeTemporarilyUnavailable,
				Description: "the proof could not be checked", ResourceMetadata: v.cfg.MetadataURL}
		}
		ch := v.challenge(http.StatusUnauthorized, scheme, code, "%s", strings.TrimPrefix(err.Error(), "dpop: "))
		if code == dpop.CodeUseNonce {
			// RFC 9449 §9: the refusal carries the nonce to use.
			n, nerr := v.cfg.DPoP.Nonce(r.Context())
			if nerr != nil {
				v.cfg.Logger.Error("dpop nonce failed", "err", nerr)
				return &Challenge{Status: http.StatusServiceUnavailable, Code: oauth.CodeTemporarilyUnavailable,
					Description: "the proof could not be checked", ResourceMetadata: v.cfg.MetadataURL}
			}
			ch.DPoPNonce = n
		}
		return ch
	}
	return nil
}

// requestURL rebuilds the URL the client addressed, from the resource's
// own origin (never from request headers a client controls).
func requestURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
}

func reason(err error) string {
	for _, e := range []struct {
		err error
		r   string
	}{
		{jose.ErrExpired, "expired"}, {jose.ErrWrongType, "not an access token (typ)"}, {jose.ErrAudience, "issued for another resource"},
		{jose.ErrIssuer, "issued by another authorization server"}, {jose.ErrInvalidSignature, "bad signature"},
		{jose.ErrUnknownKey, "unknown signing key"}, {jose.ErrAlgorithm, "algorithm not allowed"}, {jose.ErrNotYetValid, "not yet valid"},
		{jose.ErrIssuedInFuture, "issued in the future"}, {jose.ErrMissingClaim, "lacks a required claim"},
	} {
		if errors.Is(err, e.err) {
			return e.r
		}
	}
	return "malformed"
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller in ctx.
func CallerFrom(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok
}

// Middleware authenticates every request: a failure is answered with its
// challenge; otherwise next runs with the Caller in the context and with
// the Authorization and DPoP headers removed, so nothing downstream can
// pass the token on.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := v.Authenticate(r)
		if err != nil {
			var ch *Challenge
			if !errors.As(err, &ch) {
				ch = &Challenge{Status: http.StatusInternalServerError, Code: oauth.CodeServerError}
			}
			ch.Write(w)
			return
		}
		r2 := r.Clone(WithCaller(r.Context(), caller))
		r2.Header.Del("Authorization")
		r2.Header.Del("DPoP")
		next.ServeHTTP(w, r2)
	})
}

// MetadataHandler serves RFC 9728 protected resource metadata.
func MetadataHandler(md oauth.ResourceMetadata) http.Handler {
	body, err := json.Marshal(md)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			oauth.WriteError(w, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(append(body, '\n'))
	})
}

// MetadataPath is where RFC 9728 §3.1 puts the metadata of a resource
// whose identifier has path p: /.well-known/oauth-protected-resource + p.
func MetadataPath(resourceURL string) (string, error) {
	u, err := url.Parse(resourceURL)
	if err != nil || !u.IsAbs() || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("resource: %q is not a resource identifier", resourceURL)
	}
	return "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// introspect authenticates an opaque token by RFC 7662 introspection at
// issuers, in order: the first that says the token is active decides. The
// token must then be from that issuer (when the response names one), for
// this resource, unexpired, and not sender-constrained (a bound opaque
// token would need its binding checked, which introspection responses do
// not always carry). An issuer that cannot be asked is skipped; if none
// says active and one could not be asked, the answer is 503.
func (v *Verifier) introspect(r *http.Request, scheme, token string, issuers []Issuer) (*Caller, error) {
	ctx := r.Context()
	failed := false
	for _, is := range issuers {
		ir, err := is.Introspect(ctx, token)
		if err != nil {
			v.cfg.Logger.ErrorContext(ctx, "token introspection failed", "issuer", is.Issuer, "err", err)
			failed = true
			continue
		}
		if ir != nil && ir.Active {
			return v.introspected(scheme, is, ir)
		}
	}
	if failed {
		return nil, &Challenge{Status: http.StatusServiceUnavailable, Code: oauth.CodeTemporarilyUnavailable,
			Description: "the token could not be checked", ResourceMetadata: v.cfg.MetadataURL}
	}
	return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token is not active")
}

// introspected checks the active introspection response ir of issuer is.
func (v *Verifier) introspected(scheme string, is Issuer, ir *oauth.IntrospectionResponse) (*Caller, error) {
	now := v.cfg.Now()
	switch {
	case ir.Issuer != "" && ir.Issuer != is.Issuer:
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token was issued by another authorization server")
	case !is.audience(v.cfg.Resource, ir.Audience):
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token was issued for another resource")
	case ir.ExpiresAt != 0 && !now.Before(time.Unix(ir.ExpiresAt, 0).Add(v.cfg.Leeway)):
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token expired")
	case ir.Confirmation != nil || scheme == "DPoP":
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "sender-constrained opaque tokens are not accepted here")
	case ir.Subject == "" || ir.ClientID == "":
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the introspection response lacks sub or client_id")
	}
	scopes, err := oauth.ParseScope(ir.Scope)
	if err != nil {
		return nil, v.challenge(http.StatusUnauthorized, scheme, oauth.CodeInvalidToken, "the access token's scope is malformed")
	}
	c := &Caller{Subject: ir.Subject, ClientID: ir.ClientID, Issuer: is.Issuer, TokenID: ir.ID, Scopes: scopes,
		Audience: ir.Audience, Actor: ir.Actor, AuthorizationDetails: ir.AuthorizationDetails}
	if ir.ExpiresAt != 0 {
		c.ExpiresAt = time.Unix(ir.ExpiresAt, 0)
	}
	return c, nil
}

// isRevoked asks issuer is's revocation hooks about c.
func isRevoked(ctx context.Context, is Issuer, c *oauth.AccessTokenClaims) (bool, error) {
	if is.Revoked != nil {
		if r, err := is.Revoked(ctx, c.ID); err != nil || r {
			return r, err
		}
	}
	if is.SubjectRevoked != nil {
		// Any party the token names: the user, the client, an actor
		// (a quarantined agent ends the tokens delegated to it).
		for _, p := range c.Parties() {
			if r, err := is.SubjectRevoked(ctx, p, time.Unix(c.IssuedAt, 0)); err != nil || r {
				return r, err
			}
		}
	}
	return false, nil
}

// errIntrospect says that a JWT names an issuer that has no keys, only
// introspection.
var errIntrospect = errors.New("resource: the issuer is asked by introspection")

// verifyJWT finds the issuer a JWT access token names (its iss, read
// before verification and used only to pick the keys) and checks the
// token with that issuer's keys and settings (see checkJWT), or finds it
// among the tokens verified before; a cached token is used only until its
// exp. A token naming an issuer that has only introspection returns that
// issuer and errIntrospect.
func (v *Verifier) verifyJWT(ctx context.Context, token string) (*verified, Issuer, error) {
	key := sha256.Sum256([]byte(token))
	if v.cfg.CacheSize > 0 {
		v.mu.Lock()
		e, ok := v.cache[key]
		v.mu.Unlock()
		if ok {
			is, known := v.lookup(e.claims.Issuer)
			if known && v.cfg.Now().Before(time.Unix(e.claims.ExpiresAt, 0).Add(v.cfg.Leeway)) {
				cc := *e
				return &cc, is, nil
			}
			v.mu.Lock()
			delete(v.cache, key)
			v.mu.Unlock()
		}
	}
	iss, err := peekIssuer(token)
	if err != nil {
		return nil, Issuer{}, err
	}
	is, ok := v.lookup(iss)
	if !ok {
		// Name nothing: neither the issuer in the token nor those
		// accepted here.
		return nil, Issuer{}, v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken,
			"the access token was issued by an authorization server this resource does not accept")
	}
	if is.Keys == nil {
		return nil, is, errIntrospect
	}
	vt, err := v.checkJWT(ctx, token, is)
	if err != nil {
		return nil, is, err
	}
	if v.cfg.CacheSize > 0 {
		v.mu.Lock()
		if len(v.cache) >= v.cfg.CacheSize {
			// Drop expired entries, then, if still full, any one.
			now := v.cfg.Now()
			for k, e := range v.cache {
				if !now.Before(time.Unix(e.claims.ExpiresAt, 0)) {
					delete(v.cache, k)
				}
			}
			for k := range v.cache {
				if len(v.cache) < v.cfg.CacheSize {
					break
				}
				delete(v.cache, k)
			}
		}
		cc := *vt
		v.cache[key] = &cc
		v.mu.Unlock()
	}
	return vt, is, nil
}

// checkJWT checks a JWT access token of issuer is as RFC 9068 §4 requires:
// typ at+jwt (or JWT where is allows it), a signature by one of is's keys,
// iss equal to is, aud naming this resource (or one of is's further
// audiences), exp, sub, client_id (or azp) and jti; then reads its scopes
// from is's scope claim.
func (v *Verifier) checkJWT(ctx context.Context, token string, is Issuer) (*verified, error) {
	types := []jose.Typ{jose.TypAccessToken}
	if is.AcceptJWTTyp {
		types = append(types, jose.TypJWT)
	}
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:           types,
		AllowMissingTyp: is.AcceptJWTTyp,
		Keys:            is.Keys,
		RequireKID:      true,
		Issuer:          is.Issuer,
		RequireSubject:  true,
		Now:             v.cfg.Now,
		Leeway:          v.cfg.Leeway,
	})
	if err != nil {
		return nil, err
	}
	if !is.audience(v.cfg.Resource, t.Audience) {
		return nil, fmt.Errorf("%w: aud names neither this resource nor an audience accepted from its issuer", jose.ErrAudience)
	}
	var c tokenClaims
	if err := t.Decode(&c); err != nil {
		return nil, v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "the access token's claims are malformed")
	}
	if c.ClientID == "" {
		// Keycloak names the client in azp only (OpenID Connect Core
		// §2: the party the token was issued to).
		c.ClientID = c.AuthorizedParty
	}
	plain := !jose.TypAccessToken.Matches(t.Typ)
	if plain && c.ClientID == "" {
		c.ClientID = c.ClientIDOkta
	}
	if plain && c.ID == "" {
		c.ID = c.TokenIDEntra
	}
	if c.ClientID == "" || c.ID == "" || c.ExpiresAt == 0 {
		return nil, v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "the access token lacks client_id or jti")
	}
	if plain {
		if err := v.checkPlainJWT(t); err != nil {
			return nil, err
		}
	}
	scopes, err := is.scopes(t.Claims, c.Scope)
	if err != nil {
		return nil, v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "the access token's scope is malformed")
	}
	return &verified{claims: c.AccessTokenClaims, scopes: scopes}, nil
}

// checkPlainJWT is what a token of typ JWT or without typ (accepted only from an issuer
// with AcceptJWTTyp) must also pass, since its typ does not tell it from
// other JWTs of its issuer: iat, the one claim RFC 9068 §2.2 requires that
// checkJWT does not already; and nothing that marks an ID token (nonce,
// at_hash, c_hash of OpenID Connect Core §2 and §3.1.3.6, or a typ claim
// other than Keycloak's "Bearer").
func (v *Verifier) checkPlainJWT(t *jose.Token) error {
	if _, ok := t.Claims["iat"]; !ok {
		return v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "a token of typ JWT lacks iat, which RFC 9068 requires")
	}
	for _, name := range []string{"nonce", "at_hash", "c_hash"} {
		if _, ok := t.Claims[name]; ok {
			return v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "an ID token is not an access token")
		}
	}
	if typ, ok := t.Claims["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "Bearer") {
			return v.challenge(http.StatusUnauthorized, "Bearer", oauth.CodeInvalidToken, "the token is not an access token (typ claim)")
		}
	}
	return nil
}
