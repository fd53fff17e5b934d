package hosttools

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/txntoken"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const testTD = "test.local"

// testTxn is a Transaction Token Service for the tests: it mints every
// call's token as the host's would (same txn and sub, req_wl the caller,
// tctx the details), and records what it minted.
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

func (f *testTxn) TxnToken(ctx context.Context, c mediator.Caller, details, rctx txntoken.Object) (string, error) {
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

// memAuditor keeps the mediator's records in memory.
type memAuditor struct {
	mu   sync.Mutex
	recs []mediator.Record
}

func (a *memAuditor) Record(_ context.Context, r mediator.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

func (a *memAuditor) records() []mediator.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.recs)
}

// newTestMediator puts tools behind a mediator that grants them by grants,
// mints Txn-Tokens with txn and audits into the returned auditor.
func newTestMediator(t *testing.T, tools map[string]mediator.Tool, grants mediator.AllowList, txn *testTxn) (*mediator.Mediator, *memAuditor) {
	t.Helper()
	aud := &memAuditor{}
	cfg := mediator.Config{Tools: tools, Policy: grants, Auditor: aud, Now: func() time.Time { return t0 }}
	if txn != nil {
		cfg.TxnTokens = txn
	}
	m, err := mediator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, aud
}

func begin(t *testing.T, m *mediator.Mediator, agent, task string) {
	t.Helper()
	end, err := m.BeginTask(mediator.Caller{Agent: agent, Identity: credentials.MustParseIdentity("spiffe://" + testTD + "/agent/" + agent), TaskID: task})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(end)
}

// TestNames: the host offers these tools, each under its own name; the
// names are what config validation checks grants against.
func TestNames(t *testing.T) {
	want := []string{"clock/now", "notes/add", "notes/search", "payments/balance", "payments/transfer"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for name, tool := range New(Config{}) {
		def := tool.Definition()
		if def.Name != name || def.Description == "" || !json.Valid(def.Parameters) {
			t.Errorf("%s: definition %+v", name, def)
		}
	}
	if fields := New(Config{})["payments/transfer"].(mediator.TxnBinder).TxnFields(); !slices.Equal(fields, []string{"amount"}) {
		t.Errorf("payments/transfer binds %v, want its amount", fields)
	}
}

func TestClockNow(t *testing.T) {
	clock := New(Config{Now: func() time.Time { return t0.In(time.FixedZone("CEST", 2*3600)) }})["clock/now"]
	res, err := clock.Call(context.Background(), mediator.Caller{}, json.RawMessage(`{}`))
	if err != nil || res.IsError || res.Text != "Fri, 01 May 2026 12:00:00 UTC" {
		t.Fatalf("clock/now = %+v, %v", res, err)
	}
}

func TestNotesAreStoredPerAgent(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	m, _ := newTestMediator(t, New(Config{Store: st, Now: func() time.Time { return t0 }}),
		mediator.AllowList{"payments": {Tools: []string{"notes/*"}}, "research": {Tools: []string{"notes/search"}}}, nil)
	begin(t, m, "payments", "t")
	h := m.HostFor("payments")
	ctx := context.Background()
	if _, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t", Tool: "notes/add", ArgumentsJson: `{"text":"invoice 42 paid"}`}); err != nil {
		t.Fatal(err)
	}
	res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t", Tool: "notes/search", ArgumentsJson: `{"query":"Invoice 42"}`})
	if err != nil || res.GetContent()[0].GetText() != "invoice 42 paid" {
		t.Fatalf("search = %v, %v", res, err)
	}
	begin(t, m, "research", "r")
	res, err = m.HostFor("research").CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "r", Tool: "notes/search", ArgumentsJson: `{"query":"invoice"}`})
	if err != nil || !strings.HasPrefix(res.GetContent()[0].GetText(), "no notes match") {
		t.Fatalf("another agent's search = %v, %v", res, err)
	}
	for _, bad := range []string{`{"text":"  "}`, `{"text":"` + strings.Repeat("x", 8<<10+1) + `"}`} {
		res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "t", Tool: "notes/add", ArgumentsJson: bad})
		if err != nil || !res.GetIsError() {
			t.Errorf("notes/add %.20s… = %v, %v; want a refusal", bad, res, err)
		}
	}
}

