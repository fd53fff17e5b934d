package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/store"
)

// This file holds what lets several logs ([Log]), in several processes, write
// one audit log in a shared store (see "Several writers" in the package
// doc): catching up with the records the others commit, storing hashes
// and checkpoints that another writer may store too, and the lease of
// the writer that writes the checkpoints.

// CheckpointLease is the name of the lease ([store.Leases]) whose holder
// writes the checkpoints of a log that several writers share.
const CheckpointLease = "audit.checkpointer"

// leaseRetryMax bounds how long a log that found the checkpoint lease
// held by another writer waits before it asks again (when a checkpoint is
// due).
const leaseRetryMax = 5 * time.Second

// randomHolder returns a lease holder name for a log that was given
// none: the host name and a random suffix.
func randomHolder() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	if len(host) > 64 {
		host = host[:64]
	}
	if host == "" {
		host = "audit"
	}
	return host + "/" + hex.EncodeToString(b)
}

// lastEntryN returns the data of the last entry of log (nil if it is
// empty) and the log's length.
func lastEntryN(ctx context.Context, st store.Log, log string) ([]byte, int64, error) {
	n, err := st.Len(ctx, log)
	if err != nil || n == 0 {
		return nil, n, err
	}
	es, err := st.Read(ctx, log, n-1, 1)
	if err != nil {
		return nil, 0, err
	}
	if len(es) == 0 || es[0].Index != n-1 {
		return nil, 0, fmt.Errorf("%w: entry %d of %s is missing", ErrTampered, n-1, log)
	}
	return es[0].Data, n, nil
}

// hasSeq reports whether a stored record carries seq as its Seq, where
// the log's encoding puts it (withSeq).
func hasSeq(data []byte, seq int64) bool {
	var b [32]byte
	p := append(b[:0], `{"seq":`...)
	p = strconv.AppendInt(p, seq, 10)
	p = append(p, ',')
	return bytes.HasPrefix(data, p)
}

