package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	// ProblemSeal: the latest commit seal's signature, size or tree hash
	// is wrong. Problem.Index is the seal's tree size, or -1 if it cannot
	// be read.
	ProblemSeal ProblemKind = "seal"
	// ProblemKept: the log does not extend the checkpoint kept outside
	// the store that verification was given ([AgainstCheckpoint]): it was
	// rolled back (it is smaller) or rewritten (its first records hash to
	// another root). Problem.Index is the kept checkpoint's tree size.
	ProblemKept ProblemKind = "kept checkpoint"
	// ProblemUncovered: records no signature vouches for: after the last
	// valid checkpoint or seal, or declared unaccounted by the log when it
	// found them. Problem.Index is the first such record.
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
	// checked, from the start of the log.
	Records int64
	// Checkpoints is the number of checkpoints whose signature and tree
	// hash were verified.
	Checkpoints int64
	// Covered is the size of the last verified checkpoint or seal: the
	// records a signature covers.
	Covered int64
	// Uncovered are the records no signature vouches for: those declared
	// unaccounted by the log and those after Covered.
	Uncovered []Range `json:",omitempty"`
	// Kept is the tree size of the kept checkpoint the log was verified
	// to extend ([AgainstCheckpoint]); 0 without one.
	Kept int64 `json:",omitempty"`
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

// VerifyOption qualifies [Verify].
type VerifyOption interface {
	applyVerify(*verifyOptions)
}

type verifyOptions struct {
	kept []byte
}

type verifyOptionFunc func(*verifyOptions)

func (f verifyOptionFunc) applyVerify(o *verifyOptions) { f(o) }

// AgainstCheckpoint makes [Verify] also check that the log extends the
// tree of checkpoint, a checkpoint note kept outside the store (signed by
// the verifier's key): the tree of its size, recomputed from the records,
// must have its root hash, which is what a consistency proof from it to
// the current tree shows. A log that is smaller (rolled back, or its
// newest records removed) or whose first records hash otherwise
// (rewritten, even if signed again with the log's key) fails with
// [ProblemKept].
func AgainstCheckpoint(checkpoint []byte) VerifyOption {
	return verifyOptionFunc(func(o *verifyOptions) { o.kept = checkpoint })
}

