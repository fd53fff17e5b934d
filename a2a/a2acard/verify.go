package a2acard

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Sentinel errors of [Verify] and [VerifyJSON]; test them with errors.Is.
// A card with several signatures, none of which verifies, gives an error
// wrapping the sentinel of each.
var (
	// ErrUnsigned reports a card without signatures.
	ErrUnsigned = errors.New("a2acard: the card is not signed")
	// ErrSignature reports a signature that does not verify with the key
	// it names: the card (or the signature) was changed after signing.
	ErrSignature = errors.New("a2acard: the card signature does not verify")
	// ErrUnknownKey reports a signature without kid, or by a key the key
	// set does not hold.
	ErrUnknownKey = errors.New("a2acard: the card is signed by an unknown key")
	// ErrAlgorithm reports a signature algorithm outside the allowed set
	// (none and HS* are never allowed) or not matching the key.
	ErrAlgorithm = errors.New("a2acard: the card signature algorithm is not allowed")
)

// MaxSignatures is the number of signatures a card may carry; a card with
// more is refused as malformed before any is checked.
const MaxSignatures = 16

// maxJWSSize caps the detached JWS a verifier rebuilds (header, canonical
// card and signature, base64url).
const maxJWSSize = 4 << 20

// DefaultAlgorithms are the signature algorithms accepted when
// [VerifyOptions.Algorithms] is empty: jose.DefaultAlgorithms and EdDSA.
var DefaultAlgorithms = append(append([]jose.Alg(nil), jose.DefaultAlgorithms...), jose.EdDSA)

// VerifyOptions says which card signatures are accepted.
type VerifyOptions struct {
	// Keys finds a trusted public key by kid: the trust bundle of the
	// card's domain. Required unless Roots is set.
	Keys jose.KeyFunc
	// Roots, when set, are the X.509 authorities of the card's domain: a
	// signature whose protected header carries x5c is checked with the
	// chain's leaf key once the chain verifies to Roots (at Now) and
	// CheckLeaf accepts the leaf (it should check that the leaf names the
	// agent the card is for). A signature with x5c is refused without
	// Roots.
	Roots *x509.CertPool
	// CheckLeaf checks an x5c chain's leaf; nil accepts any leaf that
	// chains to Roots.
	CheckLeaf func(leaf *x509.Certificate) error
	// Now is the clock for x5c chains; nil means time.Now.
	Now func() time.Time
	// Algorithms are the accepted alg values; empty means
	// [DefaultAlgorithms].
	Algorithms []jose.Alg
}

// Verified describes the signature that verified a card.
type Verified struct {
	// KeyID is the kid of the signing key.
	KeyID string
	// Alg is the signature algorithm.
	Alg jose.Alg
	// Key is the public key that verified the signature.
	Key crypto.PublicKey
}

// Verify checks card's signatures as [VerifyJSON] does, over the card's
// JSON form. Use VerifyJSON on the bytes a card was served as: members
// the a2a.AgentCard type does not know are signed too, and lost once
// decoded.
func Verify(ctx context.Context, card *a2a.AgentCard, opts VerifyOptions) (*Verified, error) {
	raw, err := marshalCard(card)
	if err != nil {
		return nil, err
	}
	return VerifyJSON(ctx, raw, opts)
}

// VerifyJSON checks the signatures of the card whose JSON is raw (SPECS.md
// §16.1): it recomputes the canonical form ([Canonical]) and accepts the
// card when one signature verifies with a key opts.Keys returns for the
// signature's kid, with an allowed algorithm and, if the protected header
// has typ, typ JOSE. The unprotected header and any jku are ignored.
func VerifyJSON(ctx context.Context, raw []byte, opts VerifyOptions) (*Verified, error) {
	if opts.Keys == nil && opts.Roots == nil {
		return nil, errors.New("a2acard: VerifyOptions.Keys or Roots is required")
	}
	sigs, err := signatures(raw)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, ErrUnsigned
	}
	payload, err := Canonical(raw)
	if err != nil {
		return nil, err
	}
	jo := verifyOptions(opts)
	var errs []error
	for i, s := range sigs {
		sjo, err := signatureKeys(s, jo, opts)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: %w", i, err))
			continue
		}
		t, err := verifyOneToken(ctx, payload, s, sjo)
		if err == nil {
			return &Verified{KeyID: t.KID, Alg: t.Alg, Key: t.Key}, nil
		}
		errs = append(errs, fmt.Errorf("signature %d: %w", i, err))
	}
	return nil, errors.Join(errs...)
}

