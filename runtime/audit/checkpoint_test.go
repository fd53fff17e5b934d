package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestCheckpointOrigin: checkpoints and the seal name the log itself
// (c2sp.org/tlog-checkpoint), not the Go checksum database.
func TestCheckpointOrigin(t *testing.T) {
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 3, 0)
	for name, cp := range map[string][]byte{"checkpoint": st.data(t, CheckpointsLog, 0), "seal": st.seal()} {
		lines := strings.Split(string(cp), "\n")
		if len(lines) < 5 || lines[0] != "agenthost-audit/example.org" || lines[1] != "3" || lines[3] != "" ||
			!strings.HasPrefix(lines[4], "\u2014 agenthost-audit/example.org ") {
			t.Errorf("%s:\n%s", name, cp)
		}
	}
}

func TestParseCheckpoint(t *testing.T) {
	const origin = "agenthost-audit/example.org"
	hash := tlog.RecordHash([]byte("x"))
	good := string(FormatCheckpoint(origin, tlog.Tree{N: 12, Hash: hash}))
	b64 := strings.Split(good, "\n")[2]
	tests := []struct {
		name, text string
		wantN      int64
		wantErr    string
	}{
		{"c2sp", good, 12, ""},
		{"extension line ignored", good + "ext\n", 12, ""},
		{"empty tree", origin + "\n0\n" + b64 + "\n", 0, ""},
		{"legacy", string(tlog.FormatTree(tlog.Tree{N: 7, Hash: hash})), 7, ""},
		{"other origin", "example.com/log\n12\n" + b64 + "\n", 0, "origin"},
		{"go.sum origin, other shape", "go.sum database tree\n12\n" + b64 + "\nextra\n", 0, "checkpoint"},
		{"leading zero", origin + "\n012\n" + b64 + "\n", 0, "leading zeros"},
		{"negative", origin + "\n-1\n" + b64 + "\n", 0, "tree size"},
		{"short hash", origin + "\n12\nAAAA\n", 0, "root hash"},
		{"hash not base64", origin + "\n12\n" + strings.Repeat("!", 44) + "\n", 0, "root hash"},
		{"two lines", origin + "\n12\n", 0, "lines"},
		{"empty extension", good + "\n", 0, "extension line"},
		{"no final newline", strings.TrimSuffix(good, "\n"), 0, "newline"},
		{"empty", "", 0, "newline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := ParseCheckpoint([]byte(tt.text), origin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCheckpoint = %+v, %v; want an error about %q", tree, err, tt.wantErr)
				}
				return
			}
			if err != nil || tree.N != tt.wantN || tree.Hash != hash {
				t.Fatalf("ParseCheckpoint = %+v, %v; want %d records", tree, err, tt.wantN)
			}
		})
	}
}

// TestLegacyCheckpointsVerify: a log whose checkpoints were signed in the
// earlier format (tlog.FormatTree) still opens and verifies.
func TestLegacyCheckpointsVerify(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 10, 5)
	// Rewrite every checkpoint and the seal as the earlier format signed
	// them: the same trees, the old text.
	for i := range st.count(CheckpointsLog) {
		tree, err := OpenCheckpoint(st.data(t, CheckpointsLog, i), v)
		if err != nil {
			t.Fatal(err)
		}
		st.set(t, CheckpointsLog, i, signTree(t, s, tree))
	}
	st.truncate(SealsLog, 0)
	if !bytes.HasPrefix(st.data(t, CheckpointsLog, 1), []byte("go.sum database tree\n10\n")) {
		t.Fatalf("legacy checkpoint %q", st.data(t, CheckpointsLog, 1))
	}
	if rep, err := Verify(ctx, st, v); err != nil || rep.Checkpoints != 2 || rep.Covered != 10 {
		t.Fatalf("Verify of legacy checkpoints: %+v, %v", rep, err)
	}
	l := openLog(t, st, s, v, 5)
	if _, err := l.Append(ctx, testRecord(10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, v)
	if err != nil || rep.Records != 11 || rep.Covered != 11 {
		t.Fatalf("Verify after appending to a legacy log: %+v, %v", rep, err)
	}
	// New checkpoints use the log's origin.
	if last := st.data(t, CheckpointsLog, st.count(CheckpointsLog)-1); !bytes.HasPrefix(last, []byte("agenthost-audit/example.org\n11\n")) {
		t.Errorf("new checkpoint %q", last)
	}
}

