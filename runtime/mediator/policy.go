package mediator

import (
	"context"
	"strings"
)

// AllowList is the policy used until a policy engine is configured: each
// agent may call the tools, models and agents listed for it, nothing else.
// A tool pattern "server/*" allows every tool of that server.
type AllowList map[string]Grants

// Grants are what one agent may use.
type Grants struct {
	Tools  []string
	Models []string
	Agents []string
}

var _ Policy = AllowList(nil)

// Decide implements [Policy].
func (a AllowList) Decide(_ context.Context, r Request) (Decision, error) {
	g, ok := a[r.Caller.Agent]
	if !ok {
		return Decision{Reason: "agent has no grants", Policy: "allow-list", NotGranted: true}, nil
	}
	allowed := false
	switch r.Action {
	case ActionListTools:
		allowed = true // the list is filtered per tool
	case ActionCallTool:
		allowed = matchAny(g.Tools, r.Resource)
	case ActionComplete:
		allowed = matchAny(g.Models, strings.TrimPrefix(r.Resource, "model:"))
	case ActionCallAgent:
		allowed = matchAny(g.Agents, r.Resource)
	}
	if !allowed {
		return Decision{Reason: r.Resource + " is not in the agent's allow-list", Policy: "allow-list", NotGranted: true}, nil
	}
	return Decision{Allow: true, Policy: "allow-list"}, nil
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if GrantMatches(p, s) {
			return true
		}
	}
	return false
}

// GrantMatches reports whether the grant pattern names name: the name
// itself, or for "server/*" any name "server/…".
func GrantMatches(pattern, name string) bool {
	return pattern == name ||
		(strings.HasSuffix(pattern, "/*") && strings.HasPrefix(name, strings.TrimSuffix(pattern, "*")) && len(name) > len(pattern)-1)
}
