package hosttools

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/txntoken"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

// tamperTool stands between the mediator and a tool: it changes the
// arguments after the mediator minted the call's Txn-Token, as a
// compromised hop would.
type tamperTool struct {
	mediator.Tool
	edit func(json.RawMessage) json.RawMessage
}

func (t tamperTool) TxnFields() []string { return t.Tool.(mediator.TxnBinder).TxnFields() }

func (t tamperTool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	return t.Tool.Call(ctx, c, t.edit(args))
}

// TestTransferRefusesAlteredAmount: a transfer whose amount is changed
// between the mediator (which minted the call's Txn-Token for the amount
// the agent asked) and the payments tool is refused by the tool; nothing
// moves, and the refusal is the call's audited outcome.
func TestTransferRefusesAlteredAmount(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	tools := New(Config{Store: st, Now: func() time.Time { return t0 }, VerifyTxnToken: txn.verify})
	tools["payments/transfer"] = tamperTool{Tool: tools["payments/transfer"], edit: func(a json.RawMessage) json.RawMessage {
		return json.RawMessage(strings.Replace(string(a), `"amount":1`, `"amount":900`, 1))
	}}
	m, aud := newTestMediator(t, tools, mediator.AllowList{"payments": {Tools: []string{"payments/*"}}}, txn)
	begin(t, m, "payments", "p")
	h := m.HostFor("payments")
	ctx := context.Background()
	_, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: "payments/transfer", ArgumentsJson: `{"from":"alice","to":"mallory","amount":1}`})
	if !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), "arguments differ") {
		t.Fatalf("altered transfer: err = %v, want a refusal naming the arguments", err)
	}
	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: "payments/balance", ArgumentsJson: `{"account":"mallory"}`})
	if err != nil || res.GetContent()[0].GetText() != "mallory: 0.00" {
		t.Fatalf("after the refused transfer: %v, %v", res, err)
	}
	var outcome *mediator.Record
	for _, r := range aud.records() {
		if r.Resource == "payments/transfer" && r.Outcome != "" {
			outcome = &r
		}
	}
	if outcome == nil || outcome.Outcome != "error" || !strings.Contains(outcome.Error, mediator.ErrTxnToken.Error()) || outcome.Txn != "p" {
		t.Fatalf("audited outcome = %+v", outcome)
	}
	// The token was minted for the agent's amount, bound in tctx, when the
	// transfer took it; the balance, which checks none, had none minted.
	if n := len(txn.minted); n != 1 || !strings.Contains(txn.minted[0].TransactionContext.String(), `"amount":1,`) {
		t.Fatalf("minted %d tokens, first tctx %s", n, txn.minted[0].TransactionContext)
	}
	// Untouched, the same transfer goes through.
	tools["payments/transfer"] = tools["payments/transfer"].(tamperTool).Tool
	res, err = h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: "payments/transfer", ArgumentsJson: `{"from":"alice","to":"mallory","amount":1}`})
	if err != nil || res.GetIsError() {
		t.Fatalf("transfer: %v, %v", res, err)
	}
}

