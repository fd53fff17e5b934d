package cli

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && fileIsTerminal(f)
}

// escapeControls makes untrusted text (what an agent says, what a host or
// a server answers) safe to show: the characters that let text drive a
// terminal or disguise itself are written as Go escapes (ESC as \x1b).
// These are the C0 controls, DEL and the C1 controls (U+0080–U+009F), a
// carriage return not followed by a newline, the bidirectional embedding,
// override and isolate controls, and bytes that are not UTF-8. Newlines,
// tabs and every other character are kept.
func escapeControls(s string) string { return escapeWith(s, needsEscape, true) }

// escapeWith writes the runes of s for which esc reports true, and the bytes
// of s that are not UTF-8, as Go escapes (ESC as \x1b, U+202E as \u202e, a
// byte 0xff as \xff); it keeps every other rune. With keepCRLF, a carriage
// return right before a newline is kept too. It is the one escaper of the
// CLI: escapeControls for what an agent says, clean and cleanLines for the
// fields and text of audit output.
func escapeWith(s string, esc func(rune) bool, keepCRLF bool) string {
	if !strings.ContainsFunc(s, esc) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case keepCRLF && r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			b.WriteByte('\r')
		case esc(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// needsEscape is true for the runes escapeControls writes as escapes
// (carriage returns included; escapeWith keeps one before a newline).
func needsEscape(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
