package wimse

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/credentials/jose"
)

// Sentinel errors. Every verification failure wraps exactly one of the
// two kinds, [ErrInvalidWIT] or [ErrInvalidProof], and usually one reason
// below it ([ErrWrongType], [ErrSignature], [ErrExpired], [ErrReplayed],
// [ErrWrongAudience], [ErrTokenBinding], ...), plus the credentials/jose
// sentinel behind a token failure. The exceptions are [ErrNoWIT] (nothing
// to verify), [ErrConfig] (the caller's own setup) and a failure of the
// replay cache itself (such as [ErrReplayCacheFull]), none of which says
// anything about the peer. Callers test with errors.Is. Messages never
// hold a token.
var (
	// ErrNoWIT reports a request without a Workload-Identity-Token header.
	// [Verifier.Verify] returns it alone (not wrapped in ErrInvalidWIT):
	// a server that accepts such requests treats it as "no WIMSE peer".
	ErrNoWIT = errors.New("wimse: no Workload-Identity-Token header")

	// ErrInvalidWIT is the kind of every error about the Workload Identity
	// Token itself: malformed, wrong typ, bad signature or unknown
	// authority key, untrusted trust domain, expired, missing or bad sub or
	// cnf.jwk, more than one Workload-Identity-Token header.
	ErrInvalidWIT = errors.New("wimse: invalid workload identity token")

	// ErrInvalidProof is the kind of every error about the proof of
	// possession that goes with a WIT: the Workload Proof Token or the
	// HTTP message signature, or the lack of either.
	ErrInvalidProof = errors.New("wimse: invalid proof of possession")

	// ErrWrongType reports a typ header that names another kind of token:
	// an access token (at+jwt), a JWT-SVID (JWT), a Txn-Token or a WPT is
	// never a WIT, and a WIT, DPoP proof or access token is never a WPT
	// (SPECS.md X.1, RFC 8725 §3.11).
	ErrWrongType = errors.New("wimse: wrong token type")

	// ErrSignature reports a signature that does not verify, a key that
	// no trusted authority holds, or an algorithm that is not allowed (for
	// a proof: any algorithm other than the WIT's cnf.jwk.alg).
	ErrSignature = errors.New("wimse: bad signature")

	// ErrExpired reports a token or signature whose exp or expires has
	// passed (beyond the allowed clock skew), or a proof whose lifetime is
	// longer than the verifier accepts.
	ErrExpired = errors.New("wimse: expired")

	// ErrNotYetValid reports an iat, nbf or created later than now plus
	// the allowed clock skew.
	ErrNotYetValid = errors.New("wimse: not yet valid")

	// ErrWrongAudience reports a proof made for another recipient: the WPT
	// aud or the signature's wimse-aud is not the target this server
	// expects.
	ErrWrongAudience = errors.New("wimse: proof is for another audience")

	// ErrReplayed reports a proof whose jti (WPT) or nonce (HTTP
	// signature) was already used within its lifetime.
	ErrReplayed = errors.New("wimse: proof replayed")

	// ErrTokenBinding reports a WPT whose wth, ath, tth or oth does not
	// match the WIT, access token, Txn-Token or other token presented
	// with it, a hash missing for a token that is presented, a hash for a
	// token that is not presented, or an oth entry the verifier does not
	// understand (SPECS.md §8.3).
	ErrTokenBinding = errors.New("wimse: proof not bound to the presented tokens")

	// ErrContentDigest reports a request body that does not match its
	// Content-Digest, or a body sent without a Content-Digest under an
	// HTTP message signature (SPECS.md §8.4, RFC 9530).
	ErrContentDigest = errors.New("wimse: content digest mismatch")

	// ErrBodyTooLarge reports a signed request body larger than the
	// configured maximum, which therefore cannot be digested.
	ErrBodyTooLarge = errors.New("wimse: body too large to verify")

	// ErrUnsupported reports a request for something this package does
	// not do: a signed response (wimse-sign-response) or a covered
	// component it cannot compute.
	ErrUnsupported = errors.New("wimse: not supported")

	// ErrReplayCacheFull reports a replay cache that holds its maximum
	// number of unexpired entries. The proof is refused (fail closed).
	ErrReplayCacheFull = errors.New("wimse: replay cache full")

	// ErrConfig reports a Config, TransportConfig, option or key that
	// cannot be used.
	ErrConfig = errors.New("wimse: invalid configuration")
)

// witError returns an error of kind [ErrInvalidWIT] with reason (which
// may be nil) and a message; format may use %w.
func witError(reason error, format string, args ...any) error {
	return kindError(ErrInvalidWIT, reason, format, args...)
}

// proofError returns an error of kind [ErrInvalidProof] with reason (which
// may be nil) and a message; format may use %w.
func proofError(reason error, format string, args ...any) error {
	return kindError(ErrInvalidProof, reason, format, args...)
}

func kindError(kind, reason error, format string, args ...any) error {
	if reason == nil {
		return fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
	}
	return fmt.Errorf("%w: %w: "+format, append([]any{kind, reason}, args...)...)
}

// joseError maps a credentials/jose verification error to kind and the
// package's reason sentinel, keeping the jose error in the chain.
func joseError(kind error, what string, err error) error {
	var reason error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("wimse: verify %s: %w", what, err)
	case errors.Is(err, jose.ErrInvalidOptions):
		return fmt.Errorf("%w: verify %s: %w", ErrConfig, what, err)
	case errors.Is(err, jose.ErrWrongType):
		reason = ErrWrongType
	case errors.Is(err, jose.ErrInvalidSignature), errors.Is(err, jose.ErrUnknownKey),
		errors.Is(err, jose.ErrAlgorithm), errors.Is(err, jose.ErrUnsupportedKey):
		reason = ErrSignature
	case errors.Is(err, jose.ErrExpired):
		reason = ErrExpired
	case errors.Is(err, jose.ErrNotYetValid), errors.Is(err, jose.ErrIssuedInFuture):
		reason = ErrNotYetValid
	}
	if reason == nil {
		return fmt.Errorf("%w: %s: %w", kind, what, err)
	}
	return fmt.Errorf("%w: %w: %w", kind, reason, err)
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
