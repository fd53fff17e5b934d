package llm

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. An [*APIError] matches the class sentinels under
// [errors.Is] by its HTTP status and error type.
var (
	// ErrRateLimited: the provider refused the call for rate or quota
	// reasons (HTTP 429). RetryAfter on the APIError says when to retry.
	ErrRateLimited = errors.New("llm: rate limited")
	// ErrAuth: the provider rejected the credentials (HTTP 401 or 403).
	ErrAuth = errors.New("llm: authentication failed")
	// ErrBadRequest: the provider rejected the request itself (HTTP 400,
	// 404, 413 or 422).
	ErrBadRequest = errors.New("llm: bad request")
	// ErrOverloaded: the provider is temporarily overloaded or unavailable
	// (HTTP 503 or 529).
	ErrOverloaded = errors.New("llm: provider overloaded")
	// ErrInvalidRequest: the request failed local validation and was not
	// sent.
	ErrInvalidRequest = errors.New("llm: invalid request")
	// ErrMalformedStream: a response or stream could not be parsed or ended
	// before its final message.
	ErrMalformedStream = errors.New("llm: malformed response stream")
)

// APIError is an error reported by a model provider, decoded from its error
// body. Its message never contains the API key.
type APIError struct {
	// Provider names the provider ("openai", "anthropic").
	Provider string
	// Status is the HTTP status code; 0 for an error sent inside a stream
	// after a 200 response.
	Status int
	// Type is the provider's error type or code ("rate_limit_error").
	Type string
	// Message is the provider's human-readable message.
	Message string
	// RetryAfter is how long the provider asked the caller to wait, from
	// the Retry-After header; zero when not given.
	RetryAfter time.Duration
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("llm: ")
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	b.WriteString("provider error")
	if e.Status != 0 {
		fmt.Fprintf(&b, " (status %d)", e.Status)
	}
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether e belongs to the class of target, one of
// [ErrRateLimited], [ErrAuth], [ErrBadRequest] or [ErrOverloaded].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests ||
			e.Type == "rate_limit_error" || e.Type == "rate_limit_exceeded" || e.Type == "insufficient_quota"
	case ErrAuth:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden ||
			e.Type == "authentication_error" || e.Type == "permission_error" || e.Type == "invalid_api_key"
	case ErrBadRequest:
		switch e.Status {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return true
		}
		return e.Status == 0 && e.Type == "invalid_request_error"
	case ErrOverloaded:
		return e.Status == http.StatusServiceUnavailable || e.Status == 529 || e.Type == "overloaded_error"
	}
	return false
}

// Redact replaces every occurrence of secret in s with "[redacted]". An empty
// secret leaves s unchanged. Providers pass every provider-supplied string
// through it before it reaches an error.
func Redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// ParseRetryAfter reads how long to wait from h: the "retry-after-ms"
// header (milliseconds) if present, else "Retry-After" as delay-seconds or an
// HTTP-date relative to now (RFC 9110 §10.2.3). It returns zero when neither
// header holds a usable value.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e12 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 || secs > 1<<31 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// RedactError returns err with every occurrence of secret removed from its
// message; errors.Is and errors.As still see the original chain. It returns
// err unchanged when the message does not contain secret.
func RedactError(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: Redact(err.Error(), secret), err: err}
}

// redactedError shows a redacted message and unwraps to the original error.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
