package audit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
)

// BenchmarkAppend measures durable appends on sqlitestore (WAL,
// synchronous=FULL) in a temporary directory, with 1 and 64 concurrent
// writers. The appends/s metric counts acknowledged (durable) records.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run("writers="+itoa(int64(writers)), func(b *testing.B) {
			st := openSQLite(b, b.TempDir())
			defer st.Close()
			l := benchAppend(b, st, writers)
			b.ReportMetric(float64(b.N)/float64(max(1, l.commits.Load())), "records/commit")
		})
	}
}

// benchAppend runs b.N durable appends to a log on st from writers
// goroutines, reports appends/s and returns the (closed) log.
func benchAppend(b *testing.B, st store.Store, writers int) *Log {
	ctx := context.Background()
	s, v := testKeys(b)
	l := openLog(b, st, s, v, 0)
	rec := testRecord(1)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAppendShared measures durable appends by two logs sharing one
// store (as two hosts share a database), 64 writers split between them:
// sqlitestore, and PostgreSQL through two stores (two connection pools, as
// two processes; skipped without a server). records/commit counts the
// commits of both; overtaken/commit is how often a commit found another
// log's first (and was retried).
func BenchmarkAppendShared(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		st := openSQLite(b, b.TempDir())
		defer st.Close()
		benchShared(b, st, st)
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := pgtest.NewDatabase(b)
		var sts []store.Log
		for range 2 {
			st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			sts = append(sts, st)
		}
		benchShared(b, sts[0], sts[1])
	})
}

func benchShared(b *testing.B, st1, st2 store.Log) {
	ctx := context.Background()
	s, v := testKeys(b)
	logs := []*Log{openShared(b, st1, s, v, "a", 0, 0), openShared(b, st2, s, v, "b", 0, 0)}
	rec := testRecord(1)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := logs[w%2]
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Append(ctx, rec); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	commits := logs[0].commits.Load() + logs[1].commits.Load()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/float64(max(1, commits)), "records/commit")
	b.ReportMetric(float64(logs[0].conflicts.Load()+logs[1].conflicts.Load())/float64(max(1, commits)), "overtaken/commit")
	for _, l := range logs {
		if err := l.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if rep, err := Verify(ctx, st1, v); err != nil || rep.Uncovered != nil {
		b.Fatalf("Verify: %v (%+v)", err, rep)
	}
}

// BenchmarkAppendStores measures durable appends of one log on SQLite and
// on PostgreSQL (skipped without a server), with 1 and 32 writers.
func BenchmarkAppendStores(b *testing.B) {
	open := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store { return openSQLite(b, b.TempDir()) },
		"postgres": func(b *testing.B) store.Store {
			st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: pgtest.NewDatabase(b)})
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		for _, writers := range []int{1, 32} {
			b.Run("store="+name+"/writers="+itoa(int64(writers)), func(b *testing.B) {
				st := open[name](b)
				defer st.Close()
				benchAppend(b, st, writers)
			})
		}
	}
}
