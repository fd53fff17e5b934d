package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"net/url"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// checkID refuses a zero ID and an ID outside the CA's trust domain.
func (c *CA) checkID(id spiffeid.ID) error {
	if id.IsZero() {
		return fmt.Errorf("%w: zero SPIFFE ID", ErrInvalidArgument)
	}
	if id.TrustDomain() != c.td {
		return fmt.Errorf("ca: %w: %s is not in trust domain %s", credentials.ErrUntrustedDomain, id, c.td.Name())
	}
	return nil
}

// signer returns the current authority of kind k, which must be valid at
// now.
func (s *snapshot) signer(k kind, now time.Time) (*authority, error) {
	a := s.state.kinds[k].current
	if a == nil || a.expired(now) {
		return nil, fmt.Errorf("%w: no %s authority valid at %s", ErrNoAuthority, k, now.UTC().Format(time.RFC3339))
	}
	return a, nil
}

// expiry returns the end of a credential issued at now by a: now+SVIDTTL,
// but never after the authority's own expiry.
func (c *CA) expiry(a *authority, now time.Time) time.Time {
	exp := now.Add(c.svidTTL)
	if exp.After(a.notAfter) {
		exp = a.notAfter
	}
	return exp
}

// NewX509SVID issues an X509-SVID for id (SPECS.md §10.2) with a fresh
// P-256 key, signed by the current X.509 authority: exactly one URI SAN,
// cA=false, key usage digitalSignature, extended key usage serverAuth and
// clientAuth, valid from 10 s before now until now+SVIDTTL or the
// authority's expiry, whichever comes first. Certificates holds the leaf
// only; the root is in the bundle.
func (c *CA) NewX509SVID(ctx context.Context, id spiffeid.ID) (*x509svid.SVID, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: x509-svid: %w", err)
	}
	if err := c.checkID(id); err != nil {
		return nil, err
	}
	now := c.now().UTC().Truncate(time.Second)
	a, err := c.current().signer(kindX509, now)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), c.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: x509-svid: generate key: %w", err)
	}
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-backdate)
	if notBefore.Before(a.cert.NotBefore) {
		notBefore = a.cert.NotBefore
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              c.expiry(a, now),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: x509-svid: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: x509-svid: parse certificate: %w", err)
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, nil
}

