package jose

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
)

// DefaultMaxTokenSize is the size cap Verify applies when
// VerifyOptions.MaxTokenSize is zero.
const DefaultMaxTokenSize = 64 << 10

// KeyFunc returns the trusted public key named kid (empty when the token
// has no kid header). It returns an error wrapping ErrUnknownKey when no
// key matches.
type KeyFunc func(ctx context.Context, kid string) (crypto.PublicKey, error)

// StaticKeys returns a KeyFunc over a fixed kid → key map. A token without
// kid matches only when the map holds exactly one key.
func StaticKeys(keys map[string]crypto.PublicKey) KeyFunc {
	return func(_ context.Context, kid string) (crypto.PublicKey, error) {
		if kid == "" {
			if len(keys) == 1 {
				for _, k := range keys {
					return k, nil
				}
			}
			return nil, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
		}
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
		}
		return k, nil
	}
}

// VerifyOptions says what [Verify] accepts. The zero value accepts
// nothing: Types and Keys (or AllowEmbeddedJWK) must be set.
type VerifyOptions struct {
	// Types lists the accepted typ values, compared case-insensitively
	// with or without the "application/" prefix (RFC 7515 §4.1.9).
	// Required.
	Types []Typ
	// AllowMissingTyp accepts a token without typ header. Only the
	// JWT-SVID profile allows this (SPECS.md §10.3).
	AllowMissingTyp bool

	// Algorithms lists the accepted alg values; empty means
	// DefaultAlgorithms. Only asymmetric algorithms can be listed.
	Algorithms []Alg

	// Keys looks up the verification key by kid.
	Keys KeyFunc
	// RequireKID rejects a token without kid header.
	RequireKID bool
	// AllowEmbeddedJWK takes the verification key from the token's own jwk
	// header, as a DPoP proof requires (RFC 9449 §4.3); Keys is then not
	// consulted. Never set it for any other profile (SPECS.md X.4).
	AllowEmbeddedJWK bool

	// AllowedHeaders, when not nil, lists every header parameter a token
	// may carry (the JWT-SVID profile allows alg, kid and typ only,
	// SPECS.md §10.3). crit and b64 are always refused.
	AllowedHeaders []string

	// Issuer, when not empty, must equal the iss claim exactly.
	Issuer string
	// Audience, when not empty, must be one of the aud claim's values.
	Audience string
	// ForbidAudience rejects a token that carries an aud claim (WIT-SVID,
	// SPECS.md §10.4).
	ForbidAudience bool
	// RequireSubject rejects a token without a non-empty sub claim.
	RequireSubject bool
	// OptionalExp accepts a token without exp. By default exp is required.
	OptionalExp bool

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat; zero allows
	// none.
	Leeway time.Duration
	// MaxTokenSize caps the compact token length in bytes; zero means
	// DefaultMaxTokenSize.
	MaxTokenSize int
}

// Token is a verified token.
type Token struct {
	// Alg, KID and Typ are the header parameters (KID and Typ may be
	// empty).
	Alg Alg
	KID string
	Typ string
	// Headers holds every protected header parameter as raw JSON.
	Headers map[string]json.RawMessage
	// Key is the key the signature was verified with.
	Key crypto.PublicKey

	// Claims holds all claims as decoded by encoding/json (numbers are
	// float64).
	Claims map[string]any
	// Registered claims (RFC 7519 §4.1); zero when absent.
	Issuer    string
	Subject   string
	Audience  []string
	ID        string
	ExpiresAt time.Time
	NotBefore time.Time
	IssuedAt  time.Time

	payload []byte
}

// Decode unmarshals the claims into v (a pointer to a struct or map).
func (t *Token) Decode(v any) error {
	if err := json.Unmarshal(t.payload, v); err != nil {
		return fmt.Errorf("jose: decode claims: %w", err)
	}
	return nil
}

