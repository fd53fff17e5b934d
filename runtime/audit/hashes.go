package audit

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/store"
)

// Names of the store logs the audit log uses (see the package doc).
const (
	RecordsLog     = "audit"
	HashesLog      = "audit.hashes"
	CheckpointsLog = "audit.checkpoints"
	SealsLog       = "audit.seals"
)

// lastEntry returns the data of the last entry of log, or nil if it is
// empty.
func lastEntry(ctx context.Context, st store.Log, log string) ([]byte, error) {
	data, _, err := lastEntryN(ctx, st, log)
	return data, err
}

// frontier holds the stored hashes of the maximal complete subtrees on the
// right edge of the tree: all that is needed to compute the stored hashes
// of the next record and the tree hash. It implements tlog.HashReader.
type frontier struct {
	h map[int64]tlog.Hash
}

func newFrontier() *frontier { return &frontier{h: make(map[int64]tlog.Hash)} }

// ReadHashes implements tlog.HashReader.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := f.h[x]
		if !ok {
			return nil, fmt.Errorf("audit: stored hash %d is not in the tree frontier", x)
		}
		out[i] = h
	}
	return out, nil
}

// add records the stored hashes of record n.
func (f *frontier) add(n int64, hashes []tlog.Hash) {
	for level, h := range hashes {
		f.h[tlog.StoredHashIndex(level, n>>uint(level))] = h
	}
}

// next computes the stored hashes of record n from its data, adds them and
// returns them encoded as one hashes-log entry.
func (f *frontier) next(n int64, data []byte) ([]byte, error) {
	hashes, err := tlog.StoredHashes(n, data, f)
	if err != nil {
		return nil, err
	}
	f.add(n, hashes)
	return encodeHashes(hashes), nil
}

// prune drops every hash not on the frontier of a tree of size records.
func (f *frontier) prune(size int64) {
	keep := make(map[int64]bool)
	for _, x := range frontierIndexes(size) {
		keep[x] = true
	}
	for x := range f.h {
		if !keep[x] {
			delete(f.h, x)
		}
	}
}

// frontierIndexes returns the stored hash indexes of the maximal complete
// subtrees of a tree of size records, left to right.
func frontierIndexes(size int64) []int64 {
	var out []int64
	start := int64(0)
	for level := 62; level >= 0; level-- {
		if size&(1<<uint(level)) != 0 {
			out = append(out, tlog.StoredHashIndex(level, start>>uint(level)))
			start += 1 << uint(level)
		}
	}
	return out
}

func encodeHashes(hashes []tlog.Hash) []byte {
	out := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		out = append(out, h[:]...)
	}
	return out
}

// hashCount is the number of stored hashes record n adds: one for its leaf
// and one for each subtree it completes.
func hashCount(n int64) int {
	c := 1
	for m := n; m&1 == 1; m >>= 1 {
		c++
	}
	return c
}

// hashCache caches hashes-log entries by record index. Entries never change
// once written, so the cache needs no invalidation.
type hashCache struct {
	mu sync.Mutex
	m  map[int64][]byte
}

const hashCacheMax = 1 << 14

func (c *hashCache) get(n int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[n]
	return b, ok
}

func (c *hashCache) put(n int64, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= hashCacheMax {
		c.m = make(map[int64][]byte)
	}
	c.m[n] = b
}

// storeHashes is a tlog.HashReader backed by the hashes log: the stored
// hash (level, k) is hash number level of the entry of record
// (k+1)<<level - 1, the record that completed its subtree.
type storeHashes struct {
	ctx   context.Context
	log   store.Log
	size  int64 // records whose hashes may be read
	cache *hashCache
}

// ReadHashes implements tlog.HashReader.
func (r *storeHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 {
			return nil, fmt.Errorf("audit: negative stored hash index %d", x)
		}
		level, k := tlog.SplitStoredHashIndex(x)
		if level > 62 || k >= (r.size>>uint(level))+1 {
			return nil, fmt.Errorf("audit: stored hash %d is beyond the tree of %d records", x, r.size)
		}
		n := (k+1)<<uint(level) - 1
		if n >= r.size {
			return nil, fmt.Errorf("audit: stored hash %d is beyond the tree of %d records", x, r.size)
		}
		data, err := r.entry(n)
		if err != nil {
			return nil, err
		}
		if len(data) != hashCount(n)*tlog.HashSize {
			return nil, fmt.Errorf("audit: hashes entry %d has %d bytes, want %d", n, len(data), hashCount(n)*tlog.HashSize)
		}
		copy(out[i][:], data[level*tlog.HashSize:])
	}
	return out, nil
}

func (r *storeHashes) entry(n int64) ([]byte, error) {
	if r.cache != nil {
		if b, ok := r.cache.get(n); ok {
			return b, nil
		}
	}
	es, err := r.log.Read(r.ctx, HashesLog, n, 1)
	if err != nil {
		return nil, fmt.Errorf("audit: read stored hashes of record %d: %w", n, err)
	}
	if len(es) == 0 || es[0].Index != n {
		return nil, fmt.Errorf("audit: stored hashes of record %d are missing", n)
	}
	if r.cache != nil {
		r.cache.put(n, es[0].Data)
	}
	return es[0].Data, nil
}

// cursor reads a store log sequentially in pages.
type cursor struct {
	log  store.Log
	name string
	next int64
	buf  []store.Entry
	eof  bool
	page int
}

func newCursor(log store.Log, name string, from int64) *cursor {
	return &cursor{log: log, name: name, next: from, page: store.MaxLimit}
}

// read returns the next stored entry, or ok false at the end of the log.
// The entry's Index may skip indexes that are missing from the store.
func (c *cursor) read(ctx context.Context) (e store.Entry, ok bool, err error) {
	if len(c.buf) == 0 {
		if c.eof {
			return store.Entry{}, false, nil
		}
		c.buf, err = c.log.Read(ctx, c.name, c.next, c.page)
		if err != nil {
			return store.Entry{}, false, fmt.Errorf("audit: read log %s from %d: %w", c.name, c.next, err)
		}
		if len(c.buf) < c.page {
			c.eof = true
		}
		if len(c.buf) == 0 {
			return store.Entry{}, false, nil
		}
	}
	e, c.buf = c.buf[0], c.buf[1:]
	c.next = e.Index + 1
	return e, true, nil
}
