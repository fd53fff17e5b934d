package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
)

// Identity Assertion JWT Authorization Grants (ID-JAG,
// draft-ietf-oauth-identity-assertion-authz-grant, editor's copy -03, as
// digested in SPECS.md §12.2), a profile of identity chaining across
// domains (SPECS.md §12.1), both ways: as the IdP ("AS-A") the server
// issues ID-JAGs by token exchange for the authorization servers of
// Config.IDJAGAudiences (grantIDJAG); as the resource authorization
// server ("AS-B") its jwt-bearer grant takes the ID-JAGs of the trusted
// issuers marked TrustedIssuer.IDJAG (grantIDJAGBearer).

// IDJAGLifetime is the longest an ID-JAG this server issues is valid; it
// never outlives its subject token. It is presented once, right away.
const IDJAGLifetime = 5 * time.Minute

// maxIDJAGResources caps the resource values of an ID-JAG request.
const maxIDJAGResources = 8

// IDJAGAudience is an authorization server of another domain this server
// issues ID-JAGs for.
type IDJAGAudience struct {
	// Issuer is that server's issuer identifier: the audience parameter
	// of a request must equal it exactly, and it is the ID-JAG's aud.
	Issuer string
	// Scopes are the scopes that may be requested there; empty means
	// any. A request naming no scope gets these.
	Scopes []string
}

// initIDJAG checks Config.IDJAGAudiences and keeps a copy.
func (s *Server) initIDJAG() error {
	list := slices.Clone(s.cfg.IDJAGAudiences)
	for i, a := range list {
		list[i].Scopes = slices.Clone(a.Scopes)
		switch {
		case a.Issuer == "":
			return fmt.Errorf("authserver: ID-JAG audience %d has no issuer", i)
		case a.Issuer == s.issuer:
			return fmt.Errorf("authserver: ID-JAG audience %q is this server", a.Issuer)
		case slices.ContainsFunc(list[:i], func(o IDJAGAudience) bool { return o.Issuer == a.Issuer }):
			return fmt.Errorf("authserver: ID-JAG audience %q is listed twice", a.Issuer)
		}
		if iss, err := checkIssuer(a.Issuer); err != nil {
			return fmt.Errorf("authserver: ID-JAG audience: %w", err)
		} else if iss != a.Issuer {
			return fmt.Errorf("authserver: ID-JAG audience %q: write the issuer without a trailing slash", a.Issuer)
		}
		for _, sc := range a.Scopes {
			if !oauth.ValidScopeToken(sc) {
				return fmt.Errorf("authserver: ID-JAG audience %q: scope %q is not a valid scope token", a.Issuer, sc)
			}
		}
	}
	s.cfg.IDJAGAudiences = list
	return nil
}

// idjagAudience returns the configured audience aud, or nil.
func (s *Server) idjagAudience(aud string) *IDJAGAudience {
	for i := range s.cfg.IDJAGAudiences {
		if a := &s.cfg.IDJAGAudiences[i]; a.Issuer == aud {
			return a
		}
	}
	return nil
}

