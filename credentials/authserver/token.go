package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// tokenRequest is an authenticated token endpoint request.
type tokenRequest struct {
	r      *http.Request
	form   oauth.Form
	client *authenticated
	// jkt is the thumbprint of the DPoP proof's key, when one was sent.
	jkt string
}

// handleToken serves the token endpoint (RFC 6749 §3.2).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	resp, err := s.token(r)
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request) (resp *oauth.TokenResponse, err error) {
	ctx := r.Context()
	var grant string
	defer func() { s.observeToken(ctx, grant, err) }()
	f, err := oauth.ParseForm(r)
	if err != nil {
		return nil, err
	}
	grant, err = f.Require("grant_type")
	if err != nil {
		return nil, err
	}
	// client is the client the request claims to be, then the one it
	// authenticated as.
	client, _ := f.Get("client_id")
	rtt, _ := f.Get("requested_token_type")
	if s.cfg.OnRefuseChaining != nil && (grant == oauth.GrantJWTBearer || grant == oauth.GrantTokenExchange && rtt == oauth.TokenTypeIDJAG) {
		defer func() {
			if err != nil {
				s.cfg.OnRefuseChaining(ctx, client, grant, oauth.AsError(err))
			}
		}()
	}
	switch grant {
	case oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials,
		oauth.GrantTokenExchange, oauth.GrantJWTBearer:
	case oauth.GrantCIBA:
		if s.ciba == nil {
			return nil, oauth.Errorf(oauth.CodeUnsupportedGrantType, "grant type %q is not supported", grant)
		}
	default:
		return nil, oauth.Errorf(oauth.CodeUnsupportedGrantType, "grant type %q is not supported", truncate(grant, 80))
	}
	c, err := s.authenticateClient(ctx, r, f)
	if err != nil {
		return nil, err
	}
	client = c.ID
	if grant == oauth.GrantCIBA && !s.cibaAllowed(c.client) || grant != oauth.GrantCIBA && !c.allowsGrant(grant) {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use %s", grant)
	}
	req := &tokenRequest{r: r, form: f, client: c}
	if req.jkt, err = s.checkDPoP(ctx, r, "", ""); err != nil {
		return nil, err
	}
	switch grant {
	case oauth.GrantClientCredentials:
		return s.grantClientCredentials(ctx, req)
	case oauth.GrantTokenExchange:
		return s.grantTokenExchange(ctx, req)
	case oauth.GrantJWTBearer:
		return s.grantJWTBearer(ctx, req)
	case oauth.GrantAuthorizationCode:
		return s.grantAuthorizationCode(ctx, req)
	case oauth.GrantCIBA:
		return s.grantCIBA(ctx, req)
	default:
		return s.grantRefreshToken(ctx, req)
	}
}

// writeTokenError writes an error from the token endpoint: a DPoP nonce
// challenge carries a fresh nonce (RFC 9449 §8), and invalid_client to a
// client that tried HTTP Basic carries a Basic challenge (RFC 6749 §5.2).
func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, err error) {
	oe := oauth.AsError(err)
	if oe.Code == oauth.CodeServerError {
		s.log.Error("token endpoint failed", "err", err)
	}
	var he *headerError
	if errors.As(err, &he) {
		maps.Copy(w.Header(), he.header)
	}
	switch oe.Code {
	case oauth.CodeUseDPoPNonce:
		s.setDPoPNonce(r.Context(), w)
	case oauth.CodeInvalidClient:
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.issuer+`"`)
		}
	}
	oauth.WriteError(w, oe)
}

// grantClientCredentials issues a token on the client's own authority
// (RFC 6749 §4.4): sub is the client.
func (s *Server) grantClientCredentials(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	if req.client.public() {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "a public client cannot use client_credentials")
	}
	scopes, aud, err := s.target(req.form, req.client.client, nil)
	if err != nil {
		return nil, err
	}
	details, err := s.authorizationDetails(req.form)
	if err != nil {
		return nil, err
	}
	return s.respond(ctx, req, accessGrant{
		Subject:              req.client.ID,
		ClientID:             req.client.ID,
		Scopes:               scopes,
		Audience:             aud,
		AuthorizationDetails: details,
	})
}

