package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// outputFormat is the value of --output (-o): how a read command prints
// what it found.
type outputFormat string

const (
	// outputText is for people: aligned columns and sentences.
	outputText outputFormat = "text"
	// outputJSON is for programs: one JSON document on stdout, in a shape
	// each command keeps stable (README, Commands).
	outputJSON outputFormat = "json"
)

// String implements pflag.Value.
func (o *outputFormat) String() string { return string(*o) }

// Set implements pflag.Value; a value other than text or json is a usage
// error naming both.
func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case outputText, outputJSON:
		*o = f
		return nil
	}
	return fmt.Errorf("%q is not an output format: use text or json", s)
}

// Type implements pflag.Value.
func (o *outputFormat) Type() string { return "format" }

// isJSON reports whether the command prints JSON.
func (o *outputFormat) isJSON() bool { return *o == outputJSON }

// addOutputFlag gives cmd --output/-o (text by default) and returns its
// value.
func addOutputFlag(cmd *cobra.Command) *outputFormat {
	o := outputText
	cmd.Flags().VarP(&o, "output", "o", "output format: text, or json (one JSON document on stdout, in a stable shape)")
	_ = cmd.RegisterFlagCompletionFunc("output",
		cobra.FixedCompletions([]string{string(outputText), string(outputJSON)}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// writeJSON writes v to w as indented JSON and a newline. encoding/json
// already writes the C0 controls as \u escapes; writeJSON also escapes
// DEL, the C1 controls and the bidirectional controls, which encoding/json
// leaves as they are, so that JSON shown on a terminal cannot drive it or
// disguise text either. It stays the same JSON: those characters can only
// be inside strings.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode the output as JSON: %w", err)
	}
	out := b.String()
	if strings.ContainsFunc(out, jsonNeedsEscape) {
		var e strings.Builder
		for _, r := range out {
			if jsonNeedsEscape(r) {
				fmt.Fprintf(&e, `\u%04x`, r)
				continue
			}
			e.WriteRune(r)
		}
		out = e.String()
	}
	_, err := io.WriteString(w, out)
	return err
}

// jsonNeedsEscape is true for the runes writeJSON escapes.
func jsonNeedsEscape(r rune) bool {
	return r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
