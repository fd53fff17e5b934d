// Command assistant is an example agenthost agent that delegates: it hands
// the task to another agent through the host (CallAgent) and relays the
// answer. The host checks that this agent may call that one, keeps the
// delegation chain, and refuses loops.
package main

import (
	"context"
	"strings"

	"github.com/agenthost/agenthost/plugins/sdk"
)

type assistant struct{}

func (assistant) Describe() sdk.Description {
	return sdk.Description{
		Name:        "assistant",
		Description: "Routes a request to the agent best placed to answer it",
		Version:     "1.0.0",
		Skills:      []sdk.Skill{{ID: "delegate", Name: "Delegate", Description: "Ask another agent"}},
	}
}

// route picks the agent for a task: payments for money, research otherwise.
func route(input string) string {
	l := strings.ToLower(input)
	for _, w := range []string{"pay", "transfer", "balance", "money"} {
		if strings.Contains(l, w) {
			return "payments"
		}
	}
	return "research"
}

func (assistant) Run(ctx context.Context, t *sdk.Task) (string, error) {
	agent := route(t.Input)
	_ = t.Think("asking " + agent)
	out, err := t.CallAgent(ctx, agent, t.Input)
	if err != nil {
		return "", err
	}
	return agent + " says: " + out, nil
}

func main() { sdk.Serve(assistant{}) }
