package jose

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// Header describes the protected header [SignWithHeader] writes. alg is
// always taken from the key.
type Header struct {
	// Typ is the typ parameter. Required.
	Typ Typ
	// KID is the kid parameter; omitted when empty.
	KID string
	// EmbedJWK writes the signer's public key as the jwk parameter, as a
	// DPoP proof requires (RFC 9449 §4.2).
	EmbedJWK bool
	// Extra holds further header parameters a profile defines. It must not
	// name alg, kid, typ, jwk, crit or b64.
	Extra map[string]any
}

// Sign returns a JWS compact serialization of claims signed by key, with a
// protected header of alg (from [AlgorithmForKey]), kid (when not empty)
// and typ only. claims must marshal to a JSON object: a map or a struct.
func Sign(ctx context.Context, key crypto.Signer, kid string, typ Typ, claims any) (string, error) {
	return SignWithHeader(ctx, key, Header{Typ: typ, KID: kid}, claims)
}

// SignWithHeader is [Sign] with the header parameters of h.
func SignWithHeader(ctx context.Context, key crypto.Signer, h Header, claims any) (string, error) {
	return signWithRand(ctx, key, h, claims, rand.Reader)
}

func signWithRand(ctx context.Context, key crypto.Signer, h Header, claims any, rnd io.Reader) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("jose: sign: %w", err)
	}
	if key == nil {
		return "", fmt.Errorf("jose: sign: %w: nil key", ErrUnsupportedKey)
	}
	if h.Typ == "" {
		return "", fmt.Errorf("jose: sign: %w: typ is required", ErrInvalidOptions)
	}
	pub := key.Public()
	alg, err := AlgorithmForKey(pub)
	if err != nil {
		return "", fmt.Errorf("jose: sign: %w", err)
	}
	hdr := make(map[string]any, 3+len(h.Extra))
	for k, v := range h.Extra {
		switch k {
		case "alg", "kid", "typ", "jwk", "crit", "b64":
			return "", fmt.Errorf("jose: sign: %w: extra header %q", ErrInvalidOptions, k)
		}
		hdr[k] = v
	}
	hdr["alg"] = string(alg)
	hdr["typ"] = string(h.Typ)
	if h.KID != "" {
		hdr["kid"] = h.KID
	}
	if h.EmbedJWK {
		jwk, err := PublicJWK(pub, "", "", "")
		if err != nil {
			return "", fmt.Errorf("jose: sign: %w", err)
		}
		hdr["jwk"] = jwk
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", fmt.Errorf("jose: sign: header: %w", err)
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("jose: sign: claims: %w", err)
	}
	if len(pb) == 0 || pb[0] != '{' {
		return "", fmt.Errorf("jose: sign: %w: claims must be a JSON object", ErrInvalidOptions)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(hb))+enc.EncodedLen(len(pb))+2+enc.EncodedLen(512))
	buf = enc.AppendEncode(buf, hb)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, pb)
	sig, err := jwsbb.Sign(key, string(alg), buf, rnd)
	if err != nil {
		return "", fmt.Errorf("jose: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}
