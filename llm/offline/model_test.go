package llmoffline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/llm"
)

var tools = []llm.Tool{
	{
		Name:        "get_weather",
		Description: "Current weather conditions for a city",
		Parameters: json.RawMessage(`{"type":"object","properties":{
			"city":{"type":"string","description":"City name"},
			"unit":{"type":"string","enum":["celsius","fahrenheit"]},
			"days":{"type":"integer"}
		},"required":["city","unit"]}`),
	},
	{
		Name:        "web_search",
		Description: "Search the web and return result snippets",
		Parameters: json.RawMessage(`{"type":"object","properties":{
			"query":{"type":"string"},
			"limit":{"type":"integer","default":5},
			"safe":{"type":"boolean"}
		},"required":["query","limit"]}`),
	},
	{
		Name:        "fetchPage",
		Description: "Download a web page",
		Parameters:  json.RawMessage(`{"type":"object","properties":{"url":{"type":"string","format":"uri"},"headers":{"type":"object"}},"required":["url"]}`),
	},
	{
		Name:        "create_issue",
		Description: "Open a ticket in the tracker",
		Parameters: json.RawMessage(`{"type":"object","properties":{
			"title":{"type":"string"},
			"labels":{"type":"array","items":{"type":"string"}},
			"priority":{"type":["integer","null"]}
		},"required":["title","labels","priority"]}`),
	},
}

func user(text string) *llm.Request {
	return &llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "be short"}, {Role: llm.RoleUser, Content: text}}, Tools: tools}
}

func TestToolChoice(t *testing.T) {
	tests := []struct {
		name     string
		task     string
		tools    []llm.Tool
		wantTool string
		wantArgs string
	}{
		{
			name:     "weather with enum mentioned",
			task:     "What's the weather in Paris in fahrenheit?",
			wantTool: "get_weather",
			wantArgs: `{"city":"Paris","unit":"fahrenheit"}`,
		},
		{
			name:     "explicit values win",
			task:     "weather city: Lyon, unit=celsius days: 3",
			wantTool: "get_weather",
			wantArgs: `{"city":"Lyon","days":3,"unit":"celsius"}`,
		},
		{
			name:     "search with default and relevant text",
			task:     "Search for golang generics tutorials",
			wantTool: "web_search",
			wantArgs: `{"limit":5,"query":"golang generics tutorials"}`,
		},
		{
			name:     "quoted query and explicit bool",
			task:     `search "rate limit headers" safe=yes`,
			wantTool: "web_search",
			wantArgs: `{"limit":5,"query":"rate limit headers","safe":true}`,
		},
		{
			name:     "camel case name and url",
			task:     "Please fetch the page at https://example.com/docs.",
			wantTool: "fetchPage",
			wantArgs: `{"url":"https://example.com/docs"}`,
		},
		{
			name:     "description match only",
			task:     "open a ticket about the login bug, priority 2",
			wantTool: "create_issue",
			wantArgs: `{"labels":["open ticket login bug 2"],"priority":2,"title":"open ticket login bug 2"}`,
		},
		{
			name:     "plural meets singular",
			task:     "file two issues for the flaky tests",
			wantTool: "create_issue",
			wantArgs: `{"labels":["file two flaky tests"],"priority":0,"title":"file two flaky tests"}`,
		},
		{
			name:     "no overlap answers directly",
			task:     "Tell me a joke",
			wantTool: "",
		},
		{
			name:     "no tools answers directly",
			task:     "weather in Paris",
			tools:    []llm.Tool{},
			wantTool: "",
		},
		{
			name:     "tie goes to the first offered",
			task:     "alpha",
			tools:    []llm.Tool{{Name: "alpha_one"}, {Name: "alpha_two"}},
			wantTool: "alpha_one",
			wantArgs: `{}`,
		},
		{
			name:     "no required string: first string property gets the text",
			task:     "translate bonjour",
			tools:    []llm.Tool{{Name: "translate", Parameters: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"lang":{"type":"string","enum":["en","fr"]}}}`)}},
			wantTool: "translate",
			wantArgs: `{"text":"bonjour"}`,
		},
	}
	m := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := user(tt.task)
			if tt.tools != nil {
				req.Tools = tt.tools
			}
			resp, err := m.Complete(context.Background(), req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if tt.wantTool == "" {
				if len(resp.Message.ToolCalls) != 0 || resp.StopReason != llm.StopEndTurn {
					t.Fatalf("response = %+v, want a direct answer", resp)
				}
				if !strings.Contains(resp.Message.Content, "offline model") {
					t.Errorf("direct answer %q does not say it is the offline model", resp.Message.Content)
				}
				return
			}
			if resp.StopReason != llm.StopToolUse || len(resp.Message.ToolCalls) != 1 {
				t.Fatalf("response = %+v, want one tool call", resp)
			}
			call := resp.Message.ToolCalls[0]
			if call.Name != tt.wantTool {
				t.Errorf("tool = %q, want %q", call.Name, tt.wantTool)
			}
			if string(call.Arguments) != tt.wantArgs {
				t.Errorf("arguments = %s, want %s", call.Arguments, tt.wantArgs)
			}
			if !strings.HasPrefix(call.ID, "call_") {
				t.Errorf("call id = %q", call.ID)
			}
		})
	}
}

func TestRequiredAlwaysPresent(t *testing.T) {
	tool := llm.Tool{Name: "lookup", Parameters: json.RawMessage(`{"type":"object","properties":{
		"a":{"type":"string"},"b":{"type":"number"},"c":{"type":"boolean"},"d":{"type":"array"},
		"e":{"type":"object","properties":{"inner":{"type":"string"}},"required":["inner"]},
		"f":{"enum":[1,2]}
	},"required":["a","b","c","d","e","f","undeclared"]}`)}
	resp, err := New(Config{}).Complete(context.Background(), &llm.Request{
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "lookup"}},
		Tools:    []llm.Tool{tool},
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(resp.Message.ToolCalls[0].Arguments, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": "lookup", "b": float64(0), "c": false, "d": []any{"lookup"}, "e": map[string]any{"inner": "lookup"}, "f": float64(1), "undeclared": "lookup"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arguments (-want +got):\n%s", diff)
	}
}

func TestBadSchemaOfChosenTool(t *testing.T) {
	tests := []struct{ name, params string }{
		{"properties not an object", `{"type":"object","properties":5}`},
		{"not an object type", `{"type":"string"}`},
		{"unknown property type", `{"type":"object","properties":{"x":{"type":"blob"}},"required":["x"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{}).Complete(context.Background(), &llm.Request{
				Messages: []llm.Message{{Role: llm.RoleUser, Content: "frobnicate now"}},
				Tools:    []llm.Tool{{Name: "frobnicate", Parameters: json.RawMessage(tt.params)}},
			})
			if !errors.Is(err, llm.ErrInvalidRequest) || !strings.Contains(err.Error(), "frobnicate") {
				t.Fatalf("error = %v, want ErrInvalidRequest naming the tool", err)
			}
		})
	}
}

