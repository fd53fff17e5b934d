package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// recordingHandler keeps every record logged through it.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// TestPluginLogLevels: go-plugin's JSON log lines keep their level (its
// debug chatter is not logged as info), a plugin's plain stderr is info,
// and a plugin's warnings are left to go-plugin's parsed path (not logged
// twice).
func TestPluginLogLevels(t *testing.T) {
	tests := []struct {
		name       string
		fromPlugin bool
		line       string
		want       string // "LEVEL message", or "" for nothing logged
	}{
		{"go-plugin debug from the plugin", true, `{"@level":"debug","@message":"plugin address","@timestamp":"2026-12-06T06:47:48Z","address":"/run/agenthost/plugin/p1","network":"unix"}`, "DEBUG go-plugin: plugin address"},
		{"plugin warning from its stderr", true, `{"@level":"warn","@message":"disk almost full"}`, ""},
		{"plain stderr", true, `panic: something`, "INFO plugin output"},
		{"JSON that is not hclog", true, `{"hello":"world"}`, "INFO plugin output"},
		{"host-side go-plugin error", false, `{"@level":"error","@message":"plugin process exited","plugin":"/x"}`, "ERROR go-plugin: plugin process exited"},
		{"host-side go-plugin warning", false, `{"@level":"warn","@message":"slow"}`, "WARN go-plugin: slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recordingHandler{}
			l := &lineLogger{log: slog.New(h), fromPlugin: tt.fromPlugin}
			if _, err := l.Write([]byte(tt.line + "\n")); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range h.records {
				got = append(got, r.Level.String()+" "+r.Message)
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Fatalf("logged %q, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("logged %q, want %q", got, tt.want)
			}
		})
	}
	// The fields of an entry become attributes.
	h := &recordingHandler{}
	l := &lineLogger{log: slog.New(h), fromPlugin: true}
	_, _ = l.Write([]byte(`{"@level":"debug","@message":"m","network":"unix"}` + "\n"))
	var buf bytes.Buffer
	h.records[0].Attrs(func(a slog.Attr) bool { buf.WriteString(a.String()); return true })
	if !strings.Contains(buf.String(), "network=unix") {
		t.Errorf("attributes = %q", &buf)
	}
}
