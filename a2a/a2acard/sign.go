package a2acard

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/credentials/jose"
)

// ErrSign reports a card that could not be signed.
var ErrSign = errors.New("a2acard: cannot sign the card")

// Key is an agent's card-signing key: the key of the agent in the trust
// domain.
type Key struct {
	// Signer signs. Required: an ECDSA (P-256, P-384, P-521), RSA (2048
	// bits or more) or Ed25519 key; the algorithm follows from it
	// (jose.AlgorithmForKey).
	Signer crypto.Signer
	// KID is the key's id in the trust bundle verifiers use. Required
	// (A2A: the protected header must carry kid).
	KID string
	// JKU, when set, goes into the protected header: the URL of a JWK Set
	// holding the key. Verifiers of ours never fetch it (SPECS.md X.4).
	JKU string
	// Chain, when set, is the key's certificate chain, leaf first (an
	// agent's X.509-SVID): it goes into the protected header as x5c (RFC
	// 7515 §4.1.6), so a verifier holding the trust domain's X.509
	// authorities checks the key's identity ([VerifyOptions.Roots]).
	Chain []*x509.Certificate
}

// Sign appends to card a signature by key over the card's canonical form
// ([Canonical]); the signatures already on the card are kept and not
// covered. The new signature is verified with the key's public part
// before it is added.
func Sign(ctx context.Context, card *a2a.AgentCard, key Key) error {
	if key.Signer == nil || key.KID == "" {
		return fmt.Errorf("%w: a key needs a Signer and a KID", ErrSign)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	payload, err := CanonicalCard(card)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	pub := key.Signer.Public()
	alg, err := jose.AlgorithmForKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	hdr := map[string]any{"alg": string(alg), "kid": key.KID, "typ": string(jose.TypJOSE)}
	if key.JKU != "" {
		hdr["jku"] = key.JKU
	}
	if len(key.Chain) > 0 {
		x5c := make([]string, len(key.Chain))
		for i, c := range key.Chain {
			x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		hdr["x5c"] = x5c
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	enc := base64.RawURLEncoding
	protected := enc.EncodeToString(hb)
	input := protected + "." + enc.EncodeToString(payload)
	sig, err := signInput(key.Signer, alg, []byte(input))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	s := a2a.AgentCardSignature{Protected: protected, Signature: enc.EncodeToString(sig)}
	// The signature must verify exactly as a verifier will check it.
	if err := verifyOne(ctx, payload, s, verifyOptions(VerifyOptions{
		Keys: jose.StaticKeys(map[string]crypto.PublicKey{key.KID: pub}),
	})); err != nil {
		return fmt.Errorf("%w: the signature does not verify: %w", ErrSign, err)
	}
	card.Signatures = append(card.Signatures, s)
	return nil
}

// signInput computes the JWS signature (RFC 7518 §3) of input with signer
// for alg: ECDSA as the fixed-size R||S pair, RSA as PKCS #1 v1.5 with
// SHA-256, Ed25519 over the input itself.
func signInput(signer crypto.Signer, alg jose.Alg, input []byte) ([]byte, error) {
	var h crypto.Hash
	switch alg {
	case jose.ES256, jose.RS256:
		h = crypto.SHA256
	case jose.ES384:
		h = crypto.SHA384
	case jose.ES512:
		h = crypto.SHA512
	case jose.EdDSA:
		return signer.Sign(rand.Reader, input, crypto.Hash(0))
	default:
		return nil, fmt.Errorf("algorithm %s is not supported for signing", alg)
	}
	d := h.New()
	d.Write(input)
	sig, err := signer.Sign(rand.Reader, d.Sum(nil), h)
	if err != nil || alg == jose.RS256 {
		return sig, err
	}
	// crypto.Signer gives ECDSA signatures in ASN.1 DER; JWS wants R||S,
	// each left-padded to the curve's byte size (RFC 7518 §3.4).
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("the ECDSA signature is not ASN.1 DER")
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("an ES algorithm without an ECDSA key")
	}
	size := (pub.Curve.Params().BitSize + 7) / 8
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("the ECDSA signature is out of range")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}