// Verify checks the audit log kept in log without trusting anything but
// verifier: it recomputes the hashes of every record and compares them with
// the stored hashes, checks the signature of every checkpoint and of the
// latest commit seal, that checkpoints never shrink, and that the tree hash
// each checkpoint and the seal state equals the tree recomputed from the
// records at its size. With [AgainstCheckpoint] it also checks the log
// against a checkpoint kept elsewhere.
//
// It stops at the first problem, which the report locates. The error is
// nil if the log verified; it wraps [ErrTampered] for an inconsistency,
// [ErrUncovered] when the only problem is records no signature vouches
// for (records after the last checkpoint or seal, or records the log
// declared unaccounted when it found them, as someone writing to the store
// directly leaves them), and is a plain error when the store could not be
// read or the kept checkpoint is not signed by verifier.
func Verify(ctx context.Context, log store.Log, verifier note.Verifier, opts ...VerifyOption) (Report, error) {
	var rep Report
	if log == nil || verifier == nil {
		return rep, errors.New("audit: verify: log and verifier are required")
	}
	var o verifyOptions
	for _, opt := range opts {
		opt.applyVerify(&o)
	}
	var kept *tlog.Tree
	if o.kept != nil {
		t, err := OpenCheckpoint(o.kept, verifier)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: the kept checkpoint: %w", err)
		}
		kept = &t
	}
	fail := func(kind ProblemKind, index int64, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Kind: kind, Index: index, Reason: fmt.Sprintf(format, args...)}
		sentinel := ErrTampered
		if kind == ProblemUncovered {
			sentinel = ErrUncovered
		}
		return rep, fmt.Errorf("audit: verify: %w: %s", sentinel, rep.Problem)
	}

	// The signed points are read before the lengths of the logs they
	// cover, and the hashes before the records, so that a log written
	// meanwhile is never mistaken for a tampered one.
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
	// Only the latest seal matters: each seal supersedes the ones before.
	var seal *tlog.Tree
	sealData, err := lastEntry(ctx, log, SealsLog)
	switch {
	case errors.Is(err, ErrTampered):
		return fail(ProblemSeal, -1, "%v", err)
	case err != nil:
		return rep, fmt.Errorf("audit: verify: read the seal: %w", err)
	case sealData != nil:
		t, err := OpenCheckpoint(sealData, verifier)
		if err != nil {
			return fail(ProblemSeal, -1, "%v", err)
		}
		seal = &t
	}
	hashed, err := log.Len(ctx, HashesLog)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	size, err := log.Len(ctx, RecordsLog)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Size = size

	// Records, in order, with the checkpoints, the seal and the kept
	// checkpoint at their sizes.
	front := newFrontier()
	next := 0 // next checkpoint to check
	checkAt := func(n int64) (bool, error) {
		var h tlog.Hash
		computed := false
		hashAt := func() (tlog.Hash, error) {
			if !computed {
				var err error
				if h, err = tlog.TreeHash(n, front); err != nil {
					return h, err
				}
				computed = true
			}
			return h, nil
		}
		for next < len(cps) && cps[next].tree.N == n {
			h, err := hashAt()
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
		if seal != nil && seal.N == n {
			h, err := hashAt()
			if err != nil {
				return false, err
			}
			if h != seal.Hash {
				_, ferr := fail(ProblemSeal, n,
					"tree hash at %d records does not match the records: a record before %d was changed, removed or reordered", n, n)
				return false, ferr
			}
			rep.Covered = max(rep.Covered, n)
		}
		if kept != nil && kept.N == n {
			h, err := hashAt()
			if err != nil {
				return false, err
			}
			if h != kept.Hash {
				_, ferr := fail(ProblemKept, n,
					"the first %d records hash to %s but the kept checkpoint states %s: the log was rewritten", n, h, kept.Hash)
				return false, ferr
			}
			rep.Kept = n
		}
		return true, nil
	}
	if ok, err := checkAt(0); !ok {
		return rep, err
	}
	rc := newCursor(log, RecordsLog, 0)
	hc := newCursor(log, HashesLog, 0)
	n := int64(0)
	// verifyTo checks the records up to size.
	verifyTo := func(size int64) (bool, error) {
		for ; n < size; n++ {
			e, ok, err := rc.read(ctx)
			if err != nil {
				return false, fmt.Errorf("audit: verify: %w", err)
			}
			if !ok || e.Index != n {
				_, ferr := fail(ProblemRecord, n, "record is missing")
				return false, ferr
			}
			var head struct {
				Seq         *int64 `json:"seq"`
				Action      string `json:"action"`
				Unaccounted *Range `json:"unaccounted"`
			}
			if err := json.Unmarshal(e.Data, &head); err != nil {
				_, ferr := fail(ProblemRecord, n, "record is not valid JSON: %v", err)
				return false, ferr
			}
			if head.Seq == nil || *head.Seq != n {
				got := "none"
				if head.Seq != nil {
					got = fmt.Sprint(*head.Seq)
				}
				_, ferr := fail(ProblemRecord, n, "record carries seq %s: records were reordered, removed or inserted", got)
				return false, ferr
			}
			want, err := front.next(n, e.Data)
			if err != nil {
				return false, fmt.Errorf("audit: verify: %w", err)
			}
			// The hashes follow the records (they are written behind them and
			// recomputed when the log opens): a record without stored hashes
			// is judged by the signatures alone.
			if n < hashed {
				h, ok, err := hc.read(ctx)
				if err != nil {
					return false, fmt.Errorf("audit: verify: %w", err)
				}
				if !ok || h.Index != n {
					_, ferr := fail(ProblemRecord, n, "stored hashes of the record are missing")
					return false, ferr
				}
				if !bytes.Equal(h.Data, want) {
					_, ferr := fail(ProblemRecord, n, "record does not match its stored hashes: it was edited, replaced or moved")
					return false, ferr
				}
			}
			if head.Action == ActionUnaccounted && head.Unaccounted != nil {
				g := *head.Unaccounted
				if g.From < 0 || g.To <= g.From || g.To > n {
					_, ferr := fail(ProblemRecord, n, "declares unaccounted records %d to %d, which are not before it", g.From, g.To)
					return false, ferr
				}
				rep.Uncovered = append(rep.Uncovered, g)
			}
			rep.Records = n + 1
			if n&0xfff == 0xfff {
				front.prune(n + 1)
			}
			if ok, err := checkAt(n + 1); !ok {
				return false, err
			}
		}
		return true, nil
	}
	if ok, err := verifyTo(size); !ok {
		return rep, err
	}
	// Other writers sharing the store may have committed after the seal
	// was read: their records follow it, uncovered as far as that seal
	// goes. Each commit stores its seal with its records, so a seal read
	// after the records log's length covers that length: the records up
	// to the newest seal are verified too, and the report is of the log
	// as of that seal. A seal that does not move on leaves the records
	// after the last signed point uncovered.
	for range 3 {
		if rep.Covered >= size {
			break
		}
		data, err := lastEntry(ctx, log, SealsLog)
		if err != nil || data == nil {
			break
		}
		t, err := OpenCheckpoint(data, verifier)
		if err != nil || (seal != nil && t.N <= seal.N) || t.N < size {
			break
		}
		if t.N > size {
			now, err := log.Len(ctx, RecordsLog)
			if err != nil {
				return rep, fmt.Errorf("audit: verify: %w", err)
			}
			if now < t.N {
				break // a seal of records the log does not hold: the first one read stands
			}
		}
		seal = &t
		rc = newCursor(log, RecordsLog, n)
		if t.N == size {
			if ok, err := checkAt(size); !ok {
				return rep, err
			}
			break
		}
		size = t.N
		rep.Size = size
		if ok, err := verifyTo(size); !ok {
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
	if seal != nil && seal.N > size {
		return fail(ProblemSeal, seal.N, "covers %d records but the log holds %d: records were removed", seal.N, size)
	}
	if hashed > size {
		return fail(ProblemRecord, size, "hashes log holds %d entries for %d records", hashed, size)
	}
	if kept != nil && kept.N > size {
		return fail(ProblemKept, kept.N, "the kept checkpoint covers %d records but the log holds %d: the log was rolled back or its newest records removed",
			kept.N, size)
	}
	if rep.Covered < size {
		rep.Uncovered = append(rep.Uncovered, Range{From: rep.Covered, To: size})
	}
	if len(rep.Uncovered) > 0 {
		g := rep.Uncovered[0]
		for _, u := range rep.Uncovered[1:] {
			if u.From < g.From {
				g = u
			}
		}
		if g.From >= rep.Covered {
			return fail(ProblemUncovered, g.From, "%d records after the last checkpoint (at %d records) are not covered by a signature", size-rep.Covered, rep.Covered)
		}
		return fail(ProblemUncovered, g.From, "no signature vouches for %s: the log found them in the store beyond what it had signed or written, and declared them unaccounted (%s)",
			g, describeRanges(rep.Uncovered))
	}
	return rep, nil
}

// describeRanges lists ranges of records.
func describeRanges(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ") + " unvouched for"
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

// VerifyConsistencyText is [VerifyConsistency] with the proof's hashes in
// their text form (base64), as the admin API and `agenthost audit prove`
// give them.
func VerifyConsistencyText(oldCheckpoint, newCheckpoint []byte, proof []string, verifier note.Verifier) error {
	p := make(tlog.TreeProof, len(proof))
	for i, s := range proof {
		h, err := tlog.ParseHash(s)
		if err != nil {
			return fmt.Errorf("audit: verify consistency: proof hash %d: %w", i, err)
		}
		p[i] = h
	}
	return VerifyConsistency(oldCheckpoint, newCheckpoint, p, verifier)
}
