package llm

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Role is the author of a [Message].
type Role string

// The roles a conversation may contain.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleSystem, RoleUser, RoleAssistant, RoleTool:
		return true
	}
	return false
}

// Message is one turn of a conversation.
type Message struct {
	// Role is who wrote the message.
	Role Role `json:"role"`
	// Content is the text of the message. For a tool message it is the
	// tool's result.
	Content string `json:"content,omitempty"`
	// ToolCalls are the calls an assistant message asks the host to make.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID names the call a tool message answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
}

// ToolCall is one call of a tool requested by the model.
type ToolCall struct {
	// ID identifies the call; the tool message carrying its result repeats it.
	ID string `json:"id"`
	// Name is the tool's name as offered in [Request.Tools].
	Name string `json:"name"`
	// Arguments is a JSON object holding the call's arguments.
	Arguments json.RawMessage `json:"arguments"`
}

// Tool is a tool the model may call.
type Tool struct {
	// Name identifies the tool.
	Name string `json:"name"`
	// Description tells the model what the tool does.
	Description string `json:"description,omitempty"`
	// Parameters is the JSON Schema of the tool's arguments object. Empty
	// means an object with no declared properties.
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// Request asks a model for the next assistant message.
type Request struct {
	// Model names the provider's model; empty means the client's default.
	Model string `json:"model,omitempty"`
	// Messages is the conversation so far, oldest first.
	Messages []Message `json:"messages"`
	// Tools are the tools the model may call.
	Tools []Tool `json:"tools,omitempty"`
	// MaxTokens caps the tokens generated; zero means the client's default.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature is the sampling temperature; nil means the provider's
	// default.
	Temperature *float64 `json:"temperature,omitempty"`
}

// StopReason says why the model stopped generating, normalised across
// providers.
type StopReason string

// Normalised stop reasons.
const (
	// StopEndTurn: the model finished its answer.
	StopEndTurn StopReason = "end_turn"
	// StopToolUse: the model is waiting for the results of its tool calls.
	StopToolUse StopReason = "tool_use"
	// StopMaxTokens: generation hit the token limit.
	StopMaxTokens StopReason = "max_tokens"
	// StopSequence: generation hit a stop sequence.
	StopSequence StopReason = "stop_sequence"
	// StopRefusal: the provider withheld or filtered the output.
	StopRefusal StopReason = "refusal"
	// StopOther: any reason the provider gave that has no normalised form.
	StopOther StopReason = "other"
)

// Usage counts the tokens a call consumed.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// Response is a model's answer: one assistant message.
type Response struct {
	// Model is the model that answered, as the provider reports it.
	Model string `json:"model,omitempty"`
	// Message is the assistant message, with any tool calls.
	Message Message `json:"message"`
	// StopReason says why generation stopped.
	StopReason StopReason `json:"stop_reason"`
	// Usage counts the tokens consumed.
	Usage Usage `json:"usage"`
}

// Validate checks that r is a well-formed conversation: at least one message,
// known roles, tool messages naming a call, tool calls and tools with names,
// and JSON arguments and parameters that are objects. It returns an error
// wrapping [ErrInvalidRequest].
func (r *Request) Validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil request", ErrInvalidRequest)
	}
	if len(r.Messages) == 0 {
		return fmt.Errorf("%w: no messages", ErrInvalidRequest)
	}
	if r.MaxTokens < 0 {
		return fmt.Errorf("%w: negative max tokens %d", ErrInvalidRequest, r.MaxTokens)
	}
	for i, m := range r.Messages {
		if !m.Role.Valid() {
			return fmt.Errorf("%w: message %d: unknown role %q", ErrInvalidRequest, i, m.Role)
		}
		if m.Role == RoleTool && m.ToolCallID == "" {
			return fmt.Errorf("%w: message %d: tool message without tool call id", ErrInvalidRequest, i)
		}
		if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
			return fmt.Errorf("%w: message %d: tool calls in a %s message", ErrInvalidRequest, i, m.Role)
		}
		for j, c := range m.ToolCalls {
			if c.ID == "" || c.Name == "" {
				return fmt.Errorf("%w: message %d: tool call %d without id or name", ErrInvalidRequest, i, j)
			}
			if len(c.Arguments) > 0 && !isJSONObject(c.Arguments) {
				return fmt.Errorf("%w: message %d: tool call %q: arguments are not a JSON object", ErrInvalidRequest, i, c.ID)
			}
		}
	}
	seen := make(map[string]bool, len(r.Tools))
	for i, t := range r.Tools {
		if t.Name == "" {
			return fmt.Errorf("%w: tool %d without name", ErrInvalidRequest, i)
		}
		if seen[t.Name] {
			return fmt.Errorf("%w: tool %q offered twice", ErrInvalidRequest, t.Name)
		}
		seen[t.Name] = true
		if len(t.Parameters) > 0 && !isJSONObject(t.Parameters) {
			return fmt.Errorf("%w: tool %q: parameters are not a JSON object", ErrInvalidRequest, t.Name)
		}
	}
	return nil
}

// isJSONObject reports whether b is one valid JSON object.
func isJSONObject(b json.RawMessage) bool {
	var v map[string]json.RawMessage
	return json.Unmarshal(b, &v) == nil && v != nil
}

// NormalizeArguments returns raw as tool-call arguments: empty or
// whitespace-only input becomes "{}", anything else must be a JSON object.
// Providers use it for arguments assembled from a model's output.
func NormalizeArguments(raw string) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(raw)
	if trimmed == "" {
		return json.RawMessage("{}"), nil
	}
	if !isJSONObject(json.RawMessage(trimmed)) {
		return nil, fmt.Errorf("llm: tool call arguments are not a JSON object")
	}
	return json.RawMessage(trimmed), nil
}
