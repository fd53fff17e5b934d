package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/runtime/store"
)

// nsHost holds the host's own keys in the store.
const nsHost = "host"

// storedKey returns the key kept under name in the store, creating it with
// generate on first use. When two hosts sharing the store create it at
// once, both end with the one stored first.
func storedKey(ctx context.Context, kv store.KV, name, what string, generate func() ([]byte, error)) ([]byte, error) {
	for range 2 {
		rec, err := kv.Get(ctx, nsHost, name)
		if err == nil {
			return rec.Value, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("host: read the %s: %w", what, err)
		}
		value, err := generate()
		if err != nil {
			return nil, fmt.Errorf("host: create the %s: %w", what, err)
		}
		_, err = kv.Put(ctx, nsHost, name, value, store.PutOptions{Condition: store.IfAbsent})
		if err == nil {
			return value, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("host: save the %s: %w", what, err)
		}
	}
	return nil, fmt.Errorf("host: the %s changed while it was created", what)
}
