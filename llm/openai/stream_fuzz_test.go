package llmopenai

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/llm"
)

// FuzzStream feeds arbitrary bodies to the chunk assembler: it must never
// panic, and it either fails or ends with exactly one done event whose tool
// calls carry JSON-object arguments.
func FuzzStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}\n\n")
	f.Add("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}\n\n")
	f.Add("data: [DONE]\n\n")
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
