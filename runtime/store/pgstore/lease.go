package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agenthost/agenthost/runtime/store"
)

// AcquireLease implements [store.Leases]. Like Put, it locks the lease's row
// (or creates it with INSERT … ON CONFLICT DO NOTHING) before deciding, in
// one transaction, so of concurrent acquisitions from any number of Stores
// exactly one wins. A new acquisition draws its token from the sequence
// behind record versions, after the previous holder's row was locked, so
// tokens grow.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.enter(ctx, "acquire lease", store.ValidateLease(name, holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	l := store.Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl).UTC()}
	exp := nanos(l.ExpiresAt)
	err := s.tx(ctx, "acquire lease", func(t *txRun) error {
		var curHolder string
		var curExp, token int64
		found, raced := false, false
		b := t.batch()
		b.Queue(`SELECT holder, expires_at, token FROM leases WHERE name = $1 FOR UPDATE`, name).
			QueryRow(func(row pgx.Row) error {
				err := row.Scan(&curHolder, &curExp, &token)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				found = err == nil
				return err
			})
		if err := t.send(b); err != nil {
			return err
		}
		b = t.batch()
		switch {
		case !found:
			b.Queue(`INSERT INTO leases (name, holder, expires_at, token)
				VALUES ($1, $2, $3, nextval('revision')) ON CONFLICT (name) DO NOTHING RETURNING token`, name, holder, exp).
				QueryRow(func(row pgx.Row) error {
					err := row.Scan(&l.Token)
					if errors.Is(err, pgx.ErrNoRows) {
						raced, err = true, nil // acquired by another meanwhile: lock its row and decide again
					}
					return err
				})
		case curExp > now.UnixNano() && curHolder != holder:
			return fmt.Errorf("%s: held by %s until %s: %w",
				name, curHolder, fromNanos(curExp).Format(time.RFC3339), store.ErrLeaseHeld)
		case curExp > now.UnixNano():
			l.Token = token // the holder renews its own lease
			b.Queue(`UPDATE leases SET expires_at = $2 WHERE name = $1`, name, exp)
		default:
			b.Queue(`UPDATE leases SET holder = $2, expires_at = $3, token = nextval('revision')
				WHERE name = $1 RETURNING token`, name, holder, exp).
				QueryRow(func(row pgx.Row) error { return row.Scan(&l.Token) })
		}
		if err := t.commit(b); err != nil {
			return err
		}
		if raced {
			return errRaced
		}
		return nil
	})
	if err != nil {
		return store.Lease{}, err
	}
	return l, nil
}

// RenewLease implements [store.Leases]. The update is idempotent, so it is
// retried after a lost connection like a read.
func (s *Store) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.enter(ctx, "renew lease", store.ValidateLease(l.Name, l.Holder, ttl)); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	exp := now.Add(ttl).UTC()
	err := s.exec(ctx, "renew lease", true, func() error {
		tag, err := s.pool.Exec(ctx,
			`UPDATE leases SET expires_at = $5 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > $4`,
			l.Name, l.Holder, l.Token, now.UnixNano(), exp.UnixNano())
		if err == nil && tag.RowsAffected() != 1 {
			return fmt.Errorf("%s: %w", l.Name, store.ErrLeaseLost)
		}
		return err
	})
	if err != nil {
		return store.Lease{}, err
	}
	l.ExpiresAt = exp
	return l, nil
}

// ReleaseLease implements [store.Leases].
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	valid := firstErr(store.ValidateName("lease", l.Name), store.ValidateName("holder", l.Holder))
	if err := s.enter(ctx, "release lease", valid); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	now := s.now().UnixNano()
	return s.exec(ctx, "release lease", false, func() error {
		tag, err := s.pool.Exec(ctx,
			`DELETE FROM leases WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > $4`,
			l.Name, l.Holder, l.Token, now)
		if err == nil && tag.RowsAffected() != 1 {
			return fmt.Errorf("%s: %w", l.Name, store.ErrLeaseLost)
		}
		return err
	})
}
