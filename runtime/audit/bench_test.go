package audit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends on sqlitestore (WAL,
// synchronous=FULL) in a temporary directory, with 1 and 64 concurrent
// writers. The appends/s metric counts acknowledged (durable) records.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run("writers="+itoa(int64(writers)), func(b *testing.B) {
			ctx := context.Background()
			st := openSQLite(b, b.TempDir())
			defer st.Close()
			s, v := testKeys(b)
			l := openLog(b, st, s, v, 0)
			rec := testRecord(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
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
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(b.N)/float64(max(1, l.commits.Load())), "records/commit")
			if err := l.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
