// Package mcpbare is a bare MCP server: mark3labs/mcp-go's Streamable HTTP
// transport, stateless, with one tool, [ToolName], that returns the current
// time as text, and no authentication, no policy and no audit.
//
// It is the baseline cmd/hostbench measures the host's hosted MCP servers
// against (the "direct" case of runtime/host's BenchmarkHostToolsCall), so
// it stays exactly what an unprotected mcp-go server is and nothing more.
// It lives under mcp/ because only this tree may import mcp-go.
package mcpbare
