package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// The server is its trust domain's Transaction Token Service (TTS,
// draft-ietf-oauth-transaction-tokens, editor's copy after -08, as
// digested in SPECS.md §6): over HTTP as an RFC 8693 profile at the token
// endpoint (grantTxnToken), and in process for the host
// (Server.IssueTxnToken). Both end in mintTxnToken.

// Subject token types of Txn-Token requests (SPECS.md §6.1, X.2) that the
// server does not accept; named so the refusal can say why.
const (
	TokenTypeSelfSigned   = "urn:ietf:params:oauth:token-type:self_signed"
	TokenTypeUnsignedJSON = "urn:ietf:params:oauth:token-type:unsigned_json"
)

// DefaultTxnTokenTTL is the lifetime of a Txn-Token when
// Config.TxnTokenTTL is zero.
const DefaultTxnTokenTTL = txntoken.DefaultTTL

// MaxTxnTokenChain caps the requesting workloads a transaction's
// Txn-Tokens may pass through: the first token and at most
// MaxTxnTokenChain-1 replacements (SPECS.md §6.6 asks to cap the number of
// replacements). With the default TTL no transaction outlives 8 minutes.
const MaxTxnTokenChain = 8

// Members of rctx the server asserts (SPECS.md §6.2: the TTS is
// authoritative for rctx). A member of the request_context with one of
// these names is overwritten.
const (
	// RctxWorkloadChain is the chain of requesting workloads, first to
	// last, as a JSON array of SPIFFE IDs; its last element is req_wl. The
	// draft keeps req_wl a single string since -07 and leaves the chain's
	// form to the TTS (SPECS.md §6.6); a replacement appends to it.
	RctxWorkloadChain = "req_wl_chain"
	// RctxAuthn is how the requesting workload authenticated to the TTS:
	// the token endpoint auth method (spiffe_jwt, private_key_jwt for an
	// agent's JWT-SVID, tls_client_auth for its X.509-SVID) or
	// AuthnInProcess.
	RctxAuthn = "authn"
	// RctxSubjectSource says who established sub: SubjectSourceToken or
	// SubjectSourceOperator. A replacement keeps its token's.
	RctxSubjectSource = "subject_source"
)

// Values of rctx members the server asserts.
const (
	// AuthnInProcess: the token was minted by Server.IssueTxnToken, for
	// the host itself.
	AuthnInProcess = "in_process"
	// SubjectSourceToken: sub is the subject of a verified subject token.
	SubjectSourceToken = "token"
	// SubjectSourceOperator: no subject token; the host named the subject
	// (an operator-run task whose user was named over the admin socket)
	// and vouches for it.
	SubjectSourceOperator = "operator"
)

// IssuedTxnToken describes a Txn-Token the server has just signed, for
// [Config.OnIssueTxnToken]. It holds the claims and the token's hash,
// never the token (SPECS.md §6.5).
type IssuedTxnToken struct {
	Claims txntoken.Claims
	// TokenHash is txntoken.TokenHash of the token: base64url SHA-256.
	TokenHash string
	// GrantType is the token request's grant_type (token exchange), or
	// "" for a token minted by IssueTxnToken.
	GrantType string
	// SubjectTokenType is the type of the subject token the token was
	// issued for (an access token, or a Txn-Token it replaces); "" when
	// the host vouched for the subject.
	SubjectTokenType string
}

// txnTTS is the server's Transaction Token Service settings, checked by
// initTxnTokens.
type txnTTS struct {
	ttl time.Duration
	// workloads are the TxnTokenWorkloads patterns: exact SPIFFE IDs, or
	// prefixes ending in "/" for the patterns written with "/*". Nil
	// allows every workload of the trust domain.
	workloads []string
	// cache remembers the subject tokens IssueTxnToken verified
	// (txncache.go).
	cache subjectCache
}

