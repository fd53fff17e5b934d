package mediator

import (
	"context"
	"encoding/json"
	"time"
)

// Token is an access token the host acquired for one call. It is handed to
// the code that makes the call and never returned to the plugin.
type Token struct {
	// Type is the token type for the Authorization header ("Bearer",
	// "DPoP").
	Type      string
	Value     string
	ExpiresAt time.Time
}

// TokenSource acquires the token a call to a remote resource needs, for
// the caller (its agent, and later the user it acts for): discovery of the
// resource's authorization server, then client credentials or token
// exchange, cached. The embedded authorization server and the OAuth client
// provide it; until then no TokenSource is configured and remote tools are
// refused.
type TokenSource interface {
	Token(ctx context.Context, c Caller, resource string) (Token, error)
}

// RemoteTool is a [Tool] whose target is outside the host. Before calling
// it the mediator acquires a token for Resource from the TokenSource and
// passes it to CallWithToken; the tool's Call is not used.
type RemoteTool interface {
	Tool
	// Resource is the target's resource identifier (RFC 8707), e.g. an MCP
	// server URL.
	Resource() string
	CallWithToken(ctx context.Context, c Caller, tok Token, args json.RawMessage) (ToolResult, error)
}
