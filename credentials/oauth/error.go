package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/agenthost/agenthost/credentials"
)

// Error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 8693 §2.2.2,
// RFC 9449 §5 and §12, RFC 7009 §2.2.1, RFC 8707 §2, CIBA §11 and §13).
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidScope            = "invalid_scope"
	CodeAccessDenied            = "access_denied"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeServerError             = "server_error"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"
	CodeInvalidTarget           = "invalid_target"
	CodeInvalidToken            = "invalid_token"
	CodeInsufficientScope       = "insufficient_scope"
	CodeInvalidDPoPProof        = "invalid_dpop_proof"
	CodeUseDPoPNonce            = "use_dpop_nonce"
	CodeUnsupportedTokenType    = "unsupported_token_type"
	CodeInvalidAuthDetails      = "invalid_authorization_details"
	CodeLoginRequired           = "login_required"
	CodeConsentRequired         = "consent_required"
	CodeInvalidRedirectURI      = "invalid_redirect_uri"
	CodeInvalidClientMetadata   = "invalid_client_metadata"
	CodeAuthorizationPending    = "authorization_pending"
	CodeSlowDown                = "slow_down"
	CodeExpiredToken            = "expired_token"
)

// Error is an OAuth error response (RFC 6749 §5.2). It is both the value
// servers write and the value clients decode; Status is the HTTP status it
// travels with and is not serialized.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
	// Status is the HTTP status; zero means the code's usual status
	// (see [StatusFor]).
	Status int `json:"-"`
}

// Errorf returns an Error with code and a formatted description. The
// description is sent to the client: it must name what was wrong with the
// request and never hold internals or secrets.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: cleanDescription(fmt.Sprintf(format, args...))}
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

// Is makes errors.Is match any *Error with the same code, so callers can
// test errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidGrant}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusFor(e.Code)
}

// WithStatus returns a copy of e sent with status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// StatusFor is the usual HTTP status of an error code: 401 for
// invalid_client and invalid_token, 403 for insufficient_scope and
// access_denied, 500 and 503 for the server codes, 400 otherwise.
func StatusFor(code string) int {
	switch code {
	case CodeInvalidClient, CodeInvalidToken:
		return http.StatusUnauthorized
	case CodeInsufficientScope:
		return http.StatusForbidden
	case CodeServerError:
		return http.StatusInternalServerError
	case CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// AsError returns err as an *Error. Anything that is not one becomes a
// server_error with a generic description, so internals never reach the
// wire.
func AsError(err error) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	if errors.Is(err, credentials.ErrUnavailable) {
		return &Error{Code: CodeTemporarilyUnavailable, Description: "a service the server needs is unavailable; try again later"}
	}
	return &Error{Code: CodeServerError, Description: "the server could not complete the request"}
}

// WriteError writes err as an RFC 6749 §5.2 JSON error response with
// Cache-Control: no-store. Errors that are not *Error are written as
// server_error without detail (see [AsError]).
func WriteError(w http.ResponseWriter, err error) {
	oe := AsError(err)
	WriteJSON(w, oe.HTTPStatus(), oe)
}

// WriteJSON writes v as a JSON response with the headers RFC 6749 §5.1
// requires of token responses (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// cleanDescription keeps error_description inside the character set RFC
// 6749 §5.2 allows (%x20-21 / %x23-5B / %x5D-7E): other characters become
// '?', and the text is capped.
func cleanDescription(s string) string {
	const maxLen = 512
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxLen; i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
