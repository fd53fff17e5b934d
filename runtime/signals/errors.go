package signals

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes a SET Recipient returns in the "err" member of a failed
// delivery (RFC 8935 §2.4, RFC 8936 §2.4) and SSF's invalid_state.
const (
	// CodeInvalidRequest: the body cannot be parsed as a SET, or the event
	// payload does not conform to the event's definition.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidKey: a key used to sign the SET is invalid or not
	// acceptable (unknown kid, algorithm not allowed for the key).
	CodeInvalidKey = "invalid_key"
	// CodeInvalidIssuer: the SET issuer is not the configured transmitter.
	CodeInvalidIssuer = "invalid_issuer"
	// CodeInvalidAudience: the SET audience does not name this receiver.
	CodeInvalidAudience = "invalid_audience"
	// CodeAuthenticationFailed: the recipient could not authenticate the
	// transmitter (bad HTTP credentials, or a signature that does not
	// verify with the transmitter's key).
	CodeAuthenticationFailed = "authentication_failed"
	// CodeAccessDenied: the transmitter is authenticated but not
	// authorized to deliver SETs here.
	CodeAccessDenied = "access_denied"
	// CodeInvalidState: a verification event carried a state the
	// receiver did not ask for (SSF 1.0).
	CodeInvalidState = "invalid_state"
)

// Sentinel errors. Test them with errors.Is.
var (
	// ErrInvalidSET reports a SET that was rejected; the error is a
	// [*SETError] carrying the RFC 8935 code.
	ErrInvalidSET = errors.New("signals: SET rejected")

	// ErrReplay reports a jti already seen from the same issuer. It is
	// always wrapped in a [*SETError] with code invalid_request.
	ErrReplay = errors.New("signals: replayed jti")

	// ErrUnknownSubjectFormat reports a subject identifier whose format
	// is not one this package understands.
	ErrUnknownSubjectFormat = errors.New("signals: unknown subject identifier format")

	// ErrInvalidSubject reports a subject identifier that is malformed for
	// its format.
	ErrInvalidSubject = errors.New("signals: invalid subject identifier")

	// ErrUnsupportedEvent reports an event type this package does not
	// decode or the receiver did not ask for.
	ErrUnsupportedEvent = errors.New("signals: unsupported event type")

	// ErrIssuerMismatch reports transmitter metadata or a stream
	// configuration whose issuer differs from the configured one.
	ErrIssuerMismatch = errors.New("signals: issuer mismatch")

	// ErrKeysUnavailable reports that the transmitter's JWK Set could not
	// be fetched. Deliveries failing with it are retried, not rejected.
	ErrKeysUnavailable = errors.New("signals: transmitter keys unavailable")

	// ErrHandler reports that the [Handler] failed for a verified event;
	// the SET is neither acknowledged nor rejected, so it is delivered
	// again.
	ErrHandler = errors.New("signals: event handler failed")

	// ErrAuthenticationFailed is returned by authorization hooks for a
	// caller whose credentials are missing or invalid.
	ErrAuthenticationFailed = errors.New("signals: authentication failed")

	// ErrAccessDenied is returned by authorization hooks for an
	// authenticated caller that may not use the endpoint.
	ErrAccessDenied = errors.New("signals: access denied")

	// ErrStreamNotFound reports a stream that does not exist or belongs to
	// another client.
	ErrStreamNotFound = errors.New("signals: stream not found")

	// ErrStreamExists reports a stream id that is already taken.
	ErrStreamExists = errors.New("signals: stream already exists")

	// ErrHTTPStatus reports an unexpected HTTP status from a remote
	// endpoint; the error is an [*HTTPError].
	ErrHTTPStatus = errors.New("signals: unexpected HTTP status")

	// ErrDeliveryRejected reports a SET the recipient refused with a 4xx
	// response; it is not retried.
	ErrDeliveryRejected = errors.New("signals: delivery rejected")

	// ErrQueueFull reports a stream whose queue of undelivered SETs is at
	// its cap.
	ErrQueueFull = errors.New("signals: stream queue full")

	// ErrInvalidConfig reports a configuration that cannot be used.
	ErrInvalidConfig = errors.New("signals: invalid configuration")
)

// SETError is a rejected SET with the error code and description the
// recipient reports (RFC 8935 §2.4). Description is safe to send to the
// transmitter; Err holds the detailed cause for logs.
type SETError struct {
	Code        string
	Description string
	Err         error
}

// Error implements error.
func (e *SETError) Error() string {
	msg := "signals: SET rejected: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns [ErrInvalidSET] and the cause.
func (e *SETError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidSET}
	}
	return []error{ErrInvalidSET, e.Err}
}

func reject(code, desc string, cause error) *SETError {
	return &SETError{Code: code, Description: desc, Err: cause}
}

// ErrorCode returns the RFC 8935 code of err when it is a [*SETError], and
// "" otherwise.
func ErrorCode(err error) string {
	var se *SETError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// ErrorBody is the JSON error object of RFC 8935 §2.4 and the value type
// of RFC 8936 setErrs.
type ErrorBody struct {
	Err         string `json:"err"`
	Description string `json:"description,omitempty"`
}

// HTTPError is an unexpected response from a remote endpoint. It wraps
// [ErrHTTPStatus].
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is a sanitized excerpt of the response body.
	Body string
	// Err is the RFC 8935 error object when the body held one.
	Err *ErrorBody
}

// Error implements error.
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("signals: unexpected HTTP status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Err != nil {
		msg += ": " + e.Err.Err
		if e.Err.Description != "" {
			msg += ": " + e.Err.Description
		}
	} else if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap returns [ErrHTTPStatus].
func (e *HTTPError) Unwrap() error { return ErrHTTPStatus }
