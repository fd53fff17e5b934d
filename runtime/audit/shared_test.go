package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/memstore"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
	"github.com/agenthost/agenthost/runtime/store/pgstore/pgtest"
)

// The tests of this file open several Logs on one store, as several hosts
// sharing a database do ("Several writers" in the package doc).

// sharedStore is a store several logs can share: conditional appends
// across logs, and leases.
type sharedStore interface {
	store.Log
	store.MultiLog
	store.Leases
}

// openShared opens a log named holder on st, checkpointing every
// `every` records.
func openShared(t testing.TB, st store.Log, s note.Signer, v note.Verifier, holder string, every int, ttl time.Duration) *Log {
	t.Helper()
	l, err := Open(context.Background(), Config{
		Log: st, Signer: s, Verifier: v, Now: fixedClock(), Holder: holder,
		CheckpointEvery: every, CheckpointInterval: -1, LeaseTTL: ttl,
	})
	if err != nil {
		t.Fatalf("open %s: %v", holder, err)
	}
	return l
}

// appendConcurrently appends from `writers` goroutines on each log, each
// `each` records whose Txn names it, and returns the index every Append
// acknowledged, by Txn.
func appendConcurrently(t *testing.T, logs []*Log, writers, each int) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	for li, l := range logs {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					rec := testRecord(i)
					rec.Txn = fmt.Sprintf("log%d-w%d-%d", li, w, i)
					idx, err := l.Append(ctx, rec)
					if err != nil {
						t.Errorf("log %d writer %d: Append #%d: %v", li, w, i, err)
						return
					}
					mu.Lock()
					acked[rec.Txn] = idx
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return acked
}