// initTxnTokens checks the Txn-Token settings of s.cfg.
func (s *Server) initTxnTokens() error {
	ttl := s.cfg.TxnTokenTTL
	switch {
	case ttl == 0:
		ttl = DefaultTxnTokenTTL
	case ttl < 0 || ttl > txntoken.MaxTTL:
		return fmt.Errorf("authserver: TxnTokenTTL %s is outside (0, %s]", ttl, txntoken.MaxTTL)
	}
	s.txn.ttl = ttl
	for _, w := range s.cfg.TxnTokenWorkloads {
		base, prefix := strings.CutSuffix(w, "/*")
		id, err := spiffeid.FromString(base)
		if err != nil {
			return fmt.Errorf("authserver: TxnTokenWorkloads: %q is not a SPIFFE ID or a SPIFFE ID followed by /*: %w", w, err)
		}
		if id.TrustDomain().Name() != s.cfg.TrustDomain {
			return fmt.Errorf("authserver: TxnTokenWorkloads: %q is not in trust domain %q", w, s.cfg.TrustDomain)
		}
		if prefix {
			s.txn.workloads = append(s.txn.workloads, id.String()+"/")
		} else {
			s.txn.workloads = append(s.txn.workloads, id.String())
		}
	}
	return nil
}

// txnWorkload returns the SPIFFE ID of a client that may request
// Txn-Tokens: a hosted workload of the trust domain that authenticated
// with an SVID (a JWT-SVID as a jwt-spiffe or private_key_jwt assertion,
// or an X.509-SVID over mutual TLS), and that Config.TxnTokenWorkloads
// allows (SPECS.md §6.2: the TTS MUST authenticate the workload and check
// it may obtain Txn-Tokens).
//
// Any other client gets unauthorized_client: it has passed client
// authentication (a failed one is invalid_client, 401, before this
// point), so RFC 6749 §5.2's "the authenticated client is not authorized
// to use this authorization grant type" is the code that fits; a public
// client, which authenticates with nothing, is refused the same way, as
// it is client_credentials.
func (s *Server) txnWorkload(c *authenticated) (string, error) {
	refuse := oauth.Errorf(oauth.CodeUnauthorizedClient, "only workloads of the trust domain authenticated by an SVID may request Txn-Tokens")
	if c.Kind != kindAgent {
		return "", refuse
	}
	switch c.Method {
	case oauth.AuthSPIFFEJWT, oauth.AuthPrivateKeyJWT, oauth.AuthTLSClient:
	default:
		return "", refuse
	}
	id, err := spiffeid.FromString(c.ID)
	if err != nil || s.cfg.TrustDomain == "" || id.TrustDomain().Name() != s.cfg.TrustDomain {
		return "", refuse
	}
	if !s.txn.allows(id.String()) {
		return "", oauth.Errorf(oauth.CodeUnauthorizedClient, "the workload may not request Txn-Tokens")
	}
	return id.String(), nil
}

// allows reports whether TxnTokenWorkloads lets the workload id ask.
func (t *txnTTS) allows(id string) bool {
	if t.workloads == nil {
		return true
	}
	for _, w := range t.workloads {
		if w == id || (strings.HasSuffix(w, "/") && strings.HasPrefix(id, w)) {
			return true
		}
	}
	return false
}