// Verify checks token against opts and returns its header and claims.
//
// The checks follow SPECS.md X.4 and RFC 8725: the compact serialization
// (RFC 7515 §7.1) with base64url parts, a protected header without
// duplicate members, crit or b64, an allowed asymmetric alg (RFC 8725 §3.1),
// the typ (RFC 8725 §3.11), the key (by kid from opts.Keys, never from the
// token unless AllowEmbeddedJWK), the signature, then iss, aud, exp, nbf
// and iat (RFC 7519 §4.1). Every error wraps one of the package's sentinel
// errors.
func Verify(ctx context.Context, token string, opts VerifyOptions) (*Token, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	maxSize := opts.MaxTokenSize
	if maxSize == 0 {
		maxSize = DefaultMaxTokenSize
	}
	if len(token) > maxSize {
		return nil, fmt.Errorf("%w: token of %d bytes exceeds %d", ErrMalformed, len(token), maxSize)
	}
	hdrB64, payB64, sigB64, err := splitCompact(token)
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.Strict()
	hdrJSON, err := enc.DecodeString(hdrB64)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %v", ErrMalformed, err)
	}
	headers, err := decodeObject(hdrJSON)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	t := &Token{Headers: headers}

	// alg first: refuse none and symmetric algorithms before anything else.
	alg, err := stringMember(headers, "alg")
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if alg == "" {
		return nil, fmt.Errorf("%w: no alg header", ErrAlgorithm)
	}
	t.Alg = Alg(alg)
	if !slices.Contains(opts.algorithms(), t.Alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}

	for name := range headers {
		switch name {
		case "crit", "b64":
			return nil, fmt.Errorf("%w: %q", ErrHeader, name)
		}
		if opts.AllowedHeaders != nil && !slices.Contains(opts.AllowedHeaders, name) {
			return nil, fmt.Errorf("%w: %q", ErrHeader, name)
		}
	}

	typ, err := stringMember(headers, "typ")
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	t.Typ = typ
	if err := opts.checkTyp(headers, typ); err != nil {
		return nil, err
	}

	kid, err := stringMember(headers, "kid")
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	t.KID = kid
	if opts.RequireKID && kid == "" {
		return nil, fmt.Errorf("%w: token has no kid", ErrUnknownKey)
	}

	key, err := opts.key(ctx, headers, kid)
	if err != nil {
		return nil, err
	}
	if err := checkKeyForAlg(t.Alg, key); err != nil {
		return nil, err
	}
	t.Key = key

	sig, err := enc.DecodeString(sigB64)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url: %v", ErrMalformed, err)
	}
	signingInput := token[:len(hdrB64)+1+len(payB64)]
	if err := jwsbb.Verify(key, alg, []byte(signingInput), sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}

	payload, err := enc.DecodeString(payB64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url: %v", ErrMalformed, err)
	}
	members, err := decodeObject(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	t.payload = payload
	if err := t.readClaims(payload, members); err != nil {
		return nil, err
	}
	if err := opts.checkClaims(t, members); err != nil {
		return nil, err
	}
	return t, nil
}

func (o *VerifyOptions) check() error {
	if len(o.Types) == 0 {
		return fmt.Errorf("%w: no token types", ErrInvalidOptions)
	}
	for _, a := range o.Algorithms {
		if !knownAlg(a) {
			return fmt.Errorf("%w: algorithm %q is not an asymmetric JWS algorithm", ErrInvalidOptions, a)
		}
	}
	if o.Keys == nil && !o.AllowEmbeddedJWK {
		return fmt.Errorf("%w: no key source", ErrInvalidOptions)
	}
	if o.Leeway < 0 || o.MaxTokenSize < 0 {
		return fmt.Errorf("%w: negative leeway or size", ErrInvalidOptions)
	}
	return nil
}

func (o *VerifyOptions) algorithms() []Alg {
	if len(o.Algorithms) == 0 {
		return DefaultAlgorithms
	}
	return o.Algorithms
}

func (o *VerifyOptions) checkTyp(headers map[string]json.RawMessage, typ string) error {
	if _, present := headers["typ"]; !present {
		if o.AllowMissingTyp {
			return nil
		}
		return fmt.Errorf("%w: no typ header, want %s", ErrWrongType, o.typeList())
	}
	for _, want := range o.Types {
		if want.Matches(typ) {
			return nil
		}
	}
	return fmt.Errorf("%w: typ %q, want %s", ErrWrongType, typ, o.typeList())
}

func (o *VerifyOptions) typeList() string {
	s := ""
	for i, t := range o.Types {
		if i > 0 {
			s += " or "
		}
		s += fmt.Sprintf("%q", string(t))
	}
	return s
}

func (o *VerifyOptions) key(ctx context.Context, headers map[string]json.RawMessage, kid string) (crypto.PublicKey, error) {
	if o.AllowEmbeddedJWK {
		raw, ok := headers["jwk"]
		if !ok {
			return nil, fmt.Errorf("%w: no jwk header", ErrUnknownKey)
		}
		pub, err := ParsePublicJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: jwk header: %w", ErrUnknownKey, err)
		}
		return pub, nil
	}
	key, err := o.Keys(ctx, kid)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: kid %q: %w", ErrUnknownKey, kid, err)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	return key, nil
}

