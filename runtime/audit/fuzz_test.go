package audit

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/agenthost/agenthost/runtime/store"
)

// FuzzVerify replaces one stored entry (a record, its hashes, a
// checkpoint or the commit seal) of a valid log with arbitrary bytes:
// Verify must not panic, and must report a problem whenever the bytes
// differ from the original.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(0), uint8(3), []byte(`{"seq":3,"time":"2026-01-01T00:00:00Z","action":"tool.call"}`))
	f.Add(uint8(1), uint8(5), []byte{})
	f.Add(uint8(2), uint8(0), []byte("go.sum database tree\n12\nAAAA\n\n— agenthost-audit/x sig\n"))
	f.Add(uint8(0), uint8(11), []byte(`{}`))
	f.Add(uint8(3), uint8(0), []byte("agenthost-audit/example.org\n12\nAAAA\n\n— agenthost-audit/example.org sig\n"))
	f.Fuzz(func(t *testing.T, which, index uint8, data []byte) {
		ctx := context.Background()
		s, v := testKeys(t)
		st := newFakeLog()
		fill(t, st, s, v, 12, 4)
		if which%4 == 3 {
			// Only the latest seal counts.
			last := st.count(SealsLog) - 1
			orig := st.data(t, SealsLog, last)
			st.set(t, SealsLog, last, slices.Clone(data))
			rep, err := Verify(ctx, st, v)
			if bytes.Equal(orig, data) != (err == nil && rep.Problem == nil) {
				t.Fatalf("seal replaced by %q: %+v, %v", data, rep, err)
			}
			return
		}
		log := []string{RecordsLog, HashesLog, CheckpointsLog}[int(which)%4]
		n := st.count(log)
		if n == 0 {
			return
		}
		i := int64(index) % n
		orig := st.data(t, log, i)
		st.set(t, log, i, slices.Clone(data))
		rep, err := Verify(ctx, st, v)
		if bytes.Equal(orig, data) {
			if err != nil || rep.Problem != nil {
				t.Fatalf("unchanged log: %+v, %v", rep, err)
			}
			return
		}
		if rep.Problem == nil || err == nil {
			t.Fatalf("%s entry %d replaced by %q: verified (%+v)", log, i, data, rep)
		}
	})
}

var _ store.Log = (*fakeLog)(nil)

// FuzzRedact: whatever the text, no token is left once it is redacted, and
// text without one is kept as it is.
func FuzzRedact(f *testing.F) {
	jwt := "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	f.Add("Bearer " + jwt + " rejected")
	f.Add(jwt + "." + jwt + ".a.b")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJ is how a JSON object starts in base64; a.b.c is a path")
	f.Fuzz(func(t *testing.T, s string) {
		out, found := redactJWTs(s)
		if !found && out != s {
			t.Fatalf("text without a token changed: %q -> %q", s, out)
		}
		if again, left := redactJWTs(out); left {
			t.Fatalf("a token is left in %q (redacted again: %q)", out, again)
		}
	})
}
