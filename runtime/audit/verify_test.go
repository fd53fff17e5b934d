package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tampered builds a clean log of 20 records with checkpoints at 5, 10, 15
// and 20 records (checkpoints 0 to 3), lets tamper change it, and returns
// what Verify reports.
func tampered(t *testing.T, tamper func(st *fakeLog, s note.Signer)) (Report, error) {
	t.Helper()
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 20, 5)
	if n := st.count(CheckpointsLog); n != 4 {
		t.Fatalf("%d checkpoints, want 4", n)
	}
	if rep, err := Verify(ctx, st, v); err != nil || !rep.OK() || rep.Records != 20 || rep.Checkpoints != 4 || rep.Covered != 20 {
		t.Fatalf("clean log: %+v, %v", rep, err)
	}
	tamper(st, s)
	return Verify(ctx, st, v)
}

func wantProblem(t *testing.T, rep Report, err error, sentinel error, kind ProblemKind, index int64) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("Verify error = %v, want %v", err, sentinel)
	}
	if rep.Problem == nil || rep.Problem.Kind != kind || rep.Problem.Index != index {
		t.Fatalf("problem %v, want %s %d", rep.Problem, kind, index)
	}
	if rep.OK() {
		t.Fatal("report OK despite a problem")
	}
	t.Logf("located: %v", rep.Problem)
}

// signTree signs an arbitrary tree with s, as a key holder could.
func signTree(t *testing.T, s note.Signer, tree tlog.Tree) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tree))}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestVerifyRecordEdited(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		d := st.data(t, RecordsLog, 7)
		st.set(t, RecordsLog, 7, bytes.Replace(d, []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1))
	})
	wantProblem(t, rep, err, ErrTampered, ProblemRecord, 7)
	if rep.Records != 7 {
		t.Errorf("%d records verified before the problem, want 7", rep.Records)
	}
}

func TestVerifyRecordEditedAndRehashed(t *testing.T) {
	// The attacker also rewrites the hashes log consistently: only the
	// signed checkpoints can tell, the first covering record 7 is
	// checkpoint 1 (10 records).
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		d := st.data(t, RecordsLog, 7)
		st.set(t, RecordsLog, 7, bytes.Replace(d, []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1))
		f := newFrontier()
		for n := range int64(20) {
			h, err := f.next(n, st.data(t, RecordsLog, n))
			if err != nil {
				t.Fatal(err)
			}
			st.set(t, HashesLog, n, h)
		}
	})
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 1)
}

func TestVerifyRecordDropped(t *testing.T) {
	t.Run("renumbered", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) { st.remove(RecordsLog, 7, true) })
		wantProblem(t, rep, err, ErrTampered, ProblemRecord, 7)
	})
	t.Run("gap", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) { st.remove(RecordsLog, 7, false) })
		wantProblem(t, rep, err, ErrTampered, ProblemRecord, 7)
	})
	t.Run("with its hashes", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
			st.remove(RecordsLog, 7, true)
			st.remove(HashesLog, 7, true)
		})
		wantProblem(t, rep, err, ErrTampered, ProblemRecord, 7)
	})
	t.Run("last records", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
			st.truncate(RecordsLog, 18)
			st.truncate(HashesLog, 18)
		})
		wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 3)
	})
}

func TestVerifyRecordsReordered(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		a, b := st.data(t, RecordsLog, 11), st.data(t, RecordsLog, 12)
		st.set(t, RecordsLog, 11, b)
		st.set(t, RecordsLog, 12, a)
	})
	wantProblem(t, rep, err, ErrTampered, ProblemRecord, 11)
}

func TestVerifyHashEdited(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		h := st.data(t, HashesLog, 9)
		h[0] ^= 1
		st.set(t, HashesLog, 9, h)
	})
	wantProblem(t, rep, err, ErrTampered, ProblemRecord, 9)
}

// outOfBand is a record as someone writing to the store directly would
// add it, with the next seq.
func outOfBand(t *testing.T) []byte {
	r := testRecord(20)
	r.Reason = "inserted later"
	data, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return withSeq(data, 20)
}

func TestVerifyOutOfBandAppend(t *testing.T) {
	ctx := context.Background()
	t.Run("without hashes", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
			if _, err := st.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
				t.Fatal(err)
			}
		})
		wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
	})
	t.Run("with hashes", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
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
		})
		wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
		if rep.Records != 21 || rep.Covered != 20 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("with a forged checkpoint", func(t *testing.T) {
		rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
			if _, err := st.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
				t.Fatal(err)
			}
			other, _ := testKeys(t)
			if _, err := st.Append(ctx, CheckpointsLog, signTree(t, other, tlog.Tree{N: 21})); err != nil {
				t.Fatal(err)
			}
		})
		wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 4)
	})
}

func TestVerifyCheckpointBadSignature(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		cp := st.data(t, CheckpointsLog, 2)
		i := bytes.LastIndex(cp, []byte("\n\u2014 ")) + 10
		cp[i] ^= 0x01
		if cp[i] == '\n' || cp[i] == '+' {
			cp[i] = 'A'
		}
		st.set(t, CheckpointsLog, 2, cp)
	})
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 2)
	if !strings.Contains(rep.Problem.Reason, "signature") {
		t.Errorf("reason %q does not mention the signature", rep.Problem.Reason)
	}
}

func TestVerifyCheckpointTextEdited(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		cp := st.data(t, CheckpointsLog, 1)
		st.set(t, CheckpointsLog, 1, bytes.Replace(cp, []byte("\n10\n"), []byte("\n11\n"), 1))
	})
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 1)
}

func TestVerifyCheckpointHashMismatch(t *testing.T) {
	// Correctly signed, but the tree hash is not that of the records.
	rep, err := tampered(t, func(st *fakeLog, s note.Signer) {
		st.set(t, CheckpointsLog, 2, signTree(t, s, tlog.Tree{N: 15, Hash: tlog.RecordHash([]byte("x"))}))
	})
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 2)
	if rep.Checkpoints != 2 || rep.Records != 15 {
		t.Errorf("report %+v: want 2 checkpoints and 15 records verified before the problem", rep)
	}
}

func TestVerifyCheckpointShrinks(t *testing.T) {
	ctx := context.Background()
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) {
		// A genuine old checkpoint replayed after a newer one.
		if _, err := st.Append(ctx, CheckpointsLog, st.data(t, CheckpointsLog, 1)); err != nil {
			t.Fatal(err)
		}
	})
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 4)
	if !strings.Contains(rep.Problem.Reason, "shrinks") {
		t.Errorf("reason %q", rep.Problem.Reason)
	}
}

func TestVerifyCheckpointRemoved(t *testing.T) {
	rep, err := tampered(t, func(st *fakeLog, _ note.Signer) { st.remove(CheckpointsLog, 1, false) })
	wantProblem(t, rep, err, ErrTampered, ProblemCheckpoint, 1)
}

func TestVerifyEmptyAndArgs(t *testing.T) {
	ctx := context.Background()
	_, v := testKeys(t)
	rep, err := Verify(ctx, newFakeLog(), v)
	if err != nil || !rep.OK() || rep.Records != 0 {
		t.Errorf("empty log: %+v, %v", rep, err)
	}
	if _, err := Verify(ctx, nil, v); err == nil {
		t.Error("Verify(nil log) succeeded")
	}
	if _, err := Verify(ctx, newFakeLog(), nil); err == nil {
		t.Error("Verify(nil verifier) succeeded")
	}
}
