// Package mcptest helps tests talk to an MCP server over HTTP the way an
// attacker or a minimal client would, without an MCP client library in
// between: one raw request, its status and its challenges.
package mcptest
