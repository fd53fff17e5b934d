package clientmeta

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// Sentinel errors. An [*Error] matches the sentinel of its code under
// errors.Is; [Resolver.Resolve] failures wrap ErrInvalidClient.
var (
	// ErrInvalidRedirectURI matches an *Error with code
	// invalid_redirect_uri (RFC 7591 §3.2.2).
	ErrInvalidRedirectURI = errors.New("clientmeta: " + oauth.CodeInvalidRedirectURI)

	// ErrInvalidClientMetadata matches an *Error with code
	// invalid_client_metadata (RFC 7591 §3.2.2).
	ErrInvalidClientMetadata = errors.New("clientmeta: " + oauth.CodeInvalidClientMetadata)

	// ErrInvalidClient reports a client ID metadata document that could
	// not be fetched or is not valid; the authorization server answers
	// invalid_client.
	ErrInvalidClient = errors.New("clientmeta: " + oauth.CodeInvalidClient)
)

// Error is a client metadata error (RFC 7591 §3.2.2). Code is
// invalid_redirect_uri or invalid_client_metadata; Description is written
// for the client and stays within the error_description character set of
// RFC 6749 §5.2.
type Error struct {
	Code        string
	Description string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return "clientmeta: " + e.Code
	}
	return "clientmeta: " + e.Code + ": " + e.Description
}

// Is matches the sentinel of e's code, or any *Error with the same code.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidRedirectURI:
		return e.Code == oauth.CodeInvalidRedirectURI
	case ErrInvalidClientMetadata:
		return e.Code == oauth.CodeInvalidClientMetadata
	}
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// OAuth returns e as the OAuth error response to send (status 400).
func (e *Error) OAuth() *oauth.Error {
	return oauth.Errorf(e.Code, "%s", e.Description)
}

func metadataError(format string, args ...any) *Error {
	return &Error{Code: oauth.CodeInvalidClientMetadata, Description: fmt.Sprintf(format, args...)}
}

func redirectError(format string, args ...any) *Error {
	return &Error{Code: oauth.CodeInvalidRedirectURI, Description: fmt.Sprintf(format, args...)}
}

// show quotes a client-supplied value for an error description: at most
// 64 bytes, in single quotes, with every character outside the
// error_description set (RFC 6749 §5.2) or the quote itself replaced by '?'.
func show(s string) string {
	const maxShown = 64
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if i == maxShown {
			b.WriteString("...")
			break
		}
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '\'' {
			c = '?'
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
	return b.String()
}
