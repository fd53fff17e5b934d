package llmanthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/llm"
)

const testKey = "sk-ant-api03-test-5e1d-secret"

// fakeServer speaks the Messages API wire format.
type fakeServer struct {
	respond func(w http.ResponseWriter, body map[string]any)

	mu       sync.Mutex
	headers  []http.Header
	bodies   []map[string]any
	requests int
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		writeJSON(w, 404, `{"type":"error","error":{"type":"not_found_error","message":"Not found"}}`)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}`)
		return
	}
	f.mu.Lock()
	f.requests++
	f.headers = append(f.headers, r.Header.Clone())
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	f.respond(w, body)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, body map[string]any)) (*fakeServer, *Client) {
	t.Helper()
	f := &fakeServer{respond: respond}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, HTTPClient: srv.Client(), DefaultModel: "claude-test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f, c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func writeSSE(w http.ResponseWriter, parts ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, p := range parts {
		io.WriteString(w, p)
	}
}

// sse formats one named event with its JSON data.
func event(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }

func userRequest(text string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "You are terse."},
		{Role: llm.RoleUser, Content: text},
	}}
}

var weatherTool = llm.Tool{
	Name:        "get_weather",
	Description: "Current weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}

func TestCompleteText(t *testing.T) {
	temp := 0.5
	f, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
		writeJSON(w, 200, `{
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "type": "message",
  "role": "assistant",
  "model": "claude-test-20250514",
  "content": [{"type": "text", "text": "Hi! My name is Claude."}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 5}
}`)
	})
	req := userRequest("Hello")
	req.Temperature = &temp
	got, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := &llm.Response{
		Model:      "claude-test-20250514",
		Message:    llm.Message{Role: llm.RoleAssistant, Content: "Hi! My name is Claude."},
		StopReason: llm.StopEndTurn,
		Usage:      llm.Usage{InputTokens: 2100, OutputTokens: 503},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	wantBody := map[string]any{
		"model":       "claude-test",
		"max_tokens":  float64(DefaultMaxTokens),
		"system":      "You are terse.",
		"temperature": 0.5,
		"messages": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Hello"}}},
		},
	}
	if diff := cmp.Diff(wantBody, f.bodies[0]); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	h := f.headers[0]
	if h.Get("x-api-key") != testKey || h.Get("anthropic-version") != "2023-06-01" || h.Get("content-type") != "application/json" {
		t.Errorf("headers = %v", h)
	}
	if h.Get("Authorization") != "" {
		t.Errorf("key also sent as Authorization")
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	f, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
		msgs := body["messages"].([]any)
		if len(msgs) > 1 {
			writeJSON(w, 200, `{"id":"msg_2","type":"message","role":"assistant","model":"claude-test","content":[{"type":"text","text":"It is 21°C in Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":60,"output_tokens":12}}`)
			return
		}
		writeJSON(w, 200, `{
  "id": "msg_1",
  "type": "message",
  "role": "assistant",
  "model": "claude-test",
  "content": [
    {"type": "text", "text": "I'll check the weather."},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Paris"}}
  ],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "usage": {"input_tokens": 40, "output_tokens": 30}
}`)
	})
	req := userRequest("Weather in Paris?")
	req.Tools = []llm.Tool{weatherTool, {Name: "noop"}}
	first, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("first Complete: %v", err)
	}
	wantFirst := &llm.Response{
		Model: "claude-test",
		Message: llm.Message{Role: llm.RoleAssistant, Content: "I'll check the weather.", ToolCalls: []llm.ToolCall{
			{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather", Arguments: json.RawMessage(`{"city": "Paris"}`)},
		}},
		StopReason: llm.StopToolUse,
		Usage:      llm.Usage{InputTokens: 40, OutputTokens: 30},
	}
	if diff := cmp.Diff(wantFirst, first); diff != "" {
		t.Errorf("first response (-want +got):\n%s", diff)
	}
	wantTools := []any{
		map[string]any{
			"name":        "get_weather",
			"description": "Current weather for a city",
			"input_schema": map[string]any{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []any{"city"},
			},
		},
		map[string]any{"name": "noop", "input_schema": map[string]any{"type": "object", "properties": map[string]any{}}},
	}
	if diff := cmp.Diff(wantTools, f.bodies[0]["tools"]); diff != "" {
		t.Errorf("tools on the wire (-want +got):\n%s", diff)
	}

	req.Messages = append(req.Messages, first.Message,
		llm.Message{Role: llm.RoleTool, ToolCallID: "toolu_01A09q90qw90lq917835lq9", Content: `{"temp_c":21}`},
		llm.Message{Role: llm.RoleUser, Content: "Answer in one line."})
	second, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("second Complete: %v", err)
	}
	if second.Message.Content != "It is 21°C in Paris." || second.StopReason != llm.StopEndTurn {
		t.Errorf("second response = %+v", second)
	}
	wantMsgs := []any{
		map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "Weather in Paris?"}}},
		map[string]any{"role": "assistant", "content": []any{
			map[string]any{"type": "text", "text": "I'll check the weather."},
			map[string]any{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": map[string]any{"city": "Paris"}},
		}},
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": `{"temp_c":21}`},
			map[string]any{"type": "text", "text": "Answer in one line."},
		}},
	}
	if diff := cmp.Diff(wantMsgs, f.bodies[1]["messages"]); diff != "" {
		t.Errorf("round-trip messages (-want +got):\n%s", diff)
	}
}

func collectEvents(seq func(func(llm.Event, error) bool)) ([]llm.Event, error) {
	var evs []llm.Event
	for ev, err := range seq {
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

const messageStart = `{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`

func TestStreamText(t *testing.T) {
	f, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w,
			event("message_start", messageStart),
			event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
			event("ping", `{"type": "ping"}`),
			event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`),
			event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}`),
			event("content_block_stop", `{"type":"content_block_stop","index":0}`),
			event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`),
			event("message_stop", `{"type":"message_stop"}`),
		)
	})
	evs, err := collectEvents(c.Stream(context.Background(), userRequest("hi")))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	want := []llm.Event{
		{Type: llm.EventTextDelta, Text: "Hello"},
		{Type: llm.EventTextDelta, Text: "!"},
		{Type: llm.EventDone, Response: &llm.Response{
			Model:      "claude-test",
			Message:    llm.Message{Role: llm.RoleAssistant, Content: "Hello!"},
			StopReason: llm.StopEndTurn,
			Usage:      llm.Usage{InputTokens: 25, OutputTokens: 15},
		}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if f.bodies[0]["stream"] != true {
		t.Errorf("stream flag not sent")
	}
}

func TestStreamToolUseDeltas(t *testing.T) {
	args := `{"location": "San Francisco, CA", "unit": "fahrenheit"}`
	parts := []string{
		event("message_start", messageStart),
		event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}`),
		event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me look."}}`),
		event("content_block_stop", `{"type":"content_block_stop","index":0}`),
		event("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`),
		event("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking."}}`),
		event("content_block_stop", `{"type":"content_block_stop","index":1}`),
		event("content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}`),
		event("content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`),
	}
	var wantDeltas []llm.Event
	for i := 0; i < len(args); i += 4 {
		piece := args[i:min(i+4, len(args))]
		enc, _ := json.Marshal(piece)
		parts = append(parts, event("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":%s}}`, enc)))
		wantDeltas = append(wantDeltas, llm.Event{Type: llm.EventToolCallDelta, Index: 0, ArgumentsDelta: piece})
	}
	parts = append(parts,
		event("content_block_stop", `{"type":"content_block_stop","index":2}`),
		event("content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}}`),
		event("content_block_stop", `{"type":"content_block_stop","index":3}`),
		event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}`),
		event("message_stop", `{"type":"message_stop"}`),
	)
	_, c := newFake(t, func(w http.ResponseWriter, body map[string]any) { writeSSE(w, parts...) })
	evs, err := collectEvents(c.Stream(context.Background(), userRequest("weather?")))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	call0 := llm.ToolCall{ID: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", Name: "get_weather", Arguments: json.RawMessage(args)}
	call1 := llm.ToolCall{ID: "toolu_2", Name: "get_time", Arguments: json.RawMessage(`{}`)}
	want := []llm.Event{
		{Type: llm.EventTextDelta, Text: "Checking."},
		{Type: llm.EventToolCallStart, Index: 0, ToolCall: llm.ToolCall{ID: call0.ID, Name: call0.Name}},
	}
	want = append(want, wantDeltas...)
	want = append(want,
		llm.Event{Type: llm.EventToolCallEnd, Index: 0, ToolCall: call0},
		llm.Event{Type: llm.EventToolCallStart, Index: 1, ToolCall: llm.ToolCall{ID: call1.ID, Name: call1.Name}},
		llm.Event{Type: llm.EventToolCallEnd, Index: 1, ToolCall: call1},
		llm.Event{Type: llm.EventDone, Response: &llm.Response{
			Model:      "claude-test",
			Message:    llm.Message{Role: llm.RoleAssistant, Content: "Checking.", ToolCalls: []llm.ToolCall{call0, call1}},
			StopReason: llm.StopToolUse,
			Usage:      llm.Usage{InputTokens: 25, OutputTokens: 89},
		}},
	)
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantIs    error
		wantType  string
		wantRetry time.Duration
	}{
		{name: "invalid request 400", status: 400, body: `{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"},"request_id":"req_1"}`, wantIs: llm.ErrBadRequest, wantType: "invalid_request_error"},
		{name: "authentication 401 echoing the key", status: 401, body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key ` + testKey + `"}}`, wantIs: llm.ErrAuth, wantType: "authentication_error"},
		{name: "permission 403", status: 403, body: `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`, wantIs: llm.ErrAuth, wantType: "permission_error"},
		{name: "not found 404", status: 404, body: `{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"}}`, wantIs: llm.ErrBadRequest, wantType: "not_found_error"},
		{name: "too large 413", status: 413, body: `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`, wantIs: llm.ErrBadRequest, wantType: "request_too_large"},
		{name: "rate limit 429", status: 429, header: map[string]string{"retry-after": "30"}, body: `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, wantIs: llm.ErrRateLimited, wantType: "rate_limit_error", wantRetry: 30 * time.Second},
		{name: "api error 500", status: 500, body: `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, wantType: "api_error"},
		{name: "overloaded 529", status: 529, body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, wantIs: llm.ErrOverloaded, wantType: "overloaded_error"},
	}
	classes := []error{llm.ErrRateLimited, llm.ErrAuth, llm.ErrBadRequest, llm.ErrOverloaded}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tt.status, tt.body)
			})
			for _, mode := range []string{"complete", "stream"} {
				var err error
				if mode == "complete" {
					_, err = c.Complete(context.Background(), userRequest("hi"))
				} else {
					_, err = llm.Collect(c.Stream(context.Background(), userRequest("hi")))
				}
				var apiErr *llm.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("%s: error %v is not an *APIError", mode, err)
				}
				if apiErr.Provider != "anthropic" || apiErr.Status != tt.status || apiErr.Type != tt.wantType || apiErr.RetryAfter != tt.wantRetry || apiErr.Message == "" {
					t.Errorf("%s: APIError = %+v", mode, apiErr)
				}
				for _, class := range classes {
					if got := errors.Is(err, class); got != (class == tt.wantIs) {
						t.Errorf("%s: errors.Is(err, %v) = %v", mode, class, got)
					}
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("%s: error contains the API key: %q", mode, err)
				}
			}
		})
	}
}

