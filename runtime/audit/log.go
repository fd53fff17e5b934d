package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/store"
)

// Defaults for [Config].
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 30 * time.Second
	DefaultMaxBatch           = 1000
	DefaultLeaseTTL           = time.Minute
)

// maxBatchBytes bounds the encoded records of one group commit.
const maxBatchBytes = 32 << 20

// Hashes are written behind the records: a record is acknowledged once it
// is durable, and its hashes (which can always be recomputed from the
// records) are stored with those of later records, once hashFlushRecords
// are waiting, hashFlushDelay after the last commit, and before any
// checkpoint, proof or close. One durable write per commit instead of two.
//
// A queued record (Queue) that no caller waits for is held up to
// queueDelay, so that it goes with the next record a caller does wait
// for: a mediated call's outcome shares the commit of the next call's
// decision, and a call costs one commit, not two.
const (
	hashFlushRecords = 512
	hashFlushDelay   = 20 * time.Millisecond
	queueDelay       = 2 * time.Millisecond
)

// Errors.
var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("audit: log closed")
	// ErrTampered: the stored log is inconsistent with its hashes, its
	// signed checkpoints or a checkpoint kept outside the store.
	ErrTampered = errors.New("audit: log tampered")
	// ErrUncovered: records no signature vouches for: after the last
	// signed checkpoint, or declared unaccounted by the log.
	ErrUncovered = errors.New("audit: records not covered by a signed checkpoint")
	// ErrNotFound: nothing matched.
	ErrNotFound = errors.New("audit: not found")
	// ErrConcurrentWriter: another writer appended to the records or
	// hashes log of a store that cannot append conditionally (which
	// has one writer).
	ErrConcurrentWriter = errors.New("audit: records log was appended to by another writer")
)

// Config configures [Open].
type Config struct {
	// Log is the store holding the audit logs. Required. Several open
	// logs ([Log]) may write one store's audit logs when it implements store.MultiLog
	// and store.Leases (see "Several writers" in the package doc); on any
	// other store, one Log must be their only writer.
	Log store.Log
	// Signer signs checkpoints. Required. Its key name is the log's
	// origin, "agenthost-audit/<trust domain>" ([KeyName]).
	Signer note.Signer
	// Verifier checks the signer's signatures; it may be nil when Signer
	// is a [Signer], whose VerifierKey gives it.
	Verifier note.Verifier
	// Kept is a checkpoint kept outside the store (the latest one a
	// checkpoint directory holds, say). If set, Open refuses a log that
	// does not extend it, with an error wrapping [ErrTampered]: the
	// store was rolled back or rewritten.
	Kept []byte
	// Publish, if set, receives every checkpoint written to the
	// checkpoints log, in order, in a goroutine of the log's own, so that
	// a slow destination never holds up a commit; l is the log, for the
	// consistency proofs a witness asks for. Publish handles (logs) its
	// own errors: the checkpoint is stored already. [Log.Checkpoint] and
	// [Log.Close] return once their checkpoint was handed to Publish and
	// it returned.
	Publish func(ctx context.Context, l *Log, checkpoint []byte)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means silent.
	Logger *slog.Logger
	// CheckpointEvery is the number of records after which a checkpoint is
	// written; 0 means DefaultCheckpointEvery, negative disables it.
	CheckpointEvery int
	// CheckpointInterval is the longest time records stay without a
	// checkpoint in the checkpoints log (every commit is sealed at once
	// regardless); 0 means DefaultCheckpointInterval, negative disables it.
	CheckpointInterval time.Duration
	// MaxBatch bounds the records of one group commit; 0 means
	// DefaultMaxBatch. It is capped at store.MaxBatch.
	MaxBatch int
	// Holder names this log among the writers of a shared store, as the
	// holder of the checkpoint lease ([CheckpointLease]): a name that is
	// the same when the same writer starts again (the host's data
	// directory, say), so that it takes its own lease back at once after
	// a crash. Empty means a random name.
	Holder string
	// LeaseTTL is how long the checkpoint lease lasts unless renewed: how
	// long the other writers wait before they take over the checkpoints of
	// a writer that died. 0 means DefaultLeaseTTL, or three times
	// CheckpointInterval if that is longer.
	LeaseTTL time.Duration
	// OnAppend, if set, is told how long each successful [Log.Append]
	// took, from its call until its record was durable (by the Now
	// clock). It must not block.
	OnAppend func(time.Duration)
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	st       store.Log
	ml       store.MultiLog // nil: the store cannot append conditionally (one writer only)
	leases   store.Leases   // nil: no lease; the log writes every checkpoint
	holder   string
	leaseTTL time.Duration
	signer   note.Signer
	verifier note.Verifier
	now      func() time.Time
	log      *slog.Logger
	every    int64
	interval time.Duration
	maxBatch int
	cache    hashCache
	pub      *publisher // nil without Config.Publish
	onAppend func(time.Duration)

	// ctx is the context of store writes made by the committer and of
	// publication; it is cancelled when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards pending and closed
	pending []*request
	closed  bool
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}

	wmu    sync.Mutex // serialises store writes; guards the fields below
	size   int64      // records in the store that the log accounts for
	sealed int64      // records covered by the latest stored seal or checkpoint
	front  *frontier  // frontier of the tree of size records
	broken bool       // the store may be ahead of size: reload before writing
	// inflight are the records of an append that failed: the store may
	// hold them after all, and if it holds exactly these the log wrote
	// them.
	inflight [][]byte

	committed atomic.Int64 // size, readable without wmu

	// The checkpoint lease (shared.go), guarded by wmu.
	lease        *store.Lease // nil: not held, as far as the log knows
	leaseRenewAt time.Time    // when the held lease is renewed (time.Now clock)
	leaseRetryAt time.Time    // before then, a lease held by another is not asked for again
	cpLen        int64        // entries of the checkpoints log, as last known

	// Contention between writers (shared.go), guarded by wmu.
	kv          store.KV      // nil: no contention signal
	contendedAt time.Time     // when the contention signal was last seen or given (time.Now)
	signalledAt time.Time     // when the log last gave it
	contCheckAt time.Time     // when the signal is looked for next
	commitTook  time.Duration // how long the last commit took

	// Counters for tests and benchmarks.
	conflicts atomic.Int64 // commits another writer overtook
	adopted   atomic.Int64 // records of other writers the log took into its tree
	cpWrites  atomic.Int64 // checkpoints the log stored

	// hashBuf holds the stored-hash entries of records hashFrom… not yet
	// written to the hashes log.
	hashBuf  [][]byte
	hashFrom int64
	commits  atomic.Int64 // group commits made, for tests and benchmarks

	cpMu     sync.Mutex // guards the latest checkpoint
	latest   []byte
	latestN  int64
	latestAt time.Time
	pubSeq   int64 // publication number of latest

	closeOnce sync.Once
	closeErr  error
}

