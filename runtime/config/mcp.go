package config

import "fmt"

// MCPConfig is the mcp section.
type MCPConfig struct {
	// Servers are the MCP servers the host serves at /mcp/<name>, each a
	// protected resource of the embedded authorization server.
	Servers []MCPServerConfig `json:"servers,omitempty"`
}

// MCPServerConfig is one hosted MCP server.
type MCPServerConfig struct {
	// Name is the path segment: lowercase letters, digits, '-' and '_',
	// starting with a letter or digit, at most 63 bytes. REQUIRED, unique.
	Name string `json:"name"`
	// Tools are host tools ("notes/search") the server offers. REQUIRED.
	Tools []string `json:"tools"`
}

func (v *validator) mcp() {
	seen := map[string]int{}
	for i, s := range v.c.MCP.Servers {
		base := fmt.Sprintf("mcp.servers[%d]", i)
		switch {
		case s.Name == "":
			v.invalid(base+".name", "is required")
		case !validAgentName(s.Name):
			v.invalid(base+".name", "%s is not a valid server name: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 bytes", quoteValue(s.Name))
		default:
			if j, dup := seen[s.Name]; dup {
				v.invalid(base+".name", "MCP server %q is already defined at mcp.servers[%d]", s.Name, j)
			}
			seen[s.Name] = i
		}
		if len(s.Tools) == 0 {
			v.invalid(base+".tools", "lists no tools")
		}
		tools := map[string]bool{}
		for j, t := range s.Tools {
			p := fmt.Sprintf("%s.tools[%d]", base, j)
			switch {
			case t == "":
				v.invalid(p, "is empty")
			case tools[t]:
				v.invalid(p, "tool %q is listed twice", t)
			}
			tools[t] = true
		}
	}
}
