package mediator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/txntoken"
	"github.com/agenthost/agenthost/llm"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

const testTD = "test.local"

// testTxn is a Transaction Token Service for the mediator's tests: it
// mints every call's token as the host's would (same txn and sub, req_wl
// the caller, tctx the details), and records what it minted.
type testTxn struct {
	key    *ecdsa.PrivateKey
	iss    *txntoken.Issuer
	mu     sync.Mutex
	minted []txntoken.Claims
}

func newTestTxn(t testing.TB) *testTxn {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := txntoken.NewIssuer(txntoken.Config{Signer: key, KeyID: "k1", TrustDomain: testTD})
	if err != nil {
		t.Fatal(err)
	}
	return &testTxn{key: key, iss: iss}
}

func (f *testTxn) TxnToken(ctx context.Context, c Caller, details, rctx txntoken.Object) (string, error) {
	tok, claims, err := f.iss.Mint(ctx, txntoken.Claims{Txn: c.Txn, Subject: "alice", Scope: "tasks:run",
		RequestingWorkload: c.Identity.String(), TransactionContext: details, RequestContext: rctx})
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	f.minted = append(f.minted, claims)
	f.mu.Unlock()
	return tok, nil
}

func (f *testTxn) verify(ctx context.Context, tok string) (*txntoken.Claims, error) {
	return txntoken.Verify(ctx, tok, txntoken.VerifyOptions{Keys: f.iss.Keys(), TrustDomain: testTD})
}

// tamperTool stands between the mediator and a tool: it changes the
// arguments after the mediator minted the call's Txn-Token, as a
// compromised hop would.
type tamperTool struct {
	Tool
	edit func(json.RawMessage) json.RawMessage
}

func (t tamperTool) TxnFields() []string { return t.Tool.(TxnBinder).TxnFields() }

func (t tamperTool) Call(ctx context.Context, c Caller, args json.RawMessage) (ToolResult, error) {
	return t.Tool.Call(ctx, c, t.edit(args))
}

// amountTool is a host tool that checks its calls as the host's
// payments/transfer does: it declares its amount a business field and
// refuses a call its Txn-Token does not describe, amount included.
type amountTool struct{ verify TxnTokenVerifier }

const amountToolName = "pay/send"

func (amountTool) Definition() llm.Tool {
	return llm.Tool{Name: amountToolName, Parameters: json.RawMessage(`{"type":"object"}`)}
}

func (amountTool) TxnFields() []string { return []string{"amount"} }

func (t amountTool) Call(ctx context.Context, _ Caller, args json.RawMessage) (ToolResult, error) {
	var in struct {
		Amount json.RawMessage `json:"amount"`
	}
	if err := json.Unmarshal(args, &in); err != nil {
		return ToolResult{Text: "arguments must be an object", IsError: true}, nil
	}
	fields := map[string]any{}
	if in.Amount != nil {
		fields["amount"] = in.Amount
	}
	if _, err := CheckTxnToken(ctx, t.verify, amountToolName, args, fields); err != nil {
		return ToolResult{}, err
	}
	return ToolResult{Text: "sent " + string(in.Amount)}, nil
}

// TestToolRefusesAlteredField: the mediator binds a tool's declared field
// (the amount) in the call's Txn-Token; a call whose arguments change
// between the mediator and the tool is refused by the tool, and the
// refusal is the call's audited outcome.
func TestToolRefusesAlteredField(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	tools := map[string]Tool{amountToolName: tamperTool{Tool: amountTool{verify: txn.verify}, edit: func(a json.RawMessage) json.RawMessage {
		return json.RawMessage(strings.Replace(string(a), `"amount":1`, `"amount":900`, 1))
	}}}
	m, err := New(Config{Tools: tools, Policy: AllowList{"payments": {Tools: []string{"pay/*"}}},
		Auditor: StoreAuditor{Log: st}, Now: func() time.Time { return t0 }, TxnTokens: txn})
	if err != nil {
		t.Fatal(err)
	}
	begin(t, m, "payments", "p")
	h := m.HostFor("payments")
	ctx := context.Background()
	_, err = h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: amountToolName, ArgumentsJson: `{"to":"mallory","amount":1}`})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), "arguments differ") {
		t.Fatalf("altered call: err = %v, want a refusal naming the arguments", err)
	}
	var outcome *Record
	for _, r := range auditRecords(t, st) {
		if r.Resource == amountToolName && r.Outcome != "" {
			outcome = &r
		}
	}
	if outcome == nil || outcome.Outcome != "error" || !strings.Contains(outcome.Error, ErrTxnToken.Error()) || outcome.Txn != "p" {
		t.Fatalf("audited outcome = %+v", outcome)
	}
	// The token was minted for the agent's amount, bound in tctx.
	if n := len(txn.minted); n != 1 || !strings.Contains(txn.minted[0].TransactionContext.String(), `"amount":1,`) {
		t.Fatalf("minted %d tokens, first tctx %s", n, txn.minted[0].TransactionContext)
	}
	// Untouched, the same call goes through.
	tools[amountToolName] = tools[amountToolName].(tamperTool).Tool
	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: amountToolName, ArgumentsJson: `{"to":"mallory","amount":1}`})
	if err != nil || res.GetIsError() || res.GetContent()[0].GetText() != "sent 1" {
		t.Fatalf("call: %v, %v", res, err)
	}
}

