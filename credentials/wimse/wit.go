package wimse

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
)

// maxWITSize caps the compact WIT accepted, before any decoding.
const maxWITSize = 16 << 10

// WIT is a verified Workload Identity Token (draft-ietf-wimse-workload-creds
// as digested in SPECS.md §8.2, and its SPIFFE profile WIT-SVID, §10.4).
// It holds no copy of the token, only its hash.
type WIT struct {
	// Subject is the workload identifier (sub): a SPIFFE ID or a wimse://
	// URI. Authorize on the whole identifier, never on its path alone.
	Subject credentials.Identity
	// Issuer is the iss claim; empty when absent.
	Issuer string
	// ID is the jti claim; empty when absent. It is not a replay guard:
	// a WIT is presented many times (SPECS.md §10.4).
	ID string
	// KeyID is the kid of the authority key that signed the WIT.
	KeyID string
	// IssuedAt, NotBefore and ExpiresAt are iat, nbf and exp; the first
	// two are zero when absent.
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// Key is the workload's public key from cnf.jwk; proofs must be
	// signed with it.
	Key crypto.PublicKey
	// Alg is cnf.jwk.alg, the only algorithm a proof may use.
	Alg jose.Alg
	// Hash is base64url(SHA-256(token)), the value a WPT's wth carries
	// and what logs may hold instead of the token.
	Hash string
}

// TokenHash returns base64url(SHA-256(token)) without padding: the wth,
// ath, tth and oth values of a WPT (SPECS.md §8.3), and what logs hold
// instead of a token.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyWIT checks a Workload Identity Token and returns what it asserts.
//
// It reads sub first, without trusting it, only to pick the trust domain
// whose WIT authority keys verify the token (SPECS.md §8.2: trust anchors
// are those of the trust domain in sub); a trust domain not in
// Config.TrustDomains wraps credentials.ErrUntrustedDomain. Then
// credentials/jose checks the compact form, an allowed asymmetric alg,
// typ wit+jwt ([ErrWrongType]: an access token, JWT-SVID, Txn-Token or WPT
// is refused), the signature with the authority key named by kid
// ([ErrSignature]), iss when the Authority names one, exp (required),
// nbf and iat with the allowed skew ([ErrExpired], [ErrNotYetValid]). Last
// it checks that sub is a valid workload identifier and that cnf.jwk is a
// public key (never a private one) with an asymmetric alg that fits it.
// A spiffe:// subject is held to the WIT-SVID profile (SPECS.md §10.4):
// kid required, no aud claim. Every error wraps [ErrInvalidWIT].
func (v *Verifier) VerifyWIT(ctx context.Context, token string) (*WIT, error) {
	if len(token) > maxWITSize {
		return nil, witError(nil, "token of %d bytes exceeds %d", len(token), maxWITSize)
	}
	sub, err := peekSubject(token)
	if err != nil {
		return nil, err
	}
	id, err := credentials.ParseIdentity(sub)
	if err != nil {
		return nil, witError(nil, "sub: %w", err)
	}
	auth, ok := v.domains[id.TrustDomain()]
	if !ok {
		return nil, witError(credentials.ErrUntrustedDomain, "trust domain %q", id.TrustDomain())
	}
	spiffe := id.Scheme() == credentials.SchemeSPIFFE
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:          []jose.Typ{jose.TypWIT},
		Algorithms:     v.algs,
		Keys:           auth.Keys,
		RequireKID:     spiffe,
		Issuer:         auth.Issuer,
		ForbidAudience: spiffe,
		RequireSubject: true,
		Now:            v.now,
		Leeway:         v.leeway,
		MaxTokenSize:   maxWITSize,
	})
	if err != nil {
		return nil, joseError(ErrInvalidWIT, "wit", err)
	}
	if t.Subject != sub {
		// Cannot happen: jose refuses duplicate members, so the verified
		// payload has the sub read above.
		return nil, witError(nil, "sub changed under verification")
	}
	if auth.Issuer != "" && t.Issuer == "" {
		return nil, witError(nil, "no iss claim")
	}
	var members map[string]json.RawMessage
	if err := t.Decode(&members); err != nil {
		return nil, witError(nil, "claims: %w", err)
	}
	key, alg, err := confirmationKey(members)
	if err != nil {
		return nil, err
	}
	return &WIT{
		Subject:   id,
		Issuer:    t.Issuer,
		ID:        t.ID,
		KeyID:     t.KID,
		IssuedAt:  t.IssuedAt,
		NotBefore: t.NotBefore,
		ExpiresAt: t.ExpiresAt,
		Key:       key,
		Alg:       alg,
		Hash:      TokenHash(token),
	}, nil
}

