package hosttools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
)

// The payments tools keep a ledger in the store: one record per account
// holding its balance in cents, updated with optimistic concurrency, and an
// append-only log of transfers. Accounts start at 0 with an overdraft of
// 1,000.00 and may not go below it, so a transfer really moves (local)
// money and can fail.
const (
	ledgerNamespace = "tool.payments.accounts"
	ledgerLog       = "tool.payments.transfers"
	overdraftCents  = 1_000_00
	maxTransfer     = 1_000_000_00 // 1,000,000.00
)

// transferName is the transfer tool's name, which its Txn-Token's tctx
// must hold.
const transferName = "payments/transfer"

var (
	_ mediator.Tool      = transferTool{}
	_ mediator.TxnBinder = transferTool{}
	_ mediator.Tool      = balanceTool{}
)

type transferTool struct {
	kv     Store
	now    func() time.Time
	verify mediator.TxnTokenVerifier
}

// TxnFields implements [mediator.TxnBinder]: the amount is bound in the
// call's Txn-Token, readable by anyone who reads the token.
func (transferTool) TxnFields() []string { return []string{"amount"} }

func (transferTool) Definition() llm.Tool {
	return llm.Tool{Name: transferName, Description: "Transfer money from one account to another",
		Parameters: json.RawMessage(`{"type":"object","properties":{` +
			`"from":{"type":"string","description":"account to debit"},` +
			`"to":{"type":"string","description":"account to credit"},` +
			`"amount":{"type":"number","description":"amount, e.g. 12.50"}},"required":["from","to","amount"]}`)}
}

// Call moves the money once the call's Txn-Token proves the host
// authorized exactly this transfer: signature, typ, aud and exp
// (t.verify), then the tool and the arguments' digest in tctx, then the
// amount it is about to move against tctx's amount. Any mismatch (an
// argument changed after the host minted the token) is an error wrapping
// [mediator.ErrTxnToken]: the call's outcome in the audit log, and nothing moves.
func (t transferTool) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	var in struct {
		From   string          `json:"from"`
		To     string          `json:"to"`
		Amount json.RawMessage `json:"amount"`
	}
	var amount float64
	if err := json.Unmarshal(args, &in); err != nil || (in.Amount != nil && json.Unmarshal(in.Amount, &amount) != nil) {
		return mediator.ToolResult{Text: "arguments must be {from, to, amount}", IsError: true}, nil
	}
	// The amount is compared as written (exact decimal value), not as
	// the float64 it becomes.
	fields := map[string]any{}
	if in.Amount != nil {
		fields["amount"] = in.Amount
	}
	if _, err := mediator.CheckTxnToken(ctx, t.verify, transferName, args, fields); err != nil {
		return mediator.ToolResult{}, err
	}
	cents := int64(amount*100 + 0.5)
	switch {
	case in.From == "" || in.To == "" || in.From == in.To:
		return mediator.ToolResult{Text: "from and to must be two different accounts", IsError: true}, nil
	case cents <= 0 || cents > maxTransfer:
		return mediator.ToolResult{Text: fmt.Sprintf("amount must be between 0.01 and %d.00", maxTransfer/100), IsError: true}, nil
	}
	// Debit and credit with optimistic concurrency; retry on a concurrent
	// update of either account.
	for attempt := 0; attempt < 10; attempt++ {
		fromBal, fromVer, err := balance(ctx, t.kv, in.From)
		if err != nil {
			return mediator.ToolResult{}, err
		}
		if fromBal-cents < -overdraftCents {
			return mediator.ToolResult{Text: fmt.Sprintf("insufficient funds in %s: balance %s", in.From, money(fromBal)), IsError: true}, nil
		}
		toBal, toVer, err := balance(ctx, t.kv, in.To)
		if err != nil {
			return mediator.ToolResult{}, err
		}
		if err := setBalance(ctx, t.kv, in.From, fromBal-cents, fromVer); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return mediator.ToolResult{}, err
		}
		if err := setBalance(ctx, t.kv, in.To, toBal+cents, toVer); err != nil {
			// Undo the debit; the credit side changed under us.
			for {
				b, v, gerr := balance(ctx, t.kv, in.From)
				if gerr != nil {
					return mediator.ToolResult{}, fmt.Errorf("payments: undo debit of %s: %w", in.From, gerr)
				}
				if uerr := setBalance(ctx, t.kv, in.From, b+cents, v); uerr == nil {
					break
				} else if !errors.Is(uerr, store.ErrConflict) {
					return mediator.ToolResult{}, fmt.Errorf("payments: undo debit of %s: %w", in.From, uerr)
				}
			}
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return mediator.ToolResult{}, err
		}
		entry, _ := json.Marshal(map[string]any{"time": t.now().UTC(), "agent": c.Agent, "task": c.TaskID,
			"from": in.From, "to": in.To, "cents": cents})
		if _, err := t.kv.Append(ctx, ledgerLog, entry); err != nil {
			return mediator.ToolResult{}, err
		}
		return mediator.ToolResult{Text: fmt.Sprintf("transferred %s from %s to %s", money(cents), in.From, in.To)}, nil
	}
	return mediator.ToolResult{Text: "the accounts are busy; try again", IsError: true}, nil
}

type balanceTool struct{ kv store.KV }

func (balanceTool) Definition() llm.Tool {
	return llm.Tool{Name: "payments/balance", Description: "Balance of an account",
		Parameters: json.RawMessage(`{"type":"object","properties":{"account":{"type":"string"}},"required":["account"]}`)}
}

func (t balanceTool) Call(ctx context.Context, _ mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	var in struct {
		Account string `json:"account"`
	}
	if err := json.Unmarshal(args, &in); err != nil || in.Account == "" {
		return mediator.ToolResult{Text: "an account is required", IsError: true}, nil
	}
	b, _, err := balance(ctx, t.kv, in.Account)
	if err != nil {
		return mediator.ToolResult{}, err
	}
	return mediator.ToolResult{Text: fmt.Sprintf("%s: %s", in.Account, money(b))}, nil
}

// balance returns an account's balance and record version (0 if new).
func balance(ctx context.Context, kv store.KV, account string) (int64, int64, error) {
	r, err := kv.Get(ctx, ledgerNamespace, account)
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	b, err := strconv.ParseInt(string(r.Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("payments: account %s is corrupt: %w", account, err)
	}
	return b, r.Version, nil
}

func setBalance(ctx context.Context, kv store.KV, account string, cents, version int64) error {
	cond := store.IfAbsent
	if version != 0 {
		cond = store.IfVersion(version)
	}
	_, err := kv.Put(ctx, ledgerNamespace, account, []byte(strconv.FormatInt(cents, 10)), store.PutOptions{Condition: cond})
	return err
}

func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
