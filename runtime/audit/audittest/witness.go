package audittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxRequest caps an add-checkpoint request body.
const maxRequest = 1 << 20

// Witness is a transparency-log witness serving add-checkpoint
// (c2sp.org/tlog-witness) at any path ending in "/add-checkpoint". It
// checks each checkpoint's signature against the log keys it trusts for
// the checkpoint's origin (404 for an unknown origin, 403 without a
// trusted signature), that the old size is the size it last cosigned (409
// with that size as text/x.tlog.size otherwise, and for another tree of
// the same size), the consistency proof from that tree (422 if it fails),
// and only then records the new tree and answers with its Ed25519
// cosignature (c2sp.org/tlog-cosignature, cosignature/v1). The check and
// the update are atomic.
type Witness struct {
	name string
	priv ed25519.PrivateKey
	hash uint32
	vkey string

	mu     sync.Mutex
	logs   map[string]note.Verifier // trusted log keys by origin
	latest map[string]tlog.Tree     // latest tree cosigned, by origin
	status []int                    // status of every answer
	now    func() time.Time
	mutate func([]byte) []byte
}

var _ http.Handler = (*Witness)(nil)

// NewWitness returns a witness named name (a schema-less URL, such as
// "witness.example/w1") with a fresh Ed25519 key, trusting no log yet.
func NewWitness(name string) (*Witness, error) {
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return nil, fmt.Errorf("audittest: witness name %q is not a note key name", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audittest: %w", err)
	}
	// An Ed25519 cosigner's key ID is SHA-256(name || "\n" || 0x04 ||
	// public key)[:4].
	key := append([]byte{0x04}, pub...)
	sum := sha256.Sum256(append([]byte(name+"\n"), key...))
	w := &Witness{
		name: name, priv: priv, hash: binary.BigEndian.Uint32(sum[:4]),
		logs: map[string]note.Verifier{}, latest: map[string]tlog.Tree{}, now: time.Now,
	}
	w.vkey = fmt.Sprintf("%s+%08x+%s", name, w.hash, base64.StdEncoding.EncodeToString(key))
	return w, nil
}

// VerifierKey is the witness's cosignature verifier key,
// "<name>+<key ID>+<base64 of 0x04 and the public key>".
func (w *Witness) VerifierKey() string { return w.vkey }

// KeyHash is the witness key's ID.
func (w *Witness) KeyHash() uint32 { return w.hash }

// Trust makes the witness accept checkpoints of the log whose origin is
// origin when v verifies their signature.
func (w *Witness) Trust(origin string, v note.Verifier) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.logs[origin] = v
}

// SetClock sets the clock cosignatures are timestamped with.
func (w *Witness) SetClock(now func() time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = now
}

// Mutate makes the witness pass every successful answer through f before
// sending it: a broken or lying witness.
func (w *Witness) Mutate(f func([]byte) []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mutate = f
}

// Latest is the latest tree the witness cosigned for origin.
func (w *Witness) Latest(origin string) tlog.Tree {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest[origin]
}

// Statuses are the HTTP statuses of the witness's answers so far.
func (w *Witness) Statuses() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.status...)
}

func (w *Witness) answer(rw http.ResponseWriter, code int, ctype, body string) {
	w.status = append(w.status, code)
	if ctype != "" {
		rw.Header().Set("Content-Type", ctype)
	}
	rw.WriteHeader(code)
	_, _ = io.WriteString(rw, body)
}

// ServeHTTP implements add-checkpoint.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/add-checkpoint") {
		w.answer(rw, http.StatusNotFound, "", "no such endpoint\n")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest))
	if err != nil {
		w.answer(rw, http.StatusBadRequest, "", "cannot read the request\n")
		return
	}
	old, proof, checkpoint, ok := parseRequest(body)
	if !ok {
		w.answer(rw, http.StatusBadRequest, "", "malformed request\n")
		return
	}
	origin, _, _ := bytes.Cut(checkpoint, []byte("\n"))
	v, known := w.logs[string(origin)]
	if !known {
		w.answer(rw, http.StatusNotFound, "", "unknown log\n")
		return
	}
	n, err := note.Open(checkpoint, note.VerifierList(v))
	if err != nil {
		w.answer(rw, http.StatusForbidden, "", "no trusted signature\n")
		return
	}
	tree, ok := parseTree(n.Text)
	if !ok {
		w.answer(rw, http.StatusBadRequest, "", "malformed checkpoint\n")
		return
	}
	if old > tree.N {
		w.answer(rw, http.StatusBadRequest, "", "old size beyond the checkpoint\n")
		return
	}
	latest := w.latest[string(origin)]
	conflict := func() {
		w.answer(rw, http.StatusConflict, "text/x.tlog.size", fmt.Sprintf("%d\n", latest.N))
	}
	if old != latest.N {
		conflict()
		return
	}
	switch {
	case old == tree.N:
		if old > 0 && tree.Hash != latest.Hash {
			conflict()
			return
		}
	case old == 0:
		if len(proof) != 0 {
			w.answer(rw, http.StatusUnprocessableEntity, "", "a proof from size 0\n")
			return
		}
	default:
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, old, latest.Hash); err != nil {
			w.answer(rw, http.StatusUnprocessableEntity, "", "the consistency proof does not verify\n")
			return
		}
	}
	w.latest[string(origin)] = tree
	ts := uint64(w.now().Unix())
	msg := append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts), n.Text...)
	sig := binary.BigEndian.AppendUint32(nil, w.hash)
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(w.priv, msg)...)
	out := []byte("\u2014 " + w.name + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
	if w.mutate != nil {
		out = w.mutate(out)
	}
	w.answer(rw, http.StatusOK, "", string(out))
}

// parseRequest splits an add-checkpoint body: "old <size>", up to 63
// base64 hashes, an empty line, the checkpoint.
func parseRequest(body []byte) (old int64, proof tlog.TreeProof, checkpoint []byte, ok bool) {
	line, rest, _ := bytes.Cut(body, []byte("\n"))
	sizeText, found := bytes.CutPrefix(line, []byte("old "))
	old, err := strconv.ParseInt(string(sizeText), 10, 64)
	if !found || err != nil || old < 0 || strconv.FormatInt(old, 10) != string(sizeText) {
		return 0, nil, nil, false
	}
	for {
		line, rest, found = bytes.Cut(rest, []byte("\n"))
		if !found {
			return 0, nil, nil, false
		}
		if len(line) == 0 {
			return old, proof, rest, true
		}
		h, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize || len(proof) == 63 {
			return 0, nil, nil, false
		}
		proof = append(proof, tlog.Hash(h))
	}
}

// parseTree reads the size and root hash of a checkpoint's text.
func parseTree(text string) (tlog.Tree, bool) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 {
		return tlog.Tree{}, false
	}
	size, err1 := strconv.ParseInt(lines[1], 10, 64)
	root, err2 := base64.StdEncoding.DecodeString(lines[2])
	if err1 != nil || err2 != nil || size < 0 || len(root) != tlog.HashSize {
		return tlog.Tree{}, false
	}
	return tlog.Tree{N: size, Hash: tlog.Hash(root)}, true
}
