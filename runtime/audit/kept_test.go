package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// keptScenario is a log of 20 records written in two sessions (with
// checkpoints every 5 records), the checkpoints a third party kept after
// each session, and the store as it was after the first.
type keptScenario struct {
	s              note.Signer
	v              note.Verifier
	st, first      *fakeLog
	kept10, kept20 []byte
}

func newKeptScenario(t *testing.T) *keptScenario {
	t.Helper()
	ctx := context.Background()
	sc := &keptScenario{st: newFakeLog()}
	sc.s, sc.v = testKeys(t)
	session := func(from, to int) []byte {
		l := openLog(t, sc.st, sc.s, sc.v, 5)
		for i := from; i < to; i++ {
			if _, err := l.Append(ctx, testRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cp, err := l.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	sc.kept10 = session(0, 10)
	sc.first = sc.st.clone()
	sc.kept20 = session(10, 20)
	return sc
}

// rebuild writes records 0..n-1 (record 3 changed) into a fresh store with
// s: a rewrite by someone holding a signing key.
func rebuild(t *testing.T, s note.Signer, v note.Verifier, n int) *fakeLog {
	t.Helper()
	st := newFakeLog()
	l := openLog(t, st, s, v, 5)
	for i := range n {
		r := testRecord(i)
		if i == 3 {
			r.Decision, r.Reason = DecisionDeny, "rewritten history"
		}
		if _, err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestVerifyAgainstKeptCheckpoint: attacks on the store that the store
// alone cannot show (it verifies on its own) fail against a checkpoint
// kept elsewhere and the pinned key.
func TestVerifyAgainstKeptCheckpoint(t *testing.T) {
	ctx := context.Background()
	sc := newKeptScenario(t)
	other, otherV := testKeys(t)
	tests := []struct {
		name  string
		store func(t *testing.T) *fakeLog
		kept  []byte
		// want is the problem against the kept checkpoint ("" none);
		// alone, whether the store verifies without it.
		want     ProblemKind
		wantAt   int64
		alone    bool
		sentinel error
	}{
		{"intact", func(*testing.T) *fakeLog { return sc.st }, sc.kept20, "", 0, true, nil},
		{"intact, older kept", func(*testing.T) *fakeLog { return sc.st }, sc.kept10, "", 0, true, nil},
		{"data directory rolled back", func(*testing.T) *fakeLog { return sc.first.clone() }, sc.kept20, ProblemKept, 20, true, ErrTampered},
		{"newest records removed with their hashes, checkpoints and seal", func(t *testing.T) *fakeLog {
			st := sc.st.clone()
			st.truncate(RecordsLog, 15)
			st.truncate(HashesLog, 15)
			st.truncate(CheckpointsLog, 3) // 5, 10 and 15 records
			st.dropSealsAbove(t, 15)
			return st
		}, sc.kept20, ProblemKept, 20, true, ErrTampered},
		{"rewritten and signed again with the log's key", func(t *testing.T) *fakeLog { return rebuild(t, sc.s, sc.v, 20) },
			sc.kept10, ProblemKept, 10, true, ErrTampered},
		{"rewritten and signed with another key", func(t *testing.T) *fakeLog { return rebuild(t, other, otherV, 20) },
			sc.kept10, ProblemCheckpoint, 0, false, ErrTampered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.store(t)
			rep, err := Verify(ctx, st, sc.v)
			if tt.alone != (err == nil) {
				t.Fatalf("verified alone: %+v, %v; want it to pass: %v", rep, err, tt.alone)
			}
			rep, err = Verify(ctx, st, sc.v, AgainstCheckpoint(tt.kept))
			if tt.want == "" {
				kept, _ := OpenCheckpoint(tt.kept, sc.v)
				if err != nil || rep.Kept != kept.N {
					t.Fatalf("Verify against the kept checkpoint: %+v, %v", rep, err)
				}
				return
			}
			wantProblem(t, rep, err, tt.sentinel, tt.want, tt.wantAt)
		})
	}

	// The kept checkpoint must be signed by the pinned key.
	forged := signTree(t, other, mustTree(t, sc.kept20, sc.v))
	if _, err := Verify(ctx, sc.st, sc.v, AgainstCheckpoint(forged)); err == nil || errors.Is(err, ErrTampered) {
		t.Errorf("a kept checkpoint by another key: %v", err)
	}
	if _, err := Verify(ctx, sc.st, sc.v, AgainstCheckpoint([]byte("not a note"))); err == nil {
		t.Error("a malformed kept checkpoint was accepted")
	}
}

func mustTree(t *testing.T, cp []byte, v note.Verifier) tlog.Tree {
	t.Helper()
	tree, err := OpenCheckpoint(cp, v)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestOpenAgainstKeptCheckpoint: a log that does not extend the kept
// checkpoint is refused before anything is written to it.
func TestOpenAgainstKeptCheckpoint(t *testing.T) {
	ctx := context.Background()
	sc := newKeptScenario(t)
	tests := []struct {
		name string
		st   func(t *testing.T) *fakeLog
		ok   bool
	}{
		{"intact", func(*testing.T) *fakeLog { return sc.st }, true},
		{"rolled back", func(*testing.T) *fakeLog { return sc.first.clone() }, false},
		{"rewritten", func(t *testing.T) *fakeLog { return rebuild(t, sc.s, sc.v, 20) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st(t)
			before := st.clone()
			l, err := Open(ctx, Config{Log: st, Signer: sc.s, Verifier: sc.v, Kept: sc.kept20, CheckpointInterval: -1})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				_ = l.Close(ctx)
				return
			}
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Open = %v, want ErrTampered", err)
			}
			if st.count(RecordsLog) != before.count(RecordsLog) || !bytes.Equal(st.seal(), before.seal()) {
				t.Error("the refused log was written to")
			}
		})
	}
}