type request struct {
	data []byte      // nil: a barrier (Sync), answered once the records before it are
	done chan result // nil: a queued record (Queue), nobody waits
}

type result struct {
	index int64
	err   error
}

// Open opens the audit log kept in cfg.Log. It loads the tree, recomputes
// the stored hashes of records that lack them, and checks the latest
// checkpoint and the commit seal against cfg.Verifier and the records (a
// mismatch is an error wrapping [ErrTampered]), and the log against
// cfg.Kept. Records after the last signed point (the seal or the latest
// checkpoint) were not written by this log as far as it can tell: Open
// declares them in a record of [ActionUnaccounted] and never vouches for
// them. The returned log runs a committer goroutine until [Log.Close].
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Log == nil {
		return nil, errors.New("audit: open: Config.Log is required")
	}
	if cfg.Signer == nil {
		return nil, errors.New("audit: open: Config.Signer is required")
	}
	verifier := cfg.Verifier
	if verifier == nil {
		s, ok := cfg.Signer.(Signer)
		if !ok {
			return nil, errors.New("audit: open: Config.Verifier is required unless Config.Signer is an audit.Signer")
		}
		v, err := ParseVerifier(s.VerifierKey())
		if err != nil {
			return nil, fmt.Errorf("audit: open: the signer's verifier key: %w", err)
		}
		verifier = v
	}
	if err := checkKeyPair(cfg.Signer, verifier); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	var kept *tlog.Tree
	if cfg.Kept != nil {
		t, err := OpenCheckpoint(cfg.Kept, verifier)
		if err != nil {
			return nil, fmt.Errorf("audit: open: kept checkpoint: %w", err)
		}
		kept = &t
	}
	l := &Log{
		st:       cfg.Log,
		signer:   cfg.Signer,
		verifier: verifier,
		now:      cfg.Now,
		log:      cfg.Logger,
		every:    int64(cfg.CheckpointEvery),
		interval: cfg.CheckpointInterval,
		maxBatch: cfg.MaxBatch,
		onAppend: cfg.OnAppend,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.interval == 0 {
		l.interval = DefaultCheckpointInterval
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	l.maxBatch = min(l.maxBatch, store.MaxBatch)
	l.ml, _ = cfg.Log.(store.MultiLog)
	l.leases, _ = cfg.Log.(store.Leases)
	l.kv, _ = cfg.Log.(store.KV)
	l.holder = cfg.Holder
	if l.holder == "" {
		l.holder = randomHolder()
	}
	if err := store.ValidateName("holder", l.holder); err != nil {
		return nil, fmt.Errorf("audit: open: Config.Holder: %w", err)
	}
	l.leaseTTL = cfg.LeaseTTL
	if l.leaseTTL <= 0 {
		l.leaseTTL = max(DefaultLeaseTTL, 3*l.interval)
	}
	gap, err := l.reload(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if kept != nil {
		if err := l.checkKept(ctx, *kept); err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
	}
	if gap != nil {
		if err := l.declare(ctx, *gap); err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
	}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if cfg.Publish != nil {
		l.pub = newPublisher(cfg.Publish)
		go l.pub.run(l.ctx, l)
	}
	go l.run()
	return l, nil
}

// checkKeyPair makes sure verifier checks signer's signatures.
func checkKeyPair(s note.Signer, v note.Verifier) error {
	if s.Name() != v.Name() || s.KeyHash() != v.KeyHash() {
		return fmt.Errorf("signer %s+%08x and verifier %s+%08x differ", s.Name(), s.KeyHash(), v.Name(), v.KeyHash())
	}
	msg := []byte("agenthost audit key check\n")
	sig, err := s.Sign(msg)
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	if !v.Verify(msg, sig) {
		return errors.New("verifier does not accept the signer's signatures")
	}
	return nil
}

// reload brings the in-memory tree in line with the store: it hashes
// records that have no stored hashes yet and checks the latest checkpoint
// and the seal. It returns the records the log cannot account for, if
// any: on the first load those after the last signed point; later (after
// a failed write) those beyond the records the log wrote itself. Called
// with wmu held (or before the log is shared).
//
// The logs are read in the order writers append to them, backwards:
// the hashes log's length before the records log's (hashes follow their
// records), and the signed points after both (a seal is stored with the
// records it signs, in the same write). Records another writer commits
// meanwhile are then never taken for records without a seal, nor its
// seal for one that covers records the store does not hold.
func (l *Log) reload(ctx context.Context, first bool) (*Range, error) {
	prev, inflight := l.size, l.inflight
	hashed, err := l.st.Len(ctx, HashesLog)
	if err != nil {
		return nil, fmt.Errorf("hashes log: %w", err)
	}
	size, err := l.st.Len(ctx, RecordsLog)
	if err != nil {
		return nil, fmt.Errorf("records log: %w", err)
	}
	if hashed > size {
		return nil, fmt.Errorf("%w: hashes log holds %d entries but records log only %d", ErrTampered, hashed, size)
	}
	if !first && size < prev {
		return nil, fmt.Errorf("%w: the records log shrank from %d to %d records while open", ErrTampered, prev, size)
	}
	latest, cpLen, err := lastEntryN(ctx, l.st, CheckpointsLog)
	if err != nil {
		return nil, fmt.Errorf("read the latest checkpoint: %w", err)
	}
	seal, err := lastEntry(ctx, l.st, SealsLog)
	if err != nil {
		return nil, fmt.Errorf("read the seal: %w", err)
	}
	var latestTree, sealTree tlog.Tree
	if latest != nil {
		if latestTree, err = l.openSigned(latest); err != nil {
			return nil, fmt.Errorf("the latest checkpoint: %w", err)
		}
	}
	if seal != nil {
		if sealTree, err = l.openSigned(seal); err != nil {
			return nil, fmt.Errorf("the seal: %w", err)
		}
	}
	if signed := max(latestTree.N, sealTree.N); signed > size {
		// Another writer committed after the length was read: its
		// records are in the store with their seal.
		n, err := l.st.Len(ctx, RecordsLog)
		if err != nil {
			return nil, fmt.Errorf("records log: %w", err)
		}
		what := "the seal"
		if latestTree.N > sealTree.N {
			what = "the latest checkpoint"
		}
		if n < signed {
			return nil, fmt.Errorf("%s: %w: covers %d records but the log holds %d", what, ErrTampered, signed, n)
		}
		size = signed
	}
	front := newFrontier()
	r := &storeHashes{ctx: ctx, log: l.st, size: hashed, cache: &l.cache}
	idx := frontierIndexes(hashed)
	hs, err := r.ReadHashes(idx)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	for i, x := range idx {
		front.h[x] = hs[i]
	}
	if hashed < size {
		// Computing hashes vouches for nothing: which records are
		// covered is decided below, by the signatures.
		l.log.WarnContext(ctx, "audit: hashing records stored without their hashes",
			slog.Int64("from", hashed), slog.Int64("to", size))
		if err := l.rehash(ctx, front, hashed, size); err != nil {
			return nil, fmt.Errorf("reconcile hashes: %w", err)
		}
	}
	l.size, l.front, l.broken, l.hashBuf = size, front, false, nil
	l.committed.Store(size)
	if latest != nil {
		if err := l.checkTree(ctx, latestTree); err != nil {
			return nil, fmt.Errorf("the latest checkpoint: %w", err)
		}
	}
	if seal != nil {
		if err := l.checkTree(ctx, sealTree); err != nil {
			return nil, fmt.Errorf("the seal: %w", err)
		}
	}
	l.cpMu.Lock()
	l.latest, l.latestN, l.latestAt = latest, latestTree.N, l.now()
	l.cpMu.Unlock()
	l.cpLen = cpLen
	signed := max(latestTree.N, sealTree.N)
	l.sealed = signed
	known := signed
	if !first {
		known = max(known, prev)
		if len(inflight) > 0 && size >= prev+int64(len(inflight)) {
			same, err := l.storedAre(ctx, prev, inflight)
			if err != nil {
				return nil, err
			}
			if same {
				known = max(known, prev+int64(len(inflight)))
			}
		}
	}
	l.inflight = nil
	if known < size {
		return &Range{From: known, To: size}, nil
	}
	return nil, nil
}

// storedAre reports whether the records log holds exactly records from
// index from on.
func (l *Log) storedAre(ctx context.Context, from int64, records [][]byte) (bool, error) {
	c := newCursor(l.st, RecordsLog, from)
	for i, want := range records {
		e, ok, err := c.read(ctx)
		if err != nil {
			return false, err
		}
		if !ok || e.Index != from+int64(i) || !bytes.Equal(e.Data, want) {
			return false, nil
		}
	}
	return true, nil
}

// rehash computes and appends the stored hashes of records [from, to).
func (l *Log) rehash(ctx context.Context, front *frontier, from, to int64) error {
	c := newCursor(l.st, RecordsLog, from)
	c.page = l.maxBatch
	for n := from; n < to; {
		batch := make([][]byte, 0, min(int64(l.maxBatch), to-n))
		for n < to && len(batch) < l.maxBatch {
			e, ok, err := c.read(ctx)
			if err != nil {
				return err
			}
			if !ok || e.Index != n {
				return fmt.Errorf("%w: record %d is missing", ErrTampered, n)
			}
			h, err := front.next(n, e.Data)
			if err != nil {
				return err
			}
			batch = append(batch, h)
			n++
		}
		if err := l.appendHashes(ctx, n-int64(len(batch)), batch); err != nil {
			return err
		}
		front.prune(n)
	}
	return nil
}

// openSigned checks the signature of a checkpoint or seal of the log and
// returns the tree it states.
func (l *Log) openSigned(checkpoint []byte) (tlog.Tree, error) {
	tree, err := OpenCheckpoint(checkpoint, l.verifier)
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("%w: not signed by %s+%08x: %w", ErrTampered, l.verifier.Name(), l.verifier.KeyHash(), err)
	}
	return tree, nil
}

// checkTree checks a signed tree against the records, whose hashes are
// stored up to l.size.
func (l *Log) checkTree(ctx context.Context, tree tlog.Tree) error {
	if tree.N > l.size {
		return fmt.Errorf("%w: covers %d records but the log holds %d", ErrTampered, tree.N, l.size)
	}
	h, err := tlog.TreeHash(tree.N, &storeHashes{ctx: ctx, log: l.st, size: l.size, cache: &l.cache})
	if err != nil {
		return err
	}
	if h != tree.Hash {
		return fmt.Errorf("%w: does not match the first %d records", ErrTampered, tree.N)
	}
	return nil
}

// checkKept checks that the log extends the tree of a checkpoint kept
// outside the store. Called with the hashes of every record stored.
func (l *Log) checkKept(ctx context.Context, kept tlog.Tree) error {
	if kept.N > l.size {
		return fmt.Errorf("%w: the kept checkpoint covers %d records but the log holds %d: the log was rolled back or its newest records removed",
			ErrTampered, kept.N, l.size)
	}
	h, err := tlog.TreeHash(kept.N, &storeHashes{ctx: ctx, log: l.st, size: l.size, cache: &l.cache})
	if err != nil {
		return err
	}
	if h != kept.Hash {
		return fmt.Errorf("%w: the first %d records hash to %s but the kept checkpoint states %s: the log was rewritten",
			ErrTampered, kept.N, h, kept.Hash)
	}
	return nil
}

// declare writes the record of ActionUnaccounted naming gap, and seals
// it. Called with wmu held.
func (l *Log) declare(ctx context.Context, gap Range) error {
	l.log.WarnContext(ctx, "audit: records the log did not write follow its last signed point; they stay unvouched for",
		slog.Int64("from", gap.From), slog.Int64("to", gap.To))
	data, err := encodeRecord(Record{
		Time:   l.now().UTC(),
		Action: ActionUnaccounted,
		Reason: fmt.Sprintf("the store held %s beyond the %d records this log signed or wrote; no signature vouches for them",
			gap, gap.From),
		Unaccounted: &gap,
	})
	if err != nil {
		return err
	}
	// Another writer that finds the same records declares them too; if
	// its declaration is stored first, this one is not: the records are
	// then under a seal of the log's key that follows their declaration.
	_, err = l.writeUnless(ctx, [][]byte{data}, func() bool { return l.sealed >= gap.To })
	if errors.Is(err, errNotNeeded) {
		l.log.InfoContext(ctx, "audit: another writer declared the unaccounted records first",
			slog.Int64("from", gap.From), slog.Int64("to", gap.To))
		return nil
	}
	if err != nil {
		return fmt.Errorf("declare unaccounted records: %w", err)
	}
	return nil
}

// Size returns the number of records committed.
func (l *Log) Size() int64 { return l.committed.Load() }

// Append adds rec to the log and returns its index. When Append returns
// without error the record is durable and covered by the commit seal, a
// signed checkpoint of the log as of its commit; its hashes, which can
// always be recomputed from it, are stored soon after with later ones. A
// zero rec.Time is set from the clock; rec.Seq is set to the index. Text
// that looks like a JSON Web Token is redacted ([Record]), never refused.
//
// Concurrent calls are committed together, in one store append. If ctx is
// done before the batch is committed Append returns an error wrapping
// ctx.Err(), and the record may or may not be stored (its index is then
// unknown to the caller). On a store error the whole batch fails; records
// that reached the store anyway are sealed (or, if the log cannot tell
// they are its own, declared unaccounted) before the next commit.
func (l *Log) Append(ctx context.Context, rec Record) (int64, error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("audit: append: %w", err)
	}
	began := l.appendBegins()
	req, err := l.enqueue(rec, make(chan result, 1))
	if err != nil {
		return -1, fmt.Errorf("audit: append: %w", err)
	}
	select {
	case r := <-req.done:
		if r.err == nil {
			l.appended(began)
		}
		return r.index, r.err
	case <-ctx.Done():
		return -1, fmt.Errorf("audit: append: %w", ctx.Err())
	}
}