// target resolves the resources (RFC 8707) and scope of a request. limit,
// when not nil, caps the scopes (the scopes of an original grant).
func (s *Server) target(f oauth.Form, c *client, limit []string) (scopes, aud []string, err error) {
	resources, err := f.All("resource")
	if err != nil {
		return nil, nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	raw, err := f.Get("scope")
	if err != nil {
		return nil, nil, err
	}
	return s.targetFor(resources, raw, c, limit)
}

// targetFor is target with the resources and scope given.
func (s *Server) targetFor(resources []string, raw string, c *client, limit []string) (scopes, aud []string, err error) {
	var resourceScopes []string
	for _, res := range resources {
		if err := checkResourceURI(res); err != nil {
			return nil, nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q %s", truncate(res, 80), err.Error())
		}
		known, ok := s.resources[res]
		if !ok {
			return nil, nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q is not known to this server", truncate(res, 80))
		}
		if !slices.Contains(aud, res) {
			aud = append(aud, res)
		}
		if len(aud) > 1 {
			return nil, nil, errSeveralResources
		}
		resourceScopes = append(resourceScopes, known.Scopes...)
	}
	requested, err := oauth.ParseScope(raw)
	if err != nil {
		return nil, nil, err
	}
	for _, sc := range requested {
		switch {
		case !s.scopes[sc]:
			return nil, nil, oauth.Errorf(oauth.CodeInvalidScope, "scope %q is not known", sc)
		case !c.allowsScope(sc):
			return nil, nil, oauth.Errorf(oauth.CodeInvalidScope, "the client may not request scope %q", sc)
		case limit != nil && !slices.Contains(limit, sc):
			return nil, nil, oauth.Errorf(oauth.CodeInvalidScope, "scope %q exceeds the original grant", sc)
		case len(resources) > 0 && !slices.Contains(resourceScopes, sc) && !userScopes[sc]:
			return nil, nil, oauth.Errorf(oauth.CodeInvalidScope, "scope %q is not a scope of the requested resource", sc)
		}
	}
	scopes = requested
	if len(requested) == 0 {
		// Default: what the client may have (and the grant allows), cut
		// to the resources' scopes.
		switch {
		case limit != nil && c.Scopes != nil:
			scopes = oauth.ScopeIntersect(limit, c.Scopes)
		case limit != nil:
			scopes = limit
		case c.Scopes != nil:
			scopes = c.Scopes
		}
		if len(resources) > 0 {
			scopes = oauth.ScopeIntersect(scopes, resourceScopes)
		}
	}
	if len(aud) == 0 {
		aud = []string{s.issuer}
	}
	return scopes, aud, nil
}

// errSeveralResources refuses a request naming more than one resource: an
// access token has one audience, so that no resource server can replay it
// at another (RFC 8707 §2, where the server decides what it issues for
// several; MCP requires one audience per token).
var errSeveralResources = oauth.Errorf(oauth.CodeInvalidTarget,
	"only one resource may be named: an access token has one audience; request a token per resource")

// userScopes are the OpenID Connect scopes, which belong to the server
// itself rather than to a resource.
var userScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// authorizationDetails reads and checks RFC 9396 authorization_details.
func (s *Server) authorizationDetails(f oauth.Form) (json.RawMessage, error) {
	raw, err := f.Get("authorization_details")
	if err != nil || raw == "" {
		return nil, err
	}
	return parseAuthorizationDetails(raw)
}

// parseAuthorizationDetails checks that raw is a JSON array of objects
// each with a string type (RFC 9396 §2) and returns it compacted.
func parseAuthorizationDetails(raw string) (json.RawMessage, error) {
	var details []map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&details); err != nil || dec.More() {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details must be a JSON array of objects")
	}
	if len(details) == 0 || len(details) > 32 {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details must hold 1 to 32 objects")
	}
	for i, d := range details {
		var typ string
		if err := json.Unmarshal(d["type"], &typ); err != nil || typ == "" {
			return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details[%d] has no string type", i)
		}
	}
	out, err := json.Marshal(details)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details could not be encoded")
	}
	return out, nil
}

// accessGrant is what an access token says.
type accessGrant struct {
	Subject              string
	ClientID             string
	Scopes               []string
	Audience             []string
	Actor                *oauth.Actor
	MayAct               *oauth.Actor
	AuthTime             time.Time
	AuthorizationDetails json.RawMessage
	// IssuedTokenType is set for token exchange responses.
	IssuedTokenType string
	// Family is the refresh-token family the token is issued under, and
	// Parent the jti of the access token it is exchanged for; revoking
	// either revokes this token too (see lineage.go).
	Family string
	Parent string
	// ApprovalID is set for a token issued on a CIBA approval.
	ApprovalID string
	// NotAfter, when set, caps the token's expiry.
	NotAfter time.Time
	// SubjectID, when set, names the subject as another issuer asserted
	// it (sub_id; a token issued for an ID-JAG).
	SubjectID *oauth.SubjectID
}

