package jose

import "errors"

// Sentinel errors returned (wrapped) by [Verify], [Sign] and the JWK
// functions. Test them with errors.Is.
var (
	// ErrMalformed reports a token that is not a well-formed JWS compact
	// serialization of a JSON object, or a claim of the wrong JSON type.
	ErrMalformed = errors.New("jose: malformed token")

	// ErrAlgorithm reports an alg header that is missing, not allowed
	// (none, HS*, or outside VerifyOptions.Algorithms) or not matching the
	// verification key.
	ErrAlgorithm = errors.New("jose: algorithm not allowed")

	// ErrWrongType reports a typ header that is missing where one is
	// required or that names another kind of token (RFC 8725 §3.11).
	ErrWrongType = errors.New("jose: wrong token type")

	// ErrHeader reports a protected header parameter the profile forbids,
	// such as crit or a parameter outside VerifyOptions.AllowedHeaders.
	ErrHeader = errors.New("jose: header parameter not allowed")

	// ErrUnknownKey reports that no trusted key matches the token's kid.
	ErrUnknownKey = errors.New("jose: unknown key")

	// ErrInvalidSignature reports a signature that does not verify with the
	// key selected for the token.
	ErrInvalidSignature = errors.New("jose: invalid signature")

	// ErrExpired reports a token whose exp is not after the current time
	// (with the allowed clock skew), or a missing exp where one is required.
	ErrExpired = errors.New("jose: token expired")

	// ErrNotYetValid reports a token whose nbf is after the current time
	// plus the allowed clock skew.
	ErrNotYetValid = errors.New("jose: token not yet valid")

	// ErrIssuedInFuture reports a token whose iat is after the current time
	// plus the allowed clock skew.
	ErrIssuedInFuture = errors.New("jose: token issued in the future")

	// ErrIssuer reports an iss claim that differs from the expected issuer.
	ErrIssuer = errors.New("jose: wrong issuer")

	// ErrAudience reports an aud claim that does not contain the expected
	// audience, or an aud claim where the profile forbids one.
	ErrAudience = errors.New("jose: wrong audience")

	// ErrMissingClaim reports a claim the profile requires that is absent.
	ErrMissingClaim = errors.New("jose: missing claim")

	// ErrUnsupportedKey reports a key type or size that cannot be used
	// (for example an RSA key under 2048 bits, a private key where a public
	// key is expected, or a symmetric key).
	ErrUnsupportedKey = errors.New("jose: unsupported key")

	// ErrInvalidOptions reports VerifyOptions that cannot be applied, such
	// as an empty set of token types or a symmetric algorithm.
	ErrInvalidOptions = errors.New("jose: invalid options")
)
