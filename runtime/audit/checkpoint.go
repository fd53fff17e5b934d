package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// legacyOrigin is the first line of the checkpoints this log signed before
// it used an origin of its own: the text of tlog.FormatTree, which is the
// Go checksum database's checkpoint format. Logs written then hold such
// checkpoints, signed with the log's own key, and must keep verifying, so
// [OpenCheckpoint] still accepts them; the log never writes one again.
const legacyOrigin = "go.sum database tree"

// maxCheckpointSize bounds a checkpoint note read from a file, a witness or
// a peer: the text is three short lines, each signature line under 200
// bytes, and note.Open reads at most 100 signatures.
const maxCheckpointSize = 32 << 10

// FormatCheckpoint returns the note text of the checkpoint of tree for the
// log named origin, as c2sp.org/tlog-checkpoint lays it out: the origin,
// the tree size in decimal and the root hash in base64, one per line, with
// no extension lines. The log's origin is its key name,
// "agenthost-audit/<trust domain>" ([KeyName]).
func FormatCheckpoint(origin string, tree tlog.Tree) []byte {
	var b bytes.Buffer
	b.WriteString(origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(tree.N, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(tree.Hash[:]))
	b.WriteByte('\n')
	return b.Bytes()
}

// ParseCheckpoint parses the note text of a checkpoint of the log named
// origin (c2sp.org/tlog-checkpoint): the origin line must be origin, the
// size decimal without leading zeros, the root hash base64 of 32 bytes;
// extension lines, which the log never writes, are ignored. Text in the
// format of tlog.FormatTree, which the log wrote before it used its own
// origin, is accepted too.
func ParseCheckpoint(text []byte, origin string) (tlog.Tree, error) {
	if bytes.HasPrefix(text, []byte(legacyOrigin+"\n")) {
		if bytes.Count(text, []byte("\n")) != 3 {
			return tlog.Tree{}, errors.New("audit: checkpoint: a checkpoint of the earlier format has exactly three lines")
		}
		tree, err := tlog.ParseTree(text)
		if err != nil {
			return tlog.Tree{}, fmt.Errorf("audit: checkpoint: %w", err)
		}
		return tree, nil
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return tlog.Tree{}, errors.New("audit: checkpoint: the text does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: %d lines, want at least 3 (origin, size, root hash)", len(lines))
	}
	if lines[0] != origin {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: origin %q, want %q", lines[0], origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: tree size %q is not a decimal number without leading zeros", lines[1])
	}
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint: root hash %q is not the base64 of %d bytes", lines[2], tlog.HashSize)
	}
	for i, ext := range lines[3:] {
		if ext == "" {
			return tlog.Tree{}, fmt.Errorf("audit: checkpoint: extension line %d is empty", i+1)
		}
	}
	tree := tlog.Tree{N: n}
	copy(tree.Hash[:], h)
	return tree, nil
}

// OpenCheckpoint checks the signature of a checkpoint note with verifier
// and returns the tree it states. The checkpoint's origin must be the
// verifier's key name, which is the log's name; signatures by other keys
// (a witness's cosignatures) are ignored.
func OpenCheckpoint(checkpoint []byte, verifier note.Verifier) (tlog.Tree, error) {
	if verifier == nil {
		return tlog.Tree{}, errors.New("audit: open checkpoint: nil verifier")
	}
	n, err := note.Open(checkpoint, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	return ParseCheckpoint([]byte(n.Text), verifier.Name())
}

// signCheckpoint signs the checkpoint of tree with s, the log's key, whose
// name is the log's origin.
func signCheckpoint(s note.Signer, tree tlog.Tree) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(s.Name(), tree))}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// CheckpointSize returns the tree size a checkpoint note states, without
// checking its signature: for naming and sorting only.
func CheckpointSize(checkpoint []byte) (int64, error) {
	text := noteText(checkpoint)
	tree, err := ParseCheckpoint(text, originOf(text))
	if err != nil {
		return 0, err
	}
	return tree.N, nil
}

// noteText is the text of a signed note, without its signatures.
func noteText(msg []byte) []byte {
	if i := bytes.LastIndex(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1]
	}
	return msg
}

// originOf is the first line of a checkpoint.
func originOf(checkpoint []byte) string {
	line, _, _ := bytes.Cut(checkpoint, []byte("\n"))
	return string(line)
}

// trimKeyLine drops a last line "verifier key: …" after the signatures:
// the form in which earlier versions of `agenthost audit checkpoint`
// printed a checkpoint. The key on that line is never used.
func trimKeyLine(data []byte) []byte {
	body := bytes.TrimRight(data, "\n")
	i := bytes.LastIndexByte(body, '\n')
	if i >= 0 && bytes.HasPrefix(body[i+1:], []byte("verifier key: ")) {
		return data[:i+1]
	}
	return data
}
