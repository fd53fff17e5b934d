package dpop

import (
	"context"
	"crypto"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Defaults of VerifierConfig.
const (
	DefaultMaxAge       = 5 * time.Minute
	DefaultLeeway       = 30 * time.Second
	DefaultMaxProofSize = 8 << 10
	// maxJTILength bounds the jti a replay cache must hold.
	maxJTILength = 256
)

// DefaultAlgorithms are the proof algorithms a Verifier accepts when
// VerifierConfig.Algorithms is empty.
var DefaultAlgorithms = []jose.Alg{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.RS256}

// VerifierConfig configures a Verifier. Zero fields take the defaults
// named on them.
type VerifierConfig struct {
	// Replay makes proofs single-use. Required.
	Replay ReplayCache
	// Nonces, when set, makes a current server nonce required in every
	// proof (RFC 9449 §8); nil means nonces are not required.
	Nonces NonceSource
	// Algorithms lists the accepted alg values, all asymmetric; empty
	// means DefaultAlgorithms.
	Algorithms []jose.Alg
	// MaxAge refuses proofs whose iat is older; zero means DefaultMaxAge.
	MaxAge time.Duration
	// Leeway accepts proofs whose iat is up to this far in the future;
	// zero means DefaultLeeway.
	Leeway time.Duration
	// MaxProofSize caps a proof in bytes; zero means DefaultMaxProofSize.
	MaxProofSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks DPoP proofs (RFC 9449 §4.3). It is safe for concurrent
// use.
type Verifier struct {
	cfg  VerifierConfig
	opts jose.VerifyOptions
}

// NewVerifier checks cfg, fills in its defaults and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Replay == nil {
		return nil, errors.New("dpop: verifier needs a replay cache")
	}
	if cfg.MaxAge < 0 || cfg.Leeway < 0 || cfg.MaxProofSize < 0 {
		return nil, errors.New("dpop: verifier durations and sizes must not be negative")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = DefaultAlgorithms
	}
	cfg.Algorithms = slices.Clone(cfg.Algorithms)
	for _, a := range cfg.Algorithms {
		if !asymmetric(a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric JWS algorithm", clip(string(a), 32))
		}
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.MaxProofSize == 0 {
		cfg.MaxProofSize = DefaultMaxProofSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, opts: jose.VerifyOptions{
		Types:            []jose.Typ{jose.TypDPoP},
		Algorithms:       cfg.Algorithms,
		AllowEmbeddedJWK: true,
		OptionalExp:      true,
		Now:              cfg.Now,
		Leeway:           cfg.Leeway,
		MaxTokenSize:     cfg.MaxProofSize,
	}}, nil
}

func asymmetric(a jose.Alg) bool {
	switch a {
	case jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		return true
	}
	return false
}

// Algorithms returns the accepted alg values, for
// dpop_signing_alg_values_supported and the algs of a DPoP challenge.
func (v *Verifier) Algorithms() []jose.Alg { return slices.Clone(v.cfg.Algorithms) }

// Nonce returns a current server nonce for a DPoP-Nonce header (RFC 9449
// §8, §9), or "" when the verifier requires none. A server sends one with
// every use_dpop_nonce refusal, and may send one with any response.
func (v *Verifier) Nonce(ctx context.Context) (string, error) {
	if v.cfg.Nonces == nil {
		return "", nil
	}
	n, err := v.cfg.Nonces.Nonce(ctx)
	if err != nil {
		return "", fmt.Errorf("dpop: nonce: %w", err)
	}
	return n, nil
}

// Request is what a proof must match.
type Request struct {
	// Method is the request's HTTP method; htm must equal it exactly.
	Method string
	// URL is the absolute URL the request was sent to, as the client
	// addressed it (scheme and host included); query and fragment are
	// ignored.
	URL *url.URL
	// AccessToken, when not empty, requires an ath claim matching it.
	AccessToken string
	// JKT, when not empty, requires the proof key's thumbprint to equal
	// it (the token's cnf.jkt, or the code's dpop_jkt).
	JKT string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 thumbprint of Key.
	JKT string
	// JTI is the proof's unique identifier.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Nonce is the proof's nonce claim, empty when absent.
	Nonce string
	// Key is the public key from the proof's jwk header.
	Key crypto.PublicKey
}

// Verify checks proof against req (RFC 9449 §4.3) and records its jti as
// used. The replay cache is consulted last, so a proof that fails any
// other check does not consume its jti.
//
// Refusals wrap ErrInvalidProof, or ErrUseNonce when only the server
// nonce is missing or stale; a replayed proof wraps both ErrInvalidProof
// and ErrReplay. Other errors (a bad req, a failing replay cache or nonce
// source) wrap neither.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (*Proof, error) {
	if req.Method == "" || req.URL == nil {
		return nil, errors.New("dpop: request needs a method and a URL")
	}
	target, ok := normalizeURL(req.URL)
	if !ok {
		return nil, errors.New("dpop: request URL is not an absolute http(s) URL")
	}
	if len(proof) > v.cfg.MaxProofSize {
		return nil, invalid("proof of " + strconv.Itoa(len(proof)) + " bytes exceeds " + strconv.Itoa(v.cfg.MaxProofSize))
	}
	t, err := jose.Verify(ctx, proof, v.opts)
	if err != nil {
		return nil, &proofError{kind: ErrInvalidProof, msg: joseReason(err), cause: err}
	}

	jti, err := stringClaim(t.Claims, "jti")
	if err != nil {
		return nil, err
	}
	if len(jti) > maxJTILength {
		return nil, invalid(fmt.Sprintf("jti of %d bytes exceeds %d", len(jti), maxJTILength))
	}
	htm, err := stringClaim(t.Claims, "htm")
	if err != nil {
		return nil, err
	}
	htu, err := stringClaim(t.Claims, "htu")
	if err != nil {
		return nil, err
	}
	if _, ok := t.Claims["iat"]; !ok {
		return nil, invalid("claim iat is missing")
	}
	ath, err := optionalStringClaim(t.Claims, "ath")
	if err != nil {
		return nil, err
	}
	nonce, err := optionalStringClaim(t.Claims, "nonce")
	if err != nil {
		return nil, err
	}

	if htm != req.Method {
		return nil, invalid(fmt.Sprintf("htm %q does not match method %q", clip(htm, 32), clip(req.Method, 32)))
	}
	u, err := url.Parse(htu)
	if err != nil {
		return nil, invalid("htu is not a URL")
	}
	got, ok := normalizeURL(u)
	if !ok {
		return nil, invalid(fmt.Sprintf("htu %q is not an absolute http(s) URL", clip(htu, 128)))
	}
	if got != target {
		return nil, invalid(fmt.Sprintf("htu %q does not match the request URL %q", clip(got, 128), clip(target, 128)))
	}

	now := v.cfg.Now()
	iat := t.IssuedAt
	if iat.Before(now.Add(-v.cfg.MaxAge)) {
		return nil, invalid(fmt.Sprintf("iat %s is more than %s old", iat.UTC().Format(time.RFC3339), v.cfg.MaxAge))
	}
	if iat.After(now.Add(v.cfg.Leeway)) {
		return nil, invalid(fmt.Sprintf("iat %s is more than %s in the future", iat.UTC().Format(time.RFC3339), v.cfg.Leeway))
	}

	if req.AccessToken != "" {
		if ath == "" {
			return nil, invalid("claim ath is missing and the request carries an access token")
		}
		if subtle.ConstantTimeCompare([]byte(ath), []byte(AccessTokenHash(req.AccessToken))) != 1 {
			return nil, invalid("ath does not match the access token")
		}
	}
	jkt, err := jose.Thumbprint(t.Key)
	if err != nil {
		return nil, &proofError{kind: ErrInvalidProof, msg: "jwk has no thumbprint: " + joseReason(err), cause: err}
	}
	if req.JKT != "" && jkt != req.JKT {
		return nil, invalid(fmt.Sprintf("proof key thumbprint %q does not match the bound key %q", jkt, clip(req.JKT, 64)))
	}

	if v.cfg.Nonces != nil {
		if nonce == "" {
			return nil, useNonce("claim nonce is missing and the server requires one")
		}
		if err := v.cfg.Nonces.Check(ctx, nonce); err != nil {
			if errors.Is(err, ErrUseNonce) {
				return nil, err
			}
			return nil, fmt.Errorf("dpop: nonce check: %w", err)
		}
	}

	if err := v.cfg.Replay.Remember(ctx, jkt+":"+jti, iat.Add(v.cfg.MaxAge+v.cfg.Leeway)); err != nil {
		if errors.Is(err, ErrReplay) {
			return nil, &proofError{kind: ErrInvalidProof, msg: "jti was already used with this key", cause: err}
		}
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	return &Proof{JKT: jkt, JTI: jti, IssuedAt: iat, Nonce: nonce, Key: t.Key}, nil
}

// stringClaim returns a required, non-empty string claim.
func stringClaim(claims map[string]any, name string) (string, error) {
	raw, ok := claims[name]
	if !ok {
		return "", invalid("claim " + name + " is missing")
	}
	s, ok := raw.(string)
	if !ok {
		return "", invalid("claim " + name + " is not a string")
	}
	if s == "" {
		return "", invalid("claim " + name + " is empty")
	}
	return s, nil
}

// optionalStringClaim returns a string claim, "" when absent.
func optionalStringClaim(claims map[string]any, name string) (string, error) {
	raw, ok := claims[name]
	if !ok {
		return "", nil
	}
	s, ok := raw.(string)
	if !ok {
		return "", invalid("claim " + name + " is not a string")
	}
	return s, nil
}
