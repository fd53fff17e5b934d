package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/runtime/store"
)

// Clock is a settable clock for the suite; implementations under test must
// read time only through the function it hands to the factory.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Factory returns a new, empty store that reads time from now.
type Factory func(t testing.TB, now func() time.Time) store.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	open := func(t *testing.T) (store.Store, *Clock) {
		t.Helper()
		c := &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		s := newStore(t, c.Now)
		t.Cleanup(func() { _ = s.Close() })
		return s, c
	}
	t.Run("KV", func(t *testing.T) { testKV(t, open) })
	t.Run("Conditions", func(t *testing.T) { testConditions(t, open) })
	t.Run("TTL", func(t *testing.T) { testTTL(t, open) })
	t.Run("List", func(t *testing.T) { testList(t, open) })
	t.Run("ListPaging", func(t *testing.T) { testListPaging(t, open) })
	t.Run("Count", func(t *testing.T) { testCount(t, open) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, open) })
	t.Run("ConcurrentPutIfAbsent", func(t *testing.T) { testConcurrentPutIfAbsent(t, open) })
	t.Run("Log", func(t *testing.T) { testLog(t, open) })
	t.Run("ConcurrentAppend", func(t *testing.T) { testConcurrentAppend(t, open) })
	t.Run("AppendLogs", func(t *testing.T) { testAppendLogs(t, open) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open) })
	t.Run("LeaseTokens", func(t *testing.T) { testLeaseTokens(t, open) })
	t.Run("ConcurrentAcquire", func(t *testing.T) { testConcurrentAcquire(t, open) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, open) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
	t.Run("CloseWhileBusy", func(t *testing.T) { testCloseWhileBusy(t, open) })
}

type opener func(t *testing.T) (store.Store, *Clock)

var ctx = context.Background()

// must turns a (value, error) result into the value, failing t on error:
// must(s.Get(ctx, ns, key))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func testKV(t *testing.T, open opener) {
	s, c := open(t)
	_, err := s.Get(ctx, "ns", "k")
	wantErr(t, err, store.ErrNotFound, "Get of a missing key")

	r1 := must(s.Put(ctx, "ns", "k", []byte("v1"), store.PutOptions{}))(t)
	want := store.Record{Namespace: "ns", Key: "k", Value: []byte("v1"), Version: r1.Version, UpdatedAt: c.Now()}
	if r1.Version < 1 {
		t.Fatalf("first version = %d, want >= 1", r1.Version)
	}
	if diff := cmp.Diff(want, r1); diff != "" {
		t.Fatalf("Put returned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, must(s.Get(ctx, "ns", "k"))(t)); diff != "" {
		t.Fatalf("Get (-want +got):\n%s", diff)
	}
	r2 := must(s.Put(ctx, "ns", "k", []byte("v2"), store.PutOptions{}))(t)
	if r2.Version <= r1.Version {
		t.Fatalf("version did not grow: %d then %d", r1.Version, r2.Version)
	}
	// Namespaces are separate.
	_, err = s.Get(ctx, "other", "k")
	wantErr(t, err, store.ErrNotFound, "Get in another namespace")

	// Empty values are values.
	must(s.Put(ctx, "ns", "empty", nil, store.PutOptions{}))(t)
	if e := must(s.Get(ctx, "ns", "empty"))(t); len(e.Value) != 0 {
		t.Fatalf("empty value = %q", e.Value)
	}
	// Binary values round trip.
	bin := []byte{0, 1, 2, 0xff, 0}
	must(s.Put(ctx, "ns", "bin", bin, store.PutOptions{}))(t)
	if b := must(s.Get(ctx, "ns", "bin"))(t); !bytes.Equal(b.Value, bin) {
		t.Fatalf("binary value = %v", b.Value)
	}

	if err := s.Delete(ctx, "ns", "k", store.Always); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, "ns", "k")
	wantErr(t, err, store.ErrNotFound, "Get after Delete")
	wantErr(t, s.Delete(ctx, "ns", "k", store.Always), store.ErrNotFound, "Delete of a missing key")

	r3 := must(s.Put(ctx, "ns", "k", []byte("v3"), store.PutOptions{}))(t)
	if r3.Version <= r2.Version {
		t.Fatalf("version after delete and re-create = %d, want > %d", r3.Version, r2.Version)
	}
}

