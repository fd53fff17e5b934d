package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxLine is the longest line [NewReader] accepts when given zero.
const DefaultMaxLine = 1 << 20

// ErrLineTooLong is returned when a line exceeds the reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one dispatched event.
type Event struct {
	// Type is the value of the last "event" field; empty when none was sent
	// (the standard's default type "message").
	Type string
	// Data is the "data" field values joined with "\n".
	Data string
	// ID is the last event ID seen so far in the stream.
	ID string
}

// Reader parses an event stream.
type Reader struct {
	br      *bufio.Reader
	maxLine int
	started bool
	lastID  string
	line    []byte
}

// NewReader returns a Reader over r that rejects lines longer than maxLine
// bytes; maxLine <= 0 means [DefaultMaxLine].
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Reader{br: bufio.NewReader(r), maxLine: maxLine}
}

// Next returns the next dispatched event. At the end of the stream it returns
// io.EOF; an event not terminated by a blank line before the end is
// discarded, as the standard requires (§9.2.6). Errors of the underlying
// reader are returned wrapped.
func (r *Reader) Next() (Event, error) {
	var (
		data    strings.Builder
		hasData bool
		evType  string
	)
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if !hasData {
				evType = ""
				continue
			}
			d := data.String()
			return Event{Type: evType, Data: d[:len(d)-1], ID: r.lastID}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			evType = string(value)
		case "data":
			data.Write(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		}
	}
}

// readLine returns the next line without its terminator (CRLF, LF or CR).
// The returned slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A final line without terminator never completes an event.
				return nil, io.EOF
			}
			return nil, fmt.Errorf("sse: read: %w", err)
		}
		switch c {
		case '\n':
			return r.stripBOM(), nil
		case '\r':
			if next, err := r.br.Peek(1); err == nil && next[0] == '\n' {
				_, _ = r.br.ReadByte()
			}
			return r.stripBOM(), nil
		}
		if len(r.line) >= r.maxLine {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.maxLine)
		}
		r.line = append(r.line, c)
	}
}

// stripBOM removes a UTF-8 byte order mark from the first line of the stream.
func (r *Reader) stripBOM() []byte {
	if !r.started {
		r.started = true
		return bytes.TrimPrefix(r.line, []byte("\xef\xbb\xbf"))
	}
	return r.line
}
