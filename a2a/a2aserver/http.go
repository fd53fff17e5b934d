package a2aserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/a2aproject/a2a-go/a2asrv/limiter"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// JSON-RPC 2.0 error codes (§5.1) the server answers itself, before
// a2a-go sees a request.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// credentialHeaders are removed before a2a-go sees a request: nothing
// past authentication can reach or pass on the caller's credentials.
var credentialHeaders = []string{"Authorization", "Dpop", "Proxy-Authorization", txntoken.HeaderName, "Cookie"}

// serveRPC authenticates a JSON-RPC request to an agent, checks its size
// and envelope, and hands it to a2a-go with the caller in its context.
func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ep := s.endpoint(r.PathValue("agent"))
	if ep == nil {
		http.NotFound(w, r)
		return
	}
	log := s.log.With(slog.String("agent", ep.info.Name))

	caller, err := ep.auth.Authenticate(r)
	if err != nil {
		if ch, ok := errors.AsType[*resource.Challenge](err); ok {
			ch.Write(w)
			return
		}
		log.ErrorContext(ctx, "a2aserver: authentication failed", slog.Any("error", err))
		(&resource.Challenge{Status: http.StatusInternalServerError, Code: oauth.CodeServerError}).Write(w)
		return
	}
	// The authenticator was built for this agent's URL; check anyway that
	// the token names it, so a misconfigured one fails closed.
	if caller == nil || !slices.Contains(caller.Audience, ep.url) {
		log.WarnContext(ctx, "a2aserver: token for another audience passed the authenticator")
		(&resource.Challenge{Status: http.StatusUnauthorized, Code: oauth.CodeInvalidToken,
			Description: "the access token was issued for another resource", ResourceMetadata: ep.mdURL}).Write(w)
		return
	}
	if missing := missingScopes(caller, ep.info.Scopes); len(missing) > 0 {
		stepUp(ep, caller, missing).Write(w)
		return
	}

	c := &call{agent: ep.info.Name, caller: caller, owner: ownerKey(ep.info.Name, caller)}
	switch tok, err := txntoken.FromHeader(r.Header); {
	case errors.Is(err, txntoken.ErrNoToken):
	case err != nil:
		oauth.WriteJSON(w, http.StatusBadRequest, &oauth.Error{Code: oauth.CodeInvalidRequest, Description: "the Txn-Token header is malformed"})
		return
	default:
		c.txnToken = tok
		if s.cfg.VerifyTxnToken != nil {
			claims, err := s.cfg.VerifyTxnToken(ctx, tok)
			if err != nil {
				log.InfoContext(ctx, "a2aserver: txn-token refused", slog.String("txn_token_hash", txntoken.TokenHash(tok)), slog.Any("error", err))
				oauth.WriteJSON(w, http.StatusBadRequest, &oauth.Error{Code: oauth.CodeInvalidRequest, Description: "the Txn-Token is not valid"})
				return
			}
			c.txnClaims = claims
		}
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			log.InfoContext(ctx, "a2aserver: request body too large", slog.Int64("limit", tooBig.Limit))
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, CodeInvalidRequest, "request body too large")
			return
		}
		writeRPCError(w, http.StatusBadRequest, nil, CodeParseError, "request body could not be read")
		return
	}
	if id, code, msg := checkEnvelope(body); code != 0 {
		if s.cfg.OnMalformed != nil {
			s.cfg.OnMalformed(ctx, ep.info.Name, caller, code, msg)
		}
		writeRPCError(w, http.StatusOK, id, code, msg)
		return
	}

	ctx = limiter.WithScope(withCall(ctx, c), c.owner)
	r2 := r.Clone(ctx)
	for _, h := range credentialHeaders {
		r2.Header.Del(h)
	}
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	// a2a-go writes JSON responses without a Content-Type; its SSE writer
	// replaces this one for streams.
	w.Header().Set("Content-Type", "application/json")
	ep.rpc.ServeHTTP(w, r2)
}

// missingScopes lists the scopes of need caller lacks.
func missingScopes(caller *resource.Caller, need []string) []string {
	var out []string
	for _, sc := range need {
		if !caller.HasScope(sc) {
			out = append(out, sc)
		}
	}
	return out
}

// stepUp is the 403 insufficient_scope challenge naming missing.
func stepUp(ep *endpoint, caller *resource.Caller, missing []string) *resource.Challenge {
	if su, ok := ep.auth.(StepUpper); ok {
		return su.StepUp(caller, missing...)
	}
	ch := &resource.Challenge{Status: http.StatusForbidden, Scheme: "Bearer", Code: oauth.CodeInsufficientScope,
		Description: "the request needs more scope", ResourceMetadata: ep.mdURL}
	for i, sc := range missing {
		if i > 0 {
			ch.Scope += " "
		}
		ch.Scope += sc
	}
	return ch
}

// envelope members of a JSON-RPC 2.0 request object (§4).
var envelopeMembers = []string{"jsonrpc", "method", "params", "id"}

// checkEnvelope checks that body is one JSON-RPC 2.0 request a2a-go can
// answer. A non-zero code is the error to answer with, and id the
// request's id when it could be read: -32700 for bytes that are not JSON,
// -32600 for JSON that is not one request object (a batch, a missing or
// malformed jsonrpc, method or id, a member JSON-RPC does not define,
// matched case-sensitively), -32602 for params that are not an object.
func checkEnvelope(body []byte) (id json.RawMessage, code int, msg string) {
	if !json.Valid(body) {
		return nil, CodeParseError, "request body is not valid JSON"
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if trimmed[0] == '[' {
		return nil, CodeInvalidRequest, "batch requests are not supported"
	}
	var members map[string]json.RawMessage
	if trimmed[0] != '{' || json.Unmarshal(body, &members) != nil {
		return nil, CodeInvalidRequest, "request is not a JSON-RPC object"
	}
	for name := range members {
		if !slices.Contains(envelopeMembers, name) {
			return nil, CodeInvalidRequest, "request has a member JSON-RPC 2.0 does not define"
		}
	}
	if raw, ok := members["id"]; ok {
		switch raw[0] {
		case '"', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'n':
			id = raw
		default:
			return nil, CodeInvalidRequest, "id must be a string, a number or null"
		}
	} else {
		return nil, CodeInvalidRequest, "request has no id (notifications are not supported)"
	}
	var version, method string
	if json.Unmarshal(members["jsonrpc"], &version) != nil || version != "2.0" {
		return id, CodeInvalidRequest, `jsonrpc must be "2.0"`
	}
	if json.Unmarshal(members["method"], &method) != nil || method == "" {
		return id, CodeInvalidRequest, "method must be a non-empty string"
	}
	params, ok := members["params"]
	switch {
	case ok && params[0] != '{':
		return id, CodeInvalidParams, "params must be an object"
	case !ok && method != "agent/getAuthenticatedExtendedCard":
		return id, CodeInvalidParams, "params are required"
	}
	return id, 0, ""
}

// rpcError is a JSON-RPC 2.0 error response (§5).
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
	b, err := json.Marshal(rpcError{JSONRPC: "2.0", ID: id, Error: rpcErrorBody{Code: code, Message: text}})
	if err != nil {
		b = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveCard serves an agent's card, to anyone (CORS *).
func (s *Server) serveCard(w http.ResponseWriter, r *http.Request) {
	ep := s.endpoint(r.PathValue("agent"))
	if ep == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(ep.cardJSON)
}

// serveMetadata serves an agent's RFC 9728 metadata, to anyone (CORS *).
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	ep := s.endpoint(r.PathValue("agent"))
	if ep == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	ep.metadata.ServeHTTP(w, r)
}
