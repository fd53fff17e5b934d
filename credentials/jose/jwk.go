package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// DefaultMaxKeySetSize is the size cap ParseKeySet applies when maxSize is
// zero.
const DefaultMaxKeySetSize = 256 << 10

// publicOnly checks that pub is a public key of a supported kind.
func publicOnly(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
		_, err := AlgorithmForKey(pub)
		return err
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return fmt.Errorf("%w: nil rsa key", ErrUnsupportedKey)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%w: rsa key of %d bits, need %d", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
		return nil
	}
	return fmt.Errorf("%w: %T is not a supported public key", ErrUnsupportedKey, pub)
}

// PublicJWK returns the JWK (RFC 7517) of the public key pub, with the
// optional members kid, alg and use set when not empty. Private and
// symmetric keys are refused (ErrUnsupportedKey).
func PublicJWK(pub crypto.PublicKey, kid, alg, use string) (map[string]any, error) {
	if err := publicOnly(pub); err != nil {
		return nil, fmt.Errorf("jose: jwk: %w", err)
	}
	k, err := jwk.Import(pub)
	if err != nil {
		return nil, fmt.Errorf("jose: jwk: %w: %v", ErrUnsupportedKey, err)
	}
	for name, v := range map[string]string{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: use} {
		if v == "" {
			continue
		}
		if err := k.Set(name, v); err != nil {
			return nil, fmt.Errorf("jose: jwk: set %s: %w", name, err)
		}
	}
	b, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("jose: jwk: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("jose: jwk: %w", err)
	}
	return m, nil
}

// Thumbprint returns the JWK SHA-256 thumbprint of pub (RFC 7638 §3),
// base64url-encoded without padding, as used in cnf.jkt (RFC 9449 §6.1).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	if err := publicOnly(pub); err != nil {
		return "", fmt.Errorf("jose: thumbprint: %w", err)
	}
	k, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("jose: thumbprint: %w: %v", ErrUnsupportedKey, err)
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jose: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// ParsePublicJWK parses one JWK holding a public key. A JWK with private
// members (d, p, q, …) or a symmetric key is refused.
func ParsePublicJWK(data []byte) (crypto.PublicKey, error) {
	members, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("jose: jwk: %w: %v", ErrMalformed, err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := members[private]; ok {
			return nil, fmt.Errorf("jose: jwk: %w: member %q is not allowed in a public key", ErrUnsupportedKey, private)
		}
	}
	k, err := jwk.ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("jose: jwk: %w: %v", ErrMalformed, err)
	}
	var raw any
	if err := jwk.Export(k, &raw); err != nil {
		return nil, fmt.Errorf("jose: jwk: %w: %v", ErrUnsupportedKey, err)
	}
	pub, ok := raw.(crypto.PublicKey)
	if !ok || publicOnly(pub) != nil {
		return nil, fmt.Errorf("jose: jwk: %w: %T", ErrUnsupportedKey, raw)
	}
	return pub, nil
}

// SetKey is one key of a JWK Set written by [MarshalKeySet].
type SetKey struct {
	KID string
	Key crypto.PublicKey
	// Alg and Use are optional JWK members (RFC 7517 §4.4, §4.2).
	Alg string
	Use string
}

// MarshalKeySet returns the JWK Set document (RFC 7517 §5) holding keys, in
// kid order.
func MarshalKeySet(keys []SetKey) ([]byte, error) {
	sorted := append([]SetKey(nil), keys...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].KID < sorted[j].KID })
	out := struct {
		Keys []map[string]any `json:"keys"`
	}{Keys: make([]map[string]any, 0, len(sorted))}
	seen := make(map[string]bool, len(sorted))
	for _, k := range sorted {
		if k.KID != "" {
			if seen[k.KID] {
				return nil, fmt.Errorf("jose: key set: %w: duplicate kid %q", ErrInvalidOptions, k.KID)
			}
			seen[k.KID] = true
		}
		m, err := PublicJWK(k.Key, k.KID, k.Alg, k.Use)
		if err != nil {
			return nil, fmt.Errorf("jose: key set: kid %q: %w", k.KID, err)
		}
		out.Keys = append(out.Keys, m)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("jose: key set: %w", err)
	}
	return b, nil
}

// ParseKeySet parses a JWK Set document (RFC 7517 §5) of at most maxSize
// bytes (zero means DefaultMaxKeySetSize) into kid → public key. Keys with
// "use": "enc" are skipped; a key without kid, a duplicate kid, a private
// or symmetric key, or an unsupported key type is an error.
func ParseKeySet(data []byte, maxSize int) (map[string]crypto.PublicKey, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxKeySetSize
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("jose: key set: %w: %d bytes exceeds %d", ErrMalformed, len(data), maxSize)
	}
	top, err := decodeObject(data)
	if err != nil {
		return nil, fmt.Errorf("jose: key set: %w: %v", ErrMalformed, err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return nil, fmt.Errorf("jose: key set: %w: no keys member", ErrMalformed)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(rawKeys, &list); err != nil || list == nil {
		return nil, fmt.Errorf("jose: key set: %w: keys is not an array", ErrMalformed)
	}
	out := make(map[string]crypto.PublicKey, len(list))
	for i, raw := range list {
		members, err := decodeObject(raw)
		if err != nil {
			return nil, fmt.Errorf("jose: key set: key %d: %w: %v", i, ErrMalformed, err)
		}
		use, err := stringMember(members, "use")
		if err != nil {
			return nil, fmt.Errorf("jose: key set: key %d: %w: %v", i, ErrMalformed, err)
		}
		if use == "enc" {
			continue
		}
		kid, err := stringMember(members, "kid")
		if err != nil {
			return nil, fmt.Errorf("jose: key set: key %d: %w: %v", i, ErrMalformed, err)
		}
		if kid == "" {
			return nil, fmt.Errorf("jose: key set: key %d: %w: no kid", i, ErrMalformed)
		}
		if _, dup := out[kid]; dup {
			return nil, fmt.Errorf("jose: key set: %w: duplicate kid %q", ErrMalformed, kid)
		}
		pub, err := ParsePublicJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("jose: key set: kid %q: %w", kid, err)
		}
		out[kid] = pub
	}
	return out, nil
}