// grantIDJAG issues an ID-JAG (SPECS.md §12.2 step 1): token exchange
// with requested_token_type urn:ietf:params:oauth:token-type:id-jag.
//
//   - The client is confidential; a public client is unauthorized_client.
//   - audience is REQUIRED, one value, exactly the issuer of an entry of
//     Config.IDJAGAudiences; anything else is invalid_target.
//   - resource is OPTIONAL (absolute URIs at the other domain, at most
//     maxIDJAGResources) and is carried as the ID-JAG's resource.
//   - scope is OPTIONAL; every scope must be one the audience's entry
//     allows (else invalid_scope); none asks for all it lists.
//   - subject_token is an access token of this server whose aud names the
//     client (the user's token for an agent, or a token delegated to it),
//     or an ID token of this server whose aud is the client. Refresh
//     tokens, other issuers' tokens, sender-constrained tokens and any
//     other type are invalid_request.
//   - actor_token is OPTIONAL: a JWT-SVID of the client (or its own
//     access token), as in any exchange. The act claim is built here: the
//     client, over the subject token's act; never taken from the request.
//   - authorization_details are not carried (invalid_request).
//
// The ID-JAG (typ oauth-id-jag+jwt, signed with the current signing key)
// has iss, sub (the user), aud (the audience alone), client_id (the
// client's ID here, which for a hosted agent is its SPIFFE ID, the ID it
// has at a federated server), jti, iat, exp (IDJAGLifetime, never after
// the subject token's), scope, resource, act, email and auth_time when
// known, and cnf.jkt when the request carried a DPoP proof. The response
// holds it as access_token with issued_token_type id-jag, token_type N_A
// and no refresh token; Config.OnIssue is told of it first, with
// TokenType oauth.TokenTypeIDJAG.
func (s *Server) grantIDJAG(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	f := req.form
	if req.client.public() {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "a public client cannot obtain ID-JAGs")
	}
	audiences, err := f.All("audience")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "audience has an empty value")
	}
	switch {
	case len(audiences) == 0:
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "parameter audience is missing: an ID-JAG request names the issuer of the authorization server it is for")
	case len(audiences) > 1:
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "an ID-JAG is for one authorization server")
	}
	target := s.idjagAudience(audiences[0])
	if target == nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "audience %q is not an authorization server this server issues ID-JAGs for", truncate(audiences[0], 80))
	}
	resources, err := f.All("resource")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	if len(resources) > maxIDJAGResources {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "an ID-JAG names at most %d resources", maxIDJAGResources)
	}
	var granted []string
	for _, r := range resources {
		if err := checkResourceURI(r); err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q %s", truncate(r, 80), err.Error())
		}
		if !slices.Contains(granted, r) {
			granted = append(granted, r)
		}
	}
	if f.Has("authorization_details") {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "authorization_details are not carried in ID-JAGs")
	}
	raw, err := f.Get("scope")
	if err != nil {
		return nil, err
	}
	scopes, err := oauth.ParseScope(raw)
	if err != nil {
		return nil, err
	}
	for _, sc := range scopes {
		if target.Scopes != nil && !slices.Contains(target.Scopes, sc) {
			return nil, oauth.Errorf(oauth.CodeInvalidScope, "scope %q may not be requested at %s", truncate(sc, 80), truncate(target.Issuer, 80))
		}
	}
	if len(scopes) == 0 {
		scopes = slices.Clone(target.Scopes)
	}

	subjectToken, subjectType, actorToken, actorType, err := exchangeTokens(f)
	if err != nil {
		return nil, err
	}
	subject, email, err := s.idjagSubject(ctx, req, subjectToken, subjectType)
	if err != nil {
		return nil, err
	}
	actor := &oauth.Actor{Subject: req.client.ID, ClientID: req.client.ID}
	if actorToken != "" {
		a, err := s.verifyActorToken(ctx, req, actorToken, actorType)
		if err != nil {
			return nil, err
		}
		if a.Subject != req.client.ID {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the actor_token's subject is not the authenticated client")
		}
		actor.Issuer = a.Issuer
	}
	if m := subject.MayAct; m != nil && (m.Subject != actor.Subject || m.Issuer != "" && m.Issuer != actor.Issuer && m.Issuer != s.issuer) {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token's may_act does not name the actor")
	}
	actor.Actor = subject.Actor
	if actor.Depth() > MaxActorDepth {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the delegation chain is longer than %d", MaxActorDepth)
	}

	now := s.now().UTC().Truncate(time.Second)
	exp := now.Add(IDJAGLifetime)
	if !subject.ExpiresAt.IsZero() && subject.ExpiresAt.Before(exp) {
		exp = subject.ExpiresAt
	}
	if !exp.After(now) {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "the subject token expires now")
	}
	jti, err := randomToken(16)
	if err != nil {
		return nil, err
	}
	claims := oauth.IDJAGClaims{
		Issuer:    s.issuer,
		Subject:   subject.Subject,
		Audience:  oauth.Audience{target.Issuer},
		ClientID:  req.client.ID,
		ID:        jti,
		IssuedAt:  now.Unix(),
		ExpiresAt: exp.Unix(),
		Resource:  oauth.Audience(granted),
		Scope:     oauth.FormatScope(scopes),
		Actor:     actor,
		Email:     email,
	}
	if !subject.AuthTime.IsZero() {
		claims.AuthTime = subject.AuthTime.Unix()
	}
	if req.jkt != "" {
		// SPECS.md §12.2: a valid proof at the IdP binds the grant.
		claims.Confirmation = &oauth.Confirmation{JKT: req.jkt}
	}
	token, err := s.keys.sign(ctx, jose.TypIDJAG, claims)
	if err != nil {
		return nil, err
	}
	if s.cfg.OnIssue != nil {
		it := Issued{TokenType: oauth.TokenTypeIDJAG, GrantType: oauth.GrantTokenExchange, Claims: oauth.AccessTokenClaims{
			Issuer: claims.Issuer, Subject: claims.Subject, Audience: claims.Audience, ClientID: claims.ClientID,
			IssuedAt: claims.IssuedAt, ExpiresAt: claims.ExpiresAt, ID: claims.ID, Scope: claims.Scope,
			AuthTime: claims.AuthTime, Actor: claims.Actor, Confirmation: claims.Confirmation,
		}}
		if err := s.cfg.OnIssue(ctx, it); err != nil {
			return nil, fmt.Errorf("authserver: record the issued ID-JAG: %w", err)
		}
	}
	return &oauth.TokenResponse{
		AccessToken:     token,
		IssuedTokenType: oauth.TokenTypeIDJAG,
		TokenType:       oauth.TokenTypeNA,
		ExpiresIn:       claims.ExpiresAt - s.now().Unix(),
		Scope:           claims.Scope,
	}, nil
}

