// Command payments is an example agenthost agent that moves money: it asks
// the host's model which payments tool to call (payments/transfer,
// payments/balance), calls it through the host and reports the result. The
// host decides whether the call may happen; later versions put human
// approval in front of transfers.
package main

import (
	"context"
	"encoding/json"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sdk"
)

type payments struct{}

func (payments) Describe() sdk.Description {
	return sdk.Description{
		Name:        "payments",
		Description: "Transfers money between accounts and reports balances",
		Version:     "1.0.0",
		Skills: []sdk.Skill{{ID: "transfer", Name: "Transfer", Description: "Move money between accounts",
			Examples: []string{"transfer from: alice to: bob amount: 12.50"}}},
	}
}

func (payments) Run(ctx context.Context, t *sdk.Task) (string, error) {
	tools, err := t.ListTools(ctx)
	if err != nil {
		return "", err
	}
	msgs := []*pluginpb.Message{{Role: pluginpb.Role_ROLE_USER, Text: t.Input}}
	resp, err := t.Complete(ctx, &pluginpb.CompleteRequest{Messages: msgs, Tools: tools})
	if err != nil {
		return "", err
	}
	calls := resp.GetMessage().GetToolCalls()
	if len(calls) == 0 {
		return resp.GetMessage().GetText(), nil
	}
	msgs = append(msgs, resp.GetMessage())
	for _, call := range calls {
		res, err := t.CallTool(ctx, call.GetName(), args(call.GetArgumentsJson()))
		text := ""
		switch {
		case sdk.IsRefused(err):
			// The host refused the call (policy, or the user denied the
			// approval): the task fails, saying why.
			return "", err
		case err != nil:
			text = "refused: " + err.Error()
		case res.IsError:
			text = "failed: " + res.Text
		default:
			text = res.Text
		}
		msgs = append(msgs, &pluginpb.Message{Role: pluginpb.Role_ROLE_TOOL, ToolCallId: call.GetId(), Text: text})
	}
	final, err := t.Complete(ctx, &pluginpb.CompleteRequest{Messages: msgs, Tools: tools})
	if err != nil {
		return "", err
	}
	return final.GetMessage().GetText(), nil
}

// args passes the model's argument object through unchanged.
func args(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("{}")
	}
	return json.RawMessage(s)
}

func main() { sdk.Serve(payments{}) }