// peekSubject returns the sub claim of a compact JWT without verifying
// anything but its shape. Member names are matched exactly.
func peekSubject(token string) (string, error) {
	members, err := peekClaims(token)
	if err != nil {
		return "", err
	}
	raw, ok := members["sub"]
	if !ok {
		return "", witError(nil, "no sub claim")
	}
	var sub string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &sub) != nil {
		return "", witError(nil, "sub is not a string")
	}
	return sub, nil
}

// peekClaims decodes the payload of a compact JWS without verifying it.
func peekClaims(token string) (map[string]json.RawMessage, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, witError(nil, "not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return nil, witError(nil, "payload is not base64url")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil || members == nil {
		return nil, witError(nil, "payload is not a JSON object")
	}
	return members, nil
}

// confirmationKey reads cnf.jwk and cnf.jwk.alg (SPECS.md §8.2): a public
// key of a supported type, and an asymmetric signing algorithm that fits
// it.
func confirmationKey(members map[string]json.RawMessage) (crypto.PublicKey, jose.Alg, error) {
	rawCnf, ok := members["cnf"]
	if !ok {
		return nil, "", witError(nil, "no cnf claim")
	}
	var cnf map[string]json.RawMessage
	if err := json.Unmarshal(rawCnf, &cnf); err != nil || cnf == nil {
		return nil, "", witError(nil, "cnf is not an object")
	}
	rawJWK, ok := cnf["jwk"]
	if !ok {
		return nil, "", witError(nil, "no cnf.jwk")
	}
	var jwk map[string]json.RawMessage
	if err := json.Unmarshal(rawJWK, &jwk); err != nil || jwk == nil {
		return nil, "", witError(nil, "cnf.jwk is not an object")
	}
	var alg string
	if raw, ok := jwk["alg"]; !ok || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &alg) != nil || alg == "" {
		return nil, "", witError(nil, "cnf.jwk.alg missing or not a string")
	}
	key, err := jose.ParsePublicJWK(rawJWK)
	if err != nil {
		return nil, "", witError(nil, "cnf.jwk: %w", err)
	}
	if err := keyFitsAlg(jose.Alg(alg), key); err != nil {
		return nil, "", witError(nil, "cnf.jwk: %w", err)
	}
	return key, jose.Alg(alg), nil
}

// knownAlg reports whether a is an asymmetric JWS signing algorithm this
// package can verify.
func knownAlg(a jose.Alg) bool {
	switch a {
	case jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		return true
	}
	return false
}

// keyFitsAlg reports whether pub can make signatures with alg: each ES
// algorithm is bound to one curve (RFC 7518 §3.4), RS and PS need RSA of
// at least 2048 bits, EdDSA needs Ed25519. none, HS* and any other value
// are refused.
func keyFitsAlg(alg jose.Alg, pub crypto.PublicKey) error {
	switch alg {
	case jose.ES256, jose.ES384, jose.ES512:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an EC key, have %T", alg, pub)
		}
		want := map[jose.Alg]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}[alg]
		if k.Curve != want {
			return fmt.Errorf("alg %s needs curve %s", alg, want.Params().Name)
		}
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key, have %T", alg, pub)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits", k.N.BitLen())
		}
	case jose.EdDSA:
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return fmt.Errorf("alg %s needs an Ed25519 key, have %T", alg, pub)
		}
	default:
		return fmt.Errorf("alg %q is not an asymmetric signing algorithm", truncate(string(alg)))
	}
	return nil
}