func testConditions(t *testing.T, open opener) {
	// Each case starts from a store holding ns/k at version v (a live record)
	// and ns/gone (expired).
	tests := []struct {
		name    string
		key     string
		put     bool // Put, else Delete
		cond    func(v int64) store.Condition
		wantErr error
	}{
		{"put always over live", "k", true, func(int64) store.Condition { return store.Always }, nil},
		{"put always over missing", "new", true, func(int64) store.Condition { return store.Always }, nil},
		{"put if absent over live", "k", true, func(int64) store.Condition { return store.IfAbsent }, store.ErrConflict},
		{"put if absent over missing", "new", true, func(int64) store.Condition { return store.IfAbsent }, nil},
		{"put if absent over expired", "gone", true, func(int64) store.Condition { return store.IfAbsent }, nil},
		{"put if version matches", "k", true, store.IfVersion, nil},
		{"put if version stale", "k", true, func(v int64) store.Condition { return store.IfVersion(v - 1) }, store.ErrConflict},
		{"put if version ahead", "k", true, func(v int64) store.Condition { return store.IfVersion(v + 1) }, store.ErrConflict},
		{"put if version over missing", "new", true, func(int64) store.Condition { return store.IfVersion(1) }, store.ErrConflict},
		{"put if version over expired", "gone", true, func(v int64) store.Condition { return store.IfVersion(v - 1) }, store.ErrConflict},
		{"delete always", "k", false, func(int64) store.Condition { return store.Always }, nil},
		{"delete if version matches", "k", false, store.IfVersion, nil},
		{"delete if version stale", "k", false, func(v int64) store.Condition { return store.IfVersion(v - 1) }, store.ErrConflict},
		{"delete if absent over live", "k", false, func(int64) store.Condition { return store.IfAbsent }, store.ErrConflict},
		{"delete missing", "new", false, func(int64) store.Condition { return store.Always }, store.ErrNotFound},
		{"delete expired", "gone", false, func(int64) store.Condition { return store.Always }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := open(t)
			must(s.Put(ctx, "ns", "gone", []byte("old"), store.PutOptions{TTL: time.Second}))(t)
			must(s.Put(ctx, "ns", "k", []byte("first"), store.PutOptions{}))(t)
			before := must(s.Put(ctx, "ns", "k", []byte("second"), store.PutOptions{}))(t)
			c.Advance(time.Second)
			var err error
			if tt.put {
				var r store.Record
				r, err = s.Put(ctx, "ns", tt.key, []byte("new"), store.PutOptions{Condition: tt.cond(before.Version)})
				if err == nil && (r.Version <= before.Version || string(r.Value) != "new") {
					t.Fatalf("Put = %+v, want a version above %d", r, before.Version)
				}
			} else {
				err = s.Delete(ctx, "ns", tt.key, tt.cond(before.Version))
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("error = %v, want none", err)
			}
			if tt.wantErr != nil {
				wantErr(t, err, tt.wantErr, tt.name)
				// A refused write changed nothing.
				if got := must(s.Get(ctx, "ns", "k"))(t); got.Version != before.Version || string(got.Value) != "second" {
					t.Fatalf("after a refused write ns/k = %+v, want %+v", got, before)
				}
			}
		})
	}
}

func testTTL(t *testing.T, open opener) {
	s, c := open(t)
	r := must(s.Put(ctx, "ns", "k", []byte("v"), store.PutOptions{TTL: time.Minute}))(t)
	if !r.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("ExpiresAt = %v, want %v", r.ExpiresAt, c.Now().Add(time.Minute))
	}
	must(s.Put(ctx, "ns", "forever", []byte("v"), store.PutOptions{}))(t)
	c.Advance(59 * time.Second)
	must(s.Get(ctx, "ns", "k"))(t)
	c.Advance(time.Second)
	_, err := s.Get(ctx, "ns", "k")
	wantErr(t, err, store.ErrNotFound, "Get of an expired record")
	if recs := must(s.List(ctx, "ns", "", "", 10))(t); len(recs) != 1 || recs[0].Key != "forever" {
		t.Fatalf("List after expiry = %v", recs)
	}
	// An expired key counts as absent: put-if-absent succeeds again, which
	// is what a replay cache relies on once an entry's lifetime is over.
	must(s.Put(ctx, "ns", "k", []byte("again"), store.PutOptions{Condition: store.IfAbsent, TTL: time.Minute}))(t)
	c.Advance(2 * time.Minute)
	n := must(s.Purge(ctx))(t)
	if n != 1 {
		t.Fatalf("Purge = %d, want 1", n)
	}
	must(s.Get(ctx, "ns", "forever"))(t)
}

