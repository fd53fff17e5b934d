package mcphost

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// A tools/call on a hosted MCP server is a transaction of its own
// (draft-ietf-oauth-transaction-tokens; SPECS.md §6): one txn per call
// ("mcp-…"), the caller's verified access token as the subject token, its
// scopes as the scope, the call bound in tctx, the host as req_wl.

// callerTokenKey holds the access token of a request to a hosted MCP server
// in its context, for the Txn-Token of its tools/call only: no tool sees
// it (the key is this package's, and audited clears it before the tool
// runs).
type callerTokenKey struct{}

// keepCallerToken puts the request's access token (Bearer or DPoP) in its
// context before the server's verifier takes it from the headers; the
// verifier still decides whether the request goes on.
func keepCallerToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if (strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "DPoP")) && tok != "" {
			r = r.WithContext(context.WithValue(r.Context(), callerTokenKey{}, strings.TrimSpace(tok)))
		}
		next.ServeHTTP(w, r)
	})
}

// txnToken obtains the Txn-Token of one tools/call on a hosted MCP server:
// transaction txn, the caller's verified access token at as the subject
// token (so sub is the token's subject and the scope the token's scopes),
// the host as req_wl, the call bound in tctx.
func (b *Bridge) txnToken(ctx context.Context, txn, at string, caller *resource.Caller, name string, tool mediator.Tool, args []byte) (string, error) {
	if at == "" {
		return "", errors.New("the request's access token is not at hand")
	}
	var details txntoken.Object
	var err error
	if tool != nil {
		details, err = mediator.CallDetails(name, tool, args)
	} else {
		details, err = txntoken.CallContext(name, args, nil)
	}
	if err != nil {
		return "", err
	}
	rctx := mediator.TxnRequestContext(mediator.Caller{Agent: "mcp:" + caller.Subject, ClientID: caller.ClientID, Scopes: caller.Scopes})
	tok, _, err := b.cfg.AuthServer.IssueTxnToken(ctx, authserver.TxnTokenRequest{
		Txn: txn, SubjectToken: at, Scope: caller.Scopes, RequestingWorkload: b.cfg.HostID.String(),
		RequestDetails: details, RequestContext: rctx,
	})
	return tok, err
}