// Queue adds rec to the log without waiting for it to be durable: it is
// committed with the next batch, after every record appended or queued
// before it, and by [Log.Close] at the latest. It is for a record whose
// loss in a crash is acceptable because a durable record already says
// what it is about: the outcome of a call whose allow decision was
// appended before the call ran. An error means the record was not taken
// (the log is closed, or rec cannot be encoded); a failed commit is
// logged, and the records that reached the store are accounted for as
// for Append.
func (l *Log) Queue(rec Record) error {
	if _, err := l.enqueue(rec, nil); err != nil {
		return fmt.Errorf("audit: queue: %w", err)
	}
	return nil
}

// Sync waits until every record queued before it was committed (or its
// commit failed, which is logged): a reader that syncs first sees the
// outcomes of the calls that returned before it. On a closed log it waits
// for Close's final commit.
func (l *Log) Sync(ctx context.Context) error {
	req := &request{done: make(chan result, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		// Close has stopped taking records; the committer commits the
		// pending ones before it stops.
		select {
		case <-l.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("audit: sync: %w", ctx.Err())
		}
	}
	l.pending = append(l.pending, req)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: sync: %w", ctx.Err())
	}
}

// enqueue encodes rec and adds it to the pending batch; done (nil for a
// queued record) receives the commit's result.
func (l *Log) enqueue(rec Record, done chan result) (*request, error) {
	if rec.Time.IsZero() {
		rec.Time = l.now()
	}
	rec.Time = rec.Time.UTC()
	rec.Unaccounted = nil // only the log declares unaccounted records
	data, err := encodeRecord(rec)
	if err != nil {
		return nil, err
	}
	req := &request{data: data, done: done}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	l.pending = append(l.pending, req)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return req, nil
}

