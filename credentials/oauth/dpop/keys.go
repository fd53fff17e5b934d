package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/agenthost/agenthost/credentials/jose"
)

// ClientAlgorithms are the proof algorithms [Keys] can hold a key for, in
// the order a client prefers them: ES256 first (the algorithm every DPoP
// server is expected to take, with small keys and fast proofs), RS256
// last (its keys are slow to make and its proofs large).
var ClientAlgorithms = []jose.Alg{jose.ES256, jose.EdDSA, jose.ES384, jose.ES512, jose.RS256}

// rsaBits is the size of the RSA keys Keys makes.
const rsaBits = 2048

// Keys are one client's DPoP key pairs (RFC 9449 §4.1): at most one per
// algorithm, each made with crypto/rand the first time a server needs
// it, and held in memory only. A key never leaves its Keys except as a
// crypto.Signer: nothing here writes, exports or logs a private key. It is
// safe for concurrent use.
type Keys struct {
	mu   sync.Mutex
	keys map[jose.Alg]crypto.Signer
	// fixed Keys (KeysFrom) hold one given key and make no other.
	fixed bool
}

// NewKeys returns an empty set that makes each key when it is first
// needed.
func NewKeys() *Keys {
	return &Keys{keys: map[jose.Alg]crypto.Signer{}}
}

// KeysFrom returns a set of exactly key: [Keys.Key] gives it to a server
// that lists its algorithm, and nothing to any other.
func KeysFrom(key crypto.Signer) (*Keys, error) {
	if key == nil {
		return nil, errors.New("dpop: KeysFrom needs a key")
	}
	alg, err := jose.AlgorithmForKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	return &Keys{keys: map[jose.Alg]crypto.Signer{alg: key}, fixed: true}, nil
}

// Key returns the key to bind tokens to at a server whose
// dpop_signing_alg_values_supported (RFC 9449 §5.1) or DPoP challenge
// algs (§7.1) are algs: the key of the most preferred of
// [ClientAlgorithms] that algs names (for a set from [KeysFrom], its
// key's algorithm), made now when the set has none yet. It returns a nil
// key and no error when they have no algorithm in common: the client
// then uses bearer tokens with that server.
func (k *Keys) Key(algs []string) (crypto.Signer, jose.Alg, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, alg := range ClientAlgorithms {
		if !slices.Contains(algs, string(alg)) {
			continue
		}
		if key, ok := k.keys[alg]; ok {
			return key, alg, nil
		}
		if k.fixed {
			continue
		}
		key, err := newKey(alg)
		if err != nil {
			return nil, "", fmt.Errorf("dpop: new %s key: %w", alg, err)
		}
		k.keys[alg] = key
		return key, alg, nil
	}
	return nil, "", nil
}

// newKey makes a key pair for alg, one of ClientAlgorithms.
func newKey(alg jose.Alg) (crypto.Signer, error) {
	switch alg {
	case jose.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.ES512:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jose.EdDSA:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	case jose.RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, fmt.Errorf("algorithm %s is not one a client key is made for", alg)
}
