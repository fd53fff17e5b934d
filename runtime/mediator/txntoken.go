package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/credentials/txntoken"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// The bind step (DESIGN §4, step 4): every call into a host tool, a tool
// plugin or a delegated agent carries a Transaction Token
// (draft-ietf-oauth-transaction-tokens; SPECS.md §6). The host holds each
// task's own Txn-Token; for each call the mediator asks the [TxnTokenSource]
// for a replacement of it (§6.6: same txn and sub, req_wl = the calling
// agent) whose tctx binds the call: the tool's name, the SHA-256 of its
// arguments and the business fields the tool declares ([TxnBinder]). The
// tool gets it through the context ([TxnTokenFromContext]), checks it, and
// refuses a call it does not describe. A host tool's token is minted when
// the tool first takes it ([WithTxnTokenFunc]): one ES256 signature, paid
// only by the tools that check their calls. A remote tool (outside the trust
// domain) gets none: Txn-Tokens do not leave their trust domain.

// TxnTokenSource mints the Txn-Tokens calls carry.
type TxnTokenSource interface {
	// TxnToken returns a replacement of the Txn-Token of c's task,
	// requested as c's agent (req_wl = c.Identity), with details added to
	// its tctx (the zero Object for a delegated task's own token) and rctx
	// as its rctx. It returns "" and no error when c's task has no
	// Txn-Token (a task registered without one); a tool that needs one
	// then refuses the call.
	TxnToken(ctx context.Context, c Caller, details, rctx txntoken.Object) (string, error)
}

// TxnBinder is a [Tool] that declares business fields: top-level members of
// its arguments (say "amount") that the call's Txn-Token carries in tctx
// beside the arguments' digest.
type TxnBinder interface {
	TxnFields() []string
}

// TxnTokenVerifier verifies a Txn-Token of the host's trust domain (the
// signature with the authorization server's keys, typ, aud, exp); a tool
// that checks its calls is given one.
type TxnTokenVerifier func(ctx context.Context, token string) (*txntoken.Claims, error)

// ErrTxnToken reports a call refused by its tool because of its Txn-Token:
// none, one that does not verify, or one issued for another call. It is
// the call's outcome in the audit log.
var ErrTxnToken = errors.New("txn-token check failed")

type txnTokenKey struct{}

// WithTxnToken returns ctx carrying the Txn-Token of the call being made.
func WithTxnToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, txnTokenKey{}, token)
}

// WithTxnTokenFunc returns ctx whose call's Txn-Token is minted by mint
// when a tool first asks for it ([TxnTokenOf], [TxnTokenFromContext]), at
// most once. A call's token is there for every tool to take, but a tool
// that never checks one (clock/now) costs no signature.
func WithTxnTokenFunc(ctx context.Context, mint func() (string, error)) context.Context {
	return context.WithValue(ctx, txnTokenKey{}, &lazyTxnToken{mint: mint})
}

// lazyTxnToken is a call's Txn-Token, minted when first asked for.
type lazyTxnToken struct {
	once sync.Once
	mint func() (string, error)
	tok  string
	err  error
}

func (l *lazyTxnToken) get() (string, error) {
	l.once.Do(func() { l.tok, l.err = l.mint() })
	return l.tok, l.err
}

// TxnTokenOf returns the Txn-Token of the call in hand, minting it if it
// was not yet: "" and no error when the call carries none, an error when
// it should carry one and none could be minted.
func TxnTokenOf(ctx context.Context) (string, error) {
	switch v := ctx.Value(txnTokenKey{}).(type) {
	case string:
		return v, nil
	case *lazyTxnToken:
		return v.get()
	}
	return "", nil
}

// TxnTokenFromContext returns the Txn-Token of the call in hand: what a
// [Tool] checks its call against.
func TxnTokenFromContext(ctx context.Context) (string, bool) {
	tok, err := TxnTokenOf(ctx)
	return tok, err == nil && tok != ""
}

