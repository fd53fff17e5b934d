package host

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// checkGrants refuses a configuration that grants an agent a tool no server
// offers. At start the host knows every tool: its own, those of the remote
// MCP servers in the config and those the tool plugins listed. A grant
// "server/*" needs at least one tool of that server.
func checkGrants(agents []config.AgentConfig, tools map[string]mediator.Tool) error {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	var problems []string
	for _, a := range agents {
		for _, grant := range a.Tools {
			if !offered(grant, names) {
				problems = append(problems, fmt.Sprintf("agent %s is granted %q, which no server offers", a.Name, grant))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("host: %s; the tools are: %s", strings.Join(problems, "; "), strings.Join(names, ", "))
}

// offered reports whether grant names a tool of names: the tool itself,
// or for "server/*" any tool of the server.
func offered(grant string, names []string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return mediator.GrantMatches(grant, n) })
}
