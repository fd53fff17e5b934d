package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// credentialHeaders are removed from every request before the MCP layer
// sees it, so no tool handler can reach the caller's token or proof.
var credentialHeaders = []string{"Authorization", "Dpop", "Proxy-Authorization"}

// message is the part of a JSON-RPC 2.0 message serve reads.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// callParams is the part of tools/call params serve reads.
type callParams struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

type argumentsKey struct{}

// CallArguments returns, in an [Authorizer] deciding a tools/call, the
// call's arguments as sent (a JSON value; absent for tools/list).
func CallArguments(ctx context.Context) (json.RawMessage, bool) {
	args, ok := ctx.Value(argumentsKey{}).(json.RawMessage)
	return args, ok
}

// authorizedKey marks, in a request context, the tool whose call serve
// has already authorized, so the policy hook runs once per call.
type authorizedKey struct{}

// serve runs behind the verifier's middleware: it enforces the body limit,
// answers a tools/call the caller may not make, removes the credentials and
// hands the request to the MCP transport.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller, ok := resource.CallerFrom(ctx)
	if !ok || caller == nil {
		s.logger.ErrorContext(ctx, "mcpserver: request without a verified caller")
		writeRPCError(w, http.StatusInternalServerError, nil, mcpgo.INTERNAL_ERROR, "internal error")
		return
	}
	r = stripCredentials(r)
	if r.Method != http.MethodPost {
		s.mcp.ServeHTTP(w, r)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.logger.WarnContext(ctx, "mcpserver: request body too large", slog.Int64("limit", tooBig.Limit))
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, mcpgo.INVALID_REQUEST, "request body too large")
			return
		}
		writeRPCError(w, http.StatusBadRequest, nil, mcpgo.PARSE_ERROR, "request body could not be read")
		return
	}
	msg, code, text := parseMessage(body)
	if code != 0 {
		writeRPCError(w, http.StatusBadRequest, nil, code, text)
		return
	}

	if msg.Method == string(mcpgo.MethodToolsCall) {
		var p callParams
		if json.Unmarshal(msg.Params, &p) == nil {
			if t := s.tools[p.Name]; t != nil {
				if !hasScope(caller, t) {
					s.logger.InfoContext(ctx, "mcpserver: insufficient scope",
						slog.String("tool", t.Name), slog.String("scope", t.Scope))
					// The challenge keeps the caller's scopes of this
					// server next to the missing one (resource.Verifier.StepUp).
					s.verifier.StepUp(caller, t.Scope).Write(w)
					return
				}
				args := p.Arguments
				if len(args) == 0 {
					args = json.RawMessage("{}")
				}
				err := s.allowed(context.WithValue(ctx, argumentsKey{}, args), caller, t.Name)
				var approval bool
				if ctx, approval = withApproval(ctx, err); approval {
					err = nil
				}
				if err != nil {
					s.logger.InfoContext(ctx, "mcpserver: tool call denied",
						slog.String("tool", t.Name), slog.Any("error", err))
					if s.onDenied != nil {
						s.onDenied(ctx, caller, t.Name, err)
					}
					writeRPCError(w, http.StatusOK, msg.ID, CodeDenied, "tool call denied")
					return
				}
				ctx = context.WithValue(ctx, authorizedKey{}, t.Name)
			}
		}
	}

	r = r.WithContext(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	s.mcp.ServeHTTP(w, r)
}

// parseMessage decodes one JSON-RPC message. A non-zero code is the JSON-RPC
// error to answer with: -32700 for bytes that are not JSON, -32600 for JSON
// that is not a single request object (batches are refused).
func parseMessage(body []byte) (msg message, code int, text string) {
	if !json.Valid(body) {
		return message{}, mcpgo.PARSE_ERROR, "request body is not valid JSON"
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch trimmed[0] {
	case '{':
	case '[':
		return message{}, mcpgo.INVALID_REQUEST, "batch requests are not supported"
	default:
		return message{}, mcpgo.INVALID_REQUEST, "request is not a JSON-RPC object"
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return message{}, mcpgo.INVALID_REQUEST, "malformed JSON-RPC request"
	}
	return msg, 0, ""
}

// stripCredentials returns a copy of r without the credential headers.
func stripCredentials(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	for _, h := range credentialHeaders {
		r2.Header.Del(h)
	}
	return r2
}

// rpcError is a JSON-RPC 2.0 error response (§5.1).
type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcErrorBody    `json:"error"`
}

type rpcErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeRPCError writes a JSON-RPC error response; a missing id is null.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, text string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, err := json.Marshal(rpcError{JSONRPC: mcpgo.JSONRPC_VERSION, ID: id, Error: rpcErrorBody{Code: code, Message: text}})
	if err != nil {
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