// appendHashes stores the hashes-log entries of records from, from+1, …
// With a store that appends conditionally (store.MultiLog) each entry
// must land at its record's index: if another writer sharing the store
// stored hashes there first, they must be the same bytes (both computed
// them from the same records; other bytes wrap ErrTampered), and the log
// goes on after them. Without, the log is the store's only writer and an
// append that lands elsewhere wraps ErrConcurrentWriter.
func (l *Log) appendHashes(ctx context.Context, from int64, entries [][]byte) error {
	for len(entries) > 0 {
		chunk := entries[:min(len(entries), store.MaxBatch)]
		if l.ml == nil {
			first, err := l.st.Append(ctx, HashesLog, chunk...)
			if err != nil {
				return err
			}
			if first != from {
				return fmt.Errorf("%w: hashes stored at %d, expected %d", ErrConcurrentWriter, first, from)
			}
			from += int64(len(chunk))
			entries = entries[len(chunk):]
			continue
		}
		_, err := l.ml.AppendLogs(ctx, store.LogAppend{Log: HashesLog, Entries: chunk, IfAt: true, At: from})
		if err == nil {
			from += int64(len(chunk))
			entries = entries[len(chunk):]
			continue
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		stored, err := l.st.Read(ctx, HashesLog, from, len(chunk))
		if err != nil {
			return err
		}
		if len(stored) == 0 {
			return fmt.Errorf("%w: the hashes log ends before record %d, whose hashes are due", ErrConcurrentWriter, from)
		}
		for i, e := range stored {
			if e.Index != from+int64(i) || !bytes.Equal(e.Data, chunk[i]) {
				return fmt.Errorf("%w: the hashes log holds other hashes for record %d than its record's", ErrTampered, from+int64(i))
			}
		}
		from += int64(len(stored))
		entries = entries[len(stored):]
	}
	return nil
}

// catchUp takes into the log's tree the records other writers sharing
// the store committed after it: those the latest seal covers, once the
// tree they end has the seal's hash. It returns how many records it took,
// and whether the store holds records after them that no seal covers,
// which it does not take (the next commit declares them unaccounted).
// Nothing changes on an error. A store that cannot append conditionally
// has one writer: nothing to catch up with. Called with wmu held, the
// log not broken.
//
// The seal is read after the records log's length: a seal is stored in
// the same write as the records it ends, and seals follow one another as
// their records do, so the latest seal covers at least every record of
// that length that a writer of the log committed.
func (l *Log) catchUp(ctx context.Context) (adopted int64, unsealed bool, err error) {
	if l.ml == nil {
		return 0, false, nil
	}
	size, err := l.st.Len(ctx, RecordsLog)
	if err != nil {
		return 0, false, fmt.Errorf("records log: %w", err)
	}
	switch {
	case size < l.size:
		return 0, false, fmt.Errorf("%w: the records log shrank from %d to %d records while open", ErrTampered, l.size, size)
	case size == l.size:
		return 0, false, nil
	}
	data, err := lastEntry(ctx, l.st, SealsLog)
	if err != nil {
		return 0, false, fmt.Errorf("read the seal: %w", err)
	}
	var tree tlog.Tree
	if data != nil {
		if tree, err = l.openSigned(data); err != nil {
			return 0, false, fmt.Errorf("the seal: %w", err)
		}
	}
	if tree.N <= l.size {
		return 0, true, nil
	}
	n0 := l.size
	saved := l.front.clone()
	fail := func(err error) (int64, bool, error) {
		l.front = saved
		return 0, false, err
	}
	hashes := make([][]byte, 0, min(tree.N-n0, 4096))
	c := newCursor(l.st, RecordsLog, n0)
	c.page = int(min(int64(l.maxBatch), tree.N-n0))
	for n := n0; n < tree.N; n++ {
		e, ok, err := c.read(ctx)
		if err != nil {
			return fail(err)
		}
		if !ok || e.Index != n {
			return fail(fmt.Errorf("%w: record %d, which the seal of %d records covers, is missing", ErrTampered, n, tree.N))
		}
		if !hasSeq(e.Data, n) {
			return fail(fmt.Errorf("%w: record %d does not carry its index as its seq", ErrTampered, n))
		}
		h, err := l.front.next(n, e.Data)
		if err != nil {
			return fail(err)
		}
		hashes = append(hashes, h)
		if (n+1)&0xfff == 0 {
			l.front.prune(n + 1)
		}
	}
	h, err := tlog.TreeHash(tree.N, l.front)
	if err != nil {
		return fail(err)
	}
	if h != tree.Hash {
		return fail(fmt.Errorf("%w: the seal of %d records does not match them", ErrTampered, tree.N))
	}
	l.front.prune(tree.N)
	l.size, l.sealed = tree.N, tree.N
	l.committed.Store(tree.N)
	if len(l.hashBuf) == 0 {
		l.hashFrom = n0
	}
	l.hashBuf = append(l.hashBuf, hashes...)
	l.adopted.Add(tree.N - n0)
	l.log.DebugContext(ctx, "audit: took the records another writer committed into the tree",
		slog.Int64("from", n0), slog.Int64("to", tree.N))
	return tree.N - n0, tree.N < size, nil
}

// mayHoldLease reports whether the log holds the checkpoint lease or may
// ask for it now. Called with wmu held.
func (l *Log) mayHoldLease() bool {
	return l.leases == nil || l.lease != nil || !time.Now().Before(l.leaseRetryAt)
}

// holdLease reports whether the log may write checkpoints: with a store
// that has leases, whether it holds the checkpoint lease, which it takes
// when free or expired and renews once a third of its time has passed. A
// log that found it held by another writer asks again only after a while,
// unless force. Called with wmu held.
//
// The lease's times are the store's; the log keeps its own (time.Now)
// for when to renew, well before the lease expires.
func (l *Log) holdLease(ctx context.Context, force bool) (bool, error) {
	if l.leases == nil {
		return true, nil
	}
	now := time.Now()
	if l.lease != nil && now.Before(l.leaseRenewAt) {
		return true, nil
	}
	if l.lease == nil && !force && now.Before(l.leaseRetryAt) {
		return false, nil
	}
	lease, err := l.leases.AcquireLease(ctx, CheckpointLease, l.holder, l.leaseTTL)
	switch {
	case err == nil:
		if l.lease == nil || l.lease.Token != lease.Token {
			l.log.InfoContext(ctx, "audit: this log writes the checkpoints", slog.String("holder", l.holder))
		}
		l.lease = &lease
		l.leaseRenewAt = now.Add(l.leaseTTL / 3)
		return true, nil
	case errors.Is(err, store.ErrLeaseHeld):
		if l.lease != nil {
			l.log.WarnContext(ctx, "audit: the checkpoint lease passed to another writer", slog.String("holder", l.holder))
		}
		l.lease = nil
		l.leaseRetryAt = now.Add(min(l.leaseTTL/4, leaseRetryMax))
		return false, nil
	default:
		return false, err
	}
}

// releaseLease gives the checkpoint lease up, if the log holds it, so
// that another writer takes over the checkpoints at once. Called with wmu
// held.
func (l *Log) releaseLease(ctx context.Context) error {
	if l.leases == nil || l.lease == nil {
		return nil
	}
	lease := *l.lease
	l.lease = nil
	if err := l.leases.ReleaseLease(ctx, lease); err != nil && !errors.Is(err, store.ErrLeaseLost) {
		return err
	}
	return nil
}

// errNotHolder: another writer holds the checkpoint lease.
var errNotHolder = errors.New("audit: another writer writes the checkpoints")

// storeCheckpoint appends msg, the checkpoint of the tree of n records,
// to the checkpoints log. With a store that appends conditionally it must
// land right after the checkpoint the log knows to be the latest: if
// another writer (which held the lease before) stored one meanwhile, that
// one is read, and if it covers n records or more it stands in for msg,
// which is not stored (sizes never decrease); else msg goes after it. It
// returns the checkpoint that is the latest now, its size, and whether it
// is msg. Called with wmu held.
func (l *Log) storeCheckpoint(ctx context.Context, msg []byte, n int64) ([]byte, int64, bool, error) {
	if l.ml == nil {
		if _, err := l.st.Append(ctx, CheckpointsLog, msg); err != nil {
			return nil, 0, false, err
		}
		return msg, n, true, nil
	}
	for range 8 {
		firsts, err := l.ml.AppendLogs(ctx, store.LogAppend{Log: CheckpointsLog, Entries: [][]byte{msg}, IfAt: true, At: l.cpLen})
		if err == nil {
			l.cpLen = firsts[0] + 1
			return msg, n, true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, 0, false, err
		}
		last, cpLen, err := lastEntryN(ctx, l.st, CheckpointsLog)
		if err != nil {
			return nil, 0, false, fmt.Errorf("read the latest checkpoint: %w", err)
		}
		l.cpLen = cpLen
		if last == nil {
			continue
		}
		tree, err := l.openSigned(last)
		if err != nil {
			return nil, 0, false, fmt.Errorf("the latest checkpoint: %w", err)
		}
		if tree.N >= n {
			return last, tree.N, false, nil
		}
	}
	return nil, 0, false, fmt.Errorf("%w: other writers keep storing checkpoints", store.ErrConflict)
}

// clone returns a copy of the frontier.
func (f *frontier) clone() *frontier {
	c := &frontier{h: make(map[int64]tlog.Hash, len(f.h))}
	for k, v := range f.h {
		c.h[k] = v
	}
	return c
}

// Writers that commit back to back never leave the others room: a log
// overtaken once catches up and tries again, but by then the writer that
// overtook it has its next commit under way, and so on. A log overtaken
// overtakenSignal times on one batch therefore puts a short-lived record
// in the store ([ContentionKey]); every log looks for it at most every
// contentionCheck while it commits (one read), and while it was seen in
// the last contentionTTL, pauses after each commit for twice the time
// the commit took (yieldMin to yieldMax): the others' commits land in the
// pauses, and the records that arrive meanwhile go into the next, larger
// batch. A log that runs alone never sees the record and never pauses.
const (
	overtakenSignal = 3
	contentionTTL   = time.Second
	contentionCheck = 50 * time.Millisecond
	yieldMin        = time.Millisecond
	yieldMax        = 20 * time.Millisecond
)

// ContentionNamespace and ContentionKey name the record (store.KV) by
// which writers of a shared log that keep being overtaken ask the others
// for room.
const (
	ContentionNamespace = "audit"
	ContentionKey       = "contended"
)

// signalContention puts the contention record, unless the log did so a
// moment ago. Called with wmu held.
func (l *Log) signalContention(ctx context.Context) {
	if l.kv == nil {
		return
	}
	now := time.Now()
	l.contendedAt = now
	if now.Sub(l.signalledAt) < contentionTTL/4 {
		return
	}
	l.signalledAt = now
	if _, err := l.kv.Put(ctx, ContentionNamespace, ContentionKey, []byte(l.holder), store.PutOptions{TTL: contentionTTL}); err != nil {
		l.log.WarnContext(ctx, "audit: signalling contention failed", slog.Any("error", err))
	}
}

// watchContention looks for the contention record, at most every
// contentionCheck. Called with wmu held.
func (l *Log) watchContention(ctx context.Context) {
	if l.kv == nil {
		return
	}
	now := time.Now()
	if now.Before(l.contCheckAt) {
		return
	}
	l.contCheckAt = now.Add(contentionCheck)
	if _, err := l.kv.Get(ctx, ContentionNamespace, ContentionKey); err == nil {
		l.contendedAt = now
	}
}

// yieldTime is how long the committer pauses after a commit: while other
// writers asked for room, twice what the commit took.
func (l *Log) yieldTime() time.Duration {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.contendedAt.IsZero() || time.Since(l.contendedAt) > contentionTTL {
		return 0
	}
	return min(max(2*l.commitTook, yieldMin), yieldMax)
}
