package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/note"
)

// keyNamePrefix starts the name of every checkpoint signing key.
const keyNamePrefix = "agenthost-audit/"

// algEd25519 is the note signature algorithm byte for Ed25519.
const algEd25519 = 1

// KeyName returns the name of the checkpoint signing key of a trust domain:
// "agenthost-audit/<trust domain>". Verifiers match signatures by this name.
func KeyName(trustDomain string) (string, error) {
	if trustDomain == "" {
		return "", errors.New("audit: key name: empty trust domain")
	}
	if strings.ContainsRune(trustDomain, '+') || strings.IndexFunc(trustDomain, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("audit: key name: trust domain %q contains '+' or white space", trustDomain)
	}
	return keyNamePrefix + trustDomain, nil
}

// GenerateKey creates a new Ed25519 checkpoint signing key for trustDomain,
// reading randomness from rand (crypto/rand.Reader in production). It
// returns the encoded signer key, which the host keeps secret outside the
// store it signs and passes to [NewSigner] or [ParseKey], and the encoded
// verifier key, which is published and pinned so that anyone can check
// checkpoints ([ParseVerifier]).
func GenerateKey(rand io.Reader, trustDomain string) (skey, vkey string, err error) {
	name, err := KeyName(trustDomain)
	if err != nil {
		return "", "", err
	}
	skey, vkey, err = note.GenerateKey(rand, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate key: %w", err)
	}
	return skey, vkey, nil
}

// EncodeKey encodes an existing Ed25519 private key as a signer key for
// trustDomain, and returns its verifier key, in the forms [GenerateKey]
// returns.
func EncodeKey(trustDomain string, priv ed25519.PrivateKey) (skey, vkey string, err error) {
	name, err := KeyName(trustDomain)
	if err != nil {
		return "", "", err
	}
	if len(priv) != ed25519.PrivateKeySize {
		return "", "", fmt.Errorf("audit: encode key: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	pub, ok := priv.Public().(ed25519.PublicKey)
	if !ok {
		return "", "", errors.New("audit: encode key: unexpected public key type")
	}
	vkey, err = note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", "", fmt.Errorf("audit: encode key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return "", "", fmt.Errorf("audit: encode key: %w", err)
	}
	enc := append([]byte{algEd25519}, priv.Seed()...)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, v.KeyHash(), base64.StdEncoding.EncodeToString(enc))
	return skey, vkey, nil
}

// ParseKey decodes a signer key made by [GenerateKey] or [EncodeKey] and
// returns its signer and the matching verifier.
func ParseKey(skey string) (note.Signer, note.Verifier, error) {
	signer, verifier, _, err := parseKey(skey)
	if err != nil {
		return nil, nil, err
	}
	return signer, verifier, nil
}

// parseKey decodes a signer key and returns its signer, its verifier and
// its encoded verifier key.
func parseKey(skey string) (note.Signer, note.Verifier, string, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("audit: parse key: %w", err)
	}
	// The signer key is PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>;
	// the name may not contain '+' (the base64 text may).
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return nil, nil, "", errors.New("audit: parse key: malformed signer key")
	}
	enc, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(enc) != 1+ed25519.SeedSize || enc[0] != algEd25519 {
		return nil, nil, "", errors.New("audit: parse key: not an Ed25519 signer key")
	}
	pub, ok := ed25519.NewKeyFromSeed(enc[1:]).Public().(ed25519.PublicKey)
	if !ok {
		return nil, nil, "", errors.New("audit: parse key: unexpected public key type")
	}
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, nil, "", fmt.Errorf("audit: parse key: %w", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("audit: parse key: %w", err)
	}
	if verifier.KeyHash() != signer.KeyHash() {
		return nil, nil, "", errors.New("audit: parse key: key hash does not match the key")
	}
	return signer, verifier, vkey, nil
}

// ParseVerifier decodes a verifier key made by [GenerateKey] or
// [EncodeKey].
func ParseVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: parse verifier key: %w", err)
	}
	return v, nil
}

// Signer signs the log's checkpoints. It is a note.Signer (the key's name,
// its key hash and Sign) that also knows the verifier key of its key, so
// that the host can print and pin it. The key need not be in the host's
// memory: a signer backed by a KMS or a PKCS#11 token implements Signer by
// sending Sign's message out, as long as it produces Ed25519 signed-note
// signatures under the name "agenthost-audit/<trust domain>".
type Signer interface {
	note.Signer
	// VerifierKey returns the signed-note verifier key
	// ("<name>+<key hash>+<base64 key>") that checks the signer's
	// signatures.
	VerifierKey() string
}

// keySigner is a [Signer] holding its Ed25519 key in memory.
type keySigner struct {
	note.Signer
	vkey string
}

func (s *keySigner) VerifierKey() string { return s.vkey }

// NewSigner returns the [Signer] of an encoded signer key made by
// [GenerateKey] or [EncodeKey].
func NewSigner(skey string) (Signer, error) {
	s, _, vkey, err := parseKey(skey)
	if err != nil {
		return nil, err
	}
	return &keySigner{Signer: s, vkey: vkey}, nil
}
