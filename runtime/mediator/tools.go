package mediator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/runtime/store"
)

// BuiltinTools returns the tools the host implements itself:
//
//	clock/now     the current date and time in UTC (read-only)
//	notes/search  notes whose text contains every word of a query (read-only)
//	notes/add     store a note (writes)
//	payments/transfer  move money between accounts of the host's ledger (writes)
//	payments/balance   an account's balance (read-only)
//
// Notes live in the store, per agent. payments/transfer moves money only
// for a call whose Txn-Token verify accepts and that names exactly this
// transfer (its arguments' digest, and the amount as a declared field);
// with a nil verify it refuses every transfer.
func BuiltinTools(kv ledgerStore, now func() time.Time, verify TxnTokenVerifier) map[string]Tool {
	if now == nil {
		now = time.Now
	}
	return map[string]Tool{
		"clock/now":         clockTool{now: now},
		"notes/search":      notesSearch{kv: kv},
		"notes/add":         notesAdd{kv: kv, now: now},
		"payments/transfer": transferTool{kv: kv, now: now, verify: verify},
		"payments/balance":  balanceTool{kv: kv},
	}
}

// BuiltinToolNames are the names of the tools [BuiltinTools] returns,
// sorted: what the host offers before any remote server or tool plugin.
func BuiltinToolNames() []string {
	return slices.Sorted(maps.Keys(BuiltinTools(nil, nil, nil)))
}

type clockTool struct{ now func() time.Time }

func (clockTool) Definition() llm.Tool {
	return llm.Tool{Name: "clock/now", Description: "Current date and time (UTC)",
		Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}
}

func (t clockTool) Call(context.Context, Caller, json.RawMessage) (ToolResult, error) {
	return ToolResult{Text: t.now().UTC().Format(time.RFC1123)}, nil
}

const notesNamespace = "tool.notes"

type note struct {
	Text    string    `json:"text"`
	Created time.Time `json:"created"`
}

type notesAdd struct {
	kv  store.KV
	now func() time.Time
}

func (notesAdd) Definition() llm.Tool {
	return llm.Tool{Name: "notes/add", Description: "Save a note for later",
		Parameters: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string","description":"the note"}},"required":["text"]}`)}
}

func (t notesAdd) Call(ctx context.Context, c Caller, args json.RawMessage) (ToolResult, error) {
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(args, &in); err != nil || strings.TrimSpace(in.Text) == "" {
		return ToolResult{Text: "a non-empty text is required", IsError: true}, nil
	}
	if len(in.Text) > 8<<10 {
		return ToolResult{Text: "a note is at most 8 KiB", IsError: true}, nil
	}
	now := t.now().UTC()
	b, _ := json.Marshal(note{Text: in.Text, Created: now})
	key := c.Agent + "/" + now.Format("20060102T150405.000000000Z")
	if _, err := t.kv.Put(ctx, notesNamespace, key, b, store.PutOptions{Condition: store.IfAbsent}); err != nil {
		return ToolResult{}, err
	}
	return ToolResult{Text: "saved"}, nil
}

type notesSearch struct{ kv store.KV }

func (notesSearch) Definition() llm.Tool {
	return llm.Tool{Name: "notes/search", Description: "Search saved notes",
		Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"words to look for"}},"required":["query"]}`)}
}

func (t notesSearch) Call(ctx context.Context, c Caller, args json.RawMessage) (ToolResult, error) {
	var in struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(args, &in); err != nil {
		return ToolResult{Text: "arguments must be an object with a query", IsError: true}, nil
	}
	words := strings.Fields(strings.ToLower(in.Query))
	var hits []string
	after := ""
	for {
		recs, err := t.kv.List(ctx, notesNamespace, c.Agent+"/", after, 500)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ToolResult{}, err
		}
		for _, r := range recs {
			var n note
			if json.Unmarshal(r.Value, &n) != nil {
				continue
			}
			text := strings.ToLower(n.Text)
			all := true
			for _, w := range words {
				if !strings.Contains(text, w) {
					all = false
					break
				}
			}
			if all {
				hits = append(hits, n.Text)
			}
		}
		if len(recs) < 500 {
			break
		}
		after = recs[len(recs)-1].Key
	}
	if len(hits) == 0 {
		return ToolResult{Text: "no notes match " + fmt.Sprintf("%q", in.Query)}, nil
	}
	return ToolResult{Text: strings.Join(hits, "\n")}, nil
}
