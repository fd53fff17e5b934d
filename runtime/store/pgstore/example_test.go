package pgstore_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
)

// Open a store on the database an environment variable names, as the host
// does with storage.dsn_env, and tell an outage from other errors.
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, pgstore.Config{DSN: os.Getenv("AGENTHOST_POSTGRES_DSN")})
	if err != nil {
		log.Fatal(err) // "pgstore: open user@host:5432/db: database unavailable: …"
	}
	defer s.Close()

	_, err = s.Put(ctx, "jti", "b1f0…", nil, store.PutOptions{Condition: store.IfAbsent, TTL: 5 * time.Minute})
	switch {
	case errors.Is(err, store.ErrConflict):
		// replayed
	case errors.Is(err, pgstore.ErrUnavailable):
		// 503; errors.Is(err, pgstore.ErrOutcomeUnknown) if it may have been written
	case err != nil:
		// 500
	}
}