func (t *Token) readClaims(payload []byte, members map[string]json.RawMessage) error {
	var err error
	if t.Issuer, err = stringMember(members, "iss"); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if t.Subject, err = stringMember(members, "sub"); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if t.ID, err = stringMember(members, "jti"); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if raw, ok := members["aud"]; ok {
		if t.Audience, err = audience(raw); err != nil {
			return fmt.Errorf("%w: claims: aud: %v", ErrMalformed, err)
		}
	}
	for _, c := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &t.ExpiresAt}, {"nbf", &t.NotBefore}, {"iat", &t.IssuedAt}} {
		raw, ok := members[c.name]
		if !ok {
			continue
		}
		if *c.dst, err = numericDate(raw); err != nil {
			return fmt.Errorf("%w: claims: %s: %v", ErrMalformed, c.name, err)
		}
	}
	if err := json.Unmarshal(payload, &t.Claims); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	return nil
}

func (o *VerifyOptions) checkClaims(t *Token, members map[string]json.RawMessage) error {
	if o.Issuer != "" && t.Issuer != o.Issuer {
		return fmt.Errorf("%w: iss %q, want %q", ErrIssuer, t.Issuer, o.Issuer)
	}
	_, hasAud := members["aud"]
	if o.ForbidAudience && hasAud {
		return fmt.Errorf("%w: aud claim not allowed", ErrAudience)
	}
	if o.Audience != "" && !slices.Contains(t.Audience, o.Audience) {
		return fmt.Errorf("%w: aud %q does not contain %q", ErrAudience, t.Audience, o.Audience)
	}
	if o.RequireSubject && t.Subject == "" {
		return fmt.Errorf("%w: sub", ErrMissingClaim)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	n := now()
	if _, ok := members["exp"]; !ok {
		if !o.OptionalExp {
			return fmt.Errorf("%w: no exp claim", ErrExpired)
		}
	} else if !n.Before(t.ExpiresAt.Add(o.Leeway)) {
		return fmt.Errorf("%w: exp %s, now %s", ErrExpired, t.ExpiresAt.UTC().Format(time.RFC3339), n.UTC().Format(time.RFC3339))
	}
	if _, ok := members["nbf"]; ok && n.Add(o.Leeway).Before(t.NotBefore) {
		return fmt.Errorf("%w: nbf %s, now %s", ErrNotYetValid, t.NotBefore.UTC().Format(time.RFC3339), n.UTC().Format(time.RFC3339))
	}
	if _, ok := members["iat"]; ok && n.Add(o.Leeway).Before(t.IssuedAt) {
		return fmt.Errorf("%w: iat %s, now %s", ErrIssuedInFuture, t.IssuedAt.UTC().Format(time.RFC3339), n.UTC().Format(time.RFC3339))
	}
	return nil
}

// splitCompact splits a JWS compact serialization into its three parts
// (RFC 7515 §7.1).
func splitCompact(token string) (hdr, payload, sig string, err error) {
	if token == "" {
		return "", "", "", fmt.Errorf("%w: empty token", ErrMalformed)
	}
	parts := 1
	for i := 0; i < len(token); i++ {
		if token[i] == '.' {
			parts++
		}
	}
	if parts != 3 {
		return "", "", "", fmt.Errorf("%w: %d parts, want 3", ErrMalformed, parts)
	}
	i := indexByte(token, '.')
	j := i + 1 + indexByte(token[i+1:], '.')
	hdr, payload, sig = token[:i], token[i+1:j], token[j+1:]
	if hdr == "" || payload == "" || sig == "" {
		return "", "", "", fmt.Errorf("%w: empty part", ErrMalformed)
	}
	return hdr, payload, sig, nil
}

func indexByte(s string, c byte) int {
	return strings.IndexByte(s, c)
}

// stringMember returns members[name] as a string; "" when absent.
func stringMember(members map[string]json.RawMessage, name string) (string, error) {
	raw, ok := members[name]
	if !ok {
		return "", nil
	}
	var s string
	if isNull(raw) {
		return "", fmt.Errorf("%s is null", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return s, nil
}

// audience decodes aud: one string or an array of strings (RFC 7519 §4.1.3).
func audience(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, errors.New("null")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || many == nil {
		return nil, errors.New("not a string or an array of strings")
	}
	return many, nil
}

// numericDate decodes a NumericDate (RFC 7519 §2): a JSON number of seconds
// since the epoch, possibly fractional.
func numericDate(raw json.RawMessage) (time.Time, error) {
	var f float64
	if isNull(raw) {
		return time.Time{}, errors.New("null")
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, errors.New("not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("out of range: %v", f)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

func isNull(raw json.RawMessage) bool {
	return string(raw) == "null"
}
