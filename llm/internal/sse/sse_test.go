package sse

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readAll(t testing.TB, in string, maxLine int) ([]Event, error) {
	t.Helper()
	r := NewReader(strings.NewReader(in), maxLine)
	var out []Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []Event
		wantErr error
	}{
		{
			name: "openai chunks",
			in:   "data: {\"a\":1}\n\ndata: [DONE]\n\n",
			want: []Event{{Data: `{"a":1}`}, {Data: "[DONE]"}},
		},
		{
			name: "named events crlf",
			in:   "event: ping\r\ndata: {}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
			want: []Event{{Type: "ping", Data: "{}"}, {Type: "message_stop", Data: `{"type":"message_stop"}`}},
		},
		{
			name: "bare cr terminators",
			in:   "data: x\r\r",
			want: []Event{{Data: "x"}},
		},
		{
			name: "multi-line data and comments",
			in:   ": keep-alive\ndata: one\ndata:two\ndata\n\n",
			want: []Event{{Data: "one\ntwo\n"}},
		},
		{
			name: "id persists and type resets",
			in:   "id: 7\nevent: a\ndata: 1\n\ndata: 2\n\n",
			want: []Event{{Type: "a", Data: "1", ID: "7"}, {Data: "2", ID: "7"}},
		},
		{
			name: "blank lines without data dispatch nothing",
			in:   "event: x\n\n\n\ndata: y\n\n",
			want: []Event{{Data: "y"}},
		},
		{
			name: "unterminated final event is discarded",
			in:   "data: complete\n\ndata: {\"partial\":",
			want: []Event{{Data: "complete"}},
		},
		{
			name: "leading bom",
			in:   "\xef\xbb\xbfdata: z\n\n",
			want: []Event{{Data: "z"}},
		},
		{
			name:    "line too long",
			in:      "data: " + strings.Repeat("x", 64) + "\n\n",
			maxLine: 32,
			wantErr: ErrLineTooLong,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in, tt.maxLine)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// encode writes events in canonical form.
func encode(events []Event) string {
	var b strings.Builder
	for _, ev := range events {
		b.WriteString("id: " + ev.ID + "\n")
		if ev.Type != "" {
			b.WriteString("event: " + ev.Type + "\n")
		}
		for _, line := range strings.Split(ev.Data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// FuzzSSE checks that the reader never panics on any input, that events
// never carry line terminators where the format cannot express them, and
// that re-encoding the parsed events parses back to the same events.
func FuzzSSE(f *testing.F) {
	seeds := []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		"event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\"}\r\n\r\n",
		": comment\n\nid: 1\ndata\n\n",
		"data: x\r\rdata: y\r\n\r\n",
		"\xef\xbb\xbfevent: e\ndata: \x00\n\n",
		"data: {\"partial\":",
		"id: a\x00b\ndata: q\n\n",
		"event:\ndata:\n\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		events, err := readAll(t, in, 4096)
		if err != nil && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("unexpected error: %v", err)
		}
		for _, ev := range events {
			if strings.ContainsAny(ev.Type, "\r\n") || strings.ContainsAny(ev.ID, "\r\n\x00") || strings.Contains(ev.Data, "\r") {
				t.Fatalf("event carries a line terminator: %q", ev)
			}
		}
		if err != nil {
			return
		}
		again, err := readAll(t, encode(events), 1<<16)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if diff := cmp.Diff(events, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func BenchmarkReader(b *testing.B) {
	var in strings.Builder
	for range 1000 {
		in.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token"},"finish_reason":null}]}` + "\n\n")
	}
	body := in.String()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(strings.NewReader(body), 0)
		for {
			if _, err := r.Next(); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
