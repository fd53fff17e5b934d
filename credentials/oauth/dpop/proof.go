package dpop

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// jtiBytes is the entropy of a proof's jti: 128 bits (RFC 9449 §11.1).
const jtiBytes = 16

// ProofParams is what a proof is bound to.
type ProofParams struct {
	// Method is the HTTP method of the request (htm), e.g. "POST".
	Method string
	// URL is the absolute http or https URL of the request; the proof's
	// htu is this URL without query and fragment.
	URL string
	// AccessToken, when not empty, is bound to the proof through ath
	// (RFC 9449 §4.2, §7).
	AccessToken string
	// Nonce is the server's last DPoP-Nonce, if any (RFC 9449 §8).
	Nonce string
	// Now is the proof's iat; zero means time.Now.
	Now time.Time
}

// proofClaims are the claims NewProof writes (RFC 9449 §4.2).
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// NewProof signs a DPoP proof for one request with key (RFC 9449 §4.2):
// header typ dpop+jwt, alg from the key ([jose.AlgorithmForKey]) and the
// public key as jwk; claims jti (128 random bits), htm, htu, iat, and ath
// and nonce when p sets them.
func NewProof(ctx context.Context, key crypto.Signer, p ProofParams) (string, error) {
	if key == nil {
		return "", errors.New("dpop: proof needs a key")
	}
	if p.Method == "" || strings.ContainsAny(p.Method, " \t\r\n") {
		return "", fmt.Errorf("dpop: proof method %q is not an HTTP method", clip(p.Method, 32))
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return "", fmt.Errorf("dpop: proof URL: %w", err)
	}
	if _, ok := normalizeURL(u); !ok {
		return "", fmt.Errorf("dpop: proof URL %q is not an absolute http(s) URL", clip(p.URL, 128))
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	jti := make([]byte, jtiBytes)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop: jti: %w", err)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	c := proofClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(jti),
		HTM:   p.Method,
		HTU:   u.String(),
		IAT:   now.Unix(),
		Nonce: p.Nonce,
	}
	if p.AccessToken != "" {
		c.ATH = AccessTokenHash(p.AccessToken)
	}
	tok, err := jose.SignWithHeader(ctx, key, jose.Header{Typ: jose.TypDPoP, EmbedJWK: true}, c)
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	return tok, nil
}

// Thumbprint returns the JWK SHA-256 thumbprint of key (RFC 7638), the
// value of cnf.jkt and dpop_jkt (RFC 9449 §6.1, §10).
func Thumbprint(key crypto.PublicKey) (string, error) {
	t, err := jose.Thumbprint(key)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	return t, nil
}

// AccessTokenHash returns the ath of an access token: the base64url
// encoding, without padding, of the SHA-256 of its ASCII octets (RFC 9449
// §4.2).
func AccessTokenHash(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