// respond issues an access token for g, bound to the request's DPoP key
// or client certificate, and builds the response.
func (s *Server) respond(ctx context.Context, req *tokenRequest, g accessGrant) (*oauth.TokenResponse, error) {
	resp, _, err := s.respondIssued(ctx, req, g)
	return resp, err
}

// respondIssued is respond that also says which token it issued.
func (s *Server) respondIssued(ctx context.Context, req *tokenRequest, g accessGrant) (*oauth.TokenResponse, issuedToken, error) {
	it, err := s.issueAccessToken(ctx, req, g)
	if err != nil {
		return nil, issuedToken{}, err
	}
	return &oauth.TokenResponse{
		AccessToken:          it.Token,
		IssuedTokenType:      g.IssuedTokenType,
		TokenType:            it.Type,
		ExpiresIn:            int64(it.ExpiresAt.Sub(s.now()).Round(time.Second) / time.Second),
		Scope:                oauth.FormatScope(g.Scopes),
		AuthorizationDetails: g.AuthorizationDetails,
	}, it, nil
}

// issuedToken is an access token just signed.
type issuedToken struct {
	Token     string
	ID        string
	ExpiresAt time.Time
	// Type is Bearer or DPoP.
	Type string
}

func (s *Server) issueAccessToken(ctx context.Context, req *tokenRequest, g accessGrant) (issuedToken, error) {
	now := s.now().UTC().Truncate(time.Second)
	exp := now.Add(s.cfg.AccessTokenTTL)
	if !g.NotAfter.IsZero() && g.NotAfter.Before(exp) {
		exp = g.NotAfter.UTC().Truncate(time.Second)
	}
	jti, err := randomToken(16)
	if err != nil {
		return issuedToken{}, err
	}
	if len(g.Audience) != 1 {
		return issuedToken{}, fmt.Errorf("authserver: an access token needs exactly one audience, not %d", len(g.Audience))
	}
	if req != nil {
		if err := s.clients.keep(ctx, req.client.client); err != nil {
			return issuedToken{}, err
		}
	}
	if g.Family != "" || g.Parent != "" {
		if err := s.saveLineage(ctx, jti, g.Family, g.Parent, exp); err != nil {
			return issuedToken{}, err
		}
	}
	claims := oauth.AccessTokenClaims{
		Issuer:               s.issuer,
		Subject:              g.Subject,
		Audience:             oauth.Audience(g.Audience),
		ClientID:             g.ClientID,
		IssuedAt:             now.Unix(),
		ExpiresAt:            exp.Unix(),
		ID:                   jti,
		Scope:                oauth.FormatScope(g.Scopes),
		Actor:                g.Actor,
		MayAct:               g.MayAct,
		AuthorizationDetails: g.AuthorizationDetails,
		SubjectID:            g.SubjectID,
	}
	if !g.AuthTime.IsZero() {
		claims.AuthTime = g.AuthTime.Unix()
	}
	tokenType := oauth.TokenTypeBearer
	if req != nil {
		switch {
		case req.jkt != "":
			claims.Confirmation = &oauth.Confirmation{JKT: req.jkt}
			tokenType = oauth.TokenTypeDPoP
		case req.client.CertThumbprint != "":
			claims.Confirmation = &oauth.Confirmation{X5TS256: req.client.CertThumbprint}
		}
	}
	token, err := s.keys.sign(ctx, jose.TypAccessToken, claims)
	if err != nil {
		return issuedToken{}, err
	}
	if s.cfg.OnIssue != nil {
		grant := ""
		if req != nil {
			grant, _ = req.form.Get("grant_type")
		}
		if err := s.cfg.OnIssue(ctx, Issued{Claims: claims, TokenType: oauth.TokenTypeAccessToken, GrantType: grant,
			ApprovalID: g.ApprovalID}); err != nil {
			return issuedToken{}, fmt.Errorf("authserver: record the issued token: %w", err)
		}
	}
	return issuedToken{Token: token, ID: jti, ExpiresAt: exp, Type: tokenType}, nil
}

