package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/memstore"
)

func TestKeys(t *testing.T) {
	skey, vkey, err := GenerateKey(rand.Reader, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(vkey, "agenthost-audit/example.org+") {
		t.Errorf("verifier key %q does not carry the key name", vkey)
	}
	s, v, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := ParseVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != pv.Name() || v.KeyHash() != pv.KeyHash() {
		t.Errorf("ParseKey verifier %s+%08x, ParseVerifier %s+%08x", v.Name(), v.KeyHash(), pv.Name(), pv.KeyHash())
	}
	msg := []byte("hello\n")
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !pv.Verify(msg, sig) {
		t.Error("published verifier rejects the signer's signature")
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	skey2, vkey2, err := EncodeKey("example.org", priv)
	if err != nil {
		t.Fatal(err)
	}
	s2, _, err := ParseKey(skey2)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ParseVerifier(vkey2)
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := s2.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !v2.Verify(msg, sig2) || !ed25519.Verify(priv.Public().(ed25519.PublicKey), msg, sig2) {
		t.Error("encoded key does not sign with the given private key")
	}

	for _, td := range []string{"", "a+b", "a b"} {
		if _, err := KeyName(td); err == nil {
			t.Errorf("KeyName(%q) succeeded", td)
		}
	}
	if _, _, err := ParseKey("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Error("ParseKey accepted garbage")
	}
	if _, err := ParseVerifier("nonsense"); err == nil {
		t.Error("ParseVerifier accepted garbage")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	_, otherV := testKeys(t)
	for name, cfg := range map[string]Config{
		"no log":          {Signer: s, Verifier: v},
		"no signer":       {Log: newFakeLog(), Verifier: v},
		"no verifier":     {Log: newFakeLog(), Signer: s},
		"mismatched keys": {Log: newFakeLog(), Signer: s, Verifier: otherV},
	} {
		if _, err := Open(ctx, cfg); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
			t.Errorf("%s: Open error = %v", name, err)
		}
	}
}

func TestAppendRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	var want []Record
	for i := range 5 {
		r := testRecord(i)
		r.Seq = 99 // ignored
		if i == 2 {
			r.Time = time.Time{} // set from the clock
		}
		idx, err := l.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if idx != int64(i) {
			t.Fatalf("index %d, want %d", idx, i)
		}
		want = append(want, r)
	}
	if l.Size() != 5 {
		t.Errorf("Size = %d, want 5", l.Size())
	}
	got, err := Read(ctx, st, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("Read returned %d records, want 5", len(got))
	}
	for i, e := range got {
		if e.Index != int64(i) || e.Record.Seq != int64(i) {
			t.Errorf("entry %d: index %d seq %d", i, e.Index, e.Record.Seq)
		}
		if e.Record.Time.IsZero() {
			t.Errorf("entry %d: time not set", i)
		}
		w := want[i]
		w.Seq, w.Time = e.Record.Seq, e.Record.Time
		if e.Record.Reason != w.Reason || e.Record.Txn != w.Txn || strings.Join(e.Record.Chain, ",") != strings.Join(w.Chain, ",") ||
			e.Record.TokenSHA256 != w.TokenSHA256 || e.Record.AgentID != w.AgentID {
			t.Errorf("entry %d = %+v, want %+v", i, e.Record, w)
		}
	}
	tail, err := Tail(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 2 || tail[0].Index != 3 || tail[1].Index != 4 {
		t.Errorf("Tail(2) = %+v", tail)
	}
	if _, err := l.Latest(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest before any checkpoint: %v, want ErrNotFound", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Append(ctx, testRecord(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	cp, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := OpenCheckpoint(cp, v)
	if err != nil || tree.N != 5 {
		t.Fatalf("final checkpoint: %+v, %v", tree, err)
	}
	rep, err := Verify(ctx, st, v)
	if err != nil {
		t.Fatalf("Verify: %v (%+v)", err, rep)
	}
	if rep.Records != 5 || rep.Checkpoints != 1 || rep.Covered != 5 || !rep.OK() {
		t.Errorf("report %+v", rep)
	}
}

// TestAppendRedactsTokens: a record whose text holds a JSON Web Token is
// written, never refused, with the token replaced by a marker naming its
// SHA-256 and the field listed in Redacted.
func TestAppendRedactsTokens(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, 0)
	defer l.Close(ctx)
	jwt := "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	unsigned := "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
	jwe := "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn"
	marker := func(tok string) string {
		sum := sha256.Sum256([]byte(tok))
		return "[redacted: jwt sha256:" + hex.EncodeToString(sum[:8]) + "]"
	}
	tests := []struct {
		name     string
		mod      func(*Record)
		get      func(*Record) string
		want     string
		redacted []string
	}{
		{"tool name", func(r *Record) { r.Resource = jwt }, func(r *Record) string { return r.Resource }, marker(jwt), []string{"resource"}},
		{"in a sentence", func(r *Record) { r.Reason = "called with Bearer " + jwt + " today" },
			func(r *Record) string { return r.Reason }, "called with Bearer " + marker(jwt) + " today", []string{"reason"}},
		{"jti", func(r *Record) { r.TokenJTI = jwt }, func(r *Record) string { return r.TokenJTI }, marker(jwt), []string{"token_jti"}},
		{"chain", func(r *Record) { r.Chain = []string{"a", jwt} }, func(r *Record) string { return r.Chain[1] }, marker(jwt), []string{"chain[1]"}},
		{"two tokens", func(r *Record) { r.Error = jwt + " then " + unsigned }, func(r *Record) string { return r.Error },
			marker(jwt) + " then " + marker(unsigned), []string{"error"}},
		{"unsigned", func(r *Record) { r.Cause = unsigned }, func(r *Record) string { return r.Cause }, marker(unsigned), []string{"cause"}},
		{"jwe", func(r *Record) { r.Agent = "x" + " " + jwe + "." }, func(r *Record) string { return r.Agent }, "x " + marker(jwe) + ".", []string{"agent"}},
		{"several fields", func(r *Record) { r.Resource, r.Subject = jwt, unsigned }, func(r *Record) string { return r.Resource + "|" + r.Subject },
			marker(jwt) + "|" + marker(unsigned), []string{"sub", "resource"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRecord(0)
			tt.mod(&r)
			r.Redacted = make([]string, 0, 4) // room Append must not write into
			orig := slices.Clone(r.Chain)
			idx, err := l.Append(ctx, r)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !slices.Equal(r.Chain, orig) || slices.ContainsFunc(r.Redacted[:cap(r.Redacted)], func(s string) bool { return s != "" }) {
				t.Errorf("the caller's record changed: chain %v, redacted %v", r.Chain, r.Redacted[:cap(r.Redacted)])
			}
			data := st.data(t, RecordsLog, idx)
			for _, tok := range []string{jwt, unsigned, jwe} {
				if bytes.Contains(data, []byte(tok)) {
					t.Fatalf("stored record holds the token: %s", data)
				}
			}
			es, err := Read(ctx, st, idx, 1)
			if err != nil {
				t.Fatal(err)
			}
			got := es[0].Record
			if tt.get(&got) != tt.want || !slices.Equal(got.Redacted, tt.redacted) {
				t.Errorf("stored %q, redacted %v; want %q, %v", tt.get(&got), got.Redacted, tt.want, tt.redacted)
			}
		})
	}
	// Text that merely resembles parts of a token is kept as it is.
	r := testRecord(0)
	r.Reason = "eyJ is how a JSON object starts in base64; a.b.c is a path"
	r.Resource = "eyJhbGciOiJFUzI1NiJ9"
	idx, err := l.Append(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	es, err := Read(ctx, st, idx, 1)
	if err != nil || es[0].Record.Reason != r.Reason || es[0].Record.Resource != r.Resource || es[0].Record.Redacted != nil {
		t.Errorf("harmless text changed: %+v, %v", es, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

func TestAppendRejectsInvalidRecords(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, 0)
	defer l.Close(ctx)
	for name, mod := range map[string]func(*Record){
		"empty action":    func(r *Record) { r.Action = "" },
		"unknown decide":  func(r *Record) { r.Decision = "maybe" },
		"unknown outcome": func(r *Record) { r.Outcome = "fine" },
		"too large":       func(r *Record) { r.Reason = strings.Repeat("x", 1<<24) },
	} {
		r := testRecord(0)
		mod(&r)
		if _, err := l.Append(ctx, r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: Append error = %v, want ErrInvalidRecord", name, err)
		}
	}
	if n := st.count(RecordsLog); n != 0 {
		t.Errorf("records log holds %d entries, want 0", n)
	}
}

func TestTokenRef(t *testing.T) {
	if got, want := TokenRef("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("TokenRef(abc) = %s, want %s", got, want)
	}
}

// TestGroupCommitBatches holds the first commit in the store until 63 more
// writers are waiting, then checks they were committed together.
func TestGroupCommitBatches(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	const writers = 64
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.before = func(log string) {
		if log == RecordsLog {
			once.Do(func() { close(entered); <-release })
		}
	}
	var wg sync.WaitGroup
	idx := make([]int64, writers)
	errs := make([]error, writers)
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx[i], errs[i] = l.Append(ctx, testRecord(i))
		}()
	}
	start(0)
	<-entered // the first commit is in the store, holding the committer
	for i := 1; i < writers; i++ {
		start(i)
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.pending) == writers-1 })
	close(release)
	wg.Wait()
	seen := map[int64]bool{}
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if seen[idx[i]] || idx[i] < 0 || idx[i] >= writers {
			t.Fatalf("writer %d got index %d (duplicate or out of range)", i, idx[i])
		}
		seen[idx[i]] = true
	}
	// The hashes follow the records in one write of their own.
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	sizes := append([]int(nil), st.sizes[RecordsLog]...)
	hsizes := append([]int(nil), st.sizes[HashesLog]...)
	st.mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != writers-1 {
		t.Errorf("records appends of sizes %v, want [1 %d]", sizes, writers-1)
	}
	if len(hsizes) != 1 || hsizes[0] != writers {
		t.Errorf("hashes appends of sizes %v, want [%d]", hsizes, writers)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil {
		t.Fatalf("Verify: %v (%+v)", err, rep)
	}
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommitSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openSQLite(t, dir)
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 100)
	const writers, each = 64, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]int{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				idx, err := l.Append(ctx, testRecord(w*each+i))
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				seen[idx]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != writers*each {
		t.Fatalf("%d distinct indexes, want %d", len(seen), writers*each)
	}
	for i := range int64(writers * each) {
		if seen[i] != 1 {
			t.Fatalf("index %d returned %d times", i, seen[i])
		}
	}
	h, err := l.TreeHash(ctx, writers*each)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Everything acknowledged is on disk.
	st = openSQLite(t, dir)
	defer st.Close()
	rep, err := Verify(ctx, st, v)
	if err != nil {
		t.Fatalf("Verify: %v (%+v)", err, rep)
	}
	if rep.Records != writers*each || rep.TreeHash != h || rep.Checkpoints < 2 {
		t.Errorf("report %+v, want %d records and tree hash %v", rep, writers*each, h)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openSQLite(t, dir)
	s, v := testKeys(t)
	const n = 2000
	l := openLog(t, st, s, v, 100)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 16 {
				if _, err := l.Append(ctx, testRecord(w*1000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := Verify(ctx, st, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Simulate a crash between the two appends of the last commits: the
	// records are on disk, their hashes are not.
	db, err := sql.Open("sqlite", filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM log_entries WHERE log = ? AND idx >= ?`, HashesLog, n-37)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := res.RowsAffected(); k != 37 {
		t.Fatalf("deleted %d hashes, want 37", k)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st = openSQLite(t, dir)
	defer st.Close()
	if h, _ := st.Len(ctx, HashesLog); h != n-37 {
		t.Fatalf("hashes log holds %d entries, want %d", h, n-37)
	}
	l = openLog(t, st, s, v, 100)
	if l.Size() != n {
		t.Fatalf("reopened size %d, want %d", l.Size(), n)
	}
	if h, _ := st.Len(ctx, HashesLog); h != n {
		t.Fatalf("hashes not reconciled: %d entries, want %d", h, n)
	}
	h, err := l.TreeHash(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if h != before.TreeHash {
		t.Errorf("tree hash after reopen %v, before %v", h, before.TreeHash)
	}
	cp, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tree, err := OpenCheckpoint(cp, v); err != nil || tree.N != n || tree.Hash != h {
		t.Errorf("latest checkpoint %+v, %v", tree, err)
	}
	// Appending continues the same tree.
	idx, err := l.Append(ctx, testRecord(n))
	if err != nil || idx != n {
		t.Fatalf("Append after reopen: %d, %v", idx, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Records != n+1 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	if p, err := l.ConsistencyProof(ctx, n, n+1); err != nil {
		t.Fatal(err)
	} else if cp2, err := l.Latest(ctx); err != nil {
		t.Fatal(err)
	} else if err := VerifyConsistency(cp, cp2, p, v); err != nil {
		t.Errorf("consistency across the reopen: %v", err)
	}
}

// TestReconcileAfterCrash leaves records without their hashes, as a crash
// between the two appends of a commit would, and reopens.
func TestReconcileAfterCrash(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 10, 0)
	before, err := Verify(ctx, st, v)
	if err != nil {
		t.Fatal(err)
	}

	l := openLog(t, st, s, v, -1)
	st.mu.Lock()
	st.failHashes = 1 << 30 // the process "dies" before any hashes land
	st.mu.Unlock()
	// The record is durable when Append returns; its hashes follow, and
	// fail to land.
	if _, err := l.Append(ctx, testRecord(10)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if _, err := l.Checkpoint(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Checkpoint with failing hashes log: %v", err)
	}
	// While the record lacks its hashes no further record is stored.
	if _, err := l.Append(ctx, testRecord(11)); !errors.Is(err, errInjected) {
		t.Fatalf("second Append with failing hashes log: %v", err)
	}
	_ = l.Close(ctx) // fails too: the hashes cannot be written
	if r, h := st.count(RecordsLog), st.count(HashesLog); r != 11 || h != 10 {
		t.Fatalf("after the crash: %d records, %d hashes; want 11, 10", r, h)
	}
	// The record was sealed when it was acknowledged: without its hashes
	// it still verifies, on the seal's signature.
	if rep, err := Verify(ctx, st, v); err != nil || rep.Covered != 11 || rep.Records != 11 {
		t.Errorf("Verify before reconcile: %+v, %v", rep, err)
	}
	st.mu.Lock()
	st.failHashes = 0
	st.mu.Unlock()

	l = openLog(t, st, s, v, -1)
	if r, h := st.count(RecordsLog), st.count(HashesLog); r != 11 || h != 11 || l.Size() != 11 {
		t.Fatalf("after reopen: %d records, %d hashes, size %d; want 11", r, h, l.Size())
	}
	h10, err := l.TreeHash(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if h10 != before.TreeHash {
		t.Errorf("tree of the first 10 records changed: %v, was %v", h10, before.TreeHash)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Records != 11 || rep.Covered != 11 {
		t.Fatalf("Verify after reconcile: %+v, %v", rep, err)
	}
}

// TestReconcileInProcess fails one hashes append: the next write hashes
// the records again first, and every record ends up with its hashes.
func TestReconcileInProcess(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	if _, err := l.Append(ctx, testRecord(0)); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.failHashes = 1
	st.mu.Unlock()
	idx, err := l.Append(ctx, testRecord(1))
	if err != nil || idx != 1 {
		t.Fatalf("Append: %d, %v", idx, err)
	}
	if _, err := l.Checkpoint(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Checkpoint with a failing hashes append: %v", err)
	}
	idx, err = l.Append(ctx, testRecord(2))
	if err != nil || idx != 2 {
		t.Fatalf("Append after one failed hashes append: %d, %v", idx, err)
	}
	if h := st.count(HashesLog); h != 2 {
		t.Errorf("hashes log holds %d entries after the reconcile, want 2", h)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
}

func TestOpenDetectsTruncation(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 10, 0)
	st.truncate(RecordsLog, 8)
	st.truncate(HashesLog, 8)
	if _, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v}); !errors.Is(err, ErrTampered) {
		t.Errorf("Open of a truncated log: %v, want ErrTampered", err)
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, 4)
	if _, err := l.Checkpoint(ctx); !errors.Is(err, ErrNotFound) {
		t.Errorf("Checkpoint of an empty log: %v", err)
	}
	for i := range 10 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Automatic checkpoints at 4 and 8 records.
	if n := st.count(CheckpointsLog); n != 2 {
		t.Errorf("%d automatic checkpoints, want 2", n)
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp2, err := l.Checkpoint(ctx) // nothing new: the same note
	if err != nil || !bytes.Equal(cp, cp2) || st.count(CheckpointsLog) != 3 {
		t.Errorf("second Checkpoint: %v; %d checkpoints", err, st.count(CheckpointsLog))
	}
	tree, err := OpenCheckpoint(cp, v)
	if err != nil || tree.N != 10 {
		t.Fatalf("checkpoint %+v, %v", tree, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.count(CheckpointsLog); n != 3 {
		t.Errorf("Close wrote a checkpoint although nothing changed: %d", n)
	}
}

func TestCheckpointInterval(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, Now: clock, CheckpointEvery: -1, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if _, err := l.Append(ctx, testRecord(0)); err != nil {
		t.Fatal(err)
	}
	if n := st.count(CheckpointsLog); n != 0 {
		t.Fatalf("%d checkpoints before the interval passed", n)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, err := l.Append(ctx, testRecord(1)); err != nil {
		t.Fatal(err)
	}
	// The checkpoint follows the commit; wait for it.
	waitFor(t, func() bool { return st.count(CheckpointsLog) == 1 })
}

func TestProofs(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	defer l.Close(ctx)
	var checkpoints [][]byte
	for i := range 37 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
		if i == 0 || i == 6 || i == 36 {
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			checkpoints = append(checkpoints, cp)
		}
	}
	latest := checkpoints[2]
	for i := range int64(37) {
		p, err := l.InclusionProof(ctx, i, 37)
		if err != nil {
			t.Fatal(err)
		}
		rec := st.data(t, RecordsLog, i)
		if err := VerifyInclusion(latest, v, i, rec, p); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
		edited := bytes.Replace(rec, []byte("permitted"), []byte("forbidden"), 1)
		if err := VerifyInclusion(latest, v, i, edited, p); !errors.Is(err, ErrTampered) {
			t.Errorf("record %d edited: %v, want ErrTampered", i, err)
		}
		if len(p) > 0 {
			bad := append(tlog.RecordProof(nil), p...)
			bad[0][0] ^= 1
			if err := VerifyInclusion(latest, v, i, rec, bad); !errors.Is(err, ErrTampered) {
				t.Errorf("record %d with a tampered proof: %v", i, err)
			}
		}
	}
	// Inclusion in an older tree.
	p, err := l.InclusionProof(ctx, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(checkpoints[1], v, 3, st.data(t, RecordsLog, 3), p); err != nil {
		t.Errorf("inclusion in the tree of 7: %v", err)
	}
	if err := VerifyInclusion(checkpoints[1], v, 9, st.data(t, RecordsLog, 9), p); err == nil {
		t.Error("record 9 verified in a tree of 7")
	}

	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		oldCP, newCP := checkpoints[pair[0]], checkpoints[pair[1]]
		oldT, _ := OpenCheckpoint(oldCP, v)
		newT, _ := OpenCheckpoint(newCP, v)
		tp, err := l.ConsistencyProof(ctx, oldT.N, newT.N)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(oldCP, newCP, tp, v); err != nil {
			t.Errorf("consistency %d -> %d: %v", oldT.N, newT.N, err)
		}
		if len(tp) > 0 {
			bad := append(tlog.TreeProof(nil), tp...)
			bad[len(bad)-1][5] ^= 0x80
			if err := VerifyConsistency(oldCP, newCP, bad, v); !errors.Is(err, ErrTampered) {
				t.Errorf("consistency %d -> %d with a tampered proof: %v", oldT.N, newT.N, err)
			}
		}
		if err := VerifyConsistency(newCP, oldCP, tp, v); !errors.Is(err, ErrTampered) {
			t.Errorf("consistency with the checkpoints swapped: %v", err)
		}
	}
	// A checkpoint of a forked log fails against the genuine one.
	fork := newFakeLog()
	fl := openLog(t, fork, s, v, -1)
	for i := range 37 {
		r := testRecord(i)
		if i == 20 {
			r.Reason = "rewritten history"
		}
		if _, err := fl.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	forkCP, err := fl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := fl.ConsistencyProof(ctx, 7, 37)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(checkpoints[1], forkCP, tp, v); err != nil {
		t.Errorf("fork shares the first 7 records: %v", err)
	}
	tp, err = l.ConsistencyProof(ctx, 7, 37)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(checkpoints[1], forkCP, tp, v); !errors.Is(err, ErrTampered) {
		t.Errorf("forked checkpoint accepted with the genuine proof: %v", err)
	}
	_ = fl.Close(ctx)
	// Bad arguments.
	if _, err := l.InclusionProof(ctx, 37, 37); err == nil {
		t.Error("InclusionProof beyond the tree succeeded")
	}
	if _, err := l.ConsistencyProof(ctx, 8, 7); err == nil {
		t.Error("ConsistencyProof of a shrinking tree succeeded")
	}
	if _, err := l.ConsistencyProof(ctx, 1, 38); err == nil {
		t.Error("ConsistencyProof beyond the log succeeded")
	}
	_, otherV := testKeys(t)
	if err := VerifyInclusion(latest, otherV, 0, st.data(t, RecordsLog, 0), nil); err == nil {
		t.Error("checkpoint accepted with the wrong verifier")
	}
}

func TestAppendCancelled(t *testing.T) {
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.before = func(log string) {
		if log == RecordsLog {
			once.Do(func() { close(entered); <-release })
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, testRecord(0))
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Append: %v, want context.Canceled", err)
	}
	close(release)
	// The commit in progress completes: the record is stored with its
	// hashes.
	bg := context.Background()
	if err := l.Close(bg); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(bg, st, v); err != nil || rep.Records != 1 {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
	if _, err := l.Append(ctx, testRecord(1)); err == nil {
		t.Error("Append with a done context succeeded")
	}
}

func TestMaxBatch(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, MaxBatch: 10, CheckpointEvery: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.before = func(log string) {
		if log == RecordsLog {
			once.Do(func() { close(entered); <-release })
		}
	}
	var wg sync.WaitGroup
	run := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Append(ctx, testRecord(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	run(0)
	<-entered
	for i := 1; i <= 25; i++ {
		run(i)
	}
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.pending) == 25 })
	close(release)
	wg.Wait()
	st.mu.Lock()
	sizes := append([]int(nil), st.sizes[RecordsLog]...)
	st.mu.Unlock()
	if len(sizes) != 4 || sizes[0] != 1 || sizes[1] != 10 || sizes[2] != 10 || sizes[3] != 5 {
		t.Errorf("records appends of sizes %v, want [1 10 10 5]", sizes)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Records != 26 {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

// multiLog counts how a log uses a store that appends to several logs at
// once.
type multiLog struct {
	store.Store
	mu       sync.Mutex
	appends  map[string]int
	multiple int
	fail     int // upcoming AppendLogs that fail, applying nothing
	lose     int // upcoming AppendLogs that are applied, then reported failed
}

func (m *multiLog) Append(ctx context.Context, log string, entries ...[]byte) (int64, error) {
	m.mu.Lock()
	m.appends[log]++
	m.mu.Unlock()
	return m.Store.Append(ctx, log, entries...)
}

// AppendLogs counts, and fails as told, the appends of records (with
// their seal); the log's other conditional appends (hashes, checkpoints)
// go through.
func (m *multiLog) AppendLogs(ctx context.Context, parts ...store.LogAppend) ([]int64, error) {
	if !slices.ContainsFunc(parts, func(p store.LogAppend) bool { return p.Log == RecordsLog }) {
		return m.Store.(store.MultiLog).AppendLogs(ctx, parts...)
	}
	m.mu.Lock()
	m.multiple++
	fail, lose := m.fail > 0, m.lose > 0 && m.fail == 0
	if fail {
		m.fail--
	} else if lose {
		m.lose--
	}
	m.mu.Unlock()
	if fail {
		return nil, errInjected
	}
	firsts, err := m.Store.(store.MultiLog).AppendLogs(ctx, parts...)
	if lose && err == nil {
		return nil, errInjected
	}
	return firsts, err
}

// TestCommitIsOneWrite: with a store that can append to two logs at once,
// a commit stores its records and their seal in one write, and the log
// still verifies.
func TestCommitIsOneWrite(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := &multiLog{Store: memstore.New(nil), appends: map[string]int{}}
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, CheckpointEvery: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	st.mu.Lock()
	multiple, records, seals := st.multiple, st.appends[RecordsLog], st.appends[SealsLog]
	st.mu.Unlock()
	if multiple != 3 || records != 0 || seals != 0 {
		t.Fatalf("3 appends made %d combined writes, %d record writes and %d seal writes; want 3, 0, 0", multiple, records, seals)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, v)
	if err != nil || rep.Records != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestAtomicCommitFailures: with a store that appends records and seal in
// one write, a failed write stores nothing and the next commit takes its
// place; a write the store applied but reported failed holds the log's
// own records with their seal, which the next commit finds and keeps.
func TestAtomicCommitFailures(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		fail      func(m *multiLog)
		nextIndex int64
	}{
		{"nothing applied", func(m *multiLog) { m.fail = 1 }, 1},
		{"answer lost", func(m *multiLog) { m.lose = 1 }, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, v := testKeys(t)
			st := &multiLog{Store: memstore.New(nil), appends: map[string]int{}}
			l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, CheckpointEvery: -1, CheckpointInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(ctx, testRecord(0)); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			tt.fail(st)
			st.mu.Unlock()
			if _, err := l.Append(ctx, testRecord(1)); !errors.Is(err, errInjected) {
				t.Fatalf("Append whose write failed: %v", err)
			}
			idx, err := l.Append(ctx, testRecord(2))
			if err != nil || idx != tt.nextIndex {
				t.Fatalf("next Append: %d, %v; want index %d", idx, err, tt.nextIndex)
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(ctx, st, v)
			if err != nil || rep.Records != tt.nextIndex+1 || rep.Uncovered != nil {
				t.Fatalf("Verify: %+v, %v", rep, err)
			}
			st.mu.Lock()
			records := st.appends[RecordsLog]
			st.mu.Unlock()
			if records != 0 {
				t.Errorf("%d records written outside AppendLogs", records)
			}
		})
	}
}

// TestAtomicCommitAfterAnotherWriter: records someone appends while the
// log runs never shift the log's own records away from the tree their
// seal signs: the commit is refused as a whole, the next one declares the
// stranger's records unaccounted, and the log still opens and verifies
// (reporting them).
func TestAtomicCommitAfterAnotherWriter(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := &multiLog{Store: memstore.New(nil), appends: map[string]int{}}
	cfg := Config{Log: st, Signer: s, Verifier: v, CheckpointEvery: -1, CheckpointInterval: -1}
	l, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Store.Append(ctx, RecordsLog, outOfBand(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, testRecord(21)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append after another writer: %v, want ErrConflict", err)
	}
	idx, err := l.Append(ctx, testRecord(22))
	if err != nil || idx != 22 {
		t.Fatalf("next Append: %d, %v; want index 22, after the declaration", idx, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, v)
	wantProblem(t, rep, err, ErrUncovered, ProblemUncovered, 20)
	if !slices.Equal(rep.Uncovered, []Range{{From: 20, To: 21}}) || rep.Records != 23 {
		t.Errorf("report %+v", rep)
	}
	l, err = Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQueue: a queued record is committed in order with the records around
// it, without its caller waiting, and by Close at the latest.
func TestQueue(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	for i := range 4 {
		r := testRecord(i)
		if i%2 == 0 {
			if err := l.Queue(r); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if idx, err := l.Append(ctx, r); err != nil || idx != int64(i) {
			t.Fatalf("Append %d = %d, %v: records queued before it must come first", i, idx, err)
		}
	}
	if err := l.Queue(testRecord(4)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Queue(testRecord(5)); !errors.Is(err, ErrClosed) {
		t.Errorf("Queue after Close: %v, want ErrClosed", err)
	}
	got, err := Read(ctx, st, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d records stored, want 5 (the last queued one committed by Close)", len(got))
	}
	for i, e := range got {
		if want := testRecord(i).Resource; e.Record.Resource != want {
			t.Errorf("record %d is %q, want %q", i, e.Record.Resource, want)
		}
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Covered != 5 || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

// TestSync: Sync returns once every record queued before it is stored.
func TestSync(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	defer l.Close(ctx)
	if err := l.Sync(ctx); err != nil {
		t.Fatalf("Sync of an empty log: %v", err)
	}
	for i := range 50 {
		if err := l.Queue(testRecord(i)); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if got, err := Read(ctx, st, 0, 100); err != nil || len(got) != i+1 {
				t.Fatalf("after Sync: %d records stored (%v), want %d", len(got), err, i+1)
			}
		}
	}
}

// TestSyncWhileClosing: a Sync that finds the log closing waits for the
// final commit of the records queued before it, rather than returning
// while they are still pending.
func TestSyncWhileClosing(t *testing.T) {
	ctx := context.Background()
	st := newFakeLog()
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.before = func(log string) {
		if log == RecordsLog {
			once.Do(func() { close(entered); <-release })
		}
	}
	if err := l.Queue(testRecord(0)); err != nil {
		t.Fatal(err)
	}
	<-entered // the commit of the queued record is under way
	closed := make(chan error, 1)
	go func() { closed <- l.Close(ctx) }()
	for {
		l.mu.Lock()
		c := l.closed
		l.mu.Unlock()
		if c {
			break
		}
		time.Sleep(time.Millisecond)
	}
	synced := make(chan error, 1)
	go func() { synced <- l.Sync(ctx) }()
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) while the queued record was not committed", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-synced; err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got, err := Read(ctx, st, 0, 10); err != nil || len(got) != 1 {
		t.Fatalf("after Sync: %d records stored (%v), want 1", len(got), err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestQueueAlone: a queued record that no append follows is committed
// soon anyway.
func TestQueueAlone(t *testing.T) {
	ctx := context.Background()
	st := memstore.New(nil)
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	defer l.Close(ctx)
	if err := l.Queue(testRecord(0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Size() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a queued record was not committed within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	if got, err := Read(ctx, st, 0, 10); err != nil || len(got) != 1 {
		t.Fatalf("stored %d records (%v), want 1", len(got), err)
	}
}