// grantTxnToken serves a Txn-Token request: RFC 8693 token exchange with
// requested_token_type txn_token, as the Transaction Tokens draft profiles
// it (SPECS.md §6.1–6.3, 6.6).
//
//   - The client is a workload of the trust domain (see txnWorkload); it
//     becomes req_wl.
//   - audience is REQUIRED and is exactly the trust domain name
//     (Config.TrustDomain, "example.org": the aud every Txn-Token carries
//     and txntoken.Verify compares with); anything else is
//     invalid_target, as is a resource parameter.
//   - scope is REQUIRED and must be within the subject token's scope; a
//     subject token whose scope cannot be determined (ID token,
//     JWT-SVID) is invalid_scope, never unconstrained.
//   - subject_token is an access token of this server issued for the
//     client (verified as for any exchange, revocation included), or a
//     Txn-Token of this server, which is then replaced. A refresh token,
//     a self-signed JWT or unsigned JSON is invalid_request: the first
//     is never a subject token, and the server has no key to check a
//     workload's self-signed JWT with, nor a scope to cap unsigned JSON
//     by.
//   - request_context and request_details are JSON objects, plain
//     form-encoded (base64url was dropped after -06); rctx is built from
//     the first plus the members the server asserts, tctx from the
//     second.
//
// The response carries the token as access_token with token_type N_A and
// never a refresh token.
func (s *Server) grantTxnToken(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	if s.cfg.TrustDomain == "" {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "Txn-Tokens are not issued here: no trust domain is configured")
	}
	workload, err := s.txnWorkload(req.client)
	if err != nil {
		return nil, err
	}
	f := req.form
	audiences, err := f.All("audience")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "audience has an empty value")
	}
	switch {
	case len(audiences) == 0:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "parameter audience is missing: a Txn-Token request names the trust domain %q", s.cfg.TrustDomain)
	case len(audiences) > 1 || audiences[0] != s.cfg.TrustDomain:
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "the audience of a Txn-Token is the trust domain %q alone", s.cfg.TrustDomain)
	}
	if f.Has("resource") {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "a Txn-Token is for the trust domain, not a resource")
	}
	if f.Has("actor_token") || f.Has("actor_token_type") {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "a Txn-Token request takes no actor_token: the requesting workload is the client")
	}
	if f.Has("authorization_details") {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "a Txn-Token request carries its details in request_details")
	}
	rawScope, err := f.Require("scope")
	if err != nil {
		return nil, err
	}
	scopes, err := oauth.ParseScope(rawScope)
	if err != nil {
		return nil, err
	}
	rctx, err := formObject(f, "request_context")
	if err != nil {
		return nil, err
	}
	tctx, err := formObject(f, "request_details")
	if err != nil {
		return nil, err
	}
	subjectToken, err := f.Require("subject_token")
	if err != nil {
		return nil, err
	}
	subjectType, err := f.Require("subject_token_type")
	if err != nil {
		return nil, err
	}

	m := txnMint{
		scopes: scopes, workload: workload, authn: req.client.Method, rctx: rctx, tctx: tctx,
		grantType: oauth.GrantTokenExchange, subjectType: subjectType,
	}
	switch subjectType {
	case oauth.TokenTypeTxnToken:
		old, err := s.verifyTxnSubject(ctx, subjectToken)
		if err != nil {
			return nil, err
		}
		m.replaces = old
	case oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken, oauth.TokenTypeJWT:
		// The checks of any token exchange: signature, expiry,
		// revocation, issued for this client. ID tokens and JWT-SVIDs
		// pass them but have no scope, and are refused below.
		p, err := s.verifySubjectToken(ctx, req, subjectToken, subjectType)
		if err != nil {
			return nil, err
		}
		m.subject, m.limit, m.expires = p.Subject, p.Scopes, p.ExpiresAt
		m.source = SubjectSourceToken
		if p.Scopes == nil {
			return nil, oauth.Errorf(oauth.CodeInvalidScope, "the scope of a subject_token of type %s cannot be determined", subjectType)
		}
	case oauth.TokenTypeRefreshToken:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "a refresh token is never the subject of a Txn-Token")
	default:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token_type %q is not accepted for Txn-Tokens; accepted: %s, %s",
			truncate(subjectType, 80), oauth.TokenTypeAccessToken, oauth.TokenTypeTxnToken)
	}
	tok, c, err := s.mintTxnToken(ctx, m)
	if err != nil {
		return nil, err
	}
	return &oauth.TokenResponse{
		AccessToken:     tok,
		IssuedTokenType: oauth.TokenTypeTxnToken,
		TokenType:       oauth.TokenTypeNA,
		ExpiresIn:       c.ExpiresAt - s.now().Unix(),
	}, nil
}

// formObject reads a form parameter that holds a JSON object; absent is
// the zero Object.
func formObject(f oauth.Form, name string) (txntoken.Object, error) {
	raw, err := f.Get(name)
	if err != nil || raw == "" {
		return txntoken.Object{}, err
	}
	o, err := txntoken.ParseObject([]byte(raw))
	if err != nil {
		return txntoken.Object{}, oauth.Errorf(oauth.CodeInvalidRequest, "%s must be one JSON object (not base64url-encoded)", name)
	}
	return o, nil
}

// verifyTxnSubject verifies a Txn-Token presented for replacement: this
// server's, for its trust domain, not expired (SPECS.md §6.6: an expired
// token is never replaced).
func (s *Server) verifyTxnSubject(ctx context.Context, token string) (*txntoken.Claims, error) {
	c, err := txntoken.Verify(ctx, token, s.txnVerifyOptions())
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, txntoken.ErrConfig) {
			return nil, err
		}
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is not a valid Txn-Token: %s", txnReason(err))
	}
	return c, nil
}