// presented is what a workload learns from its own WIT before sending it:
// the hash and the confirmation key and algorithm, read without
// verification (the workload got the WIT from its own identity provider).
type presented struct {
	hash string
	key  crypto.PublicKey
	alg  jose.Alg
}

// inspectOwnWIT reads the cnf of the caller's own WIT and checks that
// signer holds its private key.
func inspectOwnWIT(wit string, signer crypto.Signer) (*presented, error) {
	if signer == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrConfig)
	}
	if wit == "" || len(wit) > maxWITSize {
		return nil, fmt.Errorf("%w: no WIT, or WIT too large", ErrConfig)
	}
	members, err := peekClaims(wit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	key, alg, err := confirmationKey(members)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !publicKeyEqual(signer.Public(), key) {
		return nil, fmt.Errorf("%w: the signing key is not the WIT's cnf.jwk", ErrConfig)
	}
	return &presented{hash: TokenHash(wit), key: key, alg: alg}, nil
}

// WITAuthorityKeys reads a SPIFFE trust bundle (SPECS.md §10.5; what
// credentials/ca serves) and returns a key lookup over its WIT authorities:
// the JWKs with "use": "wit-svid", each with a kid unique in the bundle.
// Keys of other uses (x509-svid, jwt-svid) and of unknown key types are
// skipped. A bundle with no WIT authority yields a lookup that finds
// nothing, so every WIT of that trust domain is refused. Use one lookup
// per trust domain.
func WITAuthorityKeys(bundle []byte) (jose.KeyFunc, error) {
	if len(bundle) > jose.DefaultMaxKeySetSize {
		return nil, fmt.Errorf("%w: bundle of %d bytes", ErrConfig, len(bundle))
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(bundle, &doc); err != nil || doc.Keys == nil {
		return nil, fmt.Errorf("%w: bundle is not a JWK Set", ErrConfig)
	}
	keys := make(map[string]crypto.PublicKey)
	for i, raw := range doc.Keys {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return nil, fmt.Errorf("%w: bundle key %d is not an object", ErrConfig, i)
		}
		var use, kid, kty string
		for name, dst := range map[string]*string{"use": &use, "kid": &kid, "kty": &kty} {
			if r, ok := m[name]; ok && json.Unmarshal(r, dst) != nil {
				return nil, fmt.Errorf("%w: bundle key %d: %s is not a string", ErrConfig, i, name)
			}
		}
		if use != "wit-svid" {
			continue
		}
		switch kty {
		case "EC", "RSA", "OKP":
		default:
			continue // unknown kty: ignore the key (SPECS.md §10.5)
		}
		if kid == "" {
			return nil, fmt.Errorf("%w: bundle key %d: WIT authority without kid", ErrConfig, i)
		}
		if _, dup := keys[kid]; dup {
			return nil, fmt.Errorf("%w: bundle: duplicate WIT authority kid %q", ErrConfig, kid)
		}
		// The SPIFFE "use" value is not one a generic JWK parser knows.
		delete(m, "use")
		stripped, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%w: bundle key %q: %w", ErrConfig, kid, err)
		}
		pub, err := jose.ParsePublicJWK(stripped)
		if err != nil {
			return nil, fmt.Errorf("%w: bundle key %q: %w", ErrConfig, kid, err)
		}
		keys[kid] = pub
	}
	lookup := jose.StaticKeys(keys)
	return func(ctx context.Context, kid string) (crypto.PublicKey, error) {
		if kid == "" {
			// WIT-SVID authorities are always selected by kid.
			return nil, fmt.Errorf("%w: token has no kid", jose.ErrUnknownKey)
		}
		return lookup(ctx, kid)
	}, nil
}

// publicKeyEqual reports whether a and b are the same public key.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