// TestStorageLayout pins where the tools keep their data, so a host keeps
// reading what an earlier one wrote: notes under tool.notes by agent and
// time, balances in cents under tool.payments.accounts, and one entry per
// transfer in the tool.payments.transfers log.
func TestStorageLayout(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	m, _ := newTestMediator(t, New(Config{Store: st, Now: func() time.Time { return t0 }, VerifyTxnToken: txn.verify}),
		mediator.AllowList{"payments": {Tools: []string{"notes/*", "payments/*"}}}, txn)
	begin(t, m, "payments", "p")
	h := m.HostFor("payments")
	ctx := context.Background()
	for _, c := range []struct{ tool, args string }{
		{"notes/add", `{"text":"hello"}`},
		{"payments/transfer", `{"from":"alice","to":"bob","amount":12.5}`},
	} {
		if res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: c.tool, ArgumentsJson: c.args}); err != nil || res.GetIsError() {
			t.Fatalf("%s: %v, %v", c.tool, res, err)
		}
	}
	n, err := st.Get(ctx, "tool.notes", "payments/20260501T120000.000000000Z")
	if err != nil || string(n.Value) != `{"text":"hello","created":"2026-05-01T12:00:00Z"}` {
		t.Fatalf("note record = %s, %v", n.Value, err)
	}
	for account, want := range map[string]string{"alice": "-1250", "bob": "1250"} {
		r, err := st.Get(ctx, "tool.payments.accounts", account)
		if err != nil || string(r.Value) != want {
			t.Fatalf("account %s = %q, %v; want %s", account, r.Value, err, want)
		}
	}
	es, err := st.Read(ctx, "tool.payments.transfers", 0, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("transfer log = %v, %v", es, err)
	}
	var entry map[string]any
	if err := json.Unmarshal(es[0].Data, &entry); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(entry) != "map[agent:payments cents:1250 from:alice task:p time:2026-05-01T12:00:00Z to:bob]" {
		t.Fatalf("transfer entry = %v", entry)
	}
	// A balance written earlier is read as it is.
	if _, err := st.Put(ctx, "tool.payments.accounts", "carol", []byte("4200"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: "payments/balance", ArgumentsJson: `{"account":"carol"}`}); err != nil || res.GetContent()[0].GetText() != "carol: 42.00" {
		t.Fatalf("balance of carol = %v, %v", res, err)
	}
}

func TestPaymentsLedger(t *testing.T) {
	st := memstore.New(func() time.Time { return t0 })
	txn := newTestTxn(t)
	m, _ := newTestMediator(t, New(Config{Store: st, Now: func() time.Time { return t0 }, VerifyTxnToken: txn.verify}),
		mediator.AllowList{"payments": {Tools: []string{"payments/*"}}}, txn)
	begin(t, m, "payments", "p")
	h := m.HostFor("payments")
	ctx := context.Background()
	call := func(tool, args string) (string, bool) {
		t.Helper()
		res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: tool, ArgumentsJson: args})
		if err != nil {
			t.Fatalf("%s %s: %v", tool, args, err)
		}
		return res.GetContent()[0].GetText(), res.GetIsError()
	}
	if out, isErr := call("payments/transfer", `{"from":"alice","to":"bob","amount":12.5}`); isErr || out != "transferred 12.50 from alice to bob" {
		t.Fatalf("transfer: %q %v", out, isErr)
	}
	if out, _ := call("payments/balance", `{"account":"alice"}`); out != "alice: -12.50" {
		t.Fatalf("balance: %q", out)
	}
	if out, _ := call("payments/balance", `{"account":"bob"}`); out != "bob: 12.50" {
		t.Fatalf("balance: %q", out)
	}
	for _, bad := range []string{
		`{"from":"alice","to":"bob","amount":5000}`, // beyond the overdraft
		`{"from":"alice","to":"alice","amount":1}`,  // same account
		`{"from":"alice","to":"bob","amount":-3}`,   // negative
		`{"from":"alice","to":"bob"}`,               // no amount
	} {
		if out, isErr := call("payments/transfer", bad); !isErr {
			t.Fatalf("transfer %s succeeded: %q", bad, out)
		}
	}
	if out, _ := call("payments/balance", `{"account":"alice"}`); out != "alice: -12.50" {
		t.Fatalf("a refused transfer changed a balance: %q", out)
	}
	// Concurrent transfers conserve money: every one that reports success
	// moved exactly 1.00 (a busy retry limit may refuse some).
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			res, err := h.CallTool(ctx, &pluginpb.CallToolRequest{TaskId: "p", Tool: "payments/transfer", ArgumentsJson: `{"from":"bob","to":"carol","amount":1}`})
			done <- err == nil && !res.GetIsError()
		}()
	}
	ok := 0
	for i := 0; i < 8; i++ {
		if <-done {
			ok++
		}
	}
	b, _ := call("payments/balance", `{"account":"bob"}`)
	c, _ := call("payments/balance", `{"account":"carol"}`)
	if ok == 0 || b != fmt.Sprintf("bob: %s", money(1250-int64(ok)*100)) || c != fmt.Sprintf("carol: %s", money(int64(ok)*100)) {
		t.Fatalf("after %d successful concurrent transfers of 1.00: %q, %q", ok, b, c)
	}
}

// TestReadOnly: the read-only tools are tools of New, sorted, and exactly
// those that write nothing to the store.
func TestReadOnly(t *testing.T) {
	ro := ReadOnly()
	if !slices.IsSorted(ro) {
		t.Errorf("ReadOnly() = %q, not sorted", ro)
	}
	names := Names()
	for _, n := range ro {
		if !slices.Contains(names, n) {
			t.Errorf("read-only tool %q is not a tool of New (%q)", n, names)
		}
	}
	for _, n := range []string{"notes/add", "payments/transfer"} {
		if slices.Contains(ro, n) {
			t.Errorf("%s writes, yet ReadOnly() lists it", n)
		}
	}
}
