package llmanthropic

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/llm"
)

// FuzzStream feeds arbitrary bodies to the event assembler: it must never
// panic, and it either fails or ends with exactly one done event whose tool
// calls carry JSON-object arguments.
func FuzzStream(f *testing.F) {
	f.Add(event("message_start", messageStart) +
		event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`) +
		event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}}`) +
		event("content_block_stop", `{"type":"content_block_stop","index":0}`) +
		event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}`) +
		event("message_stop", `{"type":"message_stop"}`))
	f.Add(event("message_start", messageStart) + event("ping", `{"type":"ping"}`) + event("message_stop", `{"type":"message_stop"}`))
	f.Add(event("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add(event("content_block_stop", `{"type":"content_block_stop","index":99999}`))
	c, err := New(Config{APIKey: "k"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var events []llm.Event
		s := &streamState{c: c, ctx: context.Background(), yield: func(ev llm.Event, err error) bool {
			events = append(events, ev)
			return true
		}}
		err := s.run(strings.NewReader(body))
		dones := 0
		for _, ev := range events {
			if ev.Type == llm.EventDone {
				dones++
				for _, call := range ev.Response.Message.ToolCalls {
					if _, nerr := llm.NormalizeArguments(string(call.Arguments)); nerr != nil {
						t.Fatalf("done carries bad arguments %q", call.Arguments)
					}
				}
			}
		}
		if err == nil && dones != 1 {
			t.Fatalf("success with %d done events", dones)
		}
		if err != nil && dones != 0 {
			t.Fatalf("error %v after a done event", err)
		}
		var apiErr *llm.APIError
		if err != nil && !errors.Is(err, llm.ErrMalformedStream) && !errors.As(err, &apiErr) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
