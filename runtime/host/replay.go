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
	seen, err := rememberOnce(ctx, c.kv, replayNamespace, key, until.Sub(c.now()))
	switch {
	case err != nil:
		return fmt.Errorf("host: dpop replay cache: %w", err)
	case seen:
		return fmt.Errorf("host: %w", dpop.ErrReplay)
	}
	return nil
}

// rememberOnce records key in namespace ns for ttl (at least a second)
// and reports whether it was already there: of any number of hosts sharing
// the store, exactly one sees a key first. The key is stored hashed.
func rememberOnce(ctx context.Context, kv store.KV, ns, key string, ttl time.Duration) (seen bool, err error) {
	_, err = kv.Put(ctx, ns, hashedKey(key), []byte{1}, store.PutOptions{Condition: store.IfAbsent, TTL: max(ttl, time.Second)})
	switch {
	case errors.Is(err, store.ErrConflict):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

// hashedKey is the store key of a remembered value.
func hashedKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
