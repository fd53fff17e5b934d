package config

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Kinds of configuration problem. Every [*Error] wraps exactly one of them, so
// callers can test a returned [Errors] with [errors.Is].
var (
	// ErrEmpty reports a file with no content (or only comments).
	ErrEmpty = errors.New("config: file is empty")
	// ErrSyntax reports a file that is not well-formed YAML.
	ErrSyntax = errors.New("config: not valid YAML")
	// ErrNotMapping reports a file whose top level is not a mapping of keys.
	ErrNotMapping = errors.New("config: top level is not a mapping")
	// ErrNoVersion reports a file without the required version key.
	ErrNoVersion = errors.New("config: missing version")
	// ErrUnsupportedVersion reports a version this package cannot read.
	ErrUnsupportedVersion = errors.New("config: unsupported version")
	// ErrUnknownKey reports a key the schema does not define.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrDuplicateKey reports a key given twice in one mapping.
	ErrDuplicateKey = errors.New("config: duplicate key")
	// ErrType reports a value that does not fit the type of its key: a string
	// where a number is expected, a bad duration, a value outside an
	// enumeration, a mapping where a list is expected, and so on.
	ErrType = errors.New("config: wrong type")
	// ErrInvalid reports a well-typed value that fails a semantic check of
	// [Config.Validate], or a key refused because it would hold a plaintext
	// secret.
	ErrInvalid = errors.New("config: invalid value")
)

// Error is one problem in a configuration file, located by file, line and
// column (1-based; 0 when unknown) and by the dotted key path of the value
// concerned ("listen.tls.cert_file", "agents[2].name"). It prints as
// "FILE:LINE:COL: key.path: message".
type Error struct {
	File    string
	Line    int
	Column  int
	Path    string
	Message string
	// Kind is one of the Err… sentinels of this package.
	Kind error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the kind of the problem.
func (e *Error) Unwrap() error { return e.Kind }

// Errors is every problem found in one configuration file, in file order. It
// prints one problem per line.
type Errors []*Error

// Error implements error.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so that [errors.Is] and
// [errors.As] see each of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders problems by position; problems without a line go last,
// and ties keep their order of discovery.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}