// idjagSubject verifies the subject token of an ID-JAG request: an access
// token or an ID token of this server, issued for the client. It returns
// the subject and, when known, the user's email.
func (s *Server) idjagSubject(ctx context.Context, req *tokenRequest, token, typ string) (*party, string, error) {
	switch typ {
	case oauth.TokenTypeAccessToken:
		if _, iss, _, err := peekJWT(token); err == nil && iss != s.issuer {
			return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token was not issued by this server: an ID-JAG is issued for this server's own tokens")
		}
		c, err := s.VerifyAccessToken(ctx, token, "")
		if err != nil {
			if oauth.AsError(err).Code != oauth.CodeInvalidToken {
				return nil, "", err
			}
			return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token: %s", oauth.AsError(err).Description)
		}
		if !slices.Contains(c.Audience, req.client.ID) {
			return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token was not issued for this client")
		}
		if c.Confirmation != nil {
			return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token is sender-constrained")
		}
		p := &party{Subject: c.Subject, Issuer: c.Issuer, ClientID: c.ClientID, Audience: c.Audience, Actor: c.Actor,
			MayAct: c.MayAct, TokenID: c.ID, ExpiresAt: time.Unix(c.ExpiresAt, 0)}
		if c.AuthTime > 0 {
			p.AuthTime = time.Unix(c.AuthTime, 0)
		}
		u, _ := s.cfg.Users.Lookup(c.Subject)
		return p, u.Email, nil
	case oauth.TokenTypeIDToken:
		t, err := s.verifyOwnIDToken(ctx, token, req.client.ID)
		if err != nil {
			return nil, "", err
		}
		if revoked, err := s.SubjectRevoked(ctx, t.Subject, t.IssuedAt); err != nil {
			return nil, "", err
		} else if revoked {
			return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token: the subject's access was revoked")
		}
		p := &party{Subject: t.Subject, Issuer: t.Issuer, Audience: t.Audience, ExpiresAt: t.ExpiresAt}
		if at, ok := t.Claims["auth_time"].(float64); ok {
			p.AuthTime = time.Unix(int64(at), 0)
		}
		email, _ := t.Claims["email"].(string)
		if email == "" {
			u, _ := s.cfg.Users.Lookup(t.Subject)
			email = u.Email
		}
		return p, email, nil
	case oauth.TokenTypeRefreshToken:
		return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "a refresh token is not accepted as the subject of an ID-JAG: present the user's access token or ID token")
	default:
		return nil, "", oauth.Errorf(oauth.CodeInvalidRequest, "subject_token_type %q is not accepted for ID-JAGs; accepted: %s, %s",
			truncate(typ, 80), oauth.TokenTypeAccessToken, oauth.TokenTypeIDToken)
	}
}

