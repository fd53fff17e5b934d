package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/plugins"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// Transaction Tokens inside the host (draft-ietf-oauth-transaction-tokens;
// SPECS.md §6). The embedded authorization server is the trust domain's
// Transaction Token Service; the host asks it in process
// (authserver.Server.IssueTxnToken) wherever a transaction begins:
//
//   - a task a user or the operator starts (RunTask): one txn per request,
//     named by the host ("txn-…"), sub the user, scope tasks:run, req_wl
//     the host. Started on the user's own access token, that token is the
//     subject token (the TTS checks it and caps the scope by it); started
//     by the operator (--for USER) the host vouches for the user; with no
//     user at all the sub is the host's own SPIFFE ID.
//   - a tools/call on a hosted MCP server (runtime/mcphost): one txn per
//     call ("mcp-…"), the caller's verified access token as the subject
//     token, its scopes as the scope, the call bound in tctx.
//
// Each task keeps its token here (taskTxn), never in a plugin. Every call
// the task makes into a host tool or a tool plugin carries a replacement
// whose tctx binds the call (the mediator's TxnTokenSource, txnSource
// below); a delegated task runs on a replacement too, same txn and sub,
// req_wl the delegating agent (the TTS appends it to rctx.req_wl_chain).
// A task's token lives a minute (the TTS's TTL): it is renewed before half
// of it has passed, the same way it was first obtained, so a task that
// runs for minutes keeps making calls.

// taskTxn is a task's Transaction Token, renewed before it expires.
type taskTxn struct {
	txn   string
	renew func(ctx context.Context) (string, *txntoken.Claims, error)
	now   func() time.Time

	mu     sync.Mutex
	token  string
	claims *txntoken.Claims
}

// current returns the task's token, renewing it first when half of its
// lifetime has passed.
func (t *taskTxn) current(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.claims != nil {
		half := time.Unix((t.claims.IssuedAt+t.claims.ExpiresAt)/2, 0)
		if t.now().Before(half) {
			return t.token, nil
		}
	}
	tok, c, err := t.renew(ctx)
	if err != nil {
		return "", err
	}
	if c.Txn != t.txn {
		return "", fmt.Errorf("host: the renewed Txn-Token is for transaction %q, not %q", c.Txn, t.txn)
	}
	t.token, t.claims = tok, c
	return tok, nil
}

// txnScope is the scope of a task's Txn-Token: the scope a user's token
// needs to start a task.
var txnScope = []string{ScopeTasksRun}

// taskSubject is who a task acts for, for its Txn-Token: the user's
// verified access token (while it is valid), or the subject the host
// vouches for.
type taskSubject struct {
	name        string
	accessToken string
	expires     time.Time
}

// beginTxn obtains the Txn-Token of a transaction a user's or the
// operator's request begins: a new txn, the host as req_wl, the agent the
// task is for in rctx.
func (h *Host) beginTxn(ctx context.Context, agent string, sub taskSubject) (*taskTxn, error) {
	txn, err := newID("txn-")
	if err != nil {
		return nil, err
	}
	rctx, err := txntoken.NewObject(map[string]any{"agent": agent})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if sub.name == "" {
		sub.name = h.hostID.String()
	}
	t := &taskTxn{txn: txn, now: h.now}
	t.renew = func(ctx context.Context) (string, *txntoken.Claims, error) {
		r := authserver.TxnTokenRequest{Txn: txn, Scope: txnScope, RequestingWorkload: h.hostID.String(), RequestContext: rctx}
		if sub.accessToken != "" && h.now().Before(sub.expires) {
			r.SubjectToken = sub.accessToken
		} else {
			r.Subject = sub.name
		}
		return h.as.IssueTxnToken(ctx, r)
	}
	if _, err := t.current(ctx); err != nil {
		return nil, fmt.Errorf("host: no Txn-Token for the task: %w", err)
	}
	return t, nil
}

// txnSource is the mediator's TxnTokenSource: a replacement of the task's
// Txn-Token for each call.
type txnSource struct{ h *Host }

var _ mediator.TxnTokenSource = txnSource{}

// TxnToken implements mediator.TxnTokenSource.
func (s txnSource) TxnToken(ctx context.Context, c mediator.Caller, details, rctx txntoken.Object) (string, error) {
	s.h.taskMu.Lock()
	t := s.h.running[c.TaskID].txn
	s.h.taskMu.Unlock()
	if t == nil {
		return "", nil
	}
	cur, err := t.current(ctx)
	if err != nil {
		return "", err
	}
	tok, _, err := s.h.as.IssueTxnToken(ctx, authserver.TxnTokenRequest{
		SubjectToken: cur, RequestingWorkload: c.Identity.String(), RequestDetails: details, RequestContext: rctx,
	})
	return tok, err
}

// verifyTxnToken verifies a Txn-Token of this host's trust domain: what the
// host's own tools check their calls with.
func (h *Host) verifyTxnToken(ctx context.Context, tok string) (*txntoken.Claims, error) {
	if h.as == nil {
		return nil, errors.New("host: the authorization server is not ready")
	}
	return txntoken.Verify(ctx, tok, h.as.TxnTokenVerifyOptions())
}

// txnKeys is what tool plugins check Txn-Tokens with: the authorization
// server's published keys and the trust domain. It changes as the keys
// rotate, and the plugins are sent the new set before their next call.
func (h *Host) txnKeys() plugins.TxnKeys {
	if h.as == nil {
		return plugins.TxnKeys{}
	}
	return plugins.TxnKeys{JWKS: h.as.JWKSText(), TrustDomain: h.cfg.TrustDomain}
}