func TestMalformedStreams(t *testing.T) {
	start := event("message_start", messageStart)
	textStart := event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	tests := []struct {
		name   string
		body   string
		wantIs error
		want   string
	}{
		{name: "empty", body: "", wantIs: llm.ErrMalformedStream, want: "before message_stop"},
		{name: "truncated mid event", body: start + textStart + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"ind", wantIs: llm.ErrMalformedStream, want: "before message_stop"},
		{name: "no message_stop", body: start + textStart + event("content_block_stop", `{"type":"content_block_stop","index":0}`), wantIs: llm.ErrMalformedStream, want: "before message_stop"},
		{name: "data not json", body: start + event("content_block_start", `{"type":`), wantIs: llm.ErrMalformedStream, want: "not JSON"},
		{name: "delta before start", body: event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`), wantIs: llm.ErrMalformedStream, want: "before message_start"},
		{name: "delta for unknown block", body: start + event("content_block_delta", `{"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"x"}}`), wantIs: llm.ErrMalformedStream, want: "not open"},
		{name: "json delta into text block", body: start + textStart + event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}`), wantIs: llm.ErrMalformedStream, want: "input_json_delta for text block"},
		{name: "missing index", body: start + event("content_block_stop", `{"type":"content_block_stop"}`), wantIs: llm.ErrMalformedStream, want: "valid index"},
		{name: "open block at stop", body: start + textStart + event("message_stop", `{"type":"message_stop"}`), wantIs: llm.ErrMalformedStream, want: "still open"},
		{name: "event name mismatch", body: start + event("ping", `{"type":"message_stop"}`), wantIs: llm.ErrMalformedStream, want: "carries data"},
		{
			name: "tool input not an object",
			body: start + event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}`) +
				event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\": "}}`) +
				event("content_block_stop", `{"type":"content_block_stop","index":0}`),
			wantIs: llm.ErrMalformedStream,
			want:   "not a JSON object",
		},
		{name: "in-band overloaded error", body: start + textStart + event("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), wantIs: llm.ErrOverloaded, want: "Overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newFake(t, func(w http.ResponseWriter, body map[string]any) { writeSSE(w, tt.body) })
			_, err := llm.Collect(c.Stream(context.Background(), userRequest("hi")))
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestStreamContextCancel(t *testing.T) {
	release := make(chan struct{})
	_, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w,
			event("message_start", messageStart),
			event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
			event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}`))
		w.(http.Flusher).Flush()
		<-release
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []llm.Event
	var streamErr error
	for ev, err := range c.Stream(ctx, userRequest("hi")) {
		if err != nil {
			streamErr = err
			break
		}
		got = append(got, ev)
		cancel()
	}
	if len(got) != 1 || got[0].Text != "partial" {
		t.Fatalf("events before cancel = %+v", got)
	}
	if !errors.Is(streamErr, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", streamErr)
	}
}