// signatures reads the card's top-level signatures member (exactly that
// name; encoding/json would also take "Signatures").
func signatures(raw []byte) ([]a2a.AgentCardSignature, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	m, ok := members[signaturesMember]
	if !ok || string(m) == "null" {
		return nil, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(m, &list); err != nil {
		return nil, fmt.Errorf("%w: signatures is not an array", ErrMalformed)
	}
	if len(list) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d signatures, at most %d", ErrMalformed, len(list), MaxSignatures)
	}
	out := make([]a2a.AgentCardSignature, 0, len(list))
	for i, item := range list {
		var s struct {
			Protected *string `json:"protected"`
			Signature *string `json:"signature"`
		}
		if err := json.Unmarshal(item, &s); err != nil || s.Protected == nil || s.Signature == nil {
			return nil, fmt.Errorf("%w: signature %d lacks protected or signature", ErrMalformed, i)
		}
		out = append(out, a2a.AgentCardSignature{Protected: *s.Protected, Signature: *s.Signature})
	}
	return out, nil
}

func verifyOptions(opts VerifyOptions) jose.VerifyOptions {
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	return jose.VerifyOptions{
		Types: []jose.Typ{jose.TypJOSE},
		// A2A: typ SHOULD be JOSE, so a signature without typ is
		// accepted; any other typ is not.
		AllowMissingTyp: true,
		Algorithms:      algs,
		Keys:            opts.Keys,
		RequireKID:      true,
		// A card is no JWT: no exp.
		OptionalExp:  true,
		MaxTokenSize: maxJWSSize,
	}
}

func verifyOne(ctx context.Context, payload []byte, s a2a.AgentCardSignature, jo jose.VerifyOptions) error {
	_, err := verifyOneToken(ctx, payload, s, jo)
	return err
}

// verifyOneToken rebuilds the JWS of a detached signature over payload and
// verifies it with credentials/jose.
func verifyOneToken(ctx context.Context, payload []byte, s a2a.AgentCardSignature, jo jose.VerifyOptions) (*jose.Token, error) {
	if s.Protected == "" || s.Signature == "" {
		return nil, fmt.Errorf("%w: empty protected header or signature", ErrMalformed)
	}
	compact := s.Protected + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + s.Signature
	t, err := jose.Verify(ctx, compact, jo)
	if err != nil {
		return nil, classify(err)
	}
	return t, nil
}

// classify wraps a credentials/jose error in this package's sentinel.
func classify(err error) error {
	switch {
	case errors.Is(err, jose.ErrAlgorithm):
		return fmt.Errorf("%w: %w", ErrAlgorithm, err)
	case errors.Is(err, jose.ErrUnknownKey):
		return fmt.Errorf("%w: %w", ErrUnknownKey, err)
	case errors.Is(err, jose.ErrInvalidSignature):
		return fmt.Errorf("%w: %w", ErrSignature, err)
	default:
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}

// maxChain bounds an x5c chain.
const maxChain = 8

// signatureKeys returns the options that verify s: with the leaf key of
// its x5c chain, once the chain verifies to opts.Roots, or with opts.Keys.
func signatureKeys(s a2a.AgentCardSignature, jo jose.VerifyOptions, opts VerifyOptions) (jose.VerifyOptions, error) {
	hb, err := base64.RawURLEncoding.DecodeString(s.Protected)
	if err != nil {
		return jo, fmt.Errorf("%w: the protected header is not base64url", ErrMalformed)
	}
	var h struct {
		KID string   `json:"kid"`
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return jo, fmt.Errorf("%w: the protected header: %w", ErrMalformed, err)
	}
	if len(h.X5C) == 0 {
		if opts.Keys == nil {
			return jo, fmt.Errorf("%w: the signature has no x5c chain and no key set was given", ErrUnknownKey)
		}
		return jo, nil
	}
	if opts.Roots == nil {
		return jo, fmt.Errorf("%w: the signature's x5c chain is not trusted here", ErrUnknownKey)
	}
	if len(h.X5C) > maxChain {
		return jo, fmt.Errorf("%w: an x5c chain of %d certificates", ErrMalformed, len(h.X5C))
	}
	certs := make([]*x509.Certificate, len(h.X5C))
	for i, c := range h.X5C {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return jo, fmt.Errorf("%w: x5c[%d] is not base64", ErrMalformed, i)
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return jo, fmt.Errorf("%w: x5c[%d]: %w", ErrMalformed, i, err)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: opts.Roots, Intermediates: inter, CurrentTime: now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return jo, fmt.Errorf("%w: the x5c chain: %w", ErrUnknownKey, err)
	}
	if opts.CheckLeaf != nil {
		if err := opts.CheckLeaf(certs[0]); err != nil {
			return jo, fmt.Errorf("%w: the x5c leaf: %w", ErrUnknownKey, err)
		}
	}
	jo.Keys = jose.StaticKeys(map[string]crypto.PublicKey{h.KID: certs[0].PublicKey})
	return jo, nil
}
