package hosttools

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
)

// Store is what the host tools need from the store: records for the notes
// and the ledger's accounts, a log for the ledger's transfers.
type Store interface {
	store.KV
	store.Log
}

// Config configures [New].
type Config struct {
	// Store keeps the notes and the payments ledger.
	Store Store
	// Now is the clock of clock/now and of the notes' and transfers'
	// times; nil means time.Now.
	Now func() time.Time
	// VerifyTxnToken verifies the Txn-Token of a payments/transfer call;
	// nil refuses every transfer.
	VerifyTxnToken mediator.TxnTokenVerifier
}

// New returns the host's built-in tools by name (see the package doc).
func New(cfg Config) map[string]mediator.Tool {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	kv := cfg.Store
	return map[string]mediator.Tool{
		"clock/now":        clockTool{now: now},
		"notes/search":     notesSearch{kv: kv},
		"notes/add":        notesAdd{kv: kv, now: now},
		transferName:       transferTool{kv: kv, now: now, verify: cfg.VerifyTxnToken},
		"payments/balance": balanceTool{kv: kv},
	}
}

// Names are the names of the tools [New] returns, sorted: what the host
// offers before any remote server or tool plugin.
func Names() []string {
	return slices.Sorted(maps.Keys(New(Config{})))
}

// ReadOnly are the names of the tools of [New] that change nothing, sorted:
// over MCP a caller needs <server>:read for them and <server>:write for
// the others.
func ReadOnly() []string {
	return []string{"clock/now", "notes/search", "payments/balance"}
}

var _ mediator.Tool = clockTool{}

type clockTool struct{ now func() time.Time }

func (clockTool) Definition() llm.Tool {
	return llm.Tool{Name: "clock/now", Description: "Current date and time (UTC)",
		Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}
}

func (t clockTool) Call(context.Context, mediator.Caller, json.RawMessage) (mediator.ToolResult, error) {
	return mediator.ToolResult{Text: t.now().UTC().Format(time.RFC1123)}, nil
}
