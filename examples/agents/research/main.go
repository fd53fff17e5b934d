// Command research is an example agenthost agent: it answers a question by
// letting the host's model choose among the read-only tools the host grants
// it, calling them through the host, and returning the model's final
// answer. It holds no credential: every model and tool call goes through
// the host.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
)

// maxSteps bounds the model → tool loop.
const maxSteps = 8

type research struct{}

func (research) Describe() sdk.Description {
	return sdk.Description{
		Name:        "research",
		Description: "Answers questions using the read-only tools the host grants it",
		Version:     "1.0.0",
		Skills:      []sdk.Skill{{ID: "research", Name: "Research", Description: "Look things up and answer", Examples: []string{"what time is it in Tokyo?"}}},
	}
}

func (research) Run(ctx context.Context, t *sdk.Task) (string, error) {
	tools, err := t.ListTools(ctx)
	if err != nil {
		return "", err
	}
	msgs := []*pluginpb.Message{
		{Role: pluginpb.Role_ROLE_SYSTEM, Text: "You are a research assistant. Use the tools when they help, then answer briefly."},
		{Role: pluginpb.Role_ROLE_USER, Text: t.Input},
	}
	for range maxSteps {
		resp, err := t.Complete(ctx, &pluginpb.CompleteRequest{Messages: msgs, Tools: tools, MaxTokens: 1024})
		if err != nil {
			return "", err
		}
		msg := resp.GetMessage()
		msgs = append(msgs, msg)
		if len(msg.GetToolCalls()) == 0 {
			return msg.GetText(), nil
		}
		if msg.GetText() != "" {
			_ = t.Think(msg.GetText())
		}
		for _, call := range msg.GetToolCalls() {
			res, err := t.CallTool(ctx, call.GetName(), args(call.GetArgumentsJson()))
			text := ""
			switch {
			case err != nil:
				text = "error: " + err.Error()
			case res.IsError:
				text = "error: " + res.Text
			default:
				text = res.Text
			}
			msgs = append(msgs, &pluginpb.Message{Role: pluginpb.Role_ROLE_TOOL, ToolCallId: call.GetId(), Text: text})
		}
	}
	return "", errors.New(fmt.Sprint("no answer after ", maxSteps, " steps"))
}

// args passes the model's argument object through unchanged.
func args(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

func main() { sdk.Serve(research{}) }