func TestSummarisesToolResults(t *testing.T) {
	call := llm.ToolCall{ID: "call_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)}
	call2 := llm.ToolCall{ID: "call_2", Name: "web_search", Arguments: json.RawMessage(`{"query":"x"}`)}
	base := []llm.Message{
		{Role: llm.RoleUser, Content: "weather in Paris"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call, call2}},
	}
	tests := []struct {
		name    string
		results []llm.Message
		want    string
	}{
		{
			name:    "json object",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_1", Content: `{"temp_c": 21, "sky": "clear  skies"}`}},
			want:    "The get_weather tool returned: sky: clear skies; temp_c: 21",
		},
		{
			name:    "plain text",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_1", Content: "sunny\n and warm"}},
			want:    "The get_weather tool returned: sunny and warm",
		},
		{
			name:    "json array",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_2", Content: `["a","b"]`}},
			want:    "The web_search tool returned: 2 items, the first: a",
		},
		{
			name:    "empty",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_1"}},
			want:    "The get_weather tool returned: (no output)",
		},
		{
			name: "two results",
			results: []llm.Message{
				{Role: llm.RoleTool, ToolCallID: "call_1", Content: "sunny"},
				{Role: llm.RoleTool, ToolCallID: "call_2", Content: "nothing found"},
			},
			want: "The tools returned 2 results:\n- get_weather: sunny\n- web_search: nothing found",
		},
		{
			name:    "unknown call id",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_x", Content: "ok"}},
			want:    "The call_x tool returned: ok",
		},
		{
			name:    "long result truncated",
			results: []llm.Message{{Role: llm.RoleTool, ToolCallID: "call_1", Content: strings.Repeat("é", 400)}},
			want:    "The get_weather tool returned: " + strings.Repeat("é", summaryLimit) + "…",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &llm.Request{Messages: append(append([]llm.Message{}, base...), tt.results...), Tools: tools}
			resp, err := New(Config{}).Complete(context.Background(), req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if resp.StopReason != llm.StopEndTurn || len(resp.Message.ToolCalls) != 0 {
				t.Fatalf("response = %+v, want a final answer", resp)
			}
			if resp.Message.Content != tt.want {
				t.Errorf("content = %q, want %q", resp.Message.Content, tt.want)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	reqs := []*llm.Request{
		user("What's the weather in Paris in fahrenheit?"),
		user("Search for golang generics tutorials"),
		user("Tell me a joke"),
		{Messages: []llm.Message{
			{Role: llm.RoleUser, Content: "weather"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c", Name: "get_weather", Arguments: json.RawMessage(`{}`)}}},
			{Role: llm.RoleTool, ToolCallID: "c", Content: `{"b":1,"a":2,"c":{"z":1,"y":2}}`},
		}},
	}
	for i, req := range reqs {
		first, err := New(Config{}).Complete(context.Background(), req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		for range 20 {
			again, err := New(Config{}).Complete(context.Background(), req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if diff := cmp.Diff(first, again); diff != "" {
				t.Fatalf("request %d differs between runs (-first +again):\n%s", i, diff)
			}
		}
	}
	// A different conversation gives a different call id.
	a, _ := New(Config{}).Complete(context.Background(), user("weather in Paris"))
	b, _ := New(Config{}).Complete(context.Background(), user("weather in Rome"))
	if a.Message.ToolCalls[0].ID == b.Message.ToolCalls[0].ID {
		t.Errorf("different conversations share call id %q", a.Message.ToolCalls[0].ID)
	}
}

func TestStreamMatchesComplete(t *testing.T) {
	m := New(Config{})
	for _, task := range []string{"weather in Paris in celsius", "Tell me a joke, a long one with ünïcode"} {
		t.Run(task, func(t *testing.T) {
			want, err := m.Complete(context.Background(), user(task))
			if err != nil {
				t.Fatal(err)
			}
			var text, args strings.Builder
			var ended []llm.ToolCall
			var done *llm.Response
			for ev, err := range m.Stream(context.Background(), user(task)) {
				if err != nil {
					t.Fatalf("Stream: %v", err)
				}
				switch ev.Type {
				case llm.EventTextDelta:
					text.WriteString(ev.Text)
				case llm.EventToolCallDelta:
					args.WriteString(ev.ArgumentsDelta)
				case llm.EventToolCallEnd:
					ended = append(ended, ev.ToolCall)
				case llm.EventDone:
					done = ev.Response
				}
			}
			if diff := cmp.Diff(want, done); diff != "" {
				t.Errorf("done response (-complete +stream):\n%s", diff)
			}
			if text.String() != want.Message.Content {
				t.Errorf("text deltas = %q, want %q", text.String(), want.Message.Content)
			}
			var wantArgs string
			for _, c := range want.Message.ToolCalls {
				wantArgs += string(c.Arguments)
			}
			if args.String() != wantArgs {
				t.Errorf("argument deltas = %q, want %q", args.String(), wantArgs)
			}
			if diff := cmp.Diff(want.Message.ToolCalls, ended); diff != "" {
				t.Errorf("ended calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := New(Config{})
	if _, err := m.Complete(ctx, user("weather")); !errors.Is(err, context.Canceled) {
		t.Errorf("Complete error = %v", err)
	}
	if _, err := llm.Collect(m.Stream(ctx, user("weather"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream error = %v", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	n := 0
	var last error
	for _, err := range m.Stream(ctx2, user("Tell me a joke with many words in it")) {
		if err != nil {
			last = err
			break
		}
		n++
		cancel2()
	}
	if n != 1 || !errors.Is(last, context.Canceled) {
		t.Errorf("mid-stream cancel: %d events, error %v", n, last)
	}
}

func TestInvalidRequest(t *testing.T) {
	if _, err := New(Config{}).Complete(context.Background(), &llm.Request{}); !errors.Is(err, llm.ErrInvalidRequest) {
		t.Errorf("error = %v", err)
	}
}

func BenchmarkComplete(b *testing.B) {
	m := New(Config{})
	req := user("Search for golang generics tutorials, limit=3")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Complete(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
