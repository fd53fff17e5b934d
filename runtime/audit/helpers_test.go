package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// fakeLog is an in-memory store.Log whose contents tests can tamper with
// and whose appends can be made to fail or to wait.
type fakeLog struct {
	mu         sync.Mutex
	logs       map[string][]store.Entry
	failHashes int              // upcoming hashes appends that fail
	failRecs   int              // upcoming records appends that fail
	failSeals  int              // upcoming seals appends that fail
	failAfter  string           // a log whose next append is applied, then reported failed
	before     func(log string) // called before every append, unlocked
	appends    map[string]int   // number of successful appends per log
	sizes      map[string][]int // entries per successful append
}

var _ store.Log = (*fakeLog)(nil)

func newFakeLog() *fakeLog {
	return &fakeLog{logs: map[string][]store.Entry{}, appends: map[string]int{}, sizes: map[string][]int{}}
}

// seal returns the latest commit seal, or nil.
func (f *fakeLog) seal() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	es := f.logs[SealsLog]
	if len(es) == 0 {
		return nil
	}
	return slices.Clone(es[len(es)-1].Data)
}

// dropSealsAbove removes the seals of trees of more than n records, as
// someone removing the newest records would.
func (f *fakeLog) dropSealsAbove(t *testing.T, n int64) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var keep []store.Entry
	for _, e := range f.logs[SealsLog] {
		size, err := CheckpointSize(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if size <= n {
			keep = append(keep, e)
		}
	}
	f.logs[SealsLog] = keep
}

var errInjected = errors.New("injected store failure")

func (f *fakeLog) Append(ctx context.Context, log string, entries ...[]byte) (int64, error) {
	if f.before != nil {
		f.before(log)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := store.ValidateAppend(log, entries); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if log == HashesLog && f.failHashes > 0 {
		f.failHashes--
		return 0, errInjected
	}
	if log == RecordsLog && f.failRecs > 0 {
		f.failRecs--
		return 0, errInjected
	}
	if log == SealsLog && f.failSeals > 0 {
		f.failSeals--
		return 0, errInjected
	}
	first := f.lenLocked(log)
	for i, e := range entries {
		f.logs[log] = append(f.logs[log], store.Entry{Index: first + int64(i), Data: slices.Clone(e)})
	}
	f.appends[log]++
	f.sizes[log] = append(f.sizes[log], len(entries))
	if f.failAfter == log {
		// Applied, but the caller hears of a failure (a lost answer).
		f.failAfter = ""
		return 0, errInjected
	}
	return first, nil
}

func (f *fakeLog) lenLocked(log string) int64 {
	l := f.logs[log]
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1].Index + 1
}

func (f *fakeLog) Read(ctx context.Context, log string, from int64, limit int) ([]store.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := store.ValidateRead(log, from, limit); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Entry
	for _, e := range f.logs[log] {
		if e.Index >= from && len(out) < limit {
			out = append(out, store.Entry{Index: e.Index, Data: slices.Clone(e.Data)})
		}
	}
	return out, nil
}

func (f *fakeLog) Len(ctx context.Context, log string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lenLocked(log), nil
}

// data returns a copy of entry i of log.
func (f *fakeLog) data(t *testing.T, log string, i int64) []byte {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.logs[log] {
		if e.Index == i {
			return slices.Clone(e.Data)
		}
	}
	t.Fatalf("%s entry %d not found", log, i)
	return nil
}

// set replaces the data of entry i of log.
func (f *fakeLog) set(t *testing.T, log string, i int64, data []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.logs[log] {
		if f.logs[log][k].Index == i {
			f.logs[log][k].Data = data
			return
		}
	}
	t.Fatalf("%s entry %d not found", log, i)
}

// remove deletes entry i of log; with renumber, later entries move down
// so that the log has no gap.
func (f *fakeLog) remove(log string, i int64, renumber bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Entry
	for _, e := range f.logs[log] {
		switch {
		case e.Index == i:
			continue
		case e.Index > i && renumber:
			e.Index--
		}
		out = append(out, e)
	}
	f.logs[log] = out
}

// truncate keeps the first n entries of log.
func (f *fakeLog) truncate(log string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Entry
	for _, e := range f.logs[log] {
		if e.Index < n {
			out = append(out, e)
		}
	}
	f.logs[log] = out
}

func (f *fakeLog) count(log string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lenLocked(log)
}

// testKeys returns a fresh signing key pair for the trust domain
// example.org.
func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, _, err := GenerateKey(rand.Reader, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	s, v, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// fixedClock returns a clock that starts at a fixed time and advances one
// millisecond per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func openLog(t testing.TB, st store.Log, s note.Signer, v note.Verifier, every int) *Log {
	t.Helper()
	l, err := Open(context.Background(), Config{
		Log: st, Signer: s, Verifier: v, Now: fixedClock(),
		CheckpointEvery: every, CheckpointInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openSQLite(t testing.TB, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), sqlitestore.Config{Path: filepath.Join(dir, "audit.db")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testRecord returns a plausible record number i.
func testRecord(i int) Record {
	return Record{
		Time:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Agent:       "planner",
		AgentID:     "spiffe://example.org/agent/planner",
		Subject:     "alice",
		Action:      ActionToolCall,
		Resource:    fmt.Sprintf("tool-%d", i%7),
		Decision:    DecisionAllow,
		Policy:      "default",
		Reason:      "permitted by role",
		Outcome:     OutcomeOK,
		Task:        "task-1",
		Txn:         fmt.Sprintf("txn-%d", i),
		Chain:       []string{"spiffe://example.org/agent/root", "spiffe://example.org/agent/planner"},
		ArgsSHA256:  TokenRef(fmt.Sprint("args", i)),
		TokenSHA256: TokenRef(fmt.Sprint("token", i)),
	}
}

// fill appends n test records and closes the log, which writes a final
// checkpoint.
func fill(t *testing.T, st store.Log, s note.Signer, v note.Verifier, n, every int) {
	t.Helper()
	l := openLog(t, st, s, v, every)
	ctx := context.Background()
	for i := range n {
		idx, err := l.Append(ctx, testRecord(i))
		if err != nil {
			t.Fatal(err)
		}
		if idx != int64(i) {
			t.Fatalf("Append #%d returned index %d", i, idx)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// clone returns a copy of the store's contents, as a snapshot (or backup)
// of it would hold them.
func (f *fakeLog) clone() *fakeLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := newFakeLog()
	for name, es := range f.logs {
		for _, e := range es {
			c.logs[name] = append(c.logs[name], store.Entry{Index: e.Index, Data: slices.Clone(e.Data)})
		}
	}
	return c
}
