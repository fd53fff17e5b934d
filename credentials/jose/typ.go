package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"strings"
)

// Typ is the value of the JOSE typ header parameter (RFC 7515 §4.1.9)
// naming the kind of token (SPECS.md X.1).
type Typ string

// Token types agenthost mints or accepts (SPECS.md X.1).
const (
	TypAccessToken       Typ = "at+jwt"                           // RFC 9068 JWT access token
	TypDPoP              Typ = "dpop+jwt"                         // RFC 9449 DPoP proof
	TypTxnToken          Typ = "txntoken+jwt"                     // Transaction Token
	TypWIT               Typ = "wit+jwt"                          // WIMSE Workload Identity Token, WIT-SVID
	TypWPT               Typ = "wpt+jwt"                          // WIMSE Workload Proof Token
	TypIDJAG             Typ = "oauth-id-jag+jwt"                 // Identity Assertion JWT Authorization Grant
	TypSecEvent          Typ = "secevent+jwt"                     // RFC 8417 Security Event Token
	TypClientAttestPoP   Typ = "oauth-client-attestation-pop+jwt" // attestation-based client auth PoP
	TypJWT               Typ = "JWT"                              // generic JWT; JWT-SVID (SPECS.md §10.3)
	TypJOSE              Typ = "JOSE"                             // generic JWS; JWT-SVID, A2A card signature
	typApplicationPrefix     = "application/"
)

// normalizeTyp returns the comparison form of a typ value: lowercase, with
// an "application/" prefix removed (RFC 7515 §4.1.9).
func normalizeTyp(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, typApplicationPrefix)
}

// Matches reports whether the typ header value v names t, comparing case
// insensitively and accepting the form with the "application/" prefix
// (RFC 7515 §4.1.9).
func (t Typ) Matches(v string) bool {
	return v != "" && normalizeTyp(v) == normalizeTyp(string(t))
}

// Alg is a JWS algorithm name (RFC 7518 §3.1, RFC 8037).
type Alg string

// Asymmetric JWS algorithms Verify can accept. Symmetric (HS*) algorithms
// and "none" have no constant and are always refused.
const (
	ES256 Alg = "ES256"
	ES384 Alg = "ES384"
	ES512 Alg = "ES512"
	RS256 Alg = "RS256"
	RS384 Alg = "RS384"
	RS512 Alg = "RS512"
	PS256 Alg = "PS256"
	PS384 Alg = "PS384"
	PS512 Alg = "PS512"
	EdDSA Alg = "EdDSA"
)

// DefaultAlgorithms is the set Verify accepts when VerifyOptions.Algorithms
// is empty: the JWT-SVID set of SPECS.md §10.3 (ECDSA, RSA PKCS#1 v1.5 and
// RSA-PSS). EdDSA must be allowed explicitly.
var DefaultAlgorithms = []Alg{ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512}

// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
const minRSABits = 2048

func knownAlg(a Alg) bool {
	switch a {
	case ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA:
		return true
	}
	return false
}

// AlgorithmForKey returns the JWS algorithm Sign uses for a key with public
// part pub: ES256, ES384 or ES512 for the P-256, P-384 and P-521 curves,
// RS256 for RSA keys of at least 2048 bits and EdDSA for Ed25519. Any other
// key wraps ErrUnsupportedKey.
func AlgorithmForKey(pub crypto.PublicKey) (Alg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return "", fmt.Errorf("%w: incomplete ecdsa key", ErrUnsupportedKey)
		}
		switch k.Curve {
		case elliptic.P256():
			return ES256, nil
		case elliptic.P384():
			return ES384, nil
		case elliptic.P521():
			return ES512, nil
		}
		return "", fmt.Errorf("%w: ecdsa curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", fmt.Errorf("%w: nil rsa key", ErrUnsupportedKey)
		}
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("%w: rsa key of %d bits, need %d", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
		return RS256, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("%w: ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
		return EdDSA, nil
	}
	return "", fmt.Errorf("%w: key type %T", ErrUnsupportedKey, pub)
}

// checkKeyForAlg reports whether pub may verify signatures made with alg
// (RFC 7518 §3.4: each ES algorithm is bound to one curve).
func checkKeyForAlg(alg Alg, pub crypto.PublicKey) error {
	switch alg {
	case ES256, ES384, ES512:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return fmt.Errorf("%w: %s needs an ecdsa key, have %T", ErrAlgorithm, alg, pub)
		}
		want := elliptic.P256()
		switch alg {
		case ES384:
			want = elliptic.P384()
		case ES512:
			want = elliptic.P521()
		}
		if k.Curve != want {
			return fmt.Errorf("%w: %s needs curve %s, key is %s", ErrAlgorithm, alg, want.Params().Name, k.Curve.Params().Name)
		}
	case RS256, RS384, RS512, PS256, PS384, PS512:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return fmt.Errorf("%w: %s needs an rsa key, have %T", ErrAlgorithm, alg, pub)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: rsa key of %d bits, need %d", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
	case EdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: %s needs an ed25519 key, have %T", ErrAlgorithm, alg, pub)
		}
	default:
		return fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	return nil
}