// TestCheckTxnToken: a tool's check passes only with a verifier and a
// Txn-Token it verifies that was minted for this tool, these arguments and
// each field's value (spelled any way that is the same number). How a
// token verifies (signature, typ, aud, exp) is credentials/txntoken's;
// runtime/hosttools runs those cases against payments/transfer.
func TestCheckTxnToken(t *testing.T) {
	txn := newTestTxn(t)
	ctx := context.Background()
	caller := Caller{Agent: "payments", Identity: credentials.MustParseIdentity("spiffe://test.local/agent/payments"), TaskID: "p", Txn: "txn-1"}
	const args = `{"to":"bob","amount":2.5}`
	amount := map[string]any{"amount": json.RawMessage("2.5")}
	mint := func(t *testing.T, tool, callArgs string, fields map[string]any) string {
		t.Helper()
		details, err := txntoken.CallContext(tool, json.RawMessage(callArgs), fields)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := txn.TxnToken(ctx, caller, details, txntoken.Object{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name   string
		verify TxnTokenVerifier
		token  func(t *testing.T) string
		want   string // in the error; "" for none
	}{
		{"bound", txn.verify, func(t *testing.T) string { return mint(t, amountToolName, args, amount) }, ""},
		{"same amount spelled otherwise", txn.verify, func(t *testing.T) string {
			return mint(t, amountToolName, args, map[string]any{"amount": json.RawMessage("2.50")})
		}, ""},
		{"no verifier", nil, func(t *testing.T) string { return mint(t, amountToolName, args, amount) }, "has no Txn-Token verifier"},
		{"no token", txn.verify, func(*testing.T) string { return "" }, "carries no Txn-Token"},
		{"not a token", txn.verify, func(*testing.T) string { return "not.a.token" }, "invalid transaction token"},
		{"another tool", txn.verify, func(t *testing.T) string { return mint(t, "pay/other", args, amount) }, "is for tool"},
		{"other arguments", txn.verify, func(t *testing.T) string {
			return mint(t, amountToolName, `{"to":"bob","amount":25}`, map[string]any{"amount": 25})
		}, "arguments differ"},
		{"other amount in tctx", txn.verify, func(t *testing.T) string {
			return mint(t, amountToolName, args, map[string]any{"amount": 25})
		}, `member "amount" differs`},
		{"no amount in tctx", txn.verify, func(t *testing.T) string { return mint(t, amountToolName, args, nil) }, `no member "amount"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckTxnToken(WithTxnToken(ctx, tc.token(t)), tc.verify, amountToolName, json.RawMessage(args), amount)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTxnToken) || !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrTxnToken naming %q", err, tc.want)
			}
		})
	}
}

// recordTool remembers the Txn-Token of each call it gets.
type recordTool struct {
	stubTool
	got *[]string
}

func (r recordTool) Call(ctx context.Context, c Caller, args json.RawMessage) (ToolResult, error) {
	tok, _ := TxnTokenFromContext(ctx)
	*r.got = append(*r.got, tok)
	return ToolResult{Text: "ok"}, nil
}

// TestCallsCarryTxnTokens: each tool call carries a Txn-Token of the task's
// transaction whose tctx binds the tool and its arguments and whose rctx
// names the caller; a delegated task's token, in the AgentRunner's ctx,
// has no tctx; a remote tool gets none.
func TestCallsCarryTxnTokens(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	var got []string
	var delegated string
	remote := &fakeRemote{}
	m, err := New(Config{
		Tools:  map[string]Tool{"clock/now": recordTool{stubTool: stubTool{name: "clock/now"}, got: &got}, "remote/echo": remote},
		Policy: AllowList{"research": {Tools: []string{"clock/now", "remote/echo"}, Agents: []string{"helper"}}},
		Agents: func(ctx context.Context, agent, input string, parent Caller) (string, error) {
			delegated, _ = TxnTokenFromContext(ctx)
			return "done", nil
		},
		Tokens:  &fakeTokens{},
		Auditor: StoreAuditor{Log: st}, TxnTokens: txn,
	})
	if err != nil {
		t.Fatal(err)
	}
	end, err := m.BeginTask(Caller{Agent: "research", Identity: credentials.MustParseIdentity("spiffe://test.local/agent/research"),
		TaskID: "t1", Txn: "txn-9", Chain: []string{"assistant"}})
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	h := m.HostFor("research")
	ctx := context.Background()
	for _, args := range []string{`{"tz": "UTC"}`, `{"tz":"CET"}`} {
		if _, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "clock/now", ArgumentsJson: args}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t1", Tool: "remote/echo", ArgumentsJson: `{}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CallAgent(ctx, &pluginpb.CallAgentRequest{TaskId: "t1", Agent: "helper", Input: "help"}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] == got[1] || delegated == "" {
		t.Fatalf("tokens: calls %d, delegated %q", len(got), delegated)
	}
	c, err := txn.verify(ctx, got[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckCall("clock/now", json.RawMessage(`{"tz":"UTC"}`)); err != nil {
		t.Fatalf("first call's token: %v", err)
	}
	if err := c.CheckCall("clock/now", json.RawMessage(`{"tz":"CET"}`)); !errors.Is(err, txntoken.ErrCallMismatch) {
		t.Fatalf("first call's token checked against the second call: %v", err)
	}
	if c.Txn != "txn-9" || c.RequestingWorkload != "spiffe://test.local/agent/research" ||
		c.RequestContext.String() != `{"agent":"research","chain":["assistant"],"client_id":"spiffe://test.local/agent/research","task":"t1"}` {
		t.Fatalf("claims %+v rctx %s", c, c.RequestContext)
	}
	d, err := txn.verify(ctx, delegated)
	if err != nil || !d.TransactionContext.IsZero() || d.Txn != "txn-9" {
		t.Fatalf("delegated task's token: %+v, %v", d, err)
	}
	if len(txn.minted) != 3 {
		t.Fatalf("minted %d tokens: the remote call got one", len(txn.minted))
	}
}
