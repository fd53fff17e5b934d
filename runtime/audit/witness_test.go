package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agenthost/agenthost/runtime/audit/audittest"
)

// newTestWitness returns a witness (see audittest) trusting the logs of
// the given keys.
func newTestWitness(t *testing.T, name string, logs ...note.Verifier) *audittest.Witness {
	t.Helper()
	w, err := audittest.NewWitness(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range logs {
		w.Trust(v.Name(), v)
	}
	return w
}

func newWitnessClient(t *testing.T, srv *httptest.Server, key string) *Witness {
	t.Helper()
	c, err := NewWitness(WitnessConfig{URL: srv.URL + "/witness", Key: key, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWitness: every checkpoint goes to the witness with a proof from the
// size it last cosigned; its cosignatures are checked and kept with the
// checkpoint.
func TestWitness(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	tw := newTestWitness(t, "witness.example/w1", v)
	srv := httptest.NewServer(tw)
	defer srv.Close()
	wc := newWitnessClient(t, srv, tw.VerifierKey())
	wv, err := ParseCosignatureVerifier(tw.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := NewCheckpointDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var pubErrs []error
	publish := func(ctx context.Context, l *Log, cp []byte) {
		cos, err := wc.AddCheckpoint(ctx, cp, l)
		if err != nil {
			pubErrs = append(pubErrs, err)
			return
		}
		if err := dir.Write(cos); err != nil {
			pubErrs = append(pubErrs, err)
		}
	}
	st := newFakeLog()
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, CheckpointEvery: 4, CheckpointInterval: -1, Publish: publish})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pubErrs) > 0 {
		t.Fatalf("publishing: %v", pubErrs)
	}
	if got := tw.Latest(v.Name()); got.N != 10 {
		t.Fatalf("the witness cosigned up to %d records, want 10", got.N)
	}
	kept, err := dir.Latest()
	if err != nil {
		t.Fatal(err)
	}
	// The kept checkpoint carries the log's signature and the witness's
	// cosignature, each checked by its own key.
	n, err := note.Open(kept, note.VerifierList(v, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("kept checkpoint %q: %v, %+v", kept, err, n)
	}
	if tree, err := OpenCheckpoint(kept, v); err != nil || tree.N != 10 {
		t.Fatalf("kept checkpoint: %+v, %v", tree, err)
	}
	if rep, err := Verify(ctx, st, v, AgainstCheckpoint(kept)); err != nil || rep.Kept != 10 {
		t.Fatalf("Verify against the cosigned checkpoint: %+v, %v", rep, err)
	}

	// A client that does not know the witness's size (a restarted host)
	// learns it from the 409 and proves consistency from there.
	l = openLog(t, st, s, v, -1)
	defer l.Close(ctx)
	for i := range 5 {
		if _, err := l.Append(ctx, testRecord(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := len(tw.Statuses())
	cos, err := newWitnessClient(t, srv, tw.VerifierKey()).AddCheckpoint(ctx, cp, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := tw.Statuses()[before:]; fmt.Sprint(got) != "[409 200]" {
		t.Errorf("answers %v, want [409 200]", got)
	}
	if !bytes.HasPrefix(cos, cp) || tw.Latest(v.Name()).N != 15 {
		t.Errorf("cosigned %q; witness at %d", cos, tw.Latest(v.Name()).N)
	}
}

// TestWitnessCatchesRollbackAndRewrite: a witness that cosigned the log
// exposes a store rolled back or rewritten with the log's own key.
func TestWitnessCatchesRollbackAndRewrite(t *testing.T) {
	ctx := context.Background()
	sc := newKeptScenario(t)
	tw := newTestWitness(t, "witness.example/w1", sc.v)
	srv := httptest.NewServer(tw)
	defer srv.Close()
	// The witness saw the genuine log up to 20 records.
	genuine := openLog(t, sc.st, sc.s, sc.v, -1)
	if _, err := newWitnessClient(t, srv, tw.VerifierKey()).AddCheckpoint(ctx, sc.kept20, genuine); err != nil {
		t.Fatal(err)
	}
	_ = genuine.Close(ctx)
	tests := []struct {
		name    string
		st      func(t *testing.T) *fakeLog
		records int // appended before the checkpoint is submitted
		want    string
	}{
		{"rolled back", func(*testing.T) *fakeLog { return sc.first.clone() }, 2, "rolled back"},
		{"rewritten and longer", func(t *testing.T) *fakeLog { return rebuild(t, sc.s, sc.v, 20) }, 5, "does not verify"},
		{"rewritten, same size", func(t *testing.T) *fakeLog { return rebuild(t, sc.s, sc.v, 20) }, 0, "another tree of 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, tt.st(t), sc.s, sc.v, -1)
			defer l.Close(ctx)
			for i := range tt.records {
				if _, err := l.Append(ctx, testRecord(50+i)); err != nil {
					t.Fatal(err)
				}
			}
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = newWitnessClient(t, srv, tw.VerifierKey()).AddCheckpoint(ctx, cp, l)
			if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AddCheckpoint = %v, want ErrTampered saying %q", err, tt.want)
			}
			if got := tw.Latest(sc.v.Name()); got.N != 20 {
				t.Fatalf("the witness moved to %d records", got.N)
			}
		})
	}
}

// TestWitnessRefusals: answers that are not cosignatures by the
// configured key are errors.
func TestWitnessRefusals(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	l := openLog(t, st, s, v, -1)
	defer l.Close(ctx)
	if _, err := l.Append(ctx, testRecord(0)); err != nil {
		t.Fatal(err)
	}
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, otherLogV := testKeys(t)
	tests := []struct {
		name    string
		witness func(t *testing.T) *audittest.Witness
		key     func(w *audittest.Witness) string // the key the client is given
		refused bool                              // ErrWitnessRefused
		want    string
	}{
		{"unknown origin", func(t *testing.T) *audittest.Witness { return newTestWitness(t, "w.example/a") }, nil, true, "404"},
		{"untrusted log key", func(t *testing.T) *audittest.Witness {
			w := newTestWitness(t, "w.example/a")
			w.Trust(v.Name(), otherLogV) // another key under the log's name
			return w
		}, nil, true, "403"},
		{"another witness key", func(t *testing.T) *audittest.Witness { return newTestWitness(t, "w.example/a", v) },
			func(*audittest.Witness) string { return newTestWitness(t, "w.example/a").VerifierKey() }, false, "do not verify"},
		{"broken cosignature", func(t *testing.T) *audittest.Witness {
			w := newTestWitness(t, "w.example/a", v)
			w.Mutate(func(b []byte) []byte {
				b = bytes.Clone(b)
				b[len(b)-5] ^= 1
				if b[len(b)-5] == '\n' || b[len(b)-5] == '=' {
					b[len(b)-5] = 'A'
				}
				return b
			})
			return w
		}, nil, false, "do not verify"},
		{"no cosignature", func(t *testing.T) *audittest.Witness {
			w := newTestWitness(t, "w.example/a", v)
			w.Mutate(func([]byte) []byte { return nil })
			return w
		}, nil, false, "no cosignature"},
		{"cosignature from the future", func(t *testing.T) *audittest.Witness {
			w := newTestWitness(t, "w.example/a", v)
			w.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
			return w
		}, nil, false, "do not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.witness(t)
			srv := httptest.NewServer(w)
			defer srv.Close()
			key := w.VerifierKey()
			if tt.key != nil {
				key = tt.key(w)
			}
			_, err := newWitnessClient(t, srv, key).AddCheckpoint(ctx, cp, l)
			if err == nil || errors.Is(err, ErrWitnessRefused) != tt.refused || errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AddCheckpoint = %v; want an error saying %q (refused: %v)", err, tt.want, tt.refused)
			}
		})
	}

	// Redirects are not followed.
	target := httptest.NewServer(newTestWitness(t, "w.example/a", v))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/witness/add-checkpoint", http.StatusTemporaryRedirect))
	defer redirect.Close()
	wc, err := NewWitness(WitnessConfig{URL: redirect.URL + "/witness", Key: newTestWitness(t, "w.example/a").VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.AddCheckpoint(ctx, cp, l); err == nil || !strings.Contains(err.Error(), "307") {
		t.Fatalf("redirected: %v", err)
	}
}

func TestParseCosignatureVerifier(t *testing.T) {
	w := newTestWitness(t, "witness.example/w1")
	fields := strings.SplitN(w.VerifierKey(), "+", 3)
	ed := func(t *testing.T) string {
		_, vkey, err := GenerateKey(rand.Reader, "example.org")
		if err != nil {
			t.Fatal(err)
		}
		return vkey
	}
	tests := []struct {
		name, vkey string
		ok         bool
	}{
		{"good", w.VerifierKey(), true},
		{"signer key type, not cosigner", ed(t), false},
		{"wrong hash", fields[0] + "+00000000+" + fields[2], false},
		{"short hash", fields[0] + "+0000+" + fields[2], false},
		{"bad base64", fields[0] + "+" + fields[1] + "+!!!", false},
		{"no name", "+" + fields[1] + "+" + fields[2], false},
		{"missing parts", fields[0], false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseCosignatureVerifier(tt.vkey)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseCosignatureVerifier(%q) = %v, %v", tt.vkey, v, err)
			}
			if tt.ok && (v.Name() != "witness.example/w1" || v.KeyHash() != w.KeyHash()) {
				t.Fatalf("verifier %s+%08x", v.Name(), v.KeyHash())
			}
		})
	}
	if _, err := NewWitness(WitnessConfig{URL: "ftp://x", Key: w.VerifierKey()}); err == nil {
		t.Error("NewWitness accepted an ftp URL")
	}
	if _, err := NewWitness(WitnessConfig{URL: "https://x", Key: "bad"}); err == nil {
		t.Error("NewWitness accepted a bad key")
	}
}
