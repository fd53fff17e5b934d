package audit

import (
	"context"
	"errors"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestUnaccountedRecords: records that reach the store after the last
// signed point without the log writing them (by hand, or by a commit whose
// seal a crash lost) are never vouched for: Open declares them, and Verify
// reports them uncovered however many checkpoints follow.
func TestUnaccountedRecords(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// make leaves the store with records after the last signed point
		// and returns the store to reopen.
		make func(t *testing.T, st *fakeLog, s note.Signer, v note.Verifier) *fakeLog
		want Range
	}{
		{"appended without hashes", func(t *testing.T, st *fakeLog, _ note.Signer, _ note.Verifier) *fakeLog {
			if _, err := st.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
				t.Fatal(err)
			}
			return st
		}, Range{From: 20, To: 21}},
		{"appended with hashes", func(t *testing.T, st *fakeLog, _ note.Signer, _ note.Verifier) *fakeLog {
			// The hashes are public: the writer can compute them.
			f := newFrontier()
			for n := range int64(20) {
				if _, err := f.next(n, st.data(t, RecordsLog, n)); err != nil {
					t.Fatal(err)
				}
			}
			rec := outOfBand(t)
			h, err := f.next(20, rec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, RecordsLog, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, HashesLog, h); err != nil {
				t.Fatal(err)
			}
			return st
		}, Range{From: 20, To: 21}},
		{"seal lost in a crash", func(t *testing.T, st *fakeLog, s note.Signer, v note.Verifier) *fakeLog {
			l := openLog(t, st, s, v, 5)
			st.mu.Lock()
			st.failSeals = 1
			st.mu.Unlock()
			if _, err := l.Append(ctx, testRecord(20)); err == nil {
				t.Fatal("Append succeeded although its seal failed")
			}
			// The process dies here: what the store holds now is what the
			// next start finds.
			crashed := st.clone()
			_ = l.Close(ctx)
			return crashed
		}, Range{From: 20, To: 21}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, v := testKeys(t)
			st := newFakeLog()
			fill(t, st, s, v, 20, 5)
			st = tt.make(t, st, s, v)
			l := openLog(t, st, s, v, 5)
			if l.Size() != 22 {
				t.Fatalf("size after reopen %d, want 22 (20, the unaccounted record and the declaration)", l.Size())
			}
			for i := range 7 {
				if _, err := l.Append(ctx, testRecord(100+i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			es, err := Read(ctx, st, 21, 1)
			if err != nil {
				t.Fatal(err)
			}
			if d := es[0].Record; d.Action != ActionUnaccounted || d.Unaccounted == nil || *d.Unaccounted != tt.want {
				t.Fatalf("record 21 = %+v, want the declaration of %v", d, tt.want)
			}
			rep, err := Verify(ctx, st, v)
			wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, tt.want.From)
			if rep.Covered != 29 || rep.Records != 29 || !slices.Equal(rep.Uncovered, []Range{tt.want}) {
				t.Errorf("report %+v", rep)
			}
			// Reopening again declares nothing more.
			l = openLog(t, st, s, v, 5)
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := st.count(RecordsLog); n != 29 {
				t.Errorf("%d records after another reopen, want 29", n)
			}
		})
	}
}

// TestSealFailure: when the seal of a commit cannot be stored the callers
// hear of it, nothing more is stored until it is, and the records (which
// the log wrote) are sealed afterwards rather than declared unaccounted.
func TestSealFailure(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	if _, err := l.Append(ctx, testRecord(0)); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.failSeals = 2
	st.mu.Unlock()
	if _, err := l.Append(ctx, testRecord(1)); !errors.Is(err, errInjected) {
		t.Fatalf("Append with a failing seal: %v", err)
	}
	if _, err := l.Append(ctx, testRecord(2)); !errors.Is(err, errInjected) {
		t.Fatalf("Append while the seal still fails: %v", err)
	}
	if n := st.count(RecordsLog); n != 2 {
		t.Fatalf("%d records stored while unsealed, want 2", n)
	}
	idx, err := l.Append(ctx, testRecord(3))
	if err != nil || idx != 2 {
		t.Fatalf("Append once the seal works: %d, %v", idx, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Records != 3 || rep.Uncovered != nil {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

// TestLostAnswer: an append the store applied but reported failed holds
// the log's own records: the next commit finds exactly them and seals
// them.
func TestLostAnswer(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	if _, err := l.Append(ctx, testRecord(0)); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.failAfter = RecordsLog
	st.mu.Unlock()
	if _, err := l.Append(ctx, testRecord(1)); !errors.Is(err, errInjected) {
		t.Fatalf("Append whose answer was lost: %v", err)
	}
	idx, err := l.Append(ctx, testRecord(2))
	if err != nil || idx != 2 {
		t.Fatalf("next Append: %d, %v", idx, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, v)
	if err != nil || rep.Records != 3 || rep.Uncovered != nil {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	es, err := Read(ctx, st, 0, 10)
	if err != nil || len(es) != 3 || es[1].Record.Txn != "txn-1" {
		t.Fatalf("records %+v, %v", es, err)
	}
}

// TestFailedDeclaration: records someone appended while the log ran,
// found after a failed write, stay unaccounted when the record declaring
// them cannot be stored at first: the next attempt declares them again
// rather than take them for the log's own.
func TestFailedDeclaration(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 20, 5)
	l := openLog(t, st, s, v, 5)
	if _, err := st.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
		t.Fatal(err)
	}
	// The log's own batch fails, and so does, on the next commit, the
	// declaration of record 20.
	st.mu.Lock()
	st.failRecs = 2
	st.mu.Unlock()
	for i := range 2 {
		if _, err := l.Append(ctx, testRecord(100+i)); !errors.Is(err, errInjected) {
			t.Fatalf("Append #%d while records appends fail: %v", i, err)
		}
	}
	idx, err := l.Append(ctx, testRecord(102))
	if err != nil || idx != 22 {
		t.Fatalf("Append once records appends work: %d, %v; want index 22, after the declaration", idx, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, v)
	wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
	if !slices.Equal(rep.Uncovered, []Range{{From: 20, To: 21}}) || rep.Records != 23 {
		t.Errorf("report %+v", rep)
	}
}