func testList(t *testing.T, open opener) {
	s, _ := open(t)
	keys := []string{"b/2", "a/1", "b/1", "b/10", "c", "b/", "B/1"}
	for _, k := range keys {
		must(s.Put(ctx, "ns", k, []byte(k), store.PutOptions{}))(t)
	}
	must(s.Put(ctx, "other", "b/3", nil, store.PutOptions{}))(t)
	list := func(prefix, after string, limit int) string {
		recs := must(s.List(ctx, "ns", prefix, after, limit))(t)
		var ks []string
		for _, r := range recs {
			ks = append(ks, r.Key)
		}
		return strings.Join(ks, ",")
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"", "", 100, "B/1,a/1,b/,b/1,b/10,b/2,c"},
		{"b/", "", 100, "b/,b/1,b/10,b/2"},
		{"b/", "", 2, "b/,b/1"},
		{"b/", "b/1", 2, "b/10,b/2"},
		{"b/", "b/2", 2, ""},
		{"zzz", "", 10, ""},
		{"b/1", "", 10, "b/1,b/10"},
	}
	for _, tt := range tests {
		if got := list(tt.prefix, tt.after, tt.limit); got != tt.want {
			t.Errorf("List(prefix %q, after %q, limit %d) = %q, want %q", tt.prefix, tt.after, tt.limit, got, tt.want)
		}
	}
	// Prefixes with LIKE/GLOB metacharacters match literally.
	must(s.Put(ctx, "ns", "p%x", nil, store.PutOptions{}))(t)
	must(s.Put(ctx, "ns", "p_x", nil, store.PutOptions{}))(t)
	must(s.Put(ctx, "ns", "pax", nil, store.PutOptions{}))(t)
	if got := list("p%", "", 10); got != "p%x" {
		t.Errorf("List(prefix p%%) = %q", got)
	}
	if got := list("p_", "", 10); got != "p_x" {
		t.Errorf("List(prefix p_) = %q", got)
	}
}

func testCount(t *testing.T, open opener) {
	s, c := open(t)
	if n := must(s.Count(ctx, "ns", ""))(t); n != 0 {
		t.Fatalf("Count of an empty namespace = %d", n)
	}
	for _, k := range []string{"b/2", "a/1", "b/1", "b/10", "c", "b/", "B/1", "p%x", "p_x", "pax"} {
		must(s.Put(ctx, "ns", k, nil, store.PutOptions{}))(t)
	}
	must(s.Put(ctx, "ns", "b/later", nil, store.PutOptions{TTL: time.Minute}))(t)
	must(s.Put(ctx, "ns", "b/gone", nil, store.PutOptions{TTL: time.Second}))(t)
	must(s.Put(ctx, "other", "b/3", nil, store.PutOptions{}))(t)
	// Overwriting a key does not count it twice.
	must(s.Put(ctx, "ns", "c", []byte("again"), store.PutOptions{}))(t)
	c.Advance(time.Second)
	tests := []struct {
		ns, prefix string
		want       int
	}{
		{"ns", "", 11},
		{"ns", "b/", 5},
		{"ns", "b/1", 2},
		{"ns", "B", 1},
		{"ns", "p%", 1},
		{"ns", "p_", 1},
		{"ns", "zzz", 0},
		{"other", "", 1},
		{"none", "", 0},
	}
	for _, tt := range tests {
		if got := must(s.Count(ctx, tt.ns, tt.prefix))(t); got != tt.want {
			t.Errorf("Count(%q, prefix %q) = %d, want %d", tt.ns, tt.prefix, got, tt.want)
		}
	}
	// Expired records stop counting at once, before any Purge; deleted
	// ones too.
	c.Advance(time.Minute)
	if err := s.Delete(ctx, "ns", "b/", store.Always); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Count(ctx, "ns", "b/"))(t); got != 3 {
		t.Fatalf("Count after expiry and delete = %d, want 3", got)
	}
	// Count agrees with a full listing.
	if got, recs := must(s.Count(ctx, "ns", ""))(t), must(s.List(ctx, "ns", "", "", store.MaxLimit))(t); got != len(recs) {
		t.Fatalf("Count = %d, List has %d records", got, len(recs))
	}
}

