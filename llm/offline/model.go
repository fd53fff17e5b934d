package llmoffline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/agenthost/agenthost/llm"
)

// ModelName is the model name the offline model reports.
const ModelName = "offline"

// summaryLimit caps, in runes, how much of one tool result the final answer
// repeats.
const summaryLimit = 300

// Config configures a [Model].
type Config struct {
	// Logger receives a debug record of each decision; nil is silent.
	Logger *slog.Logger
}

// Model is the offline model. It is safe for concurrent use.
type Model struct {
	log *slog.Logger
}

var _ llm.Model = (*Model)(nil)

// New returns the offline model.
func New(cfg Config) *Model {
	m := &Model{log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// Complete implements [llm.Model]. It does no I/O; it fails only on an
// invalid request, an unusable schema of the chosen tool, or a cancelled ctx.
func (m *Model) Complete(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("llmoffline: %w", err)
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("llmoffline: %w", err)
	}
	msg, stop, err := m.answer(ctx, req)
	if err != nil {
		return nil, err
	}
	return &llm.Response{
		Model:      ModelName,
		Message:    msg,
		StopReason: stop,
		Usage:      llm.Usage{InputTokens: inputTokens(req), OutputTokens: outputTokens(msg)},
	}, nil
}

// Stream implements [llm.Model]: it yields the answer of Complete as word
// deltas, or as one tool call whose arguments arrive in small pieces.
func (m *Model) Stream(ctx context.Context, req *llm.Request) iter.Seq2[llm.Event, error] {
	return func(yield func(llm.Event, error) bool) {
		resp, err := m.Complete(ctx, req)
		if err != nil {
			yield(llm.Event{}, err)
			return
		}
		send := func(ev llm.Event) bool {
			if err := ctx.Err(); err != nil {
				yield(llm.Event{}, fmt.Errorf("llmoffline: %w", err))
				return false
			}
			return yield(ev, nil)
		}
		for _, piece := range strings.SplitAfter(resp.Message.Content, " ") {
			if piece != "" && !send(llm.Event{Type: llm.EventTextDelta, Text: piece}) {
				return
			}
		}
		for i, call := range resp.Message.ToolCalls {
			if !send(llm.Event{Type: llm.EventToolCallStart, Index: i, ToolCall: llm.ToolCall{ID: call.ID, Name: call.Name}}) {
				return
			}
			for _, piece := range chunks(string(call.Arguments), 16) {
				if !send(llm.Event{Type: llm.EventToolCallDelta, Index: i, ArgumentsDelta: piece}) {
					return
				}
			}
			if !send(llm.Event{Type: llm.EventToolCallEnd, Index: i, ToolCall: call}) {
				return
			}
		}
		send(llm.Event{Type: llm.EventDone, Response: resp})
	}
}

// answer decides the next assistant message.
func (m *Model) answer(ctx context.Context, req *llm.Request) (llm.Message, llm.StopReason, error) {
	last := req.Messages[len(req.Messages)-1]
	switch last.Role {
	case llm.RoleTool:
		m.log.DebugContext(ctx, "offline model summarises tool results")
		return llm.Message{Role: llm.RoleAssistant, Content: summarise(req.Messages)}, llm.StopEndTurn, nil
	case llm.RoleUser:
		tool, score := bestTool(last.Content, req.Tools)
		if tool == nil {
			m.log.DebugContext(ctx, "offline model answers directly", slog.Int("tools", len(req.Tools)))
			return llm.Message{Role: llm.RoleAssistant, Content: directAnswer(last.Content, len(req.Tools) > 0)}, llm.StopEndTurn, nil
		}
		args, err := fillArguments(last.Content, tool)
		if err != nil {
			return llm.Message{}, "", err
		}
		m.log.DebugContext(ctx, "offline model calls a tool", slog.String("tool", tool.Name), slog.Int("score", score))
		call := llm.ToolCall{ID: callID(req, tool.Name, args), Name: tool.Name, Arguments: args}
		return llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{call}}, llm.StopToolUse, nil
	}
	return llm.Message{Role: llm.RoleAssistant, Content: "This is the offline model. There is no new user message to answer."}, llm.StopEndTurn, nil
}