// txnReason turns a txntoken verification error into a short reason safe
// to send.
func txnReason(err error) string {
	for _, e := range []struct {
		err    error
		reason string
	}{
		{txntoken.ErrExpired, "expired"},
		{txntoken.ErrWrongType, "wrong typ"},
		{txntoken.ErrSignature, "bad signature or unknown key"},
		{txntoken.ErrAudience, "another trust domain"},
		{txntoken.ErrIssuer, "another issuer"},
		{txntoken.ErrNotYetValid, "not yet valid"},
		{txntoken.ErrInvalid, "malformed"},
	} {
		if errors.Is(err, e.err) {
			return e.reason
		}
	}
	return "rejected"
}

// txnVerifyOptions verify the Txn-Tokens this server issues.
func (s *Server) txnVerifyOptions() txntoken.VerifyOptions {
	return txntoken.VerifyOptions{
		Keys:        s.keys.publicKey,
		TrustDomain: s.cfg.TrustDomain,
		Issuer:      s.issuer,
		Algorithms:  []jose.Alg{jose.ES256},
		Now:         s.now,
	}
}

// TxnTokenVerifyOptions returns what a workload in the same process
// verifies this server's Txn-Tokens with ([txntoken.Verify]): the
// server's published keys, the trust domain as aud, the server as iss.
// A workload elsewhere uses the JWKS at PathJWKS and its trust domain's
// name.
func (s *Server) TxnTokenVerifyOptions() txntoken.VerifyOptions { return s.txnVerifyOptions() }

// txnMint is a Txn-Token about to be issued, its request checked.
type txnMint struct {
	// subject and source: who the transaction is for and who said so;
	// taken from replaces when set.
	subject, source string
	// scopes requested; limit caps them (nil: no cap, only for the
	// operator's own tasks).
	scopes, limit []string
	// workload is req_wl; authn how it authenticated.
	workload, authn string
	// rctx and tctx as requested.
	rctx, tctx txntoken.Object
	// txn, when not empty, names the transaction (in process only).
	txn string
	// expires, when not zero, caps exp: the subject token's expiry.
	expires time.Time
	// replaces is the verified Txn-Token being replaced.
	replaces *txntoken.Claims
	// For the audit hook.
	grantType, subjectType string
}

