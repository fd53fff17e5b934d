package llmopenai

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

const testKey = "sk-test-7f3a9c-secret"

// fakeServer speaks the chat-completions wire format. Each call of respond
// gets the decoded request body and writes the reply.
type fakeServer struct {
	respond func(w http.ResponseWriter, body map[string]any)

	mu       sync.Mutex
	auth     []string
	bodies   []map[string]any
	requests int
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "content-type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests++
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	f.respond(w, body)
}

func newFake(t *testing.T, key string, respond func(w http.ResponseWriter, body map[string]any)) (*fakeServer, *Client) {
	t.Helper()
	f := &fakeServer{respond: respond}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(Config{BaseURL: srv.URL, APIKey: key, HTTPClient: srv.Client(), DefaultModel: "gpt-test"})
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

func writeSSE(w http.ResponseWriter, chunks ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, c := range chunks {
		io.WriteString(w, c)
	}
}

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
	temp := 0.2
	f, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
		writeJSON(w, 200, `{
  "id": "chatcmpl-123",
  "object": "chat.completion",
  "created": 1677652288,
  "model": "gpt-test-0613",
  "system_fingerprint": "fp_44709d6fcb",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant", "content": "Hello there.", "refusal": null},
    "logprobs": null,
    "finish_reason": "stop"
  }],
  "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
}`)
	})
	req := userRequest("Hello!")
	req.MaxTokens = 64
	req.Temperature = &temp
	got, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := &llm.Response{
		Model:      "gpt-test-0613",
		Message:    llm.Message{Role: llm.RoleAssistant, Content: "Hello there."},
		StopReason: llm.StopEndTurn,
		Usage:      llm.Usage{InputTokens: 9, OutputTokens: 12},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	wantBody := map[string]any{
		"model":       "gpt-test",
		"max_tokens":  float64(64),
		"temperature": 0.2,
		"messages": []any{
			map[string]any{"role": "system", "content": "You are terse."},
			map[string]any{"role": "user", "content": "Hello!"},
		},
	}
	if diff := cmp.Diff(wantBody, f.bodies[0]); diff != "" {
		t.Errorf("request body (-want +got):\n%s", diff)
	}
	if f.auth[0] != "Bearer "+testKey {
		t.Errorf("Authorization = %q, want the bearer key", f.auth[0])
	}
}

func TestNoKeyNoAuthorizationHeader(t *testing.T) {
	f, c := newFake(t, "", func(w http.ResponseWriter, body map[string]any) {
		writeJSON(w, 200, `{"id":"x","object":"chat.completion","model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`)
	})
	if _, err := c.Complete(context.Background(), userRequest("hi")); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if f.auth[0] != "" {
		t.Errorf("Authorization = %q, want none", f.auth[0])
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	f, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
		msgs := body["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		if last["role"] == "tool" {
			writeJSON(w, 200, `{"id":"chatcmpl-2","object":"chat.completion","model":"gpt-test","choices":[{"index":0,"message":{"role":"assistant","content":"It is 21°C in Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}`)
			return
		}
		writeJSON(w, 200, `{
  "id": "chatcmpl-1",
  "object": "chat.completion",
  "model": "gpt-test",
  "choices": [{
    "index": 0,
    "message": {
      "role": "assistant",
      "content": null,
      "tool_calls": [{
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
      }]
    },
    "finish_reason": "tool_calls"
  }],
  "usage": {"prompt_tokens": 30, "completion_tokens": 17, "total_tokens": 47}
}`)
	})
	req := userRequest("Weather in Paris?")
	req.Tools = []llm.Tool{weatherTool}
	first, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("first Complete: %v", err)
	}
	wantCall := llm.ToolCall{ID: "call_abc123", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}
	if first.StopReason != llm.StopToolUse || len(first.Message.ToolCalls) != 1 {
		t.Fatalf("first response = %+v, want one tool call with tool_use", first)
	}
	if diff := cmp.Diff(wantCall, first.Message.ToolCalls[0]); diff != "" {
		t.Errorf("tool call (-want +got):\n%s", diff)
	}
	wantTools := []any{map[string]any{
		"type": "function",
		"function": map[string]any{
			"name":        "get_weather",
			"description": "Current weather for a city",
			"parameters": map[string]any{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []any{"city"},
			},
		},
	}}
	if diff := cmp.Diff(wantTools, f.bodies[0]["tools"]); diff != "" {
		t.Errorf("tools on the wire (-want +got):\n%s", diff)
	}

	req.Messages = append(req.Messages, first.Message, llm.Message{Role: llm.RoleTool, ToolCallID: "call_abc123", Content: `{"temp_c":21}`})
	second, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("second Complete: %v", err)
	}
	if second.Message.Content != "It is 21°C in Paris." || second.StopReason != llm.StopEndTurn {
		t.Errorf("second response = %+v", second)
	}
	msgs := f.bodies[1]["messages"].([]any)
	wantTail := []any{
		map[string]any{
			"role":    "assistant",
			"content": nil,
			"tool_calls": []any{map[string]any{
				"id":       "call_abc123",
				"type":     "function",
				"function": map[string]any{"name": "get_weather", "arguments": `{"city":"Paris"}`},
			}},
		},
		map[string]any{"role": "tool", "tool_call_id": "call_abc123", "content": `{"temp_c":21}`},
	}
	if diff := cmp.Diff(wantTail, msgs[2:]); diff != "" {
		t.Errorf("round-trip messages (-want +got):\n%s", diff)
	}
}

