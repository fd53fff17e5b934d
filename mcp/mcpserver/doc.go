// Package mcpserver serves host-defined tools as MCP servers with OAuth built
// in.
//
// A [Server] is one MCP server, mounted by the host at /mcp/<name>. Its
// [Server.Handler] speaks the MCP Streamable HTTP transport (protocol
// versions 2025-11-25 through the initialize handshake and the stateless
// 2026-07-28 core) and protects every request as an OAuth 2.0 resource
// server:
//
//   - every request passes the configured resource.Verifier first, so a
//     missing or invalid token gets 401 with a WWW-Authenticate challenge
//     carrying resource_metadata (RFC 9728 §5.1);
//   - tools/list shows only the tools whose [Tool.Scope] the caller holds
//     and that the [Authorizer] allows;
//   - tools/call of a tool whose scope the caller lacks gets HTTP 403 with an
//     insufficient_scope challenge naming that scope and the caller's scopes
//     of this server (so a client that authorizes again with it keeps what it
//     had), so the client can step up; a call the [Authorizer] denies gets the
//     JSON-RPC error [CodeDenied];
//   - an Authorizer may allow a call only with a person's approval
//     ([ErrApprovalRequired]): the handler sees it ([ApprovalRequired]) and
//     answers with an [ElicitationRequiredError] until the person has acted,
//     which the client gets as the negotiated protocol says (2025-11-25:
//     error -32042 with data.elicitations; 2026-07-28: an input_required
//     result); the Authorizer sees a call's arguments ([CallArguments]);
//   - the Authorization and DPoP headers are removed before the MCP layer
//     sees the request, so a [Tool.Handler] receives the verified
//     resource.Caller and never the token.
//
// Tools are described with this package's own [Tool] and [Result] types;
// hosts do not import the MCP library.
package mcpserver
