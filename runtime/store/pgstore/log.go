package pgstore

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/agenthost/agenthost/runtime/store"
)

// advanceHead moves a log's head (its row in logs, created at 0 if missing)
// n entries on and returns where it was: the index of the first of the n.
// The row stays locked until the transaction ends, which sequences the
// appends to one log whichever Store makes them.
const advanceHead = `INSERT INTO logs AS l (log, next) VALUES ($1, $2)
	ON CONFLICT (log) DO UPDATE SET next = l.next + $2
	RETURNING l.next - $2`

// insertEntries inserts a batch of entries ($3, a bytea array) at indexes
// from $2 on.
const insertEntries = `INSERT INTO log_entries (log, idx, data)
	SELECT $1, $2 + e.ord - 1, e.data FROM unnest($3::bytea[]) WITH ORDINALITY AS e(data, ord)`

// appendOne does both in one statement, hence one round trip and one
// implicit transaction: the data-modifying CTEs run exactly once, the insert
// reading the head's RETURNING.
const appendOne = `WITH head AS (` + advanceHead + ` AS first),
	ins AS (INSERT INTO log_entries (log, idx, data)
		SELECT $1, head.first + e.ord - 1, e.data
		FROM head, unnest($3::bytea[]) WITH ORDINALITY AS e(data, ord))
	SELECT first FROM head`

// entries returns the batch with nil entries made empty (a nil []byte is
// sent as NULL).
func entries(es [][]byte) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = nonNil(e)
	}
	return out
}

// Append implements [store.Log]. The batch is one statement: it is written
// whole or not at all, at the indexes after the log's head, which it locks.
func (s *Store) Append(ctx context.Context, log string, es ...[]byte) (int64, error) {
	if err := s.enter(ctx, "append", store.ValidateAppend(log, es)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	batch := entries(es)
	var first int64
	err := s.exec(ctx, "append", false, func() error {
		return s.pool.QueryRow(ctx, appendOne, log, int64(len(batch)), batch).Scan(&first)
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// AppendLogs implements [store.MultiLog]: every part in one transaction. The
// heads of the logs named are advanced (and locked) first, in name order so
// that two AppendLogs over the same logs cannot deadlock; then each part's
// condition is checked, counting the parts before it, and its entries
// inserted. A failed condition rolls everything back. Two round trips: BEGIN
// with the heads, then the entries with COMMIT.
func (s *Store) AppendLogs(ctx context.Context, parts ...store.LogAppend) ([]int64, error) {
	if err := s.enter(ctx, "append", store.ValidateAppendLogs(parts)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	total := map[string]int64{}
	batches := make([][][]byte, len(parts))
	for i, p := range parts {
		total[p.Log] += int64(len(p.Entries))
		batches[i] = entries(p.Entries)
	}
	names := make([]string, 0, len(total))
	for name := range total {
		names = append(names, name)
	}
	slices.Sort(names)
	firsts := make([]int64, len(parts))
	err := s.tx(ctx, "append", func(t *txRun) error {
		head := make(map[string]int64, len(names))
		b := t.batch()
		for _, name := range names {
			b.Queue(advanceHead, name, total[name]).QueryRow(func(row pgx.Row) error {
				var h int64
				err := row.Scan(&h)
				head[name] = h
				return err
			})
		}
		if err := t.send(b); err != nil {
			return err
		}
		for i, p := range parts {
			firsts[i] = head[p.Log]
			if err := p.Check(firsts[i]); err != nil {
				return err
			}
			head[p.Log] += int64(len(p.Entries))
		}
		b = t.batch()
		for i, p := range parts {
			b.Queue(insertEntries, p.Log, firsts[i], batches[i])
		}
		return t.commit(b)
	})
	if err != nil {
		return nil, err
	}
	return firsts, nil
}

// Read implements [store.Log].
func (s *Store) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := s.enter(ctx, "read", store.ValidateRead(log, from, limit)); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []store.Entry
	err := s.read(ctx, "read", func() error {
		out = []store.Entry{}
		rows, err := s.pool.Query(ctx,
			`SELECT idx, data FROM log_entries WHERE log = $1 AND idx >= $2 ORDER BY idx LIMIT $3`, log, from, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e store.Entry
			if err := rows.Scan(&e.Index, &e.Data); err != nil {
				return err
			}
			e.Data = nonNil(e.Data)
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Len implements [store.Log]: the log's head.
func (s *Store) Len(ctx context.Context, log string) (int64, error) {
	if err := s.enter(ctx, "len", store.ValidateName("log", log)); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var n int64
	err := s.read(ctx, "len", func() error {
		return s.pool.QueryRow(ctx, `SELECT COALESCE((SELECT next FROM logs WHERE log = $1), 0)`, log).Scan(&n)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