// run is the committer: it takes the pending records in batches and
// commits them, and writes interval checkpoints.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.interval > 0 {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	var flush, queued <-chan time.Time
	for {
		select {
		case <-l.wake:
			if l.onlyQueued() {
				if queued == nil {
					queued = time.After(queueDelay)
				}
				continue
			}
			queued = nil
			l.drain()
			if flush == nil && l.hashesWaiting() {
				flush = time.After(hashFlushDelay)
			}
		case <-queued:
			queued = nil
			l.drain()
			if flush == nil && l.hashesWaiting() {
				flush = time.After(hashFlushDelay)
			}
		case <-flush:
			flush = nil
			l.wmu.Lock()
			_ = l.flushHashes(l.ctx)
			l.wmu.Unlock()
		case <-tick:
			l.wmu.Lock()
			l.autoCheckpoint(l.ctx, true)
			l.wmu.Unlock()
			if flush == nil && l.hashesWaiting() {
				flush = time.After(hashFlushDelay)
			}
		case <-l.quit:
			l.drain()
			l.wmu.Lock()
			_ = l.flushHashes(l.ctx)
			l.wmu.Unlock()
			return
		}
	}
}

// hashesWaiting reports whether committed records' hashes wait to be
// stored.
func (l *Log) hashesWaiting() bool {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return len(l.hashBuf) > 0
}