// bestTool scores every tool against the task: three points per task word
// in the tool's name, one per other task word in its description. It returns
// the highest-scoring tool, the first offered on a tie, or nil when no tool
// scores.
func bestTool(task string, tools []llm.Tool) (*llm.Tool, int) {
	words := contentWords(task)
	var best *llm.Tool
	bestScore := 0
	for i := range tools {
		name := contentWords(tools[i].Name)
		score := 0
		for w := range name {
			if words[w] {
				score += 3
			}
		}
		for w := range contentWords(tools[i].Description) {
			if words[w] && !name[w] {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = &tools[i], score
		}
	}
	return best, bestScore
}

// fillArguments builds the tool's arguments object from the task text.
func fillArguments(task string, tool *llm.Tool) (json.RawMessage, error) {
	var s schema
	if len(tool.Parameters) > 0 {
		dec := json.NewDecoder(bytes.NewReader(tool.Parameters))
		if err := dec.Decode(&s); err != nil {
			return nil, fmt.Errorf("llmoffline: %w: tool %q: parameters schema: %w", llm.ErrInvalidRequest, tool.Name, err)
		}
	}
	if t := s.typeName(); t != "" && t != "object" {
		return nil, fmt.Errorf("llmoffline: %w: tool %q: parameters schema has type %q, want object", llm.ErrInvalidRequest, tool.Name, t)
	}
	skip := schemaWords(&s)
	for w := range contentWords(tool.Name) {
		skip[w] = true
	}
	f := newFiller(task, skip)
	obj, err := f.object(&s, 0)
	if err != nil {
		return nil, fmt.Errorf("llmoffline: %w: tool %q: %w", llm.ErrInvalidRequest, tool.Name, err)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("llmoffline: encode arguments of %q: %w", tool.Name, err)
	}
	return b, nil
}

// callID derives a tool-call id from the conversation so that the same
// request always yields the same id.
func callID(req *llm.Request, tool string, args json.RawMessage) string {
	h := sha256.New()
	for _, msg := range req.Messages {
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", msg.Role, len(msg.Content), msg.Content)
	}
	fmt.Fprintf(h, "%s\x00%s", tool, args)
	return "call_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// summarise answers the trailing tool results of the conversation.
func summarise(msgs []llm.Message) string {
	names := map[string]string{}
	for _, msg := range msgs {
		for _, c := range msg.ToolCalls {
			names[c.ID] = c.Name
		}
	}
	start := len(msgs)
	for start > 0 && msgs[start-1].Role == llm.RoleTool {
		start--
	}
	results := msgs[start:]
	label := func(r llm.Message) string {
		if n := names[r.ToolCallID]; n != "" {
			return n
		}
		return r.ToolCallID
	}
	if len(results) == 1 {
		return fmt.Sprintf("The %s tool returned: %s", label(results[0]), summary(results[0].Content))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The tools returned %d results:", len(results))
	for _, r := range results {
		fmt.Fprintf(&b, "\n- %s: %s", label(r), summary(r.Content))
	}
	return b.String()
}

// summary shortens one tool result: a JSON object becomes "key: value" pairs
// in key order, a JSON array its item count and first item, anything else
// its text with whitespace collapsed.
func summary(content string) string {
	var s string
	var v any
	dec := json.NewDecoder(strings.NewReader(content))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil && !dec.More() {
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, 0, len(keys))
			for _, k := range keys {
				parts = append(parts, k+": "+scalar(t[k]))
			}
			s = strings.Join(parts, "; ")
		case []any:
			s = fmt.Sprintf("%d items", len(t))
			if len(t) > 0 {
				s += ", the first: " + scalar(t[0])
			}
		default:
			s = scalar(t)
		}
	} else {
		s = strings.Join(strings.Fields(content), " ")
	}
	if s == "" {
		return "(no output)"
	}
	if utf8.RuneCountInString(s) > summaryLimit {
		r := []rune(s)
		s = string(r[:summaryLimit]) + "…"
	}
	return s
}

func scalar(v any) string {
	if s, ok := v.(string); ok {
		return strings.Join(strings.Fields(s), " ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// directAnswer is the reply when no tool fits.
func directAnswer(task string, hadTools bool) string {
	task = strings.Join(strings.Fields(task), " ")
	if utf8.RuneCountInString(task) > summaryLimit {
		task = string([]rune(task)[:summaryLimit]) + "…"
	}
	if hadTools {
		return fmt.Sprintf("This is the offline model, which has no language model behind it. None of the offered tools matches your request, so here it is back: %s", task)
	}
	return fmt.Sprintf("This is the offline model, which has no language model behind it. You said: %s", task)
}

func inputTokens(req *llm.Request) int {
	n := 0
	for _, msg := range req.Messages {
		n += countWords(msg.Content)
		for _, c := range msg.ToolCalls {
			n += countWords(c.Name) + countWords(string(c.Arguments))
		}
	}
	for _, t := range req.Tools {
		n += countWords(t.Name) + countWords(t.Description)
	}
	return n
}

func outputTokens(msg llm.Message) int {
	n := countWords(msg.Content)
	for _, c := range msg.ToolCalls {
		n += countWords(c.Name) + countWords(string(c.Arguments))
	}
	return n
}

// chunks splits s into pieces of at most n bytes on rune boundaries.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		end := min(n, len(s))
		for end < len(s) && !utf8.RuneStart(s[end]) {
			end++
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}
