package login

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Session is a sign-in as a [Store] keeps it: who issued it, to which
// client, the endpoints a later command needs, and the tokens. It holds
// credentials: keep it owner-only.
type Session struct {
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// Resource is the RFC 8707 resource the access token is for (its aud),
	// if one was asked for.
	Resource string `json:"resource,omitempty"`
	// Scope is the granted scope (as the token response said, else as
	// asked).
	Scope              string `json:"scope,omitempty"`
	TokenEndpoint      string `json:"token_endpoint"`
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	UserinfoEndpoint   string `json:"userinfo_endpoint,omitempty"`

	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is when the access token expires (zero: not known).
	Expiry time.Time `json:"expiry,omitzero"`
	// IDToken is the OpenID Connect ID token of the sign-in, if any.
	IDToken string `json:"id_token,omitempty"`
}

// Token is the session's access token in x/oauth2's form.
func (s *Session) Token() *oauth2.Token {
	return &oauth2.Token{AccessToken: s.AccessToken, TokenType: s.TokenType, RefreshToken: s.RefreshToken, Expiry: s.Expiry}
}

// valid reports whether the access token may still be used at now.
func (s *Session) valid(now time.Time) bool {
	return s.AccessToken != "" && (s.Expiry.IsZero() || now.Before(s.Expiry.Add(-expiryMargin)))
}

// update takes a token response: the access token, its expiry (from
// expires_in, on the caller's clock), a rotated refresh token and a new ID
// token when the response has them.
func (s *Session) update(tok *oauth2.Token, now time.Time) {
	s.AccessToken, s.TokenType = tok.AccessToken, tok.TokenType
	switch {
	case tok.ExpiresIn > 0:
		s.Expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()
	default:
		s.Expiry = tok.Expiry.UTC()
	}
	if tok.RefreshToken != "" {
		s.RefreshToken = tok.RefreshToken
	}
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		s.IDToken = id
	}
}

// Claims is who a session says is signed in, as read by
// [Session.ClaimsInsecure]: unverified.
type Claims struct {
	Subject string
	Issuer  string
	Name    string
	Email   string
	// ExpiresAt is the token's exp (zero: none).
	ExpiresAt time.Time
	// From names the token read: "ID token" or "access token".
	From string
}

// ClaimsInsecure reads the user from the session's ID token, or from its
// access token when there is none (a JWT access token, RFC 9068). NOTHING
// IS VERIFIED: no signature, issuer, audience or expiry. It is for showing
// the user who they are signed in as, never for a decision; the server
// that gets the access token verifies it.
func (s *Session) ClaimsInsecure() (Claims, error) {
	token, from := s.IDToken, "ID token"
	if token == "" {
		token, from = s.AccessToken, "access token"
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, errors.New("login: the session's tokens are not JWTs; who is signed in is not known here")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("login: the %s is malformed: %w", from, err)
	}
	var c struct {
		Subject string `json:"sub"`
		Issuer  string `json:"iss"`
		Name    string `json:"name"`
		Email   string `json:"email"`
		Exp     int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("login: the %s is malformed: %w", from, err)
	}
	out := Claims{Subject: c.Subject, Issuer: c.Issuer, Name: c.Name, Email: c.Email, From: from}
	if c.Exp > 0 {
		out.ExpiresAt = time.Unix(c.Exp, 0).UTC()
	}
	return out, nil
}
