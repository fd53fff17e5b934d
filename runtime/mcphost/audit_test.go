package mcphost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/mcp/mcpserver"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// eventAuditor is an Auditor that logs each record it is given into a
// shared event list, and fails the calls failOn names (1 = the first).
type eventAuditor struct {
	mu      sync.Mutex
	events  *[]string
	records []mediator.Record
	calls   int
	failOn  map[int]bool
}

func (a *eventAuditor) Record(ctx context.Context, r mediator.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.failOn[a.calls] {
		return errors.New("store unavailable")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a.records = append(a.records, r)
	*a.events = append(*a.events, "record "+r.Decision+"/"+r.Outcome)
	return nil
}

// TestAuditedCall: the one path of a hosted MCP tools/call records the
// allow decision before the tool runs and the outcome after it, both in
// one transaction of the call's own; a tool whose decision could not be
// recorded never runs, and a client that hangs up while the tool runs
// does not cost the outcome record.
func TestAuditedCall(t *testing.T) {
	errTool := errors.New("disk full")
	for _, tc := range []struct {
		name       string
		failOn     map[int]bool
		toolErr    error
		hangUp     bool // the client goes away while the tool runs
		wantEvents []string
		wantErr    error
		wantResult string
	}{
		{name: "ok", wantEvents: []string{"record allow/", "run", "record allow/ok"}, wantResult: "saved"},
		{name: "tool error", toolErr: errTool, wantEvents: []string{"record allow/", "run", "record allow/error"}, wantErr: errTool},
		{name: "decision not recorded", failOn: map[int]bool{1: true}, wantEvents: nil, wantErr: errors.New("mcphost: audit unavailable")},
		{name: "outcome not recorded", failOn: map[int]bool{2: true}, wantEvents: []string{"record allow/", "run"}, wantResult: "saved"},
		{name: "client hangs up", hangUp: true, wantEvents: []string{"record allow/", "run", "record allow/ok"}, wantResult: "saved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var events []string
			a := &eventAuditor{events: &events, failOn: tc.failOn}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			args := json.RawMessage(`{"text":"hello"}`)
			c := call{caller: &resource.Caller{Subject: "alice", ClientID: "ide", TokenID: "jti-1"},
				action: ActionToolCall, resource: "notes/add", policy: "scope notes:write", args: args}
			res, err := auditedCall(ctx, a, time.Now, slog.New(slog.DiscardHandler), c, func(context.Context) (mcpserver.Result, error) {
				events = append(events, "run")
				if tc.hangUp {
					cancel()
				}
				return mcpserver.Result{Text: "saved"}, tc.toolErr
			})
			if fmt.Sprint(events) != fmt.Sprint(tc.wantEvents) {
				t.Fatalf("events %q, want %q", events, tc.wantEvents)
			}
			switch {
			case tc.wantErr == nil && err != nil, tc.wantErr != nil && (err == nil || !strings.Contains(err.Error(), tc.wantErr.Error())):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && res.Text != tc.wantResult:
				t.Fatalf("result %+v, want %q", res, tc.wantResult)
			}
			sum := sha256.Sum256(args)
			for _, r := range a.records {
				if !strings.HasPrefix(r.Txn, "mcp-") || r.Txn != a.records[0].Txn || r.TaskID != "" ||
					r.ArgsSHA256 != hex.EncodeToString(sum[:]) || r.TokenJTI != "jti-1" || r.Agent != "mcp:alice" ||
					r.Subject != "alice" || r.Identity != "ide" || r.Action != ActionToolCall || r.Resource != "notes/add" ||
					r.Policy != "scope notes:write" || r.Time.IsZero() {
					t.Errorf("record %+v", r)
				}
			}
			if tc.toolErr != nil && (len(a.records) != 2 || a.records[1].Error != tc.toolErr.Error()) {
				t.Errorf("outcome record %+v does not carry the tool's error", a.records)
			}
		})
	}

	// Each call is a transaction of its own.
	var events []string
	a := &eventAuditor{events: &events}
	for range 2 {
		c := call{caller: &resource.Caller{Subject: "alice"}, action: ActionToolCall, resource: "clock/now", args: json.RawMessage(`{}`)}
		if _, err := auditedCall(context.Background(), a, time.Now, slog.New(slog.DiscardHandler), c,
			func(context.Context) (mcpserver.Result, error) { return mcpserver.Result{}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.records) != 4 || a.records[0].Txn == a.records[2].Txn {
		t.Fatalf("two calls share a transaction: %+v", a.records)
	}

	// The call's Txn-Token is obtained for the call's transaction when the
	// tool takes it from its context; a tool that needs one and cannot get
	// it fails the call, and that is the call's audited outcome.
	events, a = nil, &eventAuditor{events: &events}
	var gotTxn, gotTok string
	c := call{caller: &resource.Caller{Subject: "alice"}, action: ActionToolCall, resource: "clock/now", args: json.RawMessage(`{}`),
		txnToken: func(_ context.Context, txn string) (string, error) { gotTxn = txn; return "txn-token-of-" + txn, nil }}
	if _, err := auditedCall(context.Background(), a, time.Now, slog.New(slog.DiscardHandler), c, func(ctx context.Context) (mcpserver.Result, error) {
		gotTok, _ = mediator.TxnTokenFromContext(ctx)
		return mcpserver.Result{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if gotTxn == "" || gotTxn != a.records[0].Txn || gotTok != "txn-token-of-"+gotTxn {
		t.Fatalf("the tool got Txn-Token %q for txn %q; the records name %q", gotTok, gotTxn, a.records[0].Txn)
	}
	events, a = nil, &eventAuditor{events: &events}
	mints := 0
	c.txnToken = func(context.Context, string) (string, error) {
		mints++
		return "", errors.New("the subject token was revoked")
	}
	_, err := auditedCall(context.Background(), a, time.Now, slog.New(slog.DiscardHandler), c, func(ctx context.Context) (mcpserver.Result, error) {
		if _, err := mediator.TxnTokenOf(ctx); err != nil {
			return mcpserver.Result{}, err
		}
		t.Error("the tool got a Txn-Token that could not be minted")
		return mcpserver.Result{}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "revoked") || len(a.records) != 2 || a.records[0].Decision != "allow" ||
		a.records[1].Outcome != "error" || !strings.Contains(a.records[1].Error, "revoked") {
		t.Fatalf("call whose Txn-Token cannot be minted: %v, records %+v", err, a.records)
	}
	// A tool that takes no Txn-Token has none minted.
	events, a, mints = nil, &eventAuditor{events: &events}, 0
	if _, err := auditedCall(context.Background(), a, time.Now, slog.New(slog.DiscardHandler), c,
		func(context.Context) (mcpserver.Result, error) { return mcpserver.Result{Text: "now"}, nil }); err != nil || mints != 0 {
		t.Fatalf("a tool that takes no Txn-Token: %v, %d mints", err, mints)
	}
}