// CallDetails returns the tctx members binding a call of the tool t,
// served as name, with args: txntoken.CallContext with the tool's declared
// fields as they appear in args (a field args lacks is left out).
func CallDetails(name string, t Tool, args json.RawMessage) (txntoken.Object, error) {
	var fields map[string]any
	if b, ok := t.(TxnBinder); ok && len(b.TxnFields()) > 0 {
		var in map[string]json.RawMessage
		if err := json.Unmarshal(args, &in); err == nil {
			for _, f := range b.TxnFields() {
				if v, ok := in[f]; ok {
					if fields == nil {
						fields = map[string]any{}
					}
					fields[f] = v
				}
			}
		}
	}
	return txntoken.CallContext(name, args, fields)
}

// TxnRequestContext returns the rctx the host writes into a call's
// Txn-Token: who makes the call (pluginpb.Rctx* members), which a tool
// plugin reads its caller from.
func TxnRequestContext(c Caller) txntoken.Object {
	m := map[string]any{}
	if c.Agent != "" && !strings.HasPrefix(c.Agent, "mcp:") {
		m[pluginpb.RctxAgent] = c.Agent
	}
	switch {
	case c.ClientID != "":
		m[pluginpb.RctxClientID] = c.ClientID
	case !c.Identity.IsZero():
		m[pluginpb.RctxClientID] = c.Identity.String()
	}
	if c.TaskID != "" {
		m[pluginpb.RctxTask] = c.TaskID
	}
	if len(c.Chain) > 0 {
		m[pluginpb.RctxChain] = slices.Clone(c.Chain)
	}
	if len(c.Scopes) > 0 {
		m[pluginpb.RctxScopes] = slices.Clone(c.Scopes)
	}
	o, err := txntoken.NewObject(m)
	if err != nil { // strings only: cannot fail
		return txntoken.Object{}
	}
	return o
}

// callTxnToken mints the Txn-Token of c's call of tool (served as name)
// with args; "" when no source is configured or c's task has none.
func (m *Mediator) callTxnToken(ctx context.Context, c Caller, name string, tool Tool, args json.RawMessage) (string, error) {
	if m.cfg.TxnTokens == nil {
		return "", nil
	}
	details, err := CallDetails(name, tool, args)
	if err != nil {
		return "", fmt.Errorf("%w: the arguments cannot be bound to a Txn-Token: %v", pluginpb.ErrInvalidArgument, err)
	}
	tok, err := m.cfg.TxnTokens.TxnToken(ctx, c, details, TxnRequestContext(c))
	if err != nil {
		return "", fmt.Errorf("%w: no Txn-Token for the call: %v", pluginpb.ErrUnavailable, err)
	}
	return tok, nil
}

// CheckTxnToken is what a host tool that checks its calls runs first: it
// verifies the Txn-Token in ctx with verify and checks that it was issued
// for a call of tool with args and, for each field, the value in hand
// (SPECS.md §6.5; txntoken.Claims.CheckCall and CheckField). A failure
// wraps [ErrTxnToken] and pluginpb.ErrPermissionDenied.
func CheckTxnToken(ctx context.Context, verify TxnTokenVerifier, tool string, args json.RawMessage, fields map[string]any) (*txntoken.Claims, error) {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w: %w: %s", pluginpb.ErrPermissionDenied, ErrTxnToken, fmt.Sprintf(format, a...))
	}
	if verify == nil {
		return nil, refuse("%s has no Txn-Token verifier", tool)
	}
	tok, err := TxnTokenOf(ctx)
	switch {
	case err != nil:
		return nil, refuse("no Txn-Token could be obtained for the call to %s: %v", tool, err)
	case tok == "":
		return nil, refuse("the call to %s carries no Txn-Token", tool)
	}
	c, err := verify(ctx, tok)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if err := c.CheckCall(tool, args); err != nil {
		return nil, refuse("%v", err)
	}
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := c.CheckField(n, fields[n]); err != nil {
			return nil, refuse("%v", err)
		}
	}
	return c, nil
}