// checkShared checks the log in st: it verifies with every record
// covered, holds exactly the acknowledged records, each at the index its
// Append returned, and declares nothing unaccounted; once its writers
// closed, it has the hashes of every record.
func checkShared(t *testing.T, st store.Log, v note.Verifier, acked map[string]int64, closed bool) Report {
	t.Helper()
	ctx := context.Background()
	rep, err := Verify(ctx, st, v)
	if err != nil || !rep.OK() || rep.Uncovered != nil {
		t.Fatalf("Verify: %v (%+v)", err, rep)
	}
	if rep.Records != int64(len(acked)) || rep.Covered != rep.Records {
		t.Errorf("Verify: %d records, %d covered; want %d appended", rep.Records, rep.Covered, len(acked))
	}
	seen := map[int64]string{}
	for txn, idx := range acked {
		if other, dup := seen[idx]; dup {
			t.Fatalf("index %d acknowledged to %s and %s", idx, other, txn)
		}
		seen[idx] = txn
	}
	es, err := Read(ctx, st, 0, store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(acked) {
		t.Fatalf("the log holds %d records, %d were appended", len(es), len(acked))
	}
	for _, e := range es {
		if e.Record.Action == ActionUnaccounted {
			t.Errorf("record %d declares records unaccounted: %+v", e.Index, e.Record)
		}
		if seen[e.Index] != e.Record.Txn {
			t.Errorf("record %d is %q, but its Append was %q", e.Index, e.Record.Txn, seen[e.Index])
		}
	}
	if h, _ := st.Len(ctx, HashesLog); closed && h != rep.Records {
		t.Errorf("hashes log holds %d entries for %d records", h, rep.Records)
	}
	return rep
}

// holds reports whether l believes it holds the checkpoint lease.
func holds(l *Log) bool {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.lease != nil
}

// TestSharedLog: two logs on one store append concurrently; the result is
// one log that verifies, holds every acknowledged record once at the
// index acknowledged, declares nothing unaccounted, and only the holder
// of the checkpoint lease stored checkpoints. Once the holder closes, the
// other takes the lease over and checkpoints.
func TestSharedLog(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(t *testing.T) []sharedStore // two handles on one store
	}{
		{"memstore", func(t *testing.T) []sharedStore {
			st := memstore.New(nil)
			return []sharedStore{st, st}
		}},
		{"sqlite", func(t *testing.T) []sharedStore {
			st := openSQLite(t, t.TempDir())
			t.Cleanup(func() { st.Close() })
			return []sharedStore{st, st}
		}},
		{"postgres", func(t *testing.T) []sharedStore {
			// Two stores, two connection pools: as two processes.
			dsn := pgtest.NewDatabase(t)
			var out []sharedStore
			for range 2 {
				st, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				out = append(out, st)
			}
			return out
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sts := tt.open(t)
			s, v := testKeys(t)
			// A lease of 5s: a log that found it held asks again
			// after 1.25s.
			const ttl = 5 * time.Second
			a := openShared(t, sts[0], s, v, "host-a", 50, ttl)
			b := openShared(t, sts[1], s, v, "host-b", 50, ttl)
			acked := appendConcurrently(t, []*Log{a, b}, 4, 50)
			if t.Failed() {
				t.FailNow()
			}
			if a.conflicts.Load()+b.conflicts.Load() == 0 {
				t.Log("no commit was overtaken by the other log's (the other tests overtake on purpose)")
			}
			t.Logf("conflicts %d+%d, records taken from the other %d+%d, checkpoints stored %d+%d",
				a.conflicts.Load(), b.conflicts.Load(), a.adopted.Load(), b.adopted.Load(), a.cpWrites.Load(), b.cpWrites.Load())
			holder, other := a, b
			if holds(b) {
				holder, other = b, a
			}
			if !holds(holder) || holds(other) {
				t.Fatalf("lease held by a: %v, by b: %v; want exactly one", holds(a), holds(b))
			}
			if holder.cpWrites.Load() == 0 || other.cpWrites.Load() != 0 {
				t.Errorf("checkpoints stored by the holder %d, by the other %d; want some, none", holder.cpWrites.Load(), other.cpWrites.Load())
			}
			// Checkpoint on the other log: the signed tree of every
			// record so far, not stored.
			cps, _ := sts[0].Len(ctx, CheckpointsLog)
			cp, err := other.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tree, err := OpenCheckpoint(cp, v); err != nil || tree.N != int64(len(acked)) {
				t.Errorf("the other log's Checkpoint: %+v, %v; want a tree of %d records", tree, err, len(acked))
			}
			if n, _ := sts[0].Len(ctx, CheckpointsLog); n != cps || other.cpWrites.Load() != 0 {
				t.Errorf("the other log stored a checkpoint: %d, was %d", n, cps)
			}
			checkShared(t, sts[0], v, acked, false)

			// The holder goes away; the other log writes the checkpoints.
			if err := holder.Close(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for i := 0; i < 60 || !holds(other) && time.Now().Before(deadline); i++ {
				rec := testRecord(i)
				rec.Txn = fmt.Sprintf("after-%d", i)
				idx, err := other.Append(ctx, rec)
				if err != nil {
					t.Fatal(err)
				}
				acked[rec.Txn] = idx
				if i >= 60 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if !holds(other) || other.cpWrites.Load() == 0 {
				t.Errorf("after the holder closed: the other log holds the lease %v, stored %d checkpoints", holds(other), other.cpWrites.Load())
			}
			if err := other.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rep := checkShared(t, sts[1], v, acked, true)
			latest, err := lastEntry(ctx, sts[1], CheckpointsLog)
			if err != nil {
				t.Fatal(err)
			}
			if tree, err := OpenCheckpoint(latest, v); err != nil || tree.N != rep.Records {
				t.Errorf("latest checkpoint %+v, %v; want %d records", tree, err, rep.Records)
			}
			// Either log opens again on what they wrote, finding nothing
			// to declare.
			l := openShared(t, sts[0], s, v, "host-a", 50, ttl)
			if l.Size() != rep.Records {
				t.Errorf("reopened at %d records, want %d", l.Size(), rep.Records)
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSharedLogCatchUp: a log whose tree another writer has moved on from
// is overtaken at its next commit: it takes the other's sealed records
// into its tree, renumbers its own after them and commits; Open on a
// store another writer is using declares nothing.
func TestSharedLogCatchUp(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	a := openShared(t, st, s, v, "a", -1, 0)
	b := openShared(t, st, s, v, "b", -1, 0)
	acked := map[string]int64{}
	add := func(l *Log, txn string, want int64) {
		t.Helper()
		rec := testRecord(0)
		rec.Txn = txn
		idx, err := l.Append(ctx, rec)
		if err != nil || idx != want {
			t.Fatalf("Append %s: %d, %v; want index %d", txn, idx, err, want)
		}
		acked[txn] = idx
	}
	for i := range 10 {
		add(a, fmt.Sprint("a", i), int64(i))
	}
	add(b, "b0", 10)
	if b.conflicts.Load() != 1 || b.adopted.Load() != 10 {
		t.Errorf("b: %d conflicts, %d records taken; want 1, 10", b.conflicts.Load(), b.adopted.Load())
	}
	add(a, "a10", 11)
	if a.conflicts.Load() != 1 || a.adopted.Load() != 1 {
		t.Errorf("a: %d conflicts, %d records taken; want 1, 1", a.conflicts.Load(), a.adopted.Load())
	}
	// Proofs from either log cover the other's records.
	for _, l := range []*Log{a, b} {
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := a.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.Read(ctx, RecordsLog, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.InclusionProof(ctx, 10, 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(cp, v, 10, es[0].Data, p); err != nil {
		t.Errorf("b's record in a's checkpoint: %v", err)
	}
	// A third log opens while the other two are running.
	c := openShared(t, st, s, v, "c", -1, 0)
	if c.Size() != 12 {
		t.Errorf("c opened at %d records, want 12", c.Size())
	}
	add(c, "c0", 12)
	add(b, "b1", 13)
	for _, l := range []*Log{a, b, c} {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	checkShared(t, st, v, acked, true)
}

// TestSharedLogUnaccounted: records someone appends to a shared store
// without a seal are unaccounted as they are for one writer: the log
// whose commit they overtake fails it and declares them, once. The other
// log takes the declaration into its tree with the records, under the
// seal that follows them, rather than declare them again. Logs that open
// at the same time on such a store declare them once too.
func TestSharedLogUnaccounted(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	a := openShared(t, st, s, v, "a", -1, 0)
	b := openShared(t, st, s, v, "b", -1, 0)
	for i := range 20 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, testRecord(100)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append after a record without a seal: %v, want ErrConflict", err)
	}
	if idx, err := a.Append(ctx, testRecord(101)); err != nil || idx != 22 {
		t.Fatalf("next Append: %d, %v; want 22, after the declaration", idx, err)
	}
	if idx, err := b.Append(ctx, testRecord(102)); err != nil || idx != 23 {
		t.Fatalf("the other log's Append: %d, %v; want 23", idx, err)
	}
	for _, l := range []*Log{a, b} {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(ctx, st, v)
	wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
	if !slices.Equal(rep.Uncovered, []Range{{From: 20, To: 21}}) || rep.Records != 24 || rep.Covered != 24 {
		t.Errorf("report %+v", rep)
	}

	// Several logs open at once on a store with records nobody sealed.
	raced := 0
	for round := range 10 {
		n, _ := st.Len(ctx, RecordsLog)
		if _, err := st.Append(ctx, RecordsLog, outOfBandAt(t, n)); err != nil {
			t.Fatal(err)
		}
		before := n + 1
		logs := make([]*Log, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range logs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				logs[i], errs[i] = Open(ctx, Config{Log: st, Signer: s, Verifier: v, Holder: fmt.Sprint("open-", i),
					CheckpointEvery: -1, CheckpointInterval: -1})
			}()
		}
		wg.Wait()
		for i, l := range logs {
			if errs[i] != nil {
				t.Fatalf("round %d: open: %v", round, errs[i])
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if l.conflicts.Load() > 0 {
				raced++
			}
		}
		es, err := Read(ctx, st, before, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Record.Action != ActionUnaccounted || *es[0].Record.Unaccounted != (Range{From: before - 1, To: before}) {
			t.Fatalf("round %d: after the record at %d, %d records: %+v; want one declaration", round, before-1, len(es), es)
		}
	}
	t.Logf("%d logs found their declaration overtaken by another's", raced)
	rep, err = Verify(ctx, st, v)
	wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
	if len(rep.Uncovered) != 11 || rep.Covered != rep.Records {
		t.Errorf("report %+v", rep)
	}
}

// TestSharedLogLeaseTakeover: a holder of the checkpoint lease that stops
// renewing it (its host died) loses it once it expires; the log that goes
// on appending takes it over and stores the checkpoints, after the old
// holder's, never smaller.
func TestSharedLogLeaseTakeover(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	// a's lease lasts 300ms; b's 2s (b asks again 500ms after it found
	// the lease held).
	const ttl = 300 * time.Millisecond
	a := openShared(t, st, s, v, "a", 5, ttl)
	b := openShared(t, st, s, v, "b", 5, 2*time.Second)
	for i := range 10 {
		if _, err := a.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if !holds(a) || a.cpWrites.Load() != 2 {
		t.Fatalf("a holds the lease %v, stored %d checkpoints; want true, 2", holds(a), a.cpWrites.Load())
	}
	// a goes quiet (as if its host died); b appends.
	for i := range 10 {
		if _, err := b.Append(ctx, testRecord(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if b.cpWrites.Load() != 0 {
		t.Fatalf("b stored %d checkpoints while a held the lease", b.cpWrites.Load())
	}
	time.Sleep(ttl + 50*time.Millisecond)
	for i := range 10 {
		if _, err := b.Append(ctx, testRecord(200+i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if !holds(b) || b.cpWrites.Load() == 0 {
		t.Fatalf("after the lease expired: b holds it %v, stored %d checkpoints", holds(b), b.cpWrites.Load())
	}
	// a wakes up: it no longer writes checkpoints.
	cps := b.cpWrites.Load()
	if _, err := a.Append(ctx, testRecord(300)); err != nil {
		t.Fatal(err)
	}
	if holds(a) || a.cpWrites.Load() != 2 {
		t.Errorf("a still believes it holds the lease (%v), or stored checkpoints: %d", holds(a), a.cpWrites.Load())
	}
	// a closes first: b holds the lease, so a's final checkpoint is not
	// stored.
	for _, l := range []*Log{a, b} {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.cpWrites.Load() != 2 || b.cpWrites.Load() <= cps {
		t.Errorf("checkpoints stored: a %d, b %d (had %d)", a.cpWrites.Load(), b.cpWrites.Load(), cps)
	}
	rep, err := Verify(ctx, st, v)
	if err != nil || rep.Records != 31 || rep.Checkpoints < 4 || rep.Uncovered != nil {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

// TestSharedHashes: the hashes of a record are stored once, whichever
// writer gets there first; a writer that finds hashes stored where its
// own go checks they are the same, and refuses other ones.
func TestSharedHashes(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	a := openShared(t, st, s, v, "a", -1, 0)
	b := openShared(t, st, s, v, "b", -1, 0)
	for i := range 4 {
		if _, err := a.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	// b takes a's records, with their hashes, into its tree; whichever
	// stores them first, the other finds them stored.
	if _, err := b.Append(ctx, testRecord(4)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.TreeHash(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatalf("a's checkpoint after b stored the hashes: %v", err)
	}
	if n, _ := st.Len(ctx, HashesLog); n != 5 {
		t.Errorf("hashes log holds %d entries, want 5", n)
	}
	stored, err := st.Read(ctx, HashesLog, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([][]byte, len(stored))
	for i, e := range stored {
		entries[i] = e.Data
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := a.appendHashes(ctx, 1, entries[1:]); err != nil {
		t.Errorf("storing hashes that are stored already: %v", err)
	}
	bad := slices.Clone(entries[2])
	bad[0] ^= 1
	if err := a.appendHashes(ctx, 1, [][]byte{entries[1], bad, entries[3]}); !errors.Is(err, ErrTampered) {
		t.Errorf("storing other hashes where some are: %v, want ErrTampered", err)
	}
	if n, _ := st.Len(ctx, HashesLog); n != 5 {
		t.Errorf("hashes log holds %d entries, want 5", n)
	}
}

// outOfBandAt is a record appended by hand at index n.
func outOfBandAt(t *testing.T, n int64) []byte {
	r := testRecord(int(n))
	r.Reason = "inserted by hand"
	data, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return withSeq(data, n)
}

// TestSharedVerifyWhileAppending: the log verifies, with no records
// uncovered, while two writers append to it: records committed after
// the seal Verify read first are covered by the seal stored with them.
func TestSharedVerifyWhileAppending(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	a := openShared(t, st, s, v, "a", 100, 0)
	b := openShared(t, st, s, v, "b", 100, 0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := l.Append(ctx, testRecord(w*100000+i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	verified := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); verified++ {
		rep, err := Verify(ctx, st, v)
		if err != nil || !rep.OK() || rep.Covered != rep.Records || rep.Records != rep.Size {
			t.Errorf("Verify while appending: %v (%+v)", err, rep)
			break
		}
	}
	close(stop)
	wg.Wait()
	for _, l := range []*Log{a, b} {
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(ctx, st, v)
	if err != nil || rep.Uncovered != nil {
		t.Fatalf("Verify: %v (%+v)", err, rep)
	}
	t.Logf("verified %d times while %d records were appended", verified, rep.Records)
}
