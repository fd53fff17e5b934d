package hosttools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store"
)

var (
	_ mediator.Tool = notesAdd{}
	_ mediator.Tool = notesSearch{}
)

// notesNamespace holds the notes, keyed "<agent>/<creation time>".
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

func (t notesAdd) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(args, &in); err != nil || strings.TrimSpace(in.Text) == "" {
		return mediator.ToolResult{Text: "a non-empty text is required", IsError: true}, nil
	}
	if len(in.Text) > 8<<10 {
		return mediator.ToolResult{Text: "a note is at most 8 KiB", IsError: true}, nil
	}
	now := t.now().UTC()
	b, _ := json.Marshal(note{Text: in.Text, Created: now})
	key := c.Agent + "/" + now.Format("20060102T150405.000000000Z")
	if _, err := t.kv.Put(ctx, notesNamespace, key, b, store.PutOptions{Condition: store.IfAbsent}); err != nil {
		return mediator.ToolResult{}, err
	}
	return mediator.ToolResult{Text: "saved"}, nil
}

type notesSearch struct{ kv store.KV }

func (notesSearch) Definition() llm.Tool {
	return llm.Tool{Name: "notes/search", Description: "Search saved notes",
		Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"words to look for"}},"required":["query"]}`)}
}

func (t notesSearch) Call(ctx context.Context, c mediator.Caller, args json.RawMessage) (mediator.ToolResult, error) {
	var in struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(args, &in); err != nil {
		return mediator.ToolResult{Text: "arguments must be an object with a query", IsError: true}, nil
	}
	words := strings.Fields(strings.ToLower(in.Query))
	var hits []string
	after := ""
	for {
		recs, err := t.kv.List(ctx, notesNamespace, c.Agent+"/", after, 500)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return mediator.ToolResult{}, err
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
		return mediator.ToolResult{Text: "no notes match " + fmt.Sprintf("%q", in.Query)}, nil
	}
	return mediator.ToolResult{Text: strings.Join(hits, "\n")}, nil
}
