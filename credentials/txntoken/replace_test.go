package txntoken_test

import (
	"errors"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

func TestCheckReplacement(t *testing.T) {
	old := func(tb testing.TB) txntoken.Claims {
		c := request(tb)
		c.Audience = testTD
		c.IssuedAt = t0.Unix()
		c.ExpiresAt = t0.Add(time.Minute).Unix()
		return c
	}
	at := t0.Add(30 * time.Second)
	tests := []struct {
		name string
		mod  func(tb testing.TB, n *txntoken.Claims)
		at   time.Time
		want []error // nil: allowed
	}{
		{name: "unchanged", mod: func(testing.TB, *txntoken.Claims) {}},
		{name: "narrowed scope", mod: func(_ testing.TB, n *txntoken.Claims) { n.Scope = "notes.read" }},
		{name: "scope reordered", mod: func(_ testing.TB, n *txntoken.Claims) { n.Scope = "notes.read payments.transfer" }},
		{name: "added tctx member", mod: func(tb testing.TB, n *txntoken.Claims) {
			n.TransactionContext = withMember(tb, n.TransactionContext, "approved_by", "user:bob")
		}},
		{name: "new workload, new times, new rctx", mod: func(tb testing.TB, n *txntoken.Claims) {
			n.RequestingWorkload = "spiffe://example.org/agent/other"
			n.IssuedAt, n.ExpiresAt = at.Unix(), at.Add(time.Minute).Unix()
			n.RequestContext = mustObject(tb, map[string]any{"req_ip": "10.0.0.1"})
		}},

		{name: "widened scope", want: []error{txntoken.ErrReplacement},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.Scope += " admin" }},
		{name: "changed txn", want: []error{txntoken.ErrReplacement},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.Txn = "txn-2" }},
		{name: "changed sub", want: []error{txntoken.ErrReplacement},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.Subject = "user:mallory" }},
		{name: "changed aud", want: []error{txntoken.ErrReplacement},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.Audience = "other.org" }},
		{name: "tctx amount 3 → 30", want: []error{txntoken.ErrReplacement},
			mod: func(tb testing.TB, n *txntoken.Claims) {
				n.TransactionContext = withMember(tb, n.TransactionContext, "amount", 30)
			}},
		{name: "tctx amount 3 → 2 (changed all the same)", want: []error{txntoken.ErrReplacement},
			mod: func(tb testing.TB, n *txntoken.Claims) {
				n.TransactionContext = withMember(tb, n.TransactionContext, "amount", 2)
			}},
		{name: "tctx member removed", want: []error{txntoken.ErrReplacement},
			mod: func(tb testing.TB, n *txntoken.Claims) {
				n.TransactionContext = callContext(tb, testTool, testArgs, nil)
			}},
		{name: "tctx dropped", want: []error{txntoken.ErrReplacement},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.TransactionContext = txntoken.Object{} }},
		{name: "old expired", at: t0.Add(time.Minute), want: []error{txntoken.ErrReplacement, txntoken.ErrExpired},
			mod: func(testing.TB, *txntoken.Claims) {}},
		{name: "new lacks scope", want: []error{txntoken.ErrInvalid},
			mod: func(_ testing.TB, n *txntoken.Claims) { n.Scope = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := old(t)
			n := old(t)
			tt.mod(t, &n)
			when := at
			if !tt.at.IsZero() {
				when = tt.at
			}
			err := txntoken.CheckReplacement(&o, &n, when)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckReplacement: %v", err)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("CheckReplacement err = %v, want %v", err, w)
				}
			}
		})
	}
	o := old(t)
	if err := txntoken.CheckReplacement(nil, &o, at); !errors.Is(err, txntoken.ErrInvalid) {
		t.Errorf("nil old: err = %v", err)
	}
}

func withMember(tb testing.TB, o txntoken.Object, name string, v any) txntoken.Object {
	tb.Helper()
	n, err := o.With(map[string]any{name: v})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
