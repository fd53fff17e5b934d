package llmoffline_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/llm"
	llmoffline "github.com/agenthost/agenthost/llm/offline"
)

func ExampleModel_Complete() {
	m := llmoffline.New(llmoffline.Config{})
	req := &llm.Request{
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "What is the weather in Paris?"}},
		Tools: []llm.Tool{{
			Name:        "get_weather",
			Description: "Current weather for a city",
			Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
		}},
	}
	resp, err := m.Complete(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	call := resp.Message.ToolCalls[0]
	fmt.Println(resp.StopReason, call.Name, string(call.Arguments))

	req.Messages = append(req.Messages, resp.Message,
		llm.Message{Role: llm.RoleTool, ToolCallID: call.ID, Content: `{"sky":"clear","temp_c":21}`})
	resp, err = m.Complete(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StopReason, resp.Message.Content)
	// Output:
	// tool_use get_weather {"city":"Paris"}
	// end_turn The get_weather tool returned: sky: clear; temp_c: 21
}