// mintTxnToken builds the claims of a Txn-Token (SPECS.md §6.2, §6.4),
// applies the replacement rules (§6.6), signs it with the current
// signing key and reports it to Config.OnIssueTxnToken.
func (s *Server) mintTxnToken(ctx context.Context, m txnMint) (string, *txntoken.Claims, error) {
	now := s.now().UTC().Truncate(time.Second)
	chain := []string{m.workload}
	tctx := m.tctx
	if old := m.replaces; old != nil {
		if m.txn != "" && m.txn != old.Txn {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "a replacement Txn-Token keeps the transaction's txn")
		}
		if m.subject != "" && m.subject != old.Subject {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "a replacement Txn-Token keeps the transaction's sub")
		}
		m.txn, m.subject, m.limit = old.Txn, old.Subject, old.Scopes()
		m.source = SubjectSourceToken
		if raw, ok := old.RequestContext.Member(RctxSubjectSource); ok && string(raw) == `"`+SubjectSourceOperator+`"` {
			m.source = SubjectSourceOperator
		}
		chain = append(workloadChain(old), m.workload)
		if len(chain) > MaxTxnTokenChain {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the transaction has passed through %d workloads, the most a Txn-Token may record", MaxTxnTokenChain)
		}
		var err error
		if tctx, err = addMembers(old.TransactionContext, m.tctx); err != nil {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "request_details cannot be added to the transaction context")
		}
	}
	if m.subject == "" {
		return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "a Txn-Token needs a subject")
	}
	if len(m.scopes) == 0 {
		return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "a Txn-Token needs a scope")
	}
	if m.source != SubjectSourceOperator || m.replaces != nil {
		for _, sc := range m.scopes {
			if !slices.Contains(m.limit, sc) {
				return "", nil, oauth.Errorf(oauth.CodeInvalidScope, "scope %q is not within the subject token's scope", truncate(sc, 80))
			}
		}
	}
	if m.txn == "" {
		var err error
		if m.txn, err = randomToken(16); err != nil {
			return "", nil, err
		}
	}
	asserted := map[string]any{RctxWorkloadChain: chain, RctxSubjectSource: m.source}
	if m.authn != "" {
		asserted[RctxAuthn] = m.authn
	}
	rctx, err := m.rctx.With(asserted)
	if err != nil {
		return "", nil, fmt.Errorf("authserver: txn-token rctx: %w", err)
	}
	exp := now.Add(s.txn.ttl)
	if !m.expires.IsZero() && m.expires.Before(exp) {
		exp = m.expires
	}
	c := txntoken.Claims{
		Issuer:             s.issuer,
		IssuedAt:           now.Unix(),
		Audience:           s.cfg.TrustDomain,
		ExpiresAt:          exp.Unix(),
		Txn:                m.txn,
		Subject:            m.subject,
		Scope:              oauth.FormatScope(m.scopes),
		RequestingWorkload: m.workload,
		TransactionContext: tctx,
		RequestContext:     rctx,
	}
	if c.ExpiresAt <= c.IssuedAt {
		return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token expires now")
	}
	if m.replaces != nil {
		if err := txntoken.CheckReplacement(m.replaces, &c, now); err != nil {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "txntoken: "))
		}
	}
	signer, kid := s.keys.current()
	tok, err := txntoken.Sign(ctx, signer, kid, c)
	if err != nil {
		if errors.Is(err, txntoken.ErrInvalid) {
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "txntoken: "))
		}
		return "", nil, fmt.Errorf("authserver: sign txn-token: %w", err)
	}
	hash := txntoken.TokenHash(tok)
	if s.cfg.OnIssueTxnToken != nil {
		it := IssuedTxnToken{Claims: c, TokenHash: hash, GrantType: m.grantType, SubjectTokenType: m.subjectType}
		if err := s.cfg.OnIssueTxnToken(ctx, it); err != nil {
			return "", nil, fmt.Errorf("authserver: record the issued txn-token: %w", err)
		}
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "txn-token issued",
		slog.String("txn", c.Txn),
		slog.String("sub", c.Subject),
		slog.String("req_wl", c.RequestingWorkload),
		slog.String("scope", c.Scope),
		slog.String("kid", kid),
		slog.Int64("exp", c.ExpiresAt),
		slog.String("token_sha256", hash),
	)
	return tok, &c, nil
}

// workloadChain returns the chain of requesting workloads a Txn-Token
// records: rctx.req_wl_chain when it is a well-formed chain ending in
// req_wl (always, for this server's tokens), else req_wl alone.
func workloadChain(c *txntoken.Claims) []string {
	var chain []string
	if raw, ok := c.RequestContext.Member(RctxWorkloadChain); ok {
		if json.Unmarshal(raw, &chain) == nil && len(chain) > 0 && chain[len(chain)-1] == c.RequestingWorkload {
			return chain
		}
	}
	return []string{c.RequestingWorkload}
}

// addMembers returns base with the members of add set; a changed member
// is left for CheckReplacement to refuse.
func addMembers(base, add txntoken.Object) (txntoken.Object, error) {
	if add.IsZero() {
		return base, nil
	}
	if base.IsZero() {
		return add, nil
	}
	m := make(map[string]any)
	for _, n := range add.Names() {
		v, _ := add.Member(n)
		m[n] = v
	}
	return base.With(m)
}

