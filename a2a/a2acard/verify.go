package a2acard

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

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
	// card's domain. Required.
	Keys jose.KeyFunc
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
	if opts.Keys == nil {
		return nil, errors.New("a2acard: VerifyOptions.Keys is required")
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
		t, err := verifyOneToken(ctx, payload, s, jo)
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
