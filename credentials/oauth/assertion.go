package oauth

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// PrivateKeyJWTLifetime is how long a client assertion made by
// [PrivateKeyJWT] is valid: one use, right away.
const PrivateKeyJWTLifetime = time.Minute

// privateKeyJWTClaims are the claims of a private_key_jwt client assertion
// (RFC 7523 §3, OpenID Connect Core §9).
type privateKeyJWTClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	ID        string `json:"jti"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
}

// PrivateKeyJWT is the AssertionSource of a client that authenticates
// with private_key_jwt: each assertion is a JWT signed with key (header
// kid), with iss and sub the client ID, aud the authorization server's
// issuer, a fresh jti, and a lifetime of [PrivateKeyJWTLifetime]. Use it
// with AssertionType [AssertionJWTBearer]. now nil means time.Now.
func PrivateKeyJWT(clientID string, key crypto.Signer, kid string, now func() time.Time) (AssertionSource, error) {
	if clientID == "" || key == nil {
		return nil, errors.New("oauth: private_key_jwt: a client ID and a key are required")
	}
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, audience string) (string, error) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("oauth: private_key_jwt: %w", err)
		}
		t := now()
		tok, err := jose.Sign(ctx, key, kid, jose.TypJWT, privateKeyJWTClaims{Issuer: clientID, Subject: clientID,
			Audience: audience, ID: base64.RawURLEncoding.EncodeToString(b[:]), IssuedAt: t.Unix(),
			ExpiresAt: t.Add(PrivateKeyJWTLifetime).Unix()})
		if err != nil {
			return "", fmt.Errorf("oauth: private_key_jwt: %w", err)
		}
		return tok, nil
	}, nil
}
