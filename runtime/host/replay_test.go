package host

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

func TestStoreReplayCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlitestore.Open(context.Background(), sqlitestore.Config{Path: filepath.Join(t.TempDir(), "s.db"), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Two hosts sharing one store.
	a, b := storeReplayCache{kv: st, now: clock}, storeReplayCache{kv: st, now: clock}
	ctx := context.Background()
	if err := a.Remember(ctx, "jkt:jti", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Remember(ctx, "jkt:jti", now.Add(time.Minute)); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("replay on the other host: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := b.Remember(ctx, "jkt:jti", now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}
