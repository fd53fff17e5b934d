package host

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// newID returns a fresh identifier: prefix and 12 random bytes in hex. It
// names each task ("task-…"), each transaction a task begins ("txn-…") and
// this host instance ("host-…"). (A hosted MCP server's tools/call names
// its own, "mcp-…", in runtime/mcphost.)
func newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("host: new %sid: %w", prefix, err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}
