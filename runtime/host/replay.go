package host

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/runtime/store"
)

// replayNamespace holds the DPoP proofs hosted MCP servers have accepted.
const replayNamespace = "mcp.dpop"

// storeReplayCache makes DPoP proofs single-use across every host that
// shares the store: a proof is remembered with an IfAbsent write that
// expires when the proof could no longer be accepted anyway.
type storeReplayCache struct {
	kv  store.KV
	now func() time.Time
}

// Remember implements dpop.ReplayCache.
func (c storeReplayCache) Remember(ctx context.Context, key string, until time.Time) error {
	ttl := until.Sub(c.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	sum := sha256.Sum256([]byte(key))
	_, err := c.kv.Put(ctx, replayNamespace, base64.RawURLEncoding.EncodeToString(sum[:]), []byte{1},
		store.PutOptions{Condition: store.IfAbsent, TTL: ttl})
	switch {
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("host: %w", dpop.ErrReplay)
	case err != nil:
		return fmt.Errorf("host: dpop replay cache: %w", err)
	}
	return nil
}
