package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/store"
)

// ProblemKind says what a [Problem] is about.
type ProblemKind string

// Kinds of problems [Verify] finds.
const (
	// ProblemRecord: a record does not match its stored hashes, is missing
	// or out of place. Problem.Index is the record index.
	ProblemRecord ProblemKind = "record"
	// ProblemCheckpoint: a checkpoint's signature, shape, size or tree hash
	// is wrong. Problem.Index is the checkpoint index.
	ProblemCheckpoint ProblemKind = "checkpoint"
	// ProblemUncovered: records follow the last valid checkpoint, so no
	// signature vouches for them. Problem.Index is the first such record.
	ProblemUncovered ProblemKind = "uncovered"
)

// Problem is the first inconsistency [Verify] found.
type Problem struct {
	Kind   ProblemKind
	Index  int64
	Reason string
}

// String describes the problem.
func (p *Problem) String() string {
	return fmt.Sprintf("%s %d: %s", p.Kind, p.Index, p.Reason)
}

// Report is the result of [Verify].
type Report struct {
	// Size is the number of records in the log.
	Size int64
	// Records is the number of records whose hashes were recomputed and
	// matched, from the start of the log.
	Records int64
	// Checkpoints is the number of checkpoints whose signature and tree
	// hash were verified.
	Checkpoints int64
	// Covered is the size of the last verified checkpoint: the records a
	// signature vouches for.
	Covered int64
	// TreeHash is the recomputed hash of the tree of the first Records
	// records.
	TreeHash tlog.Hash
	// Problem is the first problem found; nil if the log verified.
	Problem *Problem
}

// OK reports whether the log verified completely.
func (r Report) OK() bool { return r.Problem == nil }

// checkpointInfo is a checkpoint whose signature verified.
type checkpointInfo struct {
	index int64
	tree  tlog.Tree
}

