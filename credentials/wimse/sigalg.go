package wimse

// Raw signatures for HTTP message signatures. The WIMSE profile takes the
// algorithm from the WIT's cnf.jwk.alg, a JWS algorithm, so RFC 9421
// §3.3.7 applies: the signature base is signed exactly as a JWS signing
// input would be, and the signature bytes are those of a JWS with that
// alg (for ECDSA the fixed-size R || S of RFC 7518 §3.4).

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/agenthost/agenthost/credentials/jose"
)

// hashFor returns the hash a JWS algorithm signs with; 0 for EdDSA.
func hashFor(alg jose.Alg) (crypto.Hash, error) {
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256:
		return crypto.SHA256, nil
	case jose.ES384, jose.RS384, jose.PS384:
		return crypto.SHA384, nil
	case jose.ES512, jose.RS512, jose.PS512:
		return crypto.SHA512, nil
	case jose.EdDSA:
		return 0, nil
	}
	return 0, fmt.Errorf("algorithm %q", alg)
}

// ecdsaSize is the byte length of R and S for an ES algorithm.
func ecdsaSize(alg jose.Alg) int {
	switch alg {
	case jose.ES256:
		return 32
	case jose.ES384:
		return 48
	}
	return 66 // ES512, P-521
}

// signRaw signs msg with key using the JWS algorithm alg.
func signRaw(key crypto.Signer, alg jose.Alg, msg []byte) ([]byte, error) {
	h, err := hashFor(alg)
	if err != nil {
		return nil, err
	}
	if alg == jose.EdDSA {
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	hh := h.New()
	hh.Write(msg)
	digest := hh.Sum(nil)
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		return key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	case jose.RS256, jose.RS384, jose.RS512:
		return key.Sign(rand.Reader, digest, h)
	}
	der, err := key.Sign(rand.Reader, digest, h)
	if err != nil {
		return nil, err
	}
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil {
		return nil, errors.New("ecdsa signer returned a malformed signature")
	}
	n := ecdsaSize(alg)
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*n || rs.S.BitLen() > 8*n {
		return nil, errors.New("ecdsa signer returned an out-of-range signature")
	}
	out := make([]byte, 2*n)
	rs.R.FillBytes(out[:n])
	rs.S.FillBytes(out[n:])
	return out, nil
}

// verifyRaw checks sig over msg with pub using the JWS algorithm alg. pub
// has been checked to fit alg (keyFitsAlg).
func verifyRaw(pub crypto.PublicKey, alg jose.Alg, msg, sig []byte) bool {
	h, err := hashFor(alg)
	if err != nil {
		return false
	}
	if alg == jose.EdDSA {
		k, ok := pub.(ed25519.PublicKey)
		return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, sig)
	}
	hh := h.New()
	hh.Write(msg)
	digest := hh.Sum(nil)
	switch alg {
	case jose.PS256, jose.PS384, jose.PS512:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case jose.RS256, jose.RS384, jose.RS512:
		k, ok := pub.(*rsa.PublicKey)
		return ok && rsa.VerifyPKCS1v15(k, h, digest, sig) == nil
	}
	k, ok := pub.(*ecdsa.PublicKey)
	n := ecdsaSize(alg)
	if !ok || len(sig) != 2*n {
		return false
	}
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(k, digest, r, s)
}
