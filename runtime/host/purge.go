package host

import (
	"context"
	"time"
)

// purgeInterval is how often expired store records (the authorization
// server's replay cache, codes, pending requests, used refresh tokens)
// are reclaimed. Expired records are already invisible; this only frees
// their space.
const purgeInterval = 10 * time.Minute

// runPurge reclaims expired records at start and every purgeInterval
// until ctx is done.
func (h *Host) runPurge(ctx context.Context) error {
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		h.purgeOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (h *Host) purgeOnce(ctx context.Context) {
	n, err := h.store.Purge(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		h.log.Warn("purging expired records failed", "err", err)
	case n > 0:
		h.log.Debug("purged expired records", "count", n)
	}
}