// peekJWT reads the typ header and the iss and sub claims of a compact
// JWS before anything is verified, only to choose how to verify it.
func peekJWT(token string) (typ, iss, sub string, err error) {
	if len(token) > jose.DefaultMaxTokenSize {
		return "", "", "", errors.New("token too large")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", "", errors.New("not a compact JWS")
	}
	var h struct {
		Typ string `json:"typ"`
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	for _, p := range []struct {
		part string
		v    any
	}{{parts[0], &h}, {parts[1], &c}} {
		raw, err := base64.RawURLEncoding.DecodeString(p.part)
		if err != nil {
			return "", "", "", err
		}
		if err := json.Unmarshal(raw, p.v); err != nil {
			return "", "", "", err
		}
	}
	return h.Typ, c.Iss, c.Sub, nil
}

// isIDJAG reports whether a jwt-bearer assertion is to be checked as an
// ID-JAG: its typ says so, or its iss is this server or a trusted
// issuer (whose other tokens are then refused by the typ check, never
// taken as JWT-SVIDs).
func (s *Server) isIDJAG(assertion string) bool {
	typ, iss, _, err := peekJWT(assertion)
	if err != nil {
		return false
	}
	if jose.TypIDJAG.Matches(typ) || iss != "" && iss == s.issuer {
		return true
	}
	return iss != "" && slices.ContainsFunc(s.cfg.TrustedIssuers, func(ti TrustedIssuer) bool { return ti.Issuer == iss })
}

// grantIDJAGBearer serves the jwt-bearer grant with an ID-JAG (SPECS.md
// §12.2 step 2; RFC 7521 §5.2, RFC 7523 §3). Every refusal of the grant
// is invalid_grant.
//
//   - The client is confidential (a public one is unauthorized_client).
//   - The ID-JAG's iss is a TrustedIssuer with IDJAG set, never this
//     server: an ID-JAG it issued itself is refused here.
//   - typ oauth-id-jag+jwt; signature by the issuer's keys (asymmetric
//     alg, kid); exp, nbf and iat checked with assertionLeeway; exp at most
//     MaxAssertionLifetime ahead; sub, jti, iat and client_id present.
//   - aud is one value (a string or a one-element array) equal to this
//     server's issuer.
//   - client_id equals the authenticated client.
//   - DPoP (SPECS.md §12.2 matrix): with cnf.jkt the request must carry a
//     proof with that key and the token is DPoP-bound; without cnf a
//     proof binds the token, no proof gives a bearer token.
//   - resource, when the ID-JAG names any, must be one of them (the one
//     it names when the request names none); the scope is capped by the
//     ID-JAG's scope (none: no scope), by what the client may have and by
//     the resource, as for any grant.
//   - jti is used once per issuer (the replay cache of client
//     assertions), recorded last, so a refused request does not spend it.
//
// The access token keeps the ID-JAG's sub and act (a signed statement of
// a trusted issuer) and auth_time, has the client as client_id and
// records the originating issuer in sub_id ({"format": "iss_sub", "iss":
// the ID-JAG's iss, "sub": its sub}, RFC 9493), which resource servers
// and introspection see. No refresh token is issued: the client gets a
// new ID-JAG.
func (s *Server) grantIDJAGBearer(ctx context.Context, req *tokenRequest, assertion string) (*oauth.TokenResponse, error) {
	if req.client.public() {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "a public client cannot present ID-JAGs")
	}
	_, iss, _, err := peekJWT(assertion)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the assertion is malformed")
	}
	if iss == s.issuer {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "this server does not accept ID-JAGs it issued itself")
	}
	var ti *TrustedIssuer
	for i := range s.cfg.TrustedIssuers {
		if t := &s.cfg.TrustedIssuers[i]; t.Issuer == iss && t.IDJAG {
			ti = t
		}
	}
	if ti == nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's issuer %q is not trusted for ID-JAGs", truncate(iss, 80))
	}
	t, err := jose.Verify(ctx, assertion, jose.VerifyOptions{
		Types:          []jose.Typ{jose.TypIDJAG},
		Keys:           ti.Keys,
		RequireKID:     true,
		Issuer:         ti.Issuer,
		RequireSubject: true,
		Now:            s.now,
		Leeway:         assertionLeeway,
	})
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG is invalid: %s", joseReason(err))
	}
	var c oauth.IDJAGClaims
	if err := t.Decode(&c); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's claims are malformed")
	}
	_, hasIAT := t.Claims["iat"]
	switch {
	case len(t.Audience) != 1 || t.Audience[0] != s.issuer:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's audience must be this server's issuer alone")
	case t.ID == "" || c.ClientID == "" || !hasIAT:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG lacks jti, iat or client_id")
	case t.ExpiresAt.Sub(s.now()) > MaxAssertionLifetime:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG expires too far in the future")
	case c.ClientID != req.client.ID:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG was issued for another client")
	case c.Actor.Depth() > MaxActorDepth:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's delegation chain is longer than %d", MaxActorDepth)
	}
	if cnf := c.Confirmation; cnf != nil {
		switch {
		case cnf.JKT == "":
			return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG is bound to a key of a kind this server does not take (cnf without jkt)")
		case req.jkt == "":
			return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG is bound to a DPoP key: the request needs a DPoP proof with it")
		case req.jkt != cnf.JKT:
			return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the DPoP proof's key is not the key the ID-JAG is bound to")
		}
	}
	if revoked, err := s.SubjectRevoked(ctx, c.Subject, t.IssuedAt); err != nil {
		return nil, err
	} else if revoked {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's subject's access was revoked")
	}
	if req.form.Has("authorization_details") {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details are not granted by ID-JAGs here")
	}
	resources, err := req.form.All("resource")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	if granted := []string(c.Resource); len(granted) > 0 {
		switch {
		case len(resources) == 0 && len(granted) == 1:
			resources = granted
		case len(resources) == 0:
			return nil, oauth.Errorf(oauth.CodeInvalidTarget, "the ID-JAG grants several resources: name one")
		}
		for _, r := range resources {
			if !slices.Contains(granted, r) {
				return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q is not granted by the ID-JAG", truncate(r, 80))
			}
		}
	}
	limit, err := oauth.ParseScope(c.Scope)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG's scope is malformed")
	}
	raw, err := req.form.Get("scope")
	if err != nil {
		return nil, err
	}
	scopes, aud, err := s.targetFor(resources, raw, req.client.client, nonNil(limit))
	if err != nil {
		return nil, err
	}
	if err := s.remember(ctx, "idjag:"+ti.Issuer+":"+t.ID, t.ExpiresAt.Add(assertionLeeway)); err != nil {
		if errors.Is(err, dpop.ErrReplay) {
			return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the ID-JAG was already used")
		}
		return nil, err
	}
	g := accessGrant{
		Subject:   c.Subject,
		ClientID:  req.client.ID,
		Scopes:    scopes,
		Audience:  aud,
		Actor:     c.Actor,
		SubjectID: &oauth.SubjectID{Format: oauth.SubjectFormatIssSub, Issuer: ti.Issuer, Subject: c.Subject},
	}
	if c.AuthTime > 0 {
		g.AuthTime = time.Unix(c.AuthTime, 0)
	}
	return s.respond(ctx, req, g)
}