func TestRequestMapping(t *testing.T) {
	tests := []struct {
		name    string
		req     *llm.Request
		wantErr error
		check   func(t *testing.T, body map[string]any)
	}{
		{
			name:    "only system messages",
			req:     &llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "x"}}},
			wantErr: llm.ErrInvalidRequest,
		},
		{
			name:    "empty user message",
			req:     &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser}}},
			wantErr: llm.ErrInvalidRequest,
		},
		{
			name:    "invalid request",
			req:     &llm.Request{},
			wantErr: llm.ErrInvalidRequest,
		},
		{
			name: "systems join, consecutive tool results merge, explicit model and max tokens",
			req: &llm.Request{Model: "claude-x", MaxTokens: 50, Messages: []llm.Message{
				{Role: llm.RoleSystem, Content: "one"},
				{Role: llm.RoleUser, Content: "go"},
				{Role: llm.RoleSystem, Content: "two"},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "f"}, {ID: "b", Name: "g", Arguments: json.RawMessage(`{"k":1}`)}}},
				{Role: llm.RoleTool, ToolCallID: "a", Content: ""},
				{Role: llm.RoleTool, ToolCallID: "b", Content: "ok"},
			}},
			check: func(t *testing.T, body map[string]any) {
				want := map[string]any{
					"model":      "claude-x",
					"max_tokens": float64(50),
					"system":     "one\n\ntwo",
					"messages": []any{
						map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "go"}}},
						map[string]any{"role": "assistant", "content": []any{
							map[string]any{"type": "tool_use", "id": "a", "name": "f", "input": map[string]any{}},
							map[string]any{"type": "tool_use", "id": "b", "name": "g", "input": map[string]any{"k": float64(1)}},
						}},
						map[string]any{"role": "user", "content": []any{
							map[string]any{"type": "tool_result", "tool_use_id": "a", "content": ""},
							map[string]any{"type": "tool_result", "tool_use_id": "b", "content": "ok"},
						}},
					},
				}
				if diff := cmp.Diff(want, body); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
				writeJSON(w, 200, `{"id":"m","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"ok"}],"stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":50}}`)
			})
			resp, err := c.Complete(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if f.requests != 0 {
					t.Errorf("invalid request was sent")
				}
				return
			}
			if resp.StopReason != llm.StopMaxTokens {
				t.Errorf("stop reason = %q", resp.StopReason)
			}
			tt.check(t, f.bodies[0])
		})
	}
}

func TestStopReasons(t *testing.T) {
	for in, want := range map[string]llm.StopReason{
		"end_turn": llm.StopEndTurn, "tool_use": llm.StopToolUse, "max_tokens": llm.StopMaxTokens,
		"stop_sequence": llm.StopSequence, "refusal": llm.StopRefusal, "pause_turn": llm.StopOther,
		"model_context_window_exceeded": llm.StopMaxTokens,
	} {
		if got := stopReason(&in); got != want {
			t.Errorf("stopReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{BaseURL: "ftp://x"}, {BaseURL: "::"}, {DefaultMaxTokens: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestTransportErrorHidesKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Close()
	c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, DefaultModel: "m"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), userRequest("hi"))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Fatalf("error = %v", err)
	}
}

func TestStreamEarlyBreak(t *testing.T) {
	_, c := newFake(t, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w,
			event("message_start", messageStart),
			event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
			event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}`),
			event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"b"}}`),
			event("content_block_stop", `{"type":"content_block_stop","index":0}`),
			event("message_stop", `{"type":"message_stop"}`))
	})
	n := 0
	for _, err := range c.Stream(context.Background(), userRequest("hi")) {
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("iterations = %d, want 1", n)
	}
}