// TxnTokenRequest asks [Server.IssueTxnToken] for a Txn-Token.
type TxnTokenRequest struct {
	// Subject is sub. Without SubjectToken it is required, and the host
	// vouches for it (rctx subject_source "operator"); with one it may
	// be empty, and otherwise must equal the token's sub.
	Subject string
	// Scope is the transaction's purpose, one or more scope tokens.
	// Required, but for a replacement, where empty keeps the replaced
	// token's scope. Without SubjectToken it is taken as asked: the host
	// is the authority for its own tasks. With one, it must be within the
	// token's scope.
	Scope []string
	// RequestingWorkload is req_wl: the SPIFFE ID of the workload where
	// the transaction begins (the host's own, or the agent it runs the
	// task for); it must be in the trust domain. Required.
	RequestingWorkload string
	// RequestContext becomes rctx, plus the members the server asserts
	// (RctxWorkloadChain, RctxAuthn = AuthnInProcess, RctxSubjectSource),
	// which override the caller's.
	RequestContext txntoken.Object
	// RequestDetails becomes tctx (see txntoken.CallContext); for a
	// replacement it is added to the replaced token's tctx and may not
	// change a member of it.
	RequestDetails txntoken.Object
	// Txn names the transaction (the host's task ID, say); empty means a
	// new random one. A replacement keeps its token's: Txn is then empty
	// or equal to it.
	Txn string
	// SubjectToken, when set, is an access token of this server (its
	// subject becomes sub and its scope caps Scope) or a Txn-Token of
	// this server to replace (SPECS.md §6.6).
	SubjectToken string
}

// IssueTxnToken mints a Txn-Token in process, for the host: a workload of
// the trust domain that starts transactions (a CLI task, a call from an
// MCP client) and needs no HTTP round trip to its own TTS. The rules of
// the token endpoint apply where they apply (see [TxnTokenRequest]); an
// access token given as SubjectToken is checked for signature, expiry
// and revocation but not for its audience or sender constraint, which
// the host checked when the request carrying it arrived.
// Config.TxnTokenWorkloads does not apply: it governs who may ask over
// HTTP, and here the host asks.
//
// It returns the token with its claims. Errors are *oauth.Error with the
// code the token endpoint would answer (invalid_request, invalid_scope)
// or, for a failure of the server itself (signing, the audit hook),
// another error.
func (s *Server) IssueTxnToken(ctx context.Context, r TxnTokenRequest) (string, *txntoken.Claims, error) {
	if s.cfg.TrustDomain == "" {
		return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "Txn-Tokens are not issued here: no trust domain is configured")
	}
	id, err := spiffeid.FromString(r.RequestingWorkload)
	if err != nil || id.TrustDomain().Name() != s.cfg.TrustDomain {
		return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the requesting workload must be a SPIFFE ID of trust domain %q", s.cfg.TrustDomain)
	}
	var scopes []string
	for _, sc := range r.Scope {
		if !oauth.ValidScopeToken(sc) {
			return "", nil, oauth.Errorf(oauth.CodeInvalidScope, "scope token %q has characters RFC 6749 does not allow", truncate(sc, 40))
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) > oauth.MaxScopes {
		return "", nil, oauth.Errorf(oauth.CodeInvalidScope, "more than %d scopes", oauth.MaxScopes)
	}
	m := txnMint{
		subject: r.Subject, source: SubjectSourceOperator, scopes: scopes, workload: id.String(), authn: AuthnInProcess,
		rctx: r.RequestContext, tctx: r.RequestDetails, txn: r.Txn,
	}
	if r.SubjectToken != "" {
		old, c, asAccess, err := s.verifyTxnSubjectToken(ctx, r.SubjectToken)
		switch {
		case old != nil:
			m.replaces, m.subjectType = old, oauth.TokenTypeTxnToken
			if len(m.scopes) == 0 {
				m.scopes = old.Scopes()
			}
		case asAccess:
			if err != nil {
				if oauth.AsError(err).Code != oauth.CodeInvalidToken {
					return "", nil, err
				}
				return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "subject token: %s", oauth.AsError(err).Description)
			}
			if r.Subject != "" && r.Subject != c.Subject {
				return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject is not the subject token's")
			}
			limit, err := oauth.ParseScope(c.Scope)
			if err != nil {
				return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token has a malformed scope")
			}
			m.subject, m.source, m.limit, m.subjectType = c.Subject, SubjectSourceToken, nonNil(limit), oauth.TokenTypeAccessToken
			m.expires = time.Unix(c.ExpiresAt, 0)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, txntoken.ErrConfig):
			return "", nil, err
		default:
			return "", nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token is not a valid Txn-Token: %s", txnReason(err))
		}
	}
	return s.mintTxnToken(ctx, m)
}

// isWrongType reports a Txn-Token verification that failed on the typ:
// the token is of another kind (an access token, say).
func isWrongType(err error) bool { return errors.Is(err, txntoken.ErrWrongType) }