// Verify checks the audit log kept in log without trusting anything but
// verifier: it recomputes the hashes of every record and compares them with
// the stored hashes, checks the signature of every checkpoint, that
// checkpoints never shrink, and that each checkpoint's tree hash equals the
// tree recomputed from the records at its size.
//
// It stops at the first problem, which the report locates. The error is
// nil if the log verified; it wraps [ErrTampered] for an inconsistency,
// [ErrUncovered] when the only problem is records after the last checkpoint
// (a log that was not closed cleanly, or records added by someone without
// the signing key), and is a plain error when the store could not be read.
func Verify(ctx context.Context, log store.Log, verifier note.Verifier) (Report, error) {
	var rep Report
	if log == nil || verifier == nil {
		return rep, errors.New("audit: verify: log and verifier are required")
	}
	size, err := log.Len(ctx, RecordsLog)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	hashed, err := log.Len(ctx, HashesLog)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Size = size
	fail := func(kind ProblemKind, index int64, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Kind: kind, Index: index, Reason: fmt.Sprintf(format, args...)}
		sentinel := ErrTampered
		if kind == ProblemUncovered {
			sentinel = ErrUncovered
		}
		return rep, fmt.Errorf("audit: verify: %w: %s", sentinel, rep.Problem)
	}

	// Checkpoints: signatures and sizes.
	var cps []checkpointInfo
	cc := newCursor(log, CheckpointsLog, 0)
	for i := int64(0); ; i++ {
		e, ok, err := cc.read(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		if !ok {
			break
		}
		if e.Index != i {
			return fail(ProblemCheckpoint, i, "checkpoint is missing")
		}
		tree, err := OpenCheckpoint(e.Data, verifier)
		if err != nil {
			return fail(ProblemCheckpoint, i, "%v", err)
		}
		if len(cps) > 0 && tree.N < cps[len(cps)-1].tree.N {
			return fail(ProblemCheckpoint, i, "tree shrinks from %d to %d records", cps[len(cps)-1].tree.N, tree.N)
		}
		cps = append(cps, checkpointInfo{index: i, tree: tree})
	}
	covered := int64(0)
	if len(cps) > 0 {
		covered = cps[len(cps)-1].tree.N
	}

	// Records, in order, with the checkpoints at their sizes.
	front := newFrontier()
	next := 0 // next checkpoint to check
	checkAt := func(n int64) (bool, error) {
		for next < len(cps) && cps[next].tree.N == n {
			h, err := tlog.TreeHash(n, front)
			if err != nil {
				return false, err
			}
			if h != cps[next].tree.Hash {
				_, ferr := fail(ProblemCheckpoint, cps[next].index,
					"tree hash at %d records does not match the records: a record before %d was changed, removed or reordered", n, n)
				return false, ferr
			}
			rep.Checkpoints++
			rep.Covered = n
			next++
		}
		return true, nil
	}
	if ok, err := checkAt(0); !ok {
		return rep, err
	}
	rc := newCursor(log, RecordsLog, 0)
	hc := newCursor(log, HashesLog, 0)
	for n := int64(0); n < size; n++ {
		e, ok, err := rc.read(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		if !ok || e.Index != n {
			return fail(ProblemRecord, n, "record is missing")
		}
		var seq struct {
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal(e.Data, &seq); err != nil {
			return fail(ProblemRecord, n, "record is not valid JSON: %v", err)
		}
		if seq.Seq == nil || *seq.Seq != n {
			got := "none"
			if seq.Seq != nil {
				got = fmt.Sprint(*seq.Seq)
			}
			return fail(ProblemRecord, n, "record carries seq %s: records were reordered, removed or inserted", got)
		}
		want, err := front.next(n, e.Data)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		if n >= hashed {
			if n >= covered {
				return fail(ProblemUncovered, n, "record has no stored hashes and no checkpoint covers it: written without the log (or before a crash) after the last checkpoint at %d records", covered)
			}
			return fail(ProblemRecord, n, "record has no stored hashes")
		}
		h, ok, err := hc.read(ctx)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
		if !ok || h.Index != n {
			return fail(ProblemRecord, n, "stored hashes of the record are missing")
		}
		if !bytes.Equal(h.Data, want) {
			return fail(ProblemRecord, n, "record does not match its stored hashes: it was edited, replaced or moved")
		}
		rep.Records = n + 1
		if n&0xfff == 0xfff {
			front.prune(n + 1)
		}
		if ok, err := checkAt(n + 1); !ok {
			return rep, err
		}
	}
	if rep.TreeHash, err = tlog.TreeHash(rep.Records, front); err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	if next < len(cps) {
		// Checked after the records, so that a record removed from the
		// middle is located as such.
		return fail(ProblemCheckpoint, cps[next].index, "covers %d records but the log holds %d: records were removed", cps[next].tree.N, size)
	}
	if hashed > size {
		return fail(ProblemRecord, size, "hashes log holds %d entries for %d records", hashed, size)
	}
	if rep.Covered < size {
		return fail(ProblemUncovered, rep.Covered, "%d records after the last checkpoint (at %d records) are not covered by a signature", size-rep.Covered, rep.Covered)
	}
	return rep, nil
}

// OpenCheckpoint checks the signature of a checkpoint note with verifier
// and returns the tree it states.
func OpenCheckpoint(checkpoint []byte, verifier note.Verifier) (tlog.Tree, error) {
	if verifier == nil {
		return tlog.Tree{}, errors.New("audit: open checkpoint: nil verifier")
	}
	n, err := note.Open(checkpoint, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: %w", err)
	}
	return tree, nil
}

// VerifyInclusion checks that record (the stored bytes of record index,
// as read from the records log or exported) is in the tree signed by
// checkpoint, using proof from [Log.InclusionProof] for the checkpoint's
// tree size.
func VerifyInclusion(checkpoint []byte, verifier note.Verifier, index int64, record []byte, proof tlog.RecordProof) error {
	tree, err := OpenCheckpoint(checkpoint, verifier)
	if err != nil {
		return fmt.Errorf("audit: verify inclusion: %w", err)
	}
	if index < 0 || index >= tree.N {
		return fmt.Errorf("audit: verify inclusion: record %d is not in a tree of %d records", index, tree.N)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(record)); err != nil {
		return fmt.Errorf("audit: verify inclusion: %w: %w", ErrTampered, err)
	}
	return nil
}

// VerifyConsistency checks that the tree signed by newCheckpoint extends
// the tree signed by oldCheckpoint — the log only grew — using proof from
// [Log.ConsistencyProof] for the two tree sizes.
func VerifyConsistency(oldCheckpoint, newCheckpoint []byte, proof tlog.TreeProof, verifier note.Verifier) error {
	old, err := OpenCheckpoint(oldCheckpoint, verifier)
	if err != nil {
		return fmt.Errorf("audit: verify consistency: old: %w", err)
	}
	cur, err := OpenCheckpoint(newCheckpoint, verifier)
	if err != nil {
		return fmt.Errorf("audit: verify consistency: new: %w", err)
	}
	if cur.N < old.N {
		return fmt.Errorf("audit: verify consistency: %w: tree shrank from %d to %d records", ErrTampered, old.N, cur.N)
	}
	if old.N == 0 {
		return nil // the empty tree is a prefix of every tree
	}
	if err := tlog.CheckTree(proof, cur.N, cur.Hash, old.N, old.Hash); err != nil {
		return fmt.Errorf("audit: verify consistency: %w: %w", ErrTampered, err)
	}
	return nil
}