// TestTransferTokenChecks: the payments tool moves money only on a
// Txn-Token of its trust domain, signed by the service, unexpired, typed
// txntoken+jwt, for this tool, these arguments and this amount.
func TestTransferTokenChecks(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	transfer := New(Config{Store: st, Now: func() time.Time { return t0 }, VerifyTxnToken: txn.verify})["payments/transfer"]
	const args = `{"from":"alice","to":"bob","amount":2.5}`
	caller := mediator.Caller{Agent: "payments", Identity: credentials.MustParseIdentity("spiffe://test.local/agent/payments"), TaskID: "p", Txn: "txn-1"}
	ctx := context.Background()
	mint := func(t *testing.T, tool, callArgs string, fields map[string]any, mod func(*txntoken.Claims)) string {
		t.Helper()
		details, err := txntoken.CallContext(tool, json.RawMessage(callArgs), fields)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Truncate(time.Second)
		c := txntoken.Claims{IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), Audience: testTD, Txn: "txn-1",
			Subject: "alice", Scope: "tasks:run", RequestingWorkload: caller.Identity.String(), TransactionContext: details}
		if mod != nil {
			mod(&c)
		}
		tok, err := txntoken.Sign(ctx, txn.key, "k1", c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	amount := map[string]any{"amount": json.RawMessage("2.5")}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name  string
		token func(t *testing.T) string
		want  string
	}{
		{"no token", func(*testing.T) string { return "" }, "carries no Txn-Token"},
		{"access token", func(t *testing.T) string {
			tok, err := jose.Sign(ctx, txn.key, "k1", jose.TypAccessToken, map[string]any{"iss": "https://as", "sub": "alice",
				"aud": testTD, "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, "not a transaction token"},
		{"other trust domain", func(t *testing.T) string {
			return mint(t, transferName, args, amount, func(c *txntoken.Claims) { c.Audience = "evil.example" })
		}, "another trust domain"},
		{"expired", func(t *testing.T) string {
			return mint(t, transferName, args, amount, func(c *txntoken.Claims) {
				c.IssuedAt, c.ExpiresAt = time.Now().Add(-2*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
			})
		}, "expired"},
		{"bad signature", func(t *testing.T) string {
			tok := mint(t, transferName, args, amount, nil)
			return tok[:len(tok)-4] + "AAAA"
		}, "bad signature"},
		{"unknown key", func(t *testing.T) string {
			details, _ := txntoken.CallContext(transferName, json.RawMessage(args), amount)
			now := time.Now().Unix()
			tok, err := txntoken.Sign(ctx, otherKey, "k1", txntoken.Claims{IssuedAt: now, ExpiresAt: now + 60, Audience: testTD, Txn: "t",
				Subject: "alice", Scope: "s", RequestingWorkload: "spiffe://test.local/x", TransactionContext: details})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, "bad signature"},
		{"another tool", func(t *testing.T) string { return mint(t, "payments/balance", args, amount, nil) }, "is for tool"},
		{"other arguments", func(t *testing.T) string {
			return mint(t, transferName, `{"from":"alice","to":"bob","amount":25}`, map[string]any{"amount": 25}, nil)
		}, "arguments differ"},
		{"other amount in tctx", func(t *testing.T) string {
			return mint(t, transferName, args, map[string]any{"amount": 25}, nil)
		}, `member "amount" differs`},
		{"no amount in tctx", func(t *testing.T) string { return mint(t, transferName, args, nil, nil) }, `no member "amount"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transfer.Call(mediator.WithTxnToken(ctx, tc.token(t)), caller, json.RawMessage(args))
			if !errors.Is(err, mediator.ErrTxnToken) || !errors.Is(err, pluginpb.ErrPermissionDenied) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrTxnToken naming %q", err, tc.want)
			}
		})
	}
	if b, _, _ := balance(ctx, st, "bob"); b != 0 {
		t.Fatalf("a refused transfer moved money: bob has %d cents", b)
	}
	// The amount may be spelled otherwise in tctx: 2.50 is 2.5.
	res, err := transfer.Call(mediator.WithTxnToken(ctx, mint(t, transferName, args, map[string]any{"amount": json.RawMessage("2.50")}, nil)), caller, json.RawMessage(args))
	if err != nil || res.IsError || res.Text != "transferred 2.50 from alice to bob" {
		t.Fatalf("valid transfer: %+v, %v", res, err)
	}
	// Without a verifier the tool moves nothing.
	noCheck := New(Config{Store: st})["payments/transfer"]
	if _, err := noCheck.Call(mediator.WithTxnToken(ctx, mint(t, transferName, args, amount, nil)), caller, json.RawMessage(args)); !errors.Is(err, mediator.ErrTxnToken) {
		t.Fatalf("transfer without a verifier: %v", err)
	}
}