// collectEvents drains a stream, returning its events and the first error.
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

func chunk(s string) string { return "data: " + s + "\n\n" }

func TestStreamText(t *testing.T) {
	f, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w,
			chunk(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`),
			": keep-alive\n\n",
			chunk(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}`),
			chunk(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}]}`),
			chunk(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`),
			chunk(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`),
			chunk(`[DONE]`),
		)
	})
	evs, err := collectEvents(c.Stream(context.Background(), userRequest("hi")))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	want := []llm.Event{
		{Type: llm.EventTextDelta, Text: "Hel"},
		{Type: llm.EventTextDelta, Text: "lo"},
		{Type: llm.EventDone, Response: &llm.Response{
			Model:      "gpt-test",
			Message:    llm.Message{Role: llm.RoleAssistant, Content: "Hello"},
			StopReason: llm.StopEndTurn,
			Usage:      llm.Usage{InputTokens: 5, OutputTokens: 2},
		}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if f.bodies[0]["stream"] != true {
		t.Errorf("stream flag not sent: %v", f.bodies[0])
	}
	if diff := cmp.Diff(map[string]any{"include_usage": true}, f.bodies[0]["stream_options"]); diff != "" {
		t.Errorf("stream_options (-want +got):\n%s", diff)
	}
}

func TestStreamToolCallDeltas(t *testing.T) {
	args0 := `{"city": "Paris", "unit": "celsius"}`
	args1 := `{"city":"Tokyo"}`
	var chunks []string
	chunks = append(chunks, chunk(`{"id":"c","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_p","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`))
	chunks = append(chunks, chunk(`{"id":"c","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_t","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}`))
	// Interleave the two calls' arguments three bytes at a time.
	var wantDeltas []llm.Event
	for i := 0; i < len(args0) || i < len(args1); i += 3 {
		for idx, a := range []string{args0, args1} {
			if i >= len(a) {
				continue
			}
			piece := a[i:min(i+3, len(a))]
			enc, _ := json.Marshal(piece)
			chunks = append(chunks, chunk(fmt.Sprintf(`{"id":"c","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]},"finish_reason":null}]}`, idx, enc)))
			wantDeltas = append(wantDeltas, llm.Event{Type: llm.EventToolCallDelta, Index: idx, ArgumentsDelta: piece})
		}
	}
	chunks = append(chunks,
		chunk(`{"id":"c","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`),
		chunk(`[DONE]`))
	_, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) { writeSSE(w, chunks...) })

	req := userRequest("Weather in Paris and Tokyo?")
	req.Tools = []llm.Tool{weatherTool}
	evs, err := collectEvents(c.Stream(context.Background(), req))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	call0 := llm.ToolCall{ID: "call_p", Name: "get_weather", Arguments: json.RawMessage(args0)}
	call1 := llm.ToolCall{ID: "call_t", Name: "get_weather", Arguments: json.RawMessage(args1)}
	want := []llm.Event{
		{Type: llm.EventToolCallStart, Index: 0, ToolCall: llm.ToolCall{ID: "call_p", Name: "get_weather"}},
		{Type: llm.EventToolCallStart, Index: 1, ToolCall: llm.ToolCall{ID: "call_t", Name: "get_weather"}},
	}
	want = append(want, wantDeltas...)
	want = append(want,
		llm.Event{Type: llm.EventToolCallEnd, Index: 0, ToolCall: call0},
		llm.Event{Type: llm.EventToolCallEnd, Index: 1, ToolCall: call1},
		llm.Event{Type: llm.EventDone, Response: &llm.Response{
			Model:      "gpt-test",
			Message:    llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call0, call1}},
			StopReason: llm.StopToolUse,
		}},
	)
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	resp, err := llm.Collect(c.Stream(context.Background(), req))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if diff := cmp.Diff(want[len(want)-1].Response, resp); diff != "" {
		t.Errorf("collected (-want +got):\n%s", diff)
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
		wantMsg   string
		wantRetry time.Duration
		notIs     []error
	}{
		{
			name:     "invalid key 401 echoing the key",
			status:   401,
			body:     `{"error":{"message":"Incorrect API key provided: ` + testKey + `. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			wantIs:   llm.ErrAuth,
			wantType: "invalid_request_error",
			wantMsg:  "Incorrect API key provided: [redacted].",
			notIs:    []error{llm.ErrRateLimited, llm.ErrBadRequest, llm.ErrOverloaded},
		},
		{
			name:      "rate limit 429 with retry-after",
			status:    429,
			header:    map[string]string{"Retry-After": "20"},
			body:      `{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantIs:    llm.ErrRateLimited,
			wantType:  "requests",
			wantMsg:   "Rate limit reached",
			wantRetry: 20 * time.Second,
			notIs:     []error{llm.ErrAuth, llm.ErrBadRequest},
		},
		{
			name:      "quota 429 with retry-after-ms",
			status:    429,
			header:    map[string]string{"retry-after-ms": "1500"},
			body:      `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			wantIs:    llm.ErrRateLimited,
			wantType:  "insufficient_quota",
			wantMsg:   "exceeded your current quota",
			wantRetry: 1500 * time.Millisecond,
		},
		{
			name:     "bad request 400",
			status:   400,
			body:     `{"error":{"message":"'messages' must contain the word 'json'","type":"invalid_request_error","param":"messages","code":null}}`,
			wantIs:   llm.ErrBadRequest,
			wantType: "invalid_request_error",
			wantMsg:  "must contain",
			notIs:    []error{llm.ErrAuth, llm.ErrRateLimited, llm.ErrOverloaded},
		},
		{
			name:     "overloaded 503",
			status:   503,
			body:     `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`,
			wantIs:   llm.ErrOverloaded,
			wantType: "server_error",
			wantMsg:  "overloaded",
		},
		{
			name:     "llama.cpp numeric code",
			status:   401,
			body:     `{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}`,
			wantIs:   llm.ErrAuth,
			wantType: "authentication_error",
			wantMsg:  "Invalid API Key",
		},
		{
			name:    "non-json gateway body",
			status:  502,
			body:    `<html>bad gateway</html>`,
			wantMsg: "<html>bad gateway</html>",
			notIs:   []error{llm.ErrAuth, llm.ErrRateLimited, llm.ErrBadRequest, llm.ErrOverloaded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
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
				if apiErr.Provider != "openai" || apiErr.Status != tt.status || apiErr.Type != tt.wantType || apiErr.RetryAfter != tt.wantRetry {
					t.Errorf("%s: APIError = %+v", mode, apiErr)
				}
				if !strings.Contains(apiErr.Message, tt.wantMsg) {
					t.Errorf("%s: message %q does not contain %q", mode, apiErr.Message, tt.wantMsg)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("%s: errors.Is(%v, %v) = false", mode, err, tt.wantIs)
				}
				for _, not := range tt.notIs {
					if errors.Is(err, not) {
						t.Errorf("%s: errors.Is(%v, %v) = true", mode, err, not)
					}
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("%s: error string contains the API key: %q", mode, err)
				}
			}
		})
	}
}

func TestMalformedStreams(t *testing.T) {
	head := chunk(`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`)
	tests := []struct {
		name   string
		body   string
		wantIs error
		want   string
	}{
		{name: "truncated mid chunk", body: head + `data: {"id":"c","choices":[{"index":0,"del`, wantIs: llm.ErrMalformedStream, want: "ended before finish_reason"},
		{name: "ends without finish", body: head, wantIs: llm.ErrMalformedStream, want: "ended before finish_reason"},
		{name: "empty body", body: "", wantIs: llm.ErrMalformedStream},
		{name: "chunk not json", body: head + chunk(`{"id":`), wantIs: llm.ErrMalformedStream, want: "not JSON"},
		{
			name:   "tool arguments not an object",
			body:   chunk(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":null}]}`) + chunk(`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`),
			wantIs: llm.ErrMalformedStream,
			want:   "not a JSON object",
		},
		{
			name:   "tool call without name",
			body:   chunk(`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"arguments":"{}"}}]},"finish_reason":null}]}`) + chunk(`[DONE]`),
			wantIs: llm.ErrMalformedStream,
			want:   "without id or name",
		},
		{
			name:   "in-band error",
			body:   head + chunk(`{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`),
			wantIs: nil,
			want:   "server had an error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) { writeSSE(w, tt.body) })
			_, err := llm.Collect(c.Stream(context.Background(), userRequest("hi")))
			if err == nil {
				t.Fatal("no error for a malformed stream")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not match %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestStreamContextCancel(t *testing.T) {
	release := make(chan struct{})
	_, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w, chunk(`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}`))
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

func TestStreamEarlyBreak(t *testing.T) {
	_, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) {
		writeSSE(w,
			chunk(`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}`),
			chunk(`{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}`),
			chunk(`[DONE]`))
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

func TestInvalidRequestsAreNotSent(t *testing.T) {
	tests := []struct {
		name string
		req  *llm.Request
	}{
		{name: "nil", req: nil},
		{name: "no messages", req: &llm.Request{}},
		{name: "bad role", req: &llm.Request{Messages: []llm.Message{{Role: "robot", Content: "x"}}}},
		{name: "tool without call id", req: &llm.Request{Messages: []llm.Message{{Role: llm.RoleTool, Content: "x"}}}},
		{name: "bad tool schema", req: &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "x"}}, Tools: []llm.Tool{{Name: "t", Parameters: json.RawMessage(`[1]`)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(t, testKey, func(w http.ResponseWriter, body map[string]any) { writeJSON(w, 500, `{}`) })
			if _, err := c.Complete(context.Background(), tt.req); !errors.Is(err, llm.ErrInvalidRequest) {
				t.Errorf("Complete error = %v, want ErrInvalidRequest", err)
			}
			if _, err := llm.Collect(c.Stream(context.Background(), tt.req)); !errors.Is(err, llm.ErrInvalidRequest) {
				t.Errorf("Stream error = %v, want ErrInvalidRequest", err)
			}
			if f.requests != 0 {
				t.Errorf("%d requests sent", f.requests)
			}
		})
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, base := range []string{"ftp://x", "not a url", "http://"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New(%q) succeeded", base)
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
