package dpop

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Test them with errors.Is.
var (
	// ErrInvalidProof reports a proof that fails a check of RFC 9449 §4.3;
	// it maps to the OAuth error invalid_dpop_proof.
	ErrInvalidProof = errors.New("dpop: invalid proof")

	// ErrUseNonce reports a proof without the current server nonce; it
	// maps to the OAuth error use_dpop_nonce (RFC 9449 §8).
	ErrUseNonce = errors.New("dpop: use nonce")

	// ErrReplay reports a single-use value (a proof's jti) seen before.
	// [Verifier.Verify] returns it wrapped together with ErrInvalidProof.
	ErrReplay = errors.New("dpop: replayed")
)

// OAuth error codes of RFC 9449 §12.2.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// ErrorCode returns the OAuth error code for an error of this package:
// "use_dpop_nonce", "invalid_dpop_proof", or "" for errors that are not
// about the proof (a failing replay store, a bad Request), which callers
// report as server errors.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, ErrUseNonce):
		return CodeUseNonce
	case errors.Is(err, ErrInvalidProof):
		return CodeInvalidProof
	}
	return ""
}

// proofError is a refusal: its message says what was wrong and it wraps
// its kind (ErrInvalidProof or ErrUseNonce) and, when there is one, the
// cause (a jose sentinel, ErrReplay).
type proofError struct {
	kind  error
	msg   string
	cause error
}

func (e *proofError) Error() string { return "dpop: " + e.msg }

func (e *proofError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func invalid(msg string) error { return &proofError{kind: ErrInvalidProof, msg: msg} }

func useNonce(msg string) error { return &proofError{kind: ErrUseNonce, msg: msg} }

// clip shortens an untrusted value for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// joseReason turns a jose error into the reason part of a dpop message.
func joseReason(err error) string {
	return clip(strings.ReplaceAll(err.Error(), "jose: ", ""), 200)
}
