package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Every error a [Fetcher] returns wraps exactly one of
// them, except a cancellation by the caller's context, which wraps
// context.Canceled.
var (
	// ErrInvalidURL reports a URL that is not absolute, has userinfo or a
	// fragment, or uses a scheme other than https (or http when allowed).
	ErrInvalidURL = errors.New("fetch: invalid URL")

	// ErrRedirect reports a redirect to another origin, to a URL that is
	// not acceptable, or one redirect too many.
	ErrRedirect = errors.New("fetch: redirect refused")

	// ErrTooLarge reports a response body longer than the configured cap.
	ErrTooLarge = errors.New("fetch: response too large")

	// ErrTimeout reports a fetch that did not complete in time. Errors
	// wrapping it also wrap context.DeadlineExceeded.
	ErrTimeout = errors.New("fetch: timed out")

	// ErrStatus reports a response status outside 2xx. The error is a
	// [*StatusError] that carries the code.
	ErrStatus = errors.New("fetch: unexpected status")

	// ErrBadJSON reports a response that is not JSON (media type) or whose
	// body is not exactly one JSON object.
	ErrBadJSON = errors.New("fetch: not a JSON object")

	// ErrPrivateAddress reports a target that is, or resolves to, an
	// address that is not publicly routable.
	ErrPrivateAddress = errors.New("fetch: address not allowed")
)

// StatusError is the error for a response status outside 2xx. It wraps
// [ErrStatus].
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Excerpt is the start of the body (at most 128 bytes), without
	// control characters.
	Excerpt string
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %d %s", ErrStatus.Error(), e.Code, http.StatusText(e.Code))
	msg = strings.TrimSuffix(msg, " ")
	if e.Excerpt != "" {
		msg += ": " + e.Excerpt
	}
	return msg
}

// Unwrap returns [ErrStatus].
func (e *StatusError) Unwrap() error { return ErrStatus }

// addrError is the error the dialer returns for a refused address.
type addrError struct{ addr string }

func (e *addrError) Error() string { return ErrPrivateAddress.Error() + ": " + e.addr }
func (e *addrError) Unwrap() error { return ErrPrivateAddress }

// maxExcerpt caps the body excerpt an error may carry.
const maxExcerpt = 128

// excerpt returns at most maxExcerpt bytes of b as text, without control
// or format characters and without invalid UTF-8.
func excerpt(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError && size <= 1 {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			if r == '\n' || r == '\t' || r == '\r' {
				r = ' '
			} else {
				continue
			}
		}
		if sb.Len()+utf8.RuneLen(r) > maxExcerpt {
			break
		}
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}
