package authserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// codeRecord is an issued authorization code, stored in nsCodes under the
// SHA-256 of the code for s.cfg.CodeTTL.
type codeRecord struct {
	ClientID        string `json:"client_id"`
	RedirectURI     string `json:"redirect_uri"`
	RedirectURISent bool   `json:"redirect_uri_sent,omitempty"`
	CodeChallenge   string `json:"code_challenge"`
	Subject         string `json:"sub"`
	// Scopes and Resources are what the user granted; no resources means
	// the audience is this server.
	Scopes               []string        `json:"scopes,omitempty"`
	Resources            []string        `json:"resources,omitempty"`
	AuthTime             time.Time       `json:"auth_time"`
	Nonce                string          `json:"nonce,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	// JKT binds the code to a DPoP key (RFC 9449 §10).
	JKT     string    `json:"jkt,omitempty"`
	Expires time.Time `json:"expires"`
}

// usedCode marks a redeemed code until the code would have expired, so a
// second redemption can revoke what the first one issued (RFC 6749
// §4.1.2, RFC 9700 §4.2.4).
type usedCode struct {
	ClientID      string    `json:"client_id"`
	Expires       time.Time `json:"expires"`
	Family        string    `json:"family,omitempty"`
	AccessTokenID string    `json:"jti,omitempty"`
	AccessExpires int64     `json:"at_exp,omitempty"`
	// Issued is set once the first redemption has issued its tokens.
	Issued bool `json:"issued,omitempty"`
	// Reused is set by a second redemption that arrives before the first
	// one has finished; the first then revokes what it issued.
	Reused bool `json:"reused,omitempty"`
}

func usedCodeKey(codeKey string) string { return "used:" + codeKey }

var (
	errInvalidCode = oauth.Errorf(oauth.CodeInvalidGrant, "the authorization code is invalid or expired")
	errReusedCode  = oauth.Errorf(oauth.CodeInvalidGrant, "the authorization code was already used; the tokens issued for it are revoked")
)

// issueCode stores a code for the consented request and returns it.
func (s *Server) issueCode(ctx context.Context, req *authRequest) (string, error) {
	code, err := randomToken(32)
	if err != nil {
		return "", err
	}
	rec := codeRecord{
		ClientID:             req.ClientID,
		RedirectURI:          req.RedirectURI,
		RedirectURISent:      req.RedirectURISent,
		CodeChallenge:        req.CodeChallenge,
		Subject:              req.User,
		Scopes:               req.Scopes,
		Resources:            req.Resources,
		AuthTime:             req.AuthTime.UTC(),
		Nonce:                req.Nonce,
		AuthorizationDetails: req.AuthorizationDetails,
		JKT:                  req.DPoPJKT,
		Expires:              s.now().Add(s.cfg.CodeTTL).UTC(),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("authserver: encode code: %w", err)
	}
	if _, err := s.store.Put(ctx, nsCodes, tokenHash(code), data, Write{IfAbsent: true, TTL: s.cfg.CodeTTL}); err != nil {
		return "", fmt.Errorf("authserver: save code: %w", err)
	}
	return code, nil
}

// grantAuthorizationCode redeems an authorization code (RFC 6749 §4.1.3,
// RFC 7636 §4.6, RFC 8707 §2.2). The code is single-use; a second
// redemption fails and revokes the refresh tokens and access token the
// first one received.
func (s *Server) grantAuthorizationCode(ctx context.Context, req *tokenRequest) (*oauth.TokenResponse, error) {
	f := req.form
	code, err := f.Require("code")
	if err != nil {
		return nil, err
	}
	verifier, err := f.Require("code_verifier")
	if err != nil {
		return nil, err
	}
	redirectURI, err := f.Get("redirect_uri")
	if err != nil {
		return nil, err
	}
	resources, err := f.All("resource")
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	if len(code) > 256 {
		return nil, errInvalidCode
	}
	key := tokenHash(code)
	rec, version, err := getRecord[codeRecord](ctx, s.store, nsCodes, key, "code")
	if errors.Is(err, ErrNotFound) {
		return nil, s.codeReused(ctx, key)
	}
	if err != nil {
		return nil, err
	}
	if rec.ClientID != req.client.ID {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the authorization code was issued to another client")
	}
	if !s.now().Before(rec.Expires) {
		return nil, errInvalidCode
	}
	switch {
	case rec.RedirectURISent && redirectURI == "":
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "parameter redirect_uri is missing; the authorization request had one")
	case redirectURI != "" && redirectURI != rec.RedirectURI:
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "redirect_uri differs from the authorization request's")
	}
	if !validPKCEValue(verifier) {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	if subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(rec.CodeChallenge)) != 1 {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "code_verifier does not match the code_challenge")
	}
	if rec.JKT != "" && req.jkt != rec.JKT {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "the authorization code is bound to a DPoP key the request does not prove")
	}
	scopes, aud, err := s.narrow(rec, resources)
	if err != nil {
		return nil, err
	}

	// Consume the code, then leave a marker that a second redemption
	// finds. Both writes are conditional: of two concurrent redemptions
	// only one gets past the delete.
	if err := s.store.Delete(ctx, nsCodes, key, version); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			return nil, s.codeReused(ctx, key)
		}
		return nil, fmt.Errorf("authserver: consume code: %w", err)
	}
	marker := usedCode{ClientID: rec.ClientID, Expires: rec.Expires}
	markerVersion, err := s.putMarker(ctx, key, marker, Write{IfAbsent: true})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, s.codeReused(ctx, key)
		}
		return nil, err
	}

	grant := accessGrant{
		Subject:              rec.Subject,
		ClientID:             rec.ClientID,
		Scopes:               scopes,
		Audience:             aud,
		AuthTime:             rec.AuthTime,
		AuthorizationDetails: rec.AuthorizationDetails,
	}
	var rt *refreshRecord
	if req.client.allowsGrant(oauth.GrantRefreshToken) {
		rt = &refreshRecord{
			ClientID:             rec.ClientID,
			Subject:              rec.Subject,
			Scopes:               rec.Scopes,
			Resources:            rec.Resources,
			AuthTime:             rec.AuthTime,
			AuthorizationDetails: rec.AuthorizationDetails,
		}
		if req.client.public() {
			// A public client's refresh token is bound to its DPoP key
			// when it has one (RFC 9449 §5); otherwise rotation guards it.
			rt.JKT = req.jkt
		}
		// The grant's family exists before its first access token, which
		// belongs to it like every later one: revoking the family revokes
		// them all.
		if err := s.newFamily(ctx, rt); err != nil {
			return nil, err
		}
		grant.Family, marker.Family = rt.Family, rt.Family
	}
	resp, issued, err := s.respondIssued(ctx, req, grant)
	if err != nil {
		return nil, err
	}
	marker.AccessTokenID, marker.AccessExpires = issued.ID, issued.ExpiresAt.Unix()
	if rt != nil {
		if resp.RefreshToken, _, err = s.issueRefreshToken(ctx, *rt); err != nil {
			return nil, err
		}
	}
	if slices.Contains(rec.Scopes, "openid") {
		if resp.IDToken, err = s.issueIDToken(ctx, rec, resp.AccessToken); err != nil {
			return nil, err
		}
	}

	marker.Issued = true
	if _, err := s.putMarker(ctx, key, marker, Write{IfVersion: markerVersion}); err != nil {
		if errors.Is(err, ErrConflict) {
			// The code came back while this redemption was running.
			if rerr := s.revokeIssued(ctx, marker); rerr != nil {
				return nil, rerr
			}
			s.log.WarnContext(ctx, "authorization code reuse: tokens revoked", "client_id", rec.ClientID, "sub", rec.Subject)
			return nil, errReusedCode
		}
		return nil, err
	}
	return resp, nil
}

// narrow applies the token request's resource parameters (RFC 8707 §2.2):
// each must be among the granted resources, and the scope is cut to the
// scopes of the resources named plus the OpenID Connect scopes.
func (s *Server) narrow(rec *codeRecord, resources []string) (scopes, aud []string, err error) {
	if len(resources) == 0 {
		switch len(rec.Resources) {
		case 0:
			return rec.Scopes, []string{s.issuer}, nil
		case 1:
			return rec.Scopes, rec.Resources, nil
		default:
			// A code for several resources, from before tokens had one
			// audience: the client names the one it wants.
			return nil, nil, errSeveralResources
		}
	}
	var resourceScopes []string
	for _, res := range resources {
		if !slices.Contains(rec.Resources, res) {
			return nil, nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource %q was not part of the authorization", truncate(res, 80))
		}
		if !slices.Contains(aud, res) {
			aud = append(aud, res)
		}
		if len(aud) > 1 {
			return nil, nil, errSeveralResources
		}
		resourceScopes = append(resourceScopes, s.resources[res].Scopes...)
	}
	for _, sc := range rec.Scopes {
		if userScopes[sc] || slices.Contains(resourceScopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes, aud, nil
}

func (s *Server) putMarker(ctx context.Context, codeKey string, m usedCode, w Write) (int64, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("authserver: encode used code: %w", err)
	}
	w.TTL = m.Expires.Sub(s.now())
	if w.TTL < time.Second {
		w.TTL = time.Second
	}
	v, err := s.store.Put(ctx, nsCodes, usedCodeKey(codeKey), data, w)
	if err != nil && !errors.Is(err, ErrConflict) {
		return 0, fmt.Errorf("authserver: save used code: %w", err)
	}
	return v, err
}

// codeReused handles a code that is not (or no longer) redeemable: when
// its used marker is there, the code was redeemed before, and what that
// redemption issued is revoked.
func (s *Server) codeReused(ctx context.Context, codeKey string) error {
	for range 5 {
		mp, version, err := getRecord[usedCode](ctx, s.store, nsCodes, usedCodeKey(codeKey), "used code")
		if errors.Is(err, ErrNotFound) {
			return errInvalidCode
		}
		if err != nil {
			return err
		}
		m := *mp
		if m.Issued {
			if err := s.revokeIssued(ctx, m); err != nil {
				return err
			}
			s.log.WarnContext(ctx, "authorization code reuse: tokens revoked", "client_id", m.ClientID)
			return errReusedCode
		}
		if m.Reused {
			return errReusedCode
		}
		// The first redemption is still running: flag the reuse so it
		// revokes what it issues.
		m.Reused = true
		if _, err := s.putMarker(ctx, codeKey, m, Write{IfVersion: version}); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return err
		}
		return errReusedCode
	}
	return fmt.Errorf("authserver: used code: too many concurrent writers")
}

// revokeIssued revokes the refresh family and access token a code's
// redemption issued, and so every token exchanged from them.
func (s *Server) revokeIssued(ctx context.Context, m usedCode) error {
	if m.Family != "" {
		if err := s.revokeFamily(ctx, m.Family); err != nil {
			return err
		}
	}
	if m.AccessTokenID != "" {
		if err := s.revokeAccessToken(ctx, m.AccessTokenID, time.Unix(m.AccessExpires, 0)); err != nil {
			return err
		}
	}
	return nil
}

// idTokenClaims are the claims of an ID token (OpenID Connect Core §2,
// §5.1).
type idTokenClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Audience  oauth.Audience `json:"aud"`
	ExpiresAt int64          `json:"exp"`
	IssuedAt  int64          `json:"iat"`
	AuthTime  int64          `json:"auth_time,omitempty"`
	Nonce     string         `json:"nonce,omitempty"`
	ATHash    string         `json:"at_hash,omitempty"`
	Name      string         `json:"name,omitempty"`
	Email     string         `json:"email,omitempty"`
}

// issueIDToken signs the ID token of a code redemption (OpenID Connect
// Core §3.1.3.6): audience the client, lifetime that of the access token,
// at_hash the left half of the access token's SHA-256.
func (s *Server) issueIDToken(ctx context.Context, rec *codeRecord, accessToken string) (string, error) {
	now := s.now().UTC().Truncate(time.Second)
	sum := sha256.Sum256([]byte(accessToken))
	c := idTokenClaims{
		Issuer:    s.issuer,
		Subject:   rec.Subject,
		Audience:  oauth.Audience{rec.ClientID},
		ExpiresAt: now.Add(s.cfg.AccessTokenTTL).Unix(),
		IssuedAt:  now.Unix(),
		Nonce:     rec.Nonce,
		ATHash:    base64.RawURLEncoding.EncodeToString(sum[:sha256.Size/2]),
	}
	if !rec.AuthTime.IsZero() {
		c.AuthTime = rec.AuthTime.Unix()
	}
	c.Name, c.Email = s.profile(rec.Subject, rec.Scopes)
	token, err := s.keys.sign(ctx, jose.TypJWT, c)
	if err != nil {
		return "", err
	}
	return token, nil
}

// profile returns the name and email of user that scopes grant: name with
// profile, email with email (OpenID Connect Core §5.4).
func (s *Server) profile(user string, scopes []string) (name, email string) {
	if s.cfg.Users == nil {
		return "", ""
	}
	u, ok := s.cfg.Users.Lookup(user)
	if !ok {
		return "", ""
	}
	if slices.Contains(scopes, "profile") {
		name = u.DisplayName
		if name == "" {
			name = u.Name
		}
	}
	if slices.Contains(scopes, "email") {
		email = u.Email
	}
	return name, email
}