// onlyQueued reports whether every pending request is a queued record,
// which nobody waits for.
func (l *Log) onlyQueued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.pending {
		if r.done != nil {
			return false
		}
	}
	return true
}

func (l *Log) drain() {
	for {
		l.mu.Lock()
		n, bytes := 0, 0
		for n < len(l.pending) && n < l.maxBatch && (n == 0 || bytes+len(l.pending[n].data) <= maxBatchBytes) {
			bytes += len(l.pending[n].data)
			n++
		}
		batch := l.pending[:n:n]
		l.pending = l.pending[n:]
		if len(l.pending) == 0 {
			l.pending = nil
		}
		l.mu.Unlock()
		if n == 0 {
			return
		}
		l.commit(batch)
		if d := l.yieldTime(); d > 0 {
			time.Sleep(d)
		}
	}
}

// recover reconciles the log with the store after a failed write: it
// reloads, and declares the records it finds and cannot account for.
// Called with wmu held.
func (l *Log) recover(ctx context.Context) error {
	if !l.broken {
		return nil
	}
	// l.size is what the log accounts for, and the next attempt starts
	// from it: until the declaration is stored, the records it names must
	// not count as the log's own.
	prev := l.size
	gap, err := l.reload(ctx, false)
	if err != nil {
		l.broken = true
		l.size = prev
		l.committed.Store(prev)
		return err
	}
	if gap == nil {
		return nil
	}
	if err := l.declare(ctx, *gap); err != nil {
		if l.broken {
			l.size = gap.From
			l.committed.Store(gap.From)
		}
		return err
	}
	return nil
}

