package mcpserver

// Calls that need a person first: an [Authorizer] that wraps
// [ErrApprovalRequired] lets a tools/call through to its handler with the
// requirement in the context ([ApprovalRequired]); the handler answers
// with an [ElicitationRequiredError] until the person has acted, and the
// server renders that as the negotiated protocol asks (MCP 2025-11-25
// URLElicitationRequiredError, 2026-07-28 input_required).

import (
	"context"
	"errors"
	"fmt"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ErrApprovalRequired may be wrapped by an [Authorizer]'s error to allow a
// call only with a person's approval: tools/list shows the tool, and
// tools/call runs its handler with [ApprovalRequired] reporting the
// requirement. The handler must then get the approval itself (answering
// with an [ElicitationRequiredError] until it has it) or refuse the call.
var ErrApprovalRequired = errors.New("mcpserver: approval required")

type approvalKey struct{}

// ApprovalRequired reports, in a [Tool.Handler], whether the [Authorizer]
// allowed the call only with approval, and its reason (the Authorizer's
// error text).
func ApprovalRequired(ctx context.Context) (reason string, ok bool) {
	reason, ok = ctx.Value(approvalKey{}).(string)
	return reason, ok
}

// withApproval marks ctx for a call whose Authorizer answered err, and
// reports whether err is an approval requirement (nil err: nothing to
// mark, allowed).
func withApproval(ctx context.Context, err error) (context.Context, bool) {
	if !errors.Is(err, ErrApprovalRequired) {
		return ctx, false
	}
	return context.WithValue(ctx, approvalKey{}, err.Error()), true
}

// URLElicitation is one URL-mode elicitation (MCP 2025-11-25
// elicitation/create with mode "url"): the user is to open URL, out of
// band, for the reason Message.
type URLElicitation struct {
	// ID is the elicitationId (2025-11-25), unique per server; under
	// 2026-07-28, which removed the field, it keys the input request and
	// is the requestState the client echoes.
	ID string
	// URL is the page to open; it must carry no credential.
	URL     string
	Message string
}

// ElicitationRequiredError is what a [Tool.Handler] returns when the call
// cannot proceed until the user completes URL elicitations (and the client
// then retries the call). The client gets, under protocol 2025-11-25, the
// JSON-RPC error -32042 (URLElicitationRequiredError) with
// data.elicitations; under 2026-07-28, a result with resultType
// "input_required" carrying one elicitation/create input request per
// elicitation and requestState.
type ElicitationRequiredError struct {
	Elicitations []URLElicitation
}

func (e *ElicitationRequiredError) Error() string {
	return fmt.Sprintf("mcpserver: %d URL elicitation(s) required", len(e.Elicitations))
}

// elicitationAnswer renders e for the request in ctx.
func elicitationAnswer(ctx context.Context, e *ElicitationRequiredError) (*mcpgo.CallToolResult, error) {
	if server.IsModernRequest(ctx) {
		state := ""
		if len(e.Elicitations) > 0 {
			state = e.Elicitations[0].ID
		}
		b := server.NewInputRequestBuilder(state)
		for _, el := range e.Elicitations {
			b.Elicit(el.ID, mcpgo.ElicitationParams{Mode: mcpgo.ElicitationModeURL, Message: el.Message, URL: el.URL})
		}
		return b.ToolResult(), nil
	}
	out := mcpgo.URLElicitationRequiredError{}
	for _, el := range e.Elicitations {
		out.Elicitations = append(out.Elicitations, mcpgo.ElicitationParams{Mode: mcpgo.ElicitationModeURL,
			ElicitationID: el.ID, Message: el.Message, URL: el.URL})
	}
	return nil, out
}