// jwtSVIDClaims are the claims of a JWT-SVID (SPECS.md §10.3).
type jwtSVIDClaims struct {
	Subject  string `json:"sub"`
	Audience any    `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	// ID makes every JWT-SVID distinct, so a relying party can accept
	// each one once (an authorization server's replay cache).
	ID string `json:"jti"`
}

// NewJWTSVID issues a JWT-SVID for id and audience (SPECS.md §10.3),
// signed with ES256 by the current JWT authority, with header alg, kid and
// typ "JWT" and claims sub, aud (a string for one audience, an array
// otherwise), exp, iat and a random jti. It returns the token and its expiry.
func (c *CA) NewJWTSVID(ctx context.Context, id spiffeid.ID, audience []string) (string, time.Time, error) {
	if err := c.checkID(id); err != nil {
		return "", time.Time{}, err
	}
	if len(audience) == 0 {
		return "", time.Time{}, fmt.Errorf("%w: audience is required", ErrInvalidArgument)
	}
	for _, a := range audience {
		if a == "" {
			return "", time.Time{}, fmt.Errorf("%w: empty audience value", ErrInvalidArgument)
		}
	}
	now := c.now().UTC().Truncate(time.Second)
	a, err := c.current().signer(kindJWT, now)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := c.expiry(a, now)
	jti, err := c.randomID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ca: jwt-svid: %w", err)
	}
	claims := jwtSVIDClaims{Subject: id.String(), Expiry: exp.Unix(), IssuedAt: now.Unix(), ID: jti}
	if len(audience) == 1 {
		claims.Audience = audience[0]
	} else {
		claims.Audience = audience
	}
	tok, err := jose.Sign(ctx, a.key, a.kid, jose.TypJWT, claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ca: jwt-svid: %w", err)
	}
	return tok, exp, nil
}

// witSVIDClaims are the claims of a WIT-SVID (SPECS.md §10.4, §8.2).
type witSVIDClaims struct {
	Issuer   string         `json:"iss"`
	Subject  string         `json:"sub"`
	Expiry   int64          `json:"exp"`
	IssuedAt int64          `json:"iat"`
	ID       string         `json:"jti"`
	Confirm  map[string]any `json:"cnf"`
}

// NewWITSVID issues a WIT-SVID for id bound to a fresh P-256 key, which it
// returns with the token and its expiry. See [CA.NewWITSVIDForKey].
func (c *CA) NewWITSVID(ctx context.Context, id spiffeid.ID) (token string, key crypto.Signer, expiresAt time.Time, err error) {
	if err := c.checkID(id); err != nil {
		return "", nil, time.Time{}, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), c.rand)
	if err != nil {
		return "", nil, time.Time{}, fmt.Errorf("ca: wit-svid: generate key: %w", err)
	}
	token, expiresAt, err = c.NewWITSVIDForKey(ctx, id, &k.PublicKey)
	if err != nil {
		return "", nil, time.Time{}, err
	}
	return token, k, expiresAt, nil
}

// NewWITSVIDForKey issues a WIT-SVID for id bound to the public key pub
// (SPECS.md §10.4, §8.2), signed with ES256 by the current WIT authority:
// header typ "wit+jwt" and kid; claims iss (the trust domain's SPIFFE ID,
// which is not an OIDC-discoverable URL), sub, exp, iat, a random jti and
// cnf.jwk carrying the key's alg. There is no aud claim. pub must be an
// ECDSA P-256/P-384/P-521 or RSA (≥ 2048 bits) key.
func (c *CA) NewWITSVIDForKey(ctx context.Context, id spiffeid.ID, pub crypto.PublicKey) (string, time.Time, error) {
	if err := c.checkID(id); err != nil {
		return "", time.Time{}, err
	}
	alg, err := jose.AlgorithmForKey(pub)
	if err != nil || alg == jose.EdDSA {
		return "", time.Time{}, fmt.Errorf("%w: WIT key: %T is not an ECDSA or RSA public key", ErrInvalidArgument, pub)
	}
	jwk, err := jose.PublicJWK(pub, "", string(alg), "")
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: WIT key: %w", ErrInvalidArgument, err)
	}
	now := c.now().UTC().Truncate(time.Second)
	a, err := c.current().signer(kindWIT, now)
	if err != nil {
		return "", time.Time{}, err
	}
	jti, err := c.randomID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ca: wit-svid: jti: %w", err)
	}
	exp := c.expiry(a, now)
	claims := witSVIDClaims{
		Issuer:   c.td.IDString(),
		Subject:  id.String(),
		Expiry:   exp.Unix(),
		IssuedAt: now.Unix(),
		ID:       jti,
		Confirm:  map[string]any{"jwk": jwk},
	}
	tok, err := jose.Sign(ctx, a.key, a.kid, jose.TypWIT, claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("ca: wit-svid: %w", err)
	}
	return tok, exp, nil
}

// jwtSVIDHeaders are the only header parameters a JWT-SVID may carry
// (SPECS.md §10.3).
var jwtSVIDHeaders = []string{"alg", "kid", "typ"}

// ValidateJWTSVID validates a JWT-SVID (SPECS.md §10.3) of this trust
// domain for audience against the JWT authorities of the current bundle at
// Now: header alg (ES/RS/PS only), kid and optional typ JWT or JOSE and
// nothing else, a valid signature, sub a SPIFFE ID of the trust domain, aud
// containing audience, exp in the future. It returns the subject and all
// claims. Errors wrap ErrInvalidToken (and the jose sentinel saying why),
// credentials.ErrUntrustedDomain or ErrInvalidArgument. The checks are
// those of [ValidateJWTSVIDFrom] with this trust domain's bundle only.
func (c *CA) ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, map[string]any, error) {
	return ValidateJWTSVIDFrom(ctx, token, audience, c.current().bundle, c.now)
}
