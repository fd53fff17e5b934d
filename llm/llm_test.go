package llm

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIErrorIs(t *testing.T) {
	all := []error{ErrRateLimited, ErrAuth, ErrBadRequest, ErrOverloaded}
	tests := []struct {
		name string
		err  *APIError
		want error
	}{
		{name: "429", err: &APIError{Status: 429}, want: ErrRateLimited},
		{name: "rate type in stream", err: &APIError{Type: "rate_limit_error"}, want: ErrRateLimited},
		{name: "401", err: &APIError{Status: 401, Type: "authentication_error"}, want: ErrAuth},
		{name: "403", err: &APIError{Status: 403, Type: "permission_error"}, want: ErrAuth},
		{name: "400", err: &APIError{Status: 400, Type: "invalid_request_error"}, want: ErrBadRequest},
		{name: "404", err: &APIError{Status: 404, Type: "not_found_error"}, want: ErrBadRequest},
		{name: "413", err: &APIError{Status: 413, Type: "request_too_large"}, want: ErrBadRequest},
		{name: "529", err: &APIError{Status: 529, Type: "overloaded_error"}, want: ErrOverloaded},
		{name: "503", err: &APIError{Status: 503}, want: ErrOverloaded},
		{name: "overloaded in stream", err: &APIError{Type: "overloaded_error"}, want: ErrOverloaded},
		{name: "500 matches none", err: &APIError{Status: 500, Type: "api_error"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := error(tt.err)
			for _, s := range all {
				if got := errors.Is(wrapped, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", tt.err, s, got)
				}
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	e := &APIError{Provider: "anthropic", Status: 529, Type: "overloaded_error", Message: "Overloaded"}
	want := "llm: anthropic: provider error (status 529) overloaded_error: Overloaded"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("key sk-1 and sk-1 again", "sk-1"); got != "key [redacted] and [redacted] again" {
		t.Errorf("Redact = %q", got)
	}
	if got := Redact("unchanged", ""); got != "unchanged" {
		t.Errorf("Redact with empty secret = %q", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{name: "none", want: 0},
		{name: "seconds", h: map[string]string{"Retry-After": "7"}, want: 7 * time.Second},
		{name: "milliseconds win", h: map[string]string{"Retry-After": "7", "Retry-After-Ms": "250"}, want: 250 * time.Millisecond},
		{name: "http date", h: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, want: 90 * time.Second},
		{name: "date in the past", h: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, want: 0},
		{name: "negative", h: map[string]string{"Retry-After": "-3"}, want: 0},
		{name: "garbage", h: map[string]string{"Retry-After": "soon", "Retry-After-Ms": "x"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			if got := ParseRetryAfter(h, now); got != tt.want {
				t.Errorf("ParseRetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	user := Message{Role: RoleUser, Content: "hi"}
	tests := []struct {
		name    string
		req     *Request
		wantErr string
	}{
		{name: "ok", req: &Request{Messages: []Message{user}, Tools: []Tool{{Name: "t", Parameters: json.RawMessage(`{"type":"object"}`)}}}},
		{name: "nil", req: nil, wantErr: "nil request"},
		{name: "empty", req: &Request{}, wantErr: "no messages"},
		{name: "negative max tokens", req: &Request{Messages: []Message{user}, MaxTokens: -1}, wantErr: "negative max tokens"},
		{name: "unknown role", req: &Request{Messages: []Message{{Role: "bot"}}}, wantErr: "unknown role"},
		{name: "tool without id", req: &Request{Messages: []Message{{Role: RoleTool}}}, wantErr: "without tool call id"},
		{name: "user with tool calls", req: &Request{Messages: []Message{{Role: RoleUser, ToolCalls: []ToolCall{{ID: "a", Name: "b"}}}}}, wantErr: "tool calls in a user message"},
		{name: "call without name", req: &Request{Messages: []Message{{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "a"}}}}}, wantErr: "without id or name"},
		{name: "arguments array", req: &Request{Messages: []Message{{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "a", Name: "b", Arguments: json.RawMessage(`[]`)}}}}}, wantErr: "arguments are not a JSON object"},
		{name: "tool unnamed", req: &Request{Messages: []Message{user}, Tools: []Tool{{}}}, wantErr: "without name"},
		{name: "tool twice", req: &Request{Messages: []Message{user}, Tools: []Tool{{Name: "t"}, {Name: "t"}}}, wantErr: "offered twice"},
		{name: "schema null", req: &Request{Messages: []Message{user}, Tools: []Tool{{Name: "t", Parameters: json.RawMessage(`null`)}}}, wantErr: "parameters are not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidRequest containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeArguments(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: "{}"},
		{in: "  \n", want: "{}"},
		{in: ` {"a":1} `, want: `{"a":1}`},
		{in: `{"a":`, wantErr: true},
		{in: `"str"`, wantErr: true},
		{in: `{"a":1} {"b":2}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeArguments(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	final := &Response{Message: Message{Role: RoleAssistant, Content: "x"}, StopReason: StopEndTurn}
	boom := errors.New("boom")
	tests := []struct {
		name    string
		events  []Event
		err     error
		wantErr error
	}{
		{name: "done", events: []Event{{Type: EventTextDelta, Text: "x"}, {Type: EventDone, Response: final}}},
		{name: "no done", events: []Event{{Type: EventTextDelta, Text: "x"}}, wantErr: ErrMalformedStream},
		{name: "done without response", events: []Event{{Type: EventDone}}, wantErr: ErrMalformedStream},
		{name: "error", events: []Event{{Type: EventTextDelta}}, err: boom, wantErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := func(yield func(Event, error) bool) {
				for _, ev := range tt.events {
					if !yield(ev, nil) {
						return
					}
				}
				if tt.err != nil {
					yield(Event{}, tt.err)
				}
			}
			got, err := Collect(seq)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Collect error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got != final {
				t.Errorf("Collect = %+v", got)
			}
		})
	}
	if _, err := Collect(ErrorStream(boom)); !errors.Is(err, boom) {
		t.Errorf("ErrorStream: %v", err)
	}
}

func TestRedactError(t *testing.T) {
	base := errors.New("dial tcp: key sk-9 leaked")
	err := RedactError(base, "sk-9")
	if strings.Contains(err.Error(), "sk-9") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("message = %q", err)
	}
	if !errors.Is(err, base) {
		t.Error("chain lost")
	}
	if RedactError(base, "other") != base || RedactError(nil, "x") != nil {
		t.Error("unchanged cases altered")
	}
}