// commit writes one batch with its seal (see write), then acknowledges
// the callers. The hashes follow later (see flushHashes).
func (l *Log) commit(batch []*request) {
	if !slices.ContainsFunc(batch, func(r *request) bool { return r.data != nil }) {
		for _, r := range batch {
			r.done <- result{index: -1}
		}
		return
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	ctx := l.ctx
	fail := func(err error) {
		queued := 0
		for _, r := range batch {
			if r.done == nil {
				queued++
				continue
			}
			r.done <- result{index: -1, err: err}
		}
		if queued > 0 && l.log != nil {
			l.log.ErrorContext(ctx, "audit: queued records not committed", "records", queued, "err", err)
		}
	}
	if err := l.recover(ctx); err != nil {
		fail(fmt.Errorf("audit: append: reconcile: %w", err))
		return
	}
	// Records of an earlier batch whose seal failed are sealed before
	// anything new is stored.
	if err := l.seal(ctx); err != nil {
		fail(fmt.Errorf("audit: append: %w", err))
		return
	}
	data := make([][]byte, 0, len(batch))
	for _, r := range batch {
		if r.data != nil {
			data = append(data, r.data)
		}
	}
	l.watchContention(ctx)
	start := time.Now()
	n0, err := l.write(ctx, data)
	l.commitTook = time.Since(start)
	if err != nil {
		fail(fmt.Errorf("audit: append: %w", err))
		return
	}
	i := n0
	for _, r := range batch {
		switch {
		case r.data == nil:
			r.done <- result{index: -1}
		case r.done != nil:
			r.done <- result{index: i}
			i++
		default:
			i++
		}
	}
	l.commits.Add(1)
	if len(l.hashBuf) >= hashFlushRecords {
		_ = l.flushHashes(ctx)
	}
	l.autoCheckpoint(ctx, false)
}

// write appends records (encoded with Seq 0) at the end of the records
// log, setting their Seq, adds them to the tree and seals the tree that
// ends with them. A store that can append to two logs at once
// (store.MultiLog) gets the records and their seal in one atomic write,
// so no crash leaves records without their seal; another store gets the
// records, then the seal: a crash in between leaves records the next Open
// declares unaccounted (their callers were not acknowledged). It returns
// the index of the first record. Called with wmu held.
//
// The atomic write is conditional on the records landing where the seal
// signs them. When another writer sharing the store committed first, the
// log takes that writer's records into its tree (catchUp: they must be
// under a seal of the log's key), numbers its own after them and tries
// again. Records no seal covers are not taken: the write fails, and the
// next commit declares them.
func (l *Log) write(ctx context.Context, data [][]byte) (int64, error) {
	return l.writeUnless(ctx, data, nil)
}

// maxOvertaken bounds the attempts of one commit that other writers keep
// overtaking (which the contention signal makes rare: shared.go).
const maxOvertaken = 1000

// errNotNeeded: writeUnless gave up a write that another writer's made
// needless.
var errNotNeeded = errors.New("audit: write no longer needed")

// writeUnless is write, except that after catching up with another
// writer it gives up with errNotNeeded if done (when not nil) says so.
func (l *Log) writeUnless(ctx context.Context, data [][]byte, done func() bool) (int64, error) {
	for attempt := 1; ; attempt++ {
		n0, err := l.writeAt(ctx, data)
		if err == nil || !errors.Is(err, errOvertaken) {
			return n0, err
		}
		l.conflicts.Add(1)
		adopted, unsealed, cerr := l.catchUp(ctx)
		switch {
		case cerr != nil:
			l.broken = true
			return -1, fmt.Errorf("%w; catching up: %w", err, cerr)
		case unsealed || adopted == 0:
			// Records no seal covers: the next commit reloads and
			// declares them.
			l.broken = true
			return -1, err
		case done != nil && done():
			return -1, errNotNeeded
		case attempt >= maxOvertaken:
			return -1, err
		case attempt >= overtakenSignal:
			// The other writers' commits keep landing first: they
			// leave room between theirs for a while (contention).
			l.signalContention(ctx)
		}
	}
}

// errOvertaken marks a conditional commit that found the records log
// longer than the log's tree: another writer committed first. Nothing
// was stored.
var errOvertaken = errors.New("another writer committed first")

// writeAt makes one attempt of write at the end of the log's tree.
func (l *Log) writeAt(ctx context.Context, data [][]byte) (int64, error) {
	n0 := l.size
	size := n0 + int64(len(data))
	records := make([][]byte, len(data))
	hashes := make([][]byte, len(data))
	for i, d := range data {
		records[i] = withSeq(d, n0+int64(i))
		var err error
		if hashes[i], err = l.front.next(n0+int64(i), records[i]); err != nil {
			l.broken = true // the frontier holds hashes of unwritten records
			return -1, err
		}
	}
	var first int64
	var err error
	if l.ml != nil {
		var seal []byte
		if seal, err = l.signTree(size); err == nil {
			l.inflight = records
			var firsts []int64
			// The seal is of the tree with the records at n0: stored
			// anywhere else, they are not what it signs.
			if firsts, err = l.ml.AppendLogs(ctx,
				store.LogAppend{Log: RecordsLog, Entries: records, IfAt: true, At: n0},
				store.LogAppend{Log: SealsLog, Entries: [][]byte{seal}}); err == nil {
				first = firsts[0]
			} else if errors.Is(err, store.ErrConflict) {
				// Nothing was stored: the tree is as it was before
				// these records (the frontier of n0 records is what
				// prune keeps, and next never changed it).
				l.inflight = nil
				l.front.prune(n0)
				return -1, fmt.Errorf("%w: %w", errOvertaken, err)
			}
		}
	} else {
		l.inflight = records
		first, err = l.st.Append(ctx, RecordsLog, records...)
	}
	if err == nil && first != n0 {
		err = fmt.Errorf("%w: records stored at %d, expected %d", ErrConcurrentWriter, first, n0)
	}
	if err != nil {
		// The frontier is ahead of the store, and the append may have
		// been applied after all: the next write reconciles first.
		l.broken = true
		return -1, err
	}
	l.inflight = nil
	l.size = size
	if l.ml != nil {
		l.sealed = size
	}
	l.front.prune(size)
	l.committed.Store(size)
	if len(l.hashBuf) == 0 {
		l.hashFrom = n0
	}
	l.hashBuf = append(l.hashBuf, hashes...)
	if err := l.seal(ctx); err != nil {
		return -1, fmt.Errorf("the records are stored but their commit could not be sealed: %w", err)
	}
	return n0, nil
}

// seal signs the tree of the records written so far, unless a seal or
// checkpoint covers them already, and appends it to the seals log as the
// commit seal. Called with wmu held.
func (l *Log) seal(ctx context.Context) error {
	if l.sealed == l.size {
		return nil
	}
	msg, err := l.signTree(l.size)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if _, err := l.st.Append(ctx, SealsLog, msg); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	l.sealed = l.size
	return nil
}

// signTree signs the checkpoint of the tree of the first n records, whose
// frontier l.front holds. Called with wmu held.
func (l *Log) signTree(n int64) ([]byte, error) {
	h, err := tlog.TreeHash(n, l.front)
	if err != nil {
		return nil, err
	}
	return signCheckpoint(l.signer, tlog.Tree{N: n, Hash: h})
}

// flushHashes writes the buffered hashes. On failure the log is marked
// broken, so that the next write first recomputes the missing hashes from
// the records. Called with wmu held.
func (l *Log) flushHashes(ctx context.Context) error {
	if len(l.hashBuf) == 0 {
		return nil
	}
	from, n := l.hashFrom, len(l.hashBuf)
	err := l.appendHashes(ctx, from, l.hashBuf)
	l.hashBuf = nil
	if err != nil {
		l.broken = true
		l.log.ErrorContext(ctx, "audit: storing hashes failed; they will be recomputed",
			slog.Int64("from", from), slog.Int("records", n), slog.Any("error", err))
		return fmt.Errorf("audit: store hashes: %w", err)
	}
	return nil
}

// syncHashes writes the buffered hashes, for readers of the hashes log.
func (l *Log) syncHashes(ctx context.Context) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.broken {
		return l.recover(ctx)
	}
	return l.flushHashes(ctx)
}

