// Package wire holds what the provider clients share: building a redacted
// APIError, wrapping call errors, excerpting bodies, and building tool
// calls from the wire form.
package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agenthost/agenthost/llm"
)

// APIError builds a provider error with the API key redacted from its text
// and Retry-After read from h (when h is not nil).
func APIError(provider string, status int, typ, msg string, h http.Header, now time.Time, apiKey string) *llm.APIError {
	e := &llm.APIError{
		Provider: provider,
		Status:   status,
		Type:     llm.Redact(typ, apiKey),
		Message:  llm.Redact(msg, apiKey),
	}
	if h != nil {
		e.RetryAfter = llm.ParseRetryAfter(h, now)
	}
	return e
}

// WrapErr keeps a context error visible to errors.Is and redacts the key.
func WrapErr(ctx context.Context, err error, apiKey string) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return llm.RedactError(err, apiKey)
}

// Excerpt trims s to at most 256 bytes of valid UTF-8 for an error message.
func Excerpt(s string) string {
	s = strings.TrimSpace(s)
	const max = 256
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// ToolCall builds an llm.ToolCall from its wire parts; what names the
// construct in errors ("tool call", "tool_use").
func ToolCall(what, id, name, args string) (llm.ToolCall, error) {
	if id == "" || name == "" {
		return llm.ToolCall{}, fmt.Errorf("%w: %s without id or name", llm.ErrMalformedStream, what)
	}
	a, err := llm.NormalizeArguments(args)
	if err != nil {
		return llm.ToolCall{}, fmt.Errorf("%w: %s %q: %w", llm.ErrMalformedStream, what, name, err)
	}
	return llm.ToolCall{ID: id, Name: name, Arguments: a}, nil
}
