package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note key type of Ed25519 cosignatures,
// c2sp.org/tlog-cosignature.
const algCosignatureV1 = 0x04

// maxCosignatureSkew is how far in the future a witness's cosignature
// timestamp may be before the witness client rejects it.
const maxCosignatureSkew = 10 * time.Minute

// cosignatureVerifier checks Ed25519 cosignatures (cosignature/v1) of one
// witness key: the signature is an 8-byte big-endian POSIX timestamp and
// an Ed25519 signature of "cosignature/v1\ntime <timestamp>\n" followed by
// the checkpoint's note text.
type cosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	now  func() time.Time // nil: timestamps are not checked
}

var _ note.Verifier = (*cosignatureVerifier)(nil)

// ParseCosignatureVerifier decodes the verifier key of a witness that
// signs Ed25519 cosignatures (c2sp.org/tlog-cosignature, cosignature/v1):
// "<name>+<key hash>+<base64 of 0x04 and the 32-byte public key>". The
// verifier checks the witness's signature lines on a checkpoint when given
// to note.Open.
func ParseCosignatureVerifier(vkey string) (note.Verifier, error) {
	return parseCosignatureVerifier(vkey, nil)
}

func parseCosignatureVerifier(vkey string, now func() time.Time) (*cosignatureVerifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) {
		return nil, errors.New("audit: parse witness key: want <name>+<key hash>+<base64 key>")
	}
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	key, err2 := base64.StdEncoding.DecodeString(key64)
	if err1 != nil || err2 != nil || len(hash16) != 8 {
		return nil, errors.New("audit: parse witness key: malformed key hash or key")
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("audit: parse witness key: not an Ed25519 cosignature key (type 0x%02x and %d key bytes)", algCosignatureV1, ed25519.PublicKeySize)
	}
	if cosignatureKeyHash(name, key) != uint32(hash) {
		return nil, errors.New("audit: parse witness key: the key hash does not match the name and key")
	}
	return &cosignatureVerifier{name: name, hash: uint32(hash), pub: ed25519.PublicKey(key[1:]), now: now}, nil
}

// cosignatureKeyHash is SHA-256(name || "\n" || key)[:4], key being the
// type byte and the public key.
func cosignatureKeyHash(name string, key []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validKeyName is the signed-note rule for key names: non-empty UTF-8
// without white space or '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify implements note.Verifier for cosignature/v1.
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts > math.MaxInt64 {
		return false
	}
	if v.now != nil && time.Unix(int64(ts), 0).After(v.now().Add(maxCosignatureSkew)) {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(ts, msg), sig[8:])
}

// cosignedMessage is what a cosignature/v1 signs for the note text msg.
func cosignedMessage(ts uint64, msg []byte) []byte {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts)
	return append(m, msg...)
}