// autoCheckpoint writes a checkpoint if CheckpointEvery records or
// CheckpointInterval passed since the last one, and if the log holds the
// checkpoint lease. On the interval's tick, the log that holds it (or may
// take it) first takes the records other writers committed into its
// tree, so that they are checkpointed too. Called with wmu held.
func (l *Log) autoCheckpoint(ctx context.Context, tick bool) {
	if l.broken {
		return // the next commit or Checkpoint reconciles first
	}
	if tick && l.mayHoldLease() {
		if _, _, err := l.catchUp(ctx); err != nil {
			l.log.ErrorContext(ctx, "audit: catching up with the other writers failed", slog.Any("error", err))
		}
	}
	l.cpMu.Lock()
	lastN, lastAt := l.latestN, l.latestAt
	hasLatest := l.latest != nil
	l.cpMu.Unlock()
	if l.size == 0 || (hasLatest && l.size <= lastN) {
		return
	}
	due := l.every > 0 && l.size-lastN >= l.every
	if l.interval > 0 && (tick || l.now().Sub(lastAt) >= l.interval) {
		due = true
	}
	if !due {
		return
	}
	if _, _, err := l.checkpoint(ctx, false); err != nil && !errors.Is(err, errNotHolder) {
		l.log.ErrorContext(ctx, "audit: checkpoint failed", slog.Int64("size", l.size), slog.Any("error", err))
	}
}

// checkpoint signs and stores the tree of the committed records, unless
// the latest checkpoint already covers them, hands it to the publisher,
// and returns it with its publication number. Only the holder of the
// checkpoint lease stores checkpoints: for another log it fails with
// errNotHolder, unless explicit, when it returns the signed tree without
// storing or publishing it. Called with wmu held.
func (l *Log) checkpoint(ctx context.Context, explicit bool) ([]byte, int64, error) {
	l.cpMu.Lock()
	if l.latest != nil && l.latestN >= l.size {
		defer l.cpMu.Unlock()
		return bytes.Clone(l.latest), l.pubSeq, nil
	}
	l.cpMu.Unlock()
	holder, err := l.holdLease(ctx, explicit)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: checkpoint: the checkpoint lease: %w", err)
	}
	if !holder {
		if !explicit {
			return nil, 0, errNotHolder
		}
		// Another writer writes the checkpoints. The signed tree of the
		// records so far is the commit seal in the store (Ed25519 signs
		// deterministically), which covers them already.
		if err := l.seal(ctx); err != nil {
			return nil, 0, fmt.Errorf("audit: checkpoint: %w", err)
		}
		msg, err := l.signTree(l.size)
		if err != nil {
			return nil, 0, fmt.Errorf("audit: checkpoint: %w", err)
		}
		return msg, 0, nil
	}
	// Every record a checkpoint covers has its hashes stored.
	if err := l.flushHashes(ctx); err != nil {
		return nil, 0, fmt.Errorf("audit: checkpoint: %w", err)
	}
	msg, err := l.signTree(l.size)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: checkpoint: %w", err)
	}
	latest, n, stored, err := l.storeCheckpoint(ctx, msg, l.size)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: checkpoint: %w", err)
	}
	l.sealed = max(l.sealed, l.size)
	var seq int64
	if stored {
		l.cpWrites.Add(1)
		if l.pub != nil {
			seq = l.pub.add(msg)
		}
	}
	l.cpMu.Lock()
	if stored {
		l.pubSeq = seq
	}
	l.latest, l.latestN, l.latestAt = latest, n, l.now()
	seq = l.pubSeq
	l.cpMu.Unlock()
	l.log.DebugContext(ctx, "audit: checkpoint", slog.Int64("size", n), slog.Bool("stored", stored))
	return bytes.Clone(latest), seq, nil
}

