package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/agenthost/agenthost/runtime/store"
)

// Get implements [store.KV].
func (s *Store) Get(ctx context.Context, ns, key string) (store.Record, error) {
	if err := s.enter(ctx, "get", store.ValidateRecord(ns, key)); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	now := s.now().UnixNano()
	rec := store.Record{Namespace: ns, Key: key}
	var exp, upd int64
	err := s.read(ctx, "get", func() error {
		err := s.pool.QueryRow(ctx, `SELECT value, version, expires_at, updated_at FROM kv
			WHERE ns = $1 AND key = $2 AND (expires_at = 0 OR expires_at > $3)`, ns, key, now).
			Scan(&rec.Value, &rec.Version, &exp, &upd)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s/%s: %w", ns, key, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Record{}, err
	}
	rec.Value = nonNil(rec.Value)
	rec.ExpiresAt, rec.UpdatedAt = fromNanos(exp), fromNanos(upd)
	return rec, nil
}

// lockRecord queues on b the locking read of a key's row; once b is sent,
// *found tells whether it has a row, *version its version and *live whether
// it is live at now.
func lockRecord(b *pgx.Batch, ns, key string, now int64, version *int64, found, live *bool) {
	b.Queue(`SELECT version, expires_at FROM kv WHERE ns = $1 AND key = $2 FOR UPDATE`, ns, key).
		QueryRow(func(row pgx.Row) error {
			var exp int64
			err := row.Scan(version, &exp)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			*found, *live = err == nil, err == nil && (exp == 0 || exp > now)
			return err
		})
}

// Put implements [store.KV]. The key's row is locked (SELECT … FOR UPDATE)
// before the condition is checked and the version drawn, in one
// transaction, so concurrent conditional writes of a key from any number of
// Stores serialise on the row: of concurrent IfAbsent puts exactly one
// wins, and each write's version is drawn after the previous write of the
// key committed, so versions grow. A key without a row is created with
// INSERT … ON CONFLICT DO NOTHING; if another writer created it meanwhile,
// Put runs again and locks that row. Two round trips: BEGIN with the
// locking read, then the write with COMMIT.
func (s *Store) Put(ctx context.Context, ns, key string, value []byte, opts store.PutOptions) (store.Record, error) {
	valid := firstErr(store.ValidateRecord(ns, key), store.ValidateValue(value), store.ValidateTTL(opts.TTL, false))
	if err := s.enter(ctx, "put", valid); err != nil {
		return store.Record{}, err
	}
	defer s.mu.RUnlock()
	now := s.now()
	rec := store.Record{Namespace: ns, Key: key, Value: bytes.Clone(nonNil(value)), UpdatedAt: now.UTC()}
	if opts.TTL > 0 {
		rec.ExpiresAt = now.Add(opts.TTL).UTC()
	}
	exp, upd := nanos(rec.ExpiresAt), nanos(rec.UpdatedAt)
	err := s.tx(ctx, "put", func(t *txRun) error {
		var cur int64
		var found, live, raced bool
		b := t.batch()
		lockRecord(b, ns, key, now.UnixNano(), &cur, &found, &live)
		if err := t.send(b); err != nil {
			return err
		}
		if err := opts.Condition.Check(live, cur); err != nil {
			return fmt.Errorf("%s/%s: %w", ns, key, err)
		}
		b = t.batch()
		if found {
			b.Queue(`UPDATE kv SET value = $3, version = nextval('revision'), expires_at = $4, updated_at = $5
				WHERE ns = $1 AND key = $2 RETURNING version`, ns, key, rec.Value, exp, upd).
				QueryRow(func(row pgx.Row) error { return row.Scan(&rec.Version) })
		} else {
			b.Queue(`INSERT INTO kv (ns, key, value, version, expires_at, updated_at)
				VALUES ($1, $2, $3, nextval('revision'), $4, $5) ON CONFLICT (ns, key) DO NOTHING RETURNING version`,
				ns, key, rec.Value, exp, upd).
				QueryRow(func(row pgx.Row) error {
					err := row.Scan(&rec.Version)
					if errors.Is(err, pgx.ErrNoRows) {
						raced, err = true, nil
					}
					return err
				})
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
		return store.Record{}, err
	}
	return rec, nil
}

// Delete implements [store.KV]: lock the row, check, delete, in one
// transaction of two round trips.
func (s *Store) Delete(ctx context.Context, ns, key string, cond store.Condition) error {
	if err := s.enter(ctx, "delete", store.ValidateRecord(ns, key)); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	now := s.now().UnixNano()
	return s.tx(ctx, "delete", func(t *txRun) error {
		var cur int64
		var found, live bool
		b := t.batch()
		lockRecord(b, ns, key, now, &cur, &found, &live)
		if err := t.send(b); err != nil {
			return err
		}
		if !live {
			return fmt.Errorf("%s/%s: %w", ns, key, store.ErrNotFound)
		}
		if err := cond.Check(true, cur); err != nil {
			return fmt.Errorf("%s/%s: %w", ns, key, err)
		}
		b = t.batch()
		b.Queue(`DELETE FROM kv WHERE ns = $1 AND key = $2`, ns, key)
		return t.commit(b)
	})
}

// prefixEnd returns the least valid UTF-8 string greater than every string
// that starts with prefix, and false when there is none (prefix is made of
// U+10FFFF only). It increments the last code point rather than the last
// byte (what an SQLite backend may do), since PostgreSQL refuses text that
// is not valid UTF-8. In UTF-8, byte order is code point order, so the
// strings with the prefix are exactly those in [prefix, prefixEnd).
func prefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.MaxRune:
			continue // no successor at this position: carry to the previous one
		case r == 0xD7FF:
			r = 0xE000 // skip the surrogates, which UTF-8 cannot encode
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}

// keyRange is the WHERE clause (from the given parameter number on) and the
// arguments selecting keys that start with prefix.
func keyRange(prefix string, param int) (string, []any) {
	end, ok := prefixEnd(prefix)
	if prefix == "" || !ok {
		return fmt.Sprintf(` AND key >= $%d`, param), []any{prefix}
	}
	return fmt.Sprintf(` AND key >= $%d AND key < $%d`, param, param+1), []any{prefix, end}
}

// List implements [store.KV]. Keys are in the "C" collation, which compares
// bytes, so the primary key index gives byte order and the prefix is an
// index range.
func (s *Store) List(ctx context.Context, ns, prefix, after string, limit int) ([]store.Record, error) {
	if err := s.enter(ctx, "list", store.ValidateList(ns, prefix, after, limit)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	cond, rangeArgs := keyRange(prefix, 5)
	q := `SELECT key, value, version, expires_at, updated_at FROM kv
		WHERE ns = $1 AND key > $2 AND (expires_at = 0 OR expires_at > $3)` + cond + ` ORDER BY key LIMIT $4`
	args := append([]any{ns, after, s.now().UnixNano(), limit}, rangeArgs...)
	var out []store.Record
	err := s.read(ctx, "list", func() error {
		out = []store.Record{}
		rows, err := s.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := store.Record{Namespace: ns}
			var exp, upd int64
			if err := rows.Scan(&r.Key, &r.Value, &r.Version, &exp, &upd); err != nil {
				return err
			}
			r.Value = nonNil(r.Value)
			r.ExpiresAt, r.UpdatedAt = fromNanos(exp), fromNanos(upd)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Count implements [store.KV]. Like List, the prefix is an index range.
func (s *Store) Count(ctx context.Context, ns, prefix string) (int, error) {
	if err := s.enter(ctx, "count", store.ValidateCount(ns, prefix)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	cond, rangeArgs := keyRange(prefix, 3)
	q := `SELECT count(*) FROM kv WHERE ns = $1 AND (expires_at = 0 OR expires_at > $2)` + cond
	args := append([]any{ns, s.now().UnixNano()}, rangeArgs...)
	var n int64
	err := s.read(ctx, "count", func() error {
		return s.pool.QueryRow(ctx, q, args...).Scan(&n)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Purge implements [store.KV].
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := s.enter(ctx, "purge", nil); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	now := s.now().UnixNano()
	var n int64
	err := s.exec(ctx, "purge", true, func() error {
		tag, err := s.pool.Exec(ctx, `DELETE FROM kv WHERE expires_at > 0 AND expires_at <= $1`, now)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.DebugContext(ctx, "pgstore: purged expired records", slog.Int64("count", n))
	}
	return int(n), nil
}
