package llmoffline

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/agenthost/agenthost/llm"
)

// FuzzOffline drives the offline model with arbitrary task text and tool
// schemas: it must never panic, must fail only with ErrInvalidRequest, and a
// tool call's arguments must be a JSON object holding every required name.
func FuzzOffline(f *testing.F) {
	f.Add("weather in Paris city: Lyon", `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	f.Add("weather \"x\" 12 n=3", `{"type":"object","properties":{"n":{"type":["integer","null"]},"a":{"type":"array","items":{"type":"array","items":{"type":"object","required":["z"]}}}},"required":["n","a"]}`)
	f.Add("weather", `{"properties":{"e":{"enum":[null,"a",{"b":1}]}},"required":["e"]}`)
	f.Add("weather", `{"type":"object","properties":{"x":{"type":7}},"required":[5]}`)
	m := New(Config{})
	f.Fuzz(func(t *testing.T, task, params string) {
		if !json.Valid([]byte(params)) {
			params = `{}`
		}
		req := &llm.Request{
			Messages: []llm.Message{{Role: llm.RoleUser, Content: task}},
			Tools:    []llm.Tool{{Name: "weather", Description: "weather report", Parameters: json.RawMessage(params)}},
		}
		resp, err := m.Complete(context.Background(), req)
		if err != nil {
			if !errors.Is(err, llm.ErrInvalidRequest) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		for _, call := range resp.Message.ToolCalls {
			var args map[string]any
			if err := json.Unmarshal(call.Arguments, &args); err != nil || args == nil {
				t.Fatalf("arguments %s are not an object", call.Arguments)
			}
			var s schema
			if json.Unmarshal([]byte(params), &s) == nil {
				for _, r := range s.Required {
					if _, ok := args[r]; !ok {
						t.Fatalf("required %q missing from %s", r, call.Arguments)
					}
				}
			}
		}
	})
}