// TestSigner: a Signer carries its verifier key, so Open needs no
// Verifier; a signer that keeps its key elsewhere plugs in the same way.
func TestSigner(t *testing.T) {
	ctx := context.Background()
	skey, vkey, err := GenerateKey(rand.Reader, "example.org")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if ks.VerifierKey() != vkey {
		t.Fatalf("VerifierKey = %q, want %q", ks.VerifierKey(), vkey)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	remote := newRemoteSigner(t, "example.org", priv)
	for name, s := range map[string]Signer{"key": ks, "remote": remote} {
		t.Run(name, func(t *testing.T) {
			st := newFakeLog()
			l, err := Open(ctx, Config{Log: st, Signer: s, CheckpointInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(ctx, testRecord(0)); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			v, err := ParseVerifier(s.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := Verify(ctx, st, v); err != nil || rep.Covered != 1 {
				t.Fatalf("Verify: %+v, %v", rep, err)
			}
		})
	}
	if _, err := NewSigner("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Error("NewSigner accepted garbage")
	}
	// A plain note.Signer needs its Verifier.
	s, _ := testKeys(t)
	if _, err := Open(ctx, Config{Log: newFakeLog(), Signer: s}); err == nil {
		t.Error("Open without a verifier succeeded")
	}
}

// remoteSigner signs through a function, as a KMS-backed signer would: the
// log never sees the key.
type remoteSigner struct {
	name string
	hash uint32
	vkey string
	sign func([]byte) []byte
}

func newRemoteSigner(t *testing.T, trustDomain string, priv ed25519.PrivateKey) *remoteSigner {
	t.Helper()
	name, err := KeyName(trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &remoteSigner{name: name, hash: v.KeyHash(), vkey: vkey, sign: func(m []byte) []byte { return ed25519.Sign(priv, m) }}
}

func (s *remoteSigner) Name() string                    { return s.name }
func (s *remoteSigner) KeyHash() uint32                 { return s.hash }
func (s *remoteSigner) Sign(msg []byte) ([]byte, error) { return s.sign(msg), nil }
func (s *remoteSigner) VerifierKey() string             { return s.vkey }

func TestCheckpointDir(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	path := filepath.Join(t.TempDir(), "kept", "audit")
	d, err := NewCheckpointDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Latest(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest of an empty directory: %v", err)
	}
	st := newFakeLog()
	l, err := Open(ctx, Config{Log: st, Signer: s, Verifier: v, CheckpointEvery: 4, CheckpointInterval: -1,
		Publish: func(_ context.Context, _ *Log, cp []byte) {
			if err := d.Write(cp); err != nil {
				t.Errorf("Write: %v", err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(ctx, testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Checkpoint returns once its checkpoint is published.
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := d.Latest()
	if err != nil || !bytes.Equal(latest, cp) {
		t.Fatalf("Latest = %q, %v; want the checkpoint just taken", latest, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := checkpointFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "00000000000000000004.checkpoint 00000000000000000008.checkpoint 00000000000000000010.checkpoint" {
		t.Fatalf("files %v", names)
	}
	if fi, err := os.Stat(filepath.Join(path, names[0])); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode: %v, %v", fi.Mode(), err)
	}
	for i, name := range names {
		data, err := os.ReadFile(filepath.Join(path, name))
		if err != nil || !bytes.Equal(data, st.data(t, CheckpointsLog, int64(i))) {
			t.Errorf("%s holds %q, %v", name, data, err)
		}
	}

	// The same checkpoint with more signatures replaces the file; another
	// tree of the same size is refused.
	cosigned := append(bytes.Clone(cp), []byte("\u2014 witness.example/w1 AAAAAAAA\n")...)
	if err := d.Write(cosigned); err != nil {
		t.Fatalf("cosigned version: %v", err)
	}
	forged := signTree(t, s, tlog.Tree{N: 10, Hash: tlog.RecordHash([]byte("other"))})
	if err := d.Write(forged); !errors.Is(err, ErrTampered) {
		t.Fatalf("another tree of the same size: %v", err)
	}
	if got, _ := d.Latest(); !bytes.Equal(got, cosigned) {
		t.Fatalf("Latest after the refused write = %q", got)
	}

	// LoadCheckpoint takes a file (also as `audit checkpoint` printed it
	// before, with the key line) or a directory.
	file := filepath.Join(t.TempDir(), "kept.txt")
	if err := os.WriteFile(file, append(bytes.Clone(cp), []byte("verifier key: "+v.Name()+"+00000000+AAAA\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, path} {
		got, err := LoadCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		if tree, err := OpenCheckpoint(got, v); err != nil || tree.N != 10 {
			t.Errorf("LoadCheckpoint(%s): %+v, %v", p, tree, err)
		}
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), maxCheckpointSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{big, filepath.Join(t.TempDir(), "missing")} {
		if _, err := LoadCheckpoint(p); err == nil {
			t.Errorf("LoadCheckpoint(%s) succeeded", p)
		}
	}
	if _, err := NewCheckpointDir(file); err == nil {
		t.Error("NewCheckpointDir on a file succeeded")
	}
}