// Issued describes an access token or an ID-JAG the server has just
// signed, for [Config.OnIssue]. It holds the claims, never the token.
type Issued struct {
	// Claims are the token's claims. For an ID-JAG they are the claims
	// it shares with an access token (iss, sub, aud: the authorization
	// server it is for, client_id, iat, exp, jti, scope, auth_time, act,
	// cnf).
	Claims oauth.AccessTokenClaims
	// TokenType says what was issued: oauth.TokenTypeAccessToken, or
	// oauth.TokenTypeIDJAG for an ID-JAG (grant_idjag.go), which is no
	// access token here and is used at another authorization server.
	TokenType string
	// GrantType is the grant_type of the token request ("" when the token
	// was not issued at the token endpoint).
	GrantType string
	// ApprovalID names the CIBA request the token was issued on
	// ([ApprovalID] of its auth_req_id), linking the token to the user's
	// approval in an audit log; "" for other grants.
	ApprovalID string
}

// VerifyAccessToken checks a JWT access token this server issued (RFC
// 9068 §4): typ at+jwt, signature by a published key, iss, exp, and aud
// containing audience; it refuses revoked tokens.
func (s *Server) VerifyAccessToken(ctx context.Context, token, audience string) (*oauth.AccessTokenClaims, error) {
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:          []jose.Typ{jose.TypAccessToken},
		Algorithms:     []jose.Alg{jose.ES256},
		Keys:           s.keys.publicKey,
		RequireKID:     true,
		Issuer:         s.issuer,
		Audience:       audience,
		RequireSubject: true,
		Now:            s.now,
	})
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidToken, "the access token is invalid: %s", joseReason(err))
	}
	var c oauth.AccessTokenClaims
	if err := t.Decode(&c); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidToken, "the access token's claims are malformed")
	}
	if c.ID == "" || c.ClientID == "" {
		return nil, oauth.Errorf(oauth.CodeInvalidToken, "the access token lacks jti or client_id")
	}
	revoked, err := s.accessRevoked(ctx, &c)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, oauth.Errorf(oauth.CodeInvalidToken, "the access token was revoked")
	}
	return &c, nil
}

// accessRevoked reports whether the verified access token c counts as
// revoked: itself or through its lineage (isRevoked), or through a party
// it names (SubjectRevoked): its subject, its client, or an actor of its
// delegation chain. So revoking an agent's identity (a quarantine) ends
// its own tokens and every token that delegates to it at once.
func (s *Server) accessRevoked(ctx context.Context, c *oauth.AccessTokenClaims) (bool, error) {
	revoked, err := s.isRevoked(ctx, c.ID, time.Unix(c.ExpiresAt, 0))
	if err != nil || revoked {
		return revoked, err
	}
	iat := time.Unix(c.IssuedAt, 0)
	for _, p := range c.Parties() {
		if revoked, err := s.SubjectRevoked(ctx, p, iat); err != nil || revoked {
			return revoked, err
		}
	}
	return false, nil
}

// Revoked reports whether the access token with jti was revoked, for
// resource servers that verify this server's tokens locally. Revocation
// cascades: a token also counts as revoked when the refresh-token family
// it was issued under was revoked, or when the token it was exchanged for
// counts as revoked (see lineage.go). A token checked before is answered
// from the revocation cache ([Config.RevocationCache]).
func (s *Server) Revoked(ctx context.Context, jti string) (bool, error) {
	return s.isRevoked(ctx, jti, time.Time{})
}

// checkDPoP verifies the request's DPoP proof, if any, and returns its
// key thumbprint. accessToken and jkt are set at resource endpoints.
func (s *Server) checkDPoP(ctx context.Context, r *http.Request, accessToken, jkt string) (string, error) {
	proofs := r.Header.Values("DPoP")
	if len(proofs) == 0 {
		if jkt != "" {
			return "", oauth.Errorf(oauth.CodeInvalidDPoPProof, "the token is DPoP-bound and the request has no DPoP proof")
		}
		return "", nil
	}
	if len(proofs) > 1 {
		return "", oauth.Errorf(oauth.CodeInvalidDPoPProof, "more than one DPoP header")
	}
	u := &url.URL{}
	if full, err := url.Parse(s.origin() + r.URL.EscapedPath()); err == nil {
		u = full
	}
	p, err := s.dpop.Verify(ctx, proofs[0], dpop.Request{Method: r.Method, URL: u, AccessToken: accessToken, JKT: jkt})
	if err != nil {
		code := dpop.ErrorCode(err)
		if code == "" {
			return "", err
		}
		return "", oauth.Errorf(code, "%s", strings.TrimPrefix(err.Error(), "dpop: "))
	}
	return p.JKT, nil
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