// Checkpoint signs and stores a checkpoint of every record committed so far
// (unless the latest checkpoint covers them already) and returns the signed
// note, once Config.Publish, if set, has had it. When several writers
// share the store, the records are those of every writer, and only the
// one that holds the checkpoint lease stores and publishes checkpoints:
// on the others Checkpoint returns the signed tree without storing it
// (the commit seal the store holds for it).
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	l.wmu.Lock()
	if err := l.recover(ctx); err != nil {
		l.wmu.Unlock()
		return nil, fmt.Errorf("audit: checkpoint: %w", err)
	}
	if _, _, err := l.catchUp(ctx); err != nil {
		// What the log has is checkpointed; the next commit finds out.
		l.log.WarnContext(ctx, "audit: catching up with the other writers failed", slog.Any("error", err))
	}
	if l.size == 0 {
		l.wmu.Unlock()
		return nil, fmt.Errorf("audit: checkpoint: %w: the log is empty", ErrNotFound)
	}
	cp, seq, err := l.checkpoint(ctx, true)
	l.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	if l.pub != nil {
		if err := l.pub.wait(ctx, seq); err != nil {
			return nil, fmt.Errorf("audit: checkpoint: publish: %w", err)
		}
	}
	return cp, nil
}

// Latest returns the latest signed checkpoint note, or an error wrapping
// [ErrNotFound] if none was written yet.
func (l *Log) Latest(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if l.latest == nil {
		return nil, fmt.Errorf("audit: latest checkpoint: %w", ErrNotFound)
	}
	return bytes.Clone(l.latest), nil
}

// InclusionProof proves that record index is in the tree of the first
// treeSize records. Check it with [VerifyInclusion].
func (l *Log) InclusionProof(ctx context.Context, index, treeSize int64) (tlog.RecordProof, error) {
	if err := l.syncHashes(ctx); err != nil {
		return nil, fmt.Errorf("audit: inclusion proof: %w", err)
	}
	size := l.committed.Load()
	if index < 0 || treeSize <= index || treeSize > size {
		return nil, fmt.Errorf("audit: inclusion proof: record %d in tree of %d records: want 0 <= record < tree size <= %d", index, treeSize, size)
	}
	p, err := tlog.ProveRecord(treeSize, index, &storeHashes{ctx: ctx, log: l.st, size: size, cache: &l.cache})
	if err != nil {
		return nil, fmt.Errorf("audit: inclusion proof: %w", err)
	}
	return p, nil
}

// ConsistencyProof proves that the tree of oldSize records is a prefix of
// the tree of newSize records. Check it with [VerifyConsistency].
func (l *Log) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if err := l.syncHashes(ctx); err != nil {
		return nil, fmt.Errorf("audit: consistency proof: %w", err)
	}
	size := l.committed.Load()
	if oldSize < 1 || newSize < oldSize || newSize > size {
		return nil, fmt.Errorf("audit: consistency proof: sizes %d and %d: want 1 <= old <= new <= %d", oldSize, newSize, size)
	}
	p, err := tlog.ProveTree(newSize, oldSize, &storeHashes{ctx: ctx, log: l.st, size: size, cache: &l.cache})
	if err != nil {
		return nil, fmt.Errorf("audit: consistency proof: %w", err)
	}
	return p, nil
}

// TreeHash returns the hash of the tree of the first size records.
func (l *Log) TreeHash(ctx context.Context, size int64) (tlog.Hash, error) {
	if err := l.syncHashes(ctx); err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: tree hash: %w", err)
	}
	n := l.committed.Load()
	if size < 0 || size > n {
		return tlog.Hash{}, fmt.Errorf("audit: tree hash: size %d not in 0..%d", size, n)
	}
	h, err := tlog.TreeHash(size, &storeHashes{ctx: ctx, log: l.st, size: n, cache: &l.cache})
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: tree hash: %w", err)
	}
	return h, nil
}

// Close commits the pending records, writes a final checkpoint, waits for
// Config.Publish to have every checkpoint, and stops the log. If ctx is
// done first, the commit or publication in progress is cancelled. Close is
// idempotent.
func (l *Log) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.quit)
		defer l.cancel()
		select {
		case <-l.done:
		case <-ctx.Done():
			l.cancel()
			<-l.done
			l.closeErr = fmt.Errorf("audit: close: %w", ctx.Err())
			l.pub.stop(ctx)
			return
		}
		l.wmu.Lock()
		size := l.size
		l.wmu.Unlock()
		if size > 0 {
			if _, err := l.Checkpoint(ctx); err != nil {
				l.closeErr = fmt.Errorf("audit: close: %w", err)
			}
		}
		// Another writer takes over the checkpoints at once.
		l.wmu.Lock()
		err := l.releaseLease(ctx)
		l.wmu.Unlock()
		if err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("audit: close: release the checkpoint lease: %w", err)
		}
		if err := l.pub.stop(ctx); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("audit: close: publish: %w", err)
		}
	})
	return l.closeErr
}