func testConcurrentPutIfAbsent(t *testing.T, open opener) {
	s, _ := open(t)
	const n = 16
	for round := range 5 {
		key := fmt.Sprintf("jti-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.Put(ctx, "replay", key, []byte{byte(i)}, store.PutOptions{Condition: store.IfAbsent, TTL: time.Hour})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Errorf("concurrent put: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != n-1 {
			t.Fatalf("round %d: %d winners, %d conflicts; want 1 and %d", round, wins, conflicts, n-1)
		}
	}
}

func testLog(t *testing.T, open opener) {
	s, _ := open(t)
	if n := must(s.Len(ctx, "audit"))(t); n != 0 {
		t.Fatalf("Len of a new log = %d", n)
	}
	if first := must(s.Append(ctx, "audit", []byte("a")))(t); first != 0 {
		t.Fatalf("first Append index = %d, want 0", first)
	}
	if first := must(s.Append(ctx, "audit", []byte("b"), []byte("c"), nil))(t); first != 1 {
		t.Fatalf("batch Append index = %d, want 1", first)
	}
	must(s.Append(ctx, "other", []byte("x")))(t)
	if n := must(s.Len(ctx, "audit"))(t); n != 4 {
		t.Fatalf("Len = %d, want 4", n)
	}
	es := must(s.Read(ctx, "audit", 1, 2))(t)
	if len(es) != 2 || es[0].Index != 1 || string(es[0].Data) != "b" || es[1].Index != 2 || string(es[1].Data) != "c" {
		t.Fatalf("Read(1, 2) = %+v", es)
	}
	if es := must(s.Read(ctx, "audit", 3, 10))(t); len(es) != 1 || len(es[0].Data) != 0 {
		t.Fatalf("Read(3) = %+v", es)
	}
	if es := must(s.Read(ctx, "audit", 4, 10))(t); len(es) != 0 {
		t.Fatalf("Read past the end = %+v", es)
	}
	// A batch with one bad entry appends nothing.
	_, err := s.Append(ctx, "audit", []byte("ok"), make([]byte, store.MaxValueLen+1))
	wantErr(t, err, store.ErrInvalid, "Append with an oversized entry")
	if n := must(s.Len(ctx, "audit"))(t); n != 4 {
		t.Fatalf("Len after a refused batch = %d, want 4", n)
	}
}

// testAppendLogs: a store that appends to several logs at once does so
// all or none, each part after what its log held.
func testAppendLogs(t *testing.T, open opener) {
	s, _ := open(t)
	ml, ok := s.(store.MultiLog)
	if !ok {
		t.Skipf("%T does not implement store.MultiLog", s)
	}
	must(s.Append(ctx, "records", []byte("r0")))(t)
	firsts := must(ml.AppendLogs(ctx,
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r1"), []byte("r2")}},
		store.LogAppend{Log: "seals", Entries: [][]byte{[]byte("s0")}},
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r3")}},
	))(t)
	if len(firsts) != 3 || firsts[0] != 1 || firsts[1] != 0 || firsts[2] != 3 {
		t.Fatalf("AppendLogs = %v, want [1 0 3]", firsts)
	}
	es := must(s.Read(ctx, "records", 0, 10))(t)
	var got []string
	for _, e := range es {
		got = append(got, string(e.Data))
	}
	if strings.Join(got, ",") != "r0,r1,r2,r3" {
		t.Fatalf("records = %v", got)
	}
	// One bad part appends nothing anywhere.
	_, err := ml.AppendLogs(ctx,
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r4")}},
		store.LogAppend{Log: "seals", Entries: [][]byte{make([]byte, store.MaxValueLen+1)}})
	wantErr(t, err, store.ErrInvalid, "AppendLogs with an oversized entry")
	if n := must(s.Len(ctx, "records"))(t); n != 4 {
		t.Fatalf("records after a refused AppendLogs = %d, want 4", n)
	}
	// A part whose condition fails appends nothing anywhere; one whose
	// condition holds (counting an earlier part of the same log) appends.
	_, err = ml.AppendLogs(ctx,
		store.LogAppend{Log: "seals", Entries: [][]byte{[]byte("s1")}},
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r4")}, IfAt: true, At: 3})
	wantErr(t, err, store.ErrConflict, "AppendLogs at a taken index")
	if n, m := must(s.Len(ctx, "records"))(t), must(s.Len(ctx, "seals"))(t); n != 4 || m != 1 {
		t.Fatalf("after a failed condition: %d records, %d seals; want 4, 1", n, m)
	}
	firsts = must(ml.AppendLogs(ctx,
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r4")}, IfAt: true, At: 4},
		store.LogAppend{Log: "records", Entries: [][]byte{[]byte("r5")}, IfAt: true, At: 5},
		store.LogAppend{Log: "new", Entries: [][]byte{[]byte("n0")}, IfAt: true, At: 0},
	))(t)
	if len(firsts) != 3 || firsts[0] != 4 || firsts[1] != 5 || firsts[2] != 0 {
		t.Fatalf("conditional AppendLogs = %v, want [4 5 0]", firsts)
	}
	_, err = ml.AppendLogs(ctx, store.LogAppend{Log: "records", Entries: [][]byte{[]byte("x")}, IfAt: true, At: -1})
	wantErr(t, err, store.ErrInvalid, "AppendLogs at a negative index")
	_, err = ml.AppendLogs(ctx)
	wantErr(t, err, store.ErrInvalid, "AppendLogs of nothing")
	_, err = ml.AppendLogs(ctx, store.LogAppend{Log: "", Entries: [][]byte{[]byte("x")}})
	wantErr(t, err, store.ErrInvalid, "AppendLogs to a log without a name")
}

func testConcurrentAppend(t *testing.T, open opener) {
	s, _ := open(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Append(ctx, "log", fmt.Appendf(nil, "%d-%d", w, i), fmt.Appendf(nil, "%d-%d'", w, i)); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := int64(writers * each * 2)
	if n := must(s.Len(ctx, "log"))(t); n != total {
		t.Fatalf("Len = %d, want %d", n, total)
	}
	var all []store.Entry
	for int64(len(all)) < total {
		es := must(s.Read(ctx, "log", int64(len(all)), 37))(t)
		if len(es) == 0 {
			t.Fatalf("Read(%d) returned nothing before the end", len(all))
		}
		all = append(all, es...)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.Index != int64(i) {
			t.Fatalf("gap or duplicate: entry %d has index %d", i, e.Index)
		}
		if seen[string(e.Data)] {
			t.Fatalf("duplicate entry %q", e.Data)
		}
		seen[string(e.Data)] = true
		// The two entries of one Append are adjacent.
		if !strings.HasSuffix(string(e.Data), "'") && (i+1 >= len(all) || string(all[i+1].Data) != string(e.Data)+"'") {
			t.Fatalf("batch split at index %d: %q", i, e.Data)
		}
	}
}

func testLeases(t *testing.T, open opener) {
	s, c := open(t)
	a := must(s.AcquireLease(ctx, "leader", "host-a", 10*time.Second))(t)
	if a.Holder != "host-a" || !a.ExpiresAt.Equal(c.Now().Add(10*time.Second)) || a.Token == 0 {
		t.Fatalf("AcquireLease = %+v", a)
	}
	_, err := s.AcquireLease(ctx, "leader", "host-b", 10*time.Second)
	wantErr(t, err, store.ErrLeaseHeld, "AcquireLease of a held lease")
	c.Advance(5 * time.Second)
	a = must(s.RenewLease(ctx, a, 10*time.Second))(t)
	c.Advance(9 * time.Second)
	_, err = s.AcquireLease(ctx, "leader", "host-b", 10*time.Second)
	wantErr(t, err, store.ErrLeaseHeld, "AcquireLease before the renewed expiry")
	c.Advance(2 * time.Second) // a expired
	_, err = s.RenewLease(ctx, a, 10*time.Second)
	wantErr(t, err, store.ErrLeaseLost, "RenewLease of an expired lease")
	b := must(s.AcquireLease(ctx, "leader", "host-b", 10*time.Second))(t)
	if b.Token == a.Token {
		t.Fatal("a new acquisition kept the old token")
	}
	_, err = s.RenewLease(ctx, a, 10*time.Second)
	wantErr(t, err, store.ErrLeaseLost, "RenewLease after another holder took over")
	wantErr(t, s.ReleaseLease(ctx, a), store.ErrLeaseLost, "ReleaseLease by the old holder")
	if err := s.ReleaseLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	must(s.AcquireLease(ctx, "leader", "host-a", 10*time.Second))(t)
	// Leases are independent by name.
	must(s.AcquireLease(ctx, "other", "host-b", 10*time.Second))(t)
}

func testBadInput(t *testing.T, open opener) {
	s, _ := open(t)
	long := strings.Repeat("k", store.MaxKeyLen+1)
	tests := []struct {
		name string
		call func() error
	}{
		{"Get empty namespace", func() error { _, err := s.Get(ctx, "", "k"); return err }},
		{"Get empty key", func() error { _, err := s.Get(ctx, "ns", ""); return err }},
		{"Put oversized key", func() error { _, err := s.Put(ctx, "ns", long, nil, store.PutOptions{}); return err }},
		{"Put oversized namespace", func() error {
			_, err := s.Put(ctx, strings.Repeat("n", store.MaxNameLen+1), "k", nil, store.PutOptions{})
			return err
		}},
		{"Put oversized value", func() error {
			_, err := s.Put(ctx, "ns", "k", make([]byte, store.MaxValueLen+1), store.PutOptions{})
			return err
		}},
		{"Put negative TTL", func() error { _, err := s.Put(ctx, "ns", "k", nil, store.PutOptions{TTL: -time.Second}); return err }},
		{"List zero limit", func() error { _, err := s.List(ctx, "ns", "", "", 0); return err }},
		{"List huge limit", func() error { _, err := s.List(ctx, "ns", "", "", store.MaxLimit+1); return err }},
		{"Append nothing", func() error { _, err := s.Append(ctx, "log"); return err }},
		{"Append empty log name", func() error { _, err := s.Append(ctx, "", []byte("x")); return err }},
		{"Read negative index", func() error { _, err := s.Read(ctx, "log", -1, 10); return err }},
		{"Read zero limit", func() error { _, err := s.Read(ctx, "log", 0, 0); return err }},
		{"AcquireLease zero ttl", func() error { _, err := s.AcquireLease(ctx, "l", "h", 0); return err }},
		{"AcquireLease empty holder", func() error { _, err := s.AcquireLease(ctx, "l", "", time.Second); return err }},
		{"AcquireLease negative ttl", func() error { _, err := s.AcquireLease(ctx, "l", "h", -time.Second); return err }},
		{"RenewLease zero ttl", func() error {
			_, err := s.RenewLease(ctx, store.Lease{Name: "l", Holder: "h", Token: 1}, 0)
			return err
		}},
		{"ReleaseLease empty name", func() error { return s.ReleaseLease(ctx, store.Lease{Holder: "h", Token: 1}) }},
		{"Put key not UTF-8", func() error { _, err := s.Put(ctx, "ns", "k\xff", nil, store.PutOptions{}); return err }},
		{"Put key with NUL", func() error { _, err := s.Put(ctx, "ns", "k\x00x", nil, store.PutOptions{}); return err }},
		{"Put namespace with NUL", func() error { _, err := s.Put(ctx, "n\x00s", "k", nil, store.PutOptions{}); return err }},
		{"Delete empty key", func() error { return s.Delete(ctx, "ns", "", store.Always) }},
		{"List empty namespace", func() error { _, err := s.List(ctx, "", "", "", 10); return err }},
		{"List prefix not UTF-8", func() error { _, err := s.List(ctx, "ns", "\xc3", "", 10); return err }},
		{"List cursor too long", func() error { _, err := s.List(ctx, "ns", "", long, 10); return err }},
		{"Append too many entries", func() error {
			_, err := s.Append(ctx, "log", make([][]byte, store.MaxBatch+1)...)
			return err
		}},
		{"Read huge limit", func() error { _, err := s.Read(ctx, "log", 0, store.MaxLimit+1); return err }},
		{"Len empty log name", func() error { _, err := s.Len(ctx, ""); return err }},
		{"Count empty namespace", func() error { _, err := s.Count(ctx, "", ""); return err }},
		{"Count prefix not UTF-8", func() error { _, err := s.Count(ctx, "ns", "\xc3"); return err }},
		{"Count prefix too long", func() error { _, err := s.Count(ctx, "ns", long); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.call(), store.ErrInvalid, tt.name)
		})
	}
	// Nothing was written by the refused calls.
	if recs := must(s.List(ctx, "ns", "", "", 10))(t); len(recs) != 0 {
		t.Fatalf("refused calls wrote %v", recs)
	}
	if n := must(s.Len(ctx, "log"))(t); n != 0 {
		t.Fatalf("refused appends wrote %d entries", n)
	}
	if _, err := s.AcquireLease(ctx, "l", "other", time.Second); err != nil {
		t.Fatalf("refused AcquireLease calls took the lease: %v", err)
	}
}

func testClosed(t *testing.T, open opener) {
	s, _ := open(t)
	must(s.Put(ctx, "ns", "k", nil, store.PutOptions{}))(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	_, err := s.Get(ctx, "ns", "k")
	wantErr(t, err, store.ErrClosed, "Get after Close")
	_, err = s.Put(ctx, "ns", "k", nil, store.PutOptions{})
	wantErr(t, err, store.ErrClosed, "Put after Close")
	_, err = s.Count(ctx, "ns", "")
	wantErr(t, err, store.ErrClosed, "Count after Close")
	_, err = s.Append(ctx, "log", []byte("x"))
	wantErr(t, err, store.ErrClosed, "Append after Close")
	_, err = s.AcquireLease(ctx, "l", "h", time.Second)
	wantErr(t, err, store.ErrClosed, "AcquireLease after Close")
}

func testListPaging(t *testing.T, open opener) {
	s, c := open(t)
	// Keys whose byte order differs from a case-folding or locale order.
	var want []string
	for i := range 120 {
		for _, k := range []string{fmt.Sprintf("k%03d", i), fmt.Sprintf("K%03d", i), fmt.Sprintf("k\u00e9%03d", i), fmt.Sprintf("k\u65e5%03d", i)} {
			must(s.Put(ctx, "page", k, []byte(k), store.PutOptions{}))(t)
			want = append(want, k)
		}
	}
	// Expired records are skipped without shortening a page's content.
	for i := range 30 {
		must(s.Put(ctx, "page", fmt.Sprintf("k%03d~", i), nil, store.PutOptions{TTL: time.Second}))(t)
	}
	c.Advance(time.Second)
	slices.Sort(want)
	for _, size := range []int{1, 7, 100, 480, 1000} {
		t.Run(fmt.Sprint("limit ", size), func(t *testing.T) {
			var got []string
			after := ""
			for {
				recs := must(s.List(ctx, "page", "", after, size))(t)
				for _, r := range recs {
					if string(r.Value) != r.Key {
						t.Fatalf("record %q has value %q", r.Key, r.Value)
					}
					got = append(got, r.Key)
				}
				if len(recs) > size {
					t.Fatalf("List returned %d records for limit %d", len(recs), size)
				}
				if len(recs) < size {
					break
				}
				after = recs[len(recs)-1].Key
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("paged listing (-want +got):\n%s", diff)
			}
		})
	}
	var wantPrefix []string
	for _, k := range want {
		if strings.HasPrefix(k, "k\u00e9") {
			wantPrefix = append(wantPrefix, k)
		}
	}
	var got []string
	for _, r := range must(s.List(ctx, "page", "k\u00e9", "", 1000))(t) {
		got = append(got, r.Key)
	}
	if diff := cmp.Diff(wantPrefix, got); diff != "" {
		t.Fatalf("multi-byte prefix listing (-want +got):\n%s", diff)
	}
}

func testIsolation(t *testing.T, open opener) {
	s, _ := open(t)
	in := []byte("value")
	out := must(s.Put(ctx, "ns", "k", in, store.PutOptions{}))(t)
	in[0], out.Value[0] = 'X', 'Y'
	got := must(s.Get(ctx, "ns", "k"))(t)
	if string(got.Value) != "value" {
		t.Fatalf("stored value changed through a caller's slice: %q", got.Value)
	}
	got.Value[0] = 'Z'
	entry := []byte("entry")
	must(s.Append(ctx, "log", entry))(t)
	entry[0] = 'X'
	es := must(s.Read(ctx, "log", 0, 1))(t)
	es[0].Data[1] = 'X'
	if got := must(s.Get(ctx, "ns", "k"))(t); string(got.Value) != "value" {
		t.Fatalf("stored value changed through a returned slice: %q", got.Value)
	}
	if es := must(s.Read(ctx, "log", 0, 1))(t); string(es[0].Data) != "entry" {
		t.Fatalf("stored entry changed through a caller's slice: %q", es[0].Data)
	}
}

func testLeaseTokens(t *testing.T, open opener) {
	s, c := open(t)
	a := must(s.AcquireLease(ctx, "job", "host-a", 10*time.Second))(t)
	c.Advance(time.Second)
	again := must(s.AcquireLease(ctx, "job", "host-a", 10*time.Second))(t)
	if again.Token != a.Token || !again.ExpiresAt.Equal(c.Now().Add(10*time.Second)) {
		t.Fatalf("re-acquire by the holder = %+v, want token %d and a new expiry", again, a.Token)
	}
	renewed := must(s.RenewLease(ctx, a, time.Minute))(t)
	if renewed.Token != a.Token || !renewed.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("RenewLease = %+v", renewed)
	}
	if err := s.ReleaseLease(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.ReleaseLease(ctx, renewed), store.ErrLeaseLost, "second ReleaseLease")
	_, err := s.RenewLease(ctx, renewed, time.Minute)
	wantErr(t, err, store.ErrLeaseLost, "RenewLease after ReleaseLease")
	// Released: another holder takes it at once, with a larger token.
	b := must(s.AcquireLease(ctx, "job", "host-b", 10*time.Second))(t)
	if b.Token <= a.Token {
		t.Fatalf("token after a new acquisition = %d, want > %d", b.Token, a.Token)
	}
	// The old holder re-acquiring after expiry gets a new token too.
	c.Advance(10 * time.Second)
	a2 := must(s.AcquireLease(ctx, "job", "host-a", 10*time.Second))(t)
	if a2.Token <= b.Token {
		t.Fatalf("token after expiry and re-acquisition = %d, want > %d", a2.Token, b.Token)
	}
	// A forged lease (right name and holder, wrong token) is not honoured.
	forged := a2
	forged.Token++
	_, err = s.RenewLease(ctx, forged, time.Minute)
	wantErr(t, err, store.ErrLeaseLost, "RenewLease with a wrong token")
	wantErr(t, s.ReleaseLease(ctx, forged), store.ErrLeaseLost, "ReleaseLease with a wrong token")
	c.Advance(10 * time.Second)
	wantErr(t, s.ReleaseLease(ctx, a2), store.ErrLeaseLost, "ReleaseLease of an expired lease")
}

func testConcurrentAcquire(t *testing.T, open opener) {
	s, _ := open(t)
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("host-%d", i)
			_, err := s.AcquireLease(ctx, "leader", holder, time.Minute)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, holder)
				mu.Unlock()
			case !errors.Is(err, store.ErrLeaseHeld):
				t.Errorf("AcquireLease: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d holders acquired the lease: %v", len(winners), winners)
	}
}

func testCanceled(t *testing.T, open opener) {
	s, _ := open(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Put(cctx, "ns", "k", nil, store.PutOptions{})
	wantErr(t, err, context.Canceled, "Put with a canceled context")
	_, err = s.Append(cctx, "log", []byte("x"))
	wantErr(t, err, context.Canceled, "Append with a canceled context")
	_, err = s.Count(cctx, "ns", "")
	wantErr(t, err, context.Canceled, "Count with a canceled context")
	_, err = s.Get(ctx, "ns", "k")
	wantErr(t, err, store.ErrNotFound, "Get after a canceled Put")
	if n := must(s.Len(ctx, "log"))(t); n != 0 {
		t.Fatalf("a canceled Append wrote %d entries", n)
	}
}

func testCloseWhileBusy(t *testing.T, open opener) {
	s, _ := open(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				_, err := s.Put(ctx, "ns", fmt.Sprintf("%d-%d", w, i), []byte("v"), store.PutOptions{})
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Put racing Close: %v, want nil or ErrClosed", err)
					return
				}
			}
		}()
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close while busy: %v", err)
	}
	wg.Wait()
}
