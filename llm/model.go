package llm

import (
	"context"
	"fmt"
	"iter"
)

// Model is a language model the host calls on behalf of an agent.
//
// Both methods validate the request first and return an error wrapping
// [ErrInvalidRequest] when it is malformed. A provider's error body is
// returned as an [*APIError], which matches [ErrRateLimited], [ErrAuth],
// [ErrBadRequest] or [ErrOverloaded] under [errors.Is]. A stream that breaks
// off or cannot be parsed fails with an error wrapping [ErrMalformedStream].
// Cancelling ctx aborts the call with an error wrapping ctx.Err().
type Model interface {
	// Complete returns the model's next assistant message.
	Complete(ctx context.Context, req *Request) (*Response, error)
	// Stream returns the model's next assistant message as events. The last
	// event of a successful stream is [EventDone]; on failure the sequence
	// yields one non-nil error and stops. Stopping the iteration early
	// releases the underlying connection.
	Stream(ctx context.Context, req *Request) iter.Seq2[Event, error]
}

// EventType names the kind of an [Event].
type EventType string

// The events of a stream.
const (
	// EventTextDelta carries the next piece of assistant text in Text.
	EventTextDelta EventType = "text_delta"
	// EventToolCallStart opens the tool call at Index; ToolCall holds its ID
	// and Name.
	EventToolCallStart EventType = "tool_call_start"
	// EventToolCallDelta carries the next piece of the JSON arguments of the
	// tool call at Index in ArgumentsDelta.
	EventToolCallDelta EventType = "tool_call_delta"
	// EventToolCallEnd closes the tool call at Index; ToolCall holds the
	// complete call with its assembled Arguments.
	EventToolCallEnd EventType = "tool_call_end"
	// EventDone ends the stream; Response holds the assembled answer.
	EventDone EventType = "done"
)

// Event is one step of a streamed answer. Which fields are set depends on
// Type.
type Event struct {
	Type EventType
	// Text is the text delta of EventTextDelta.
	Text string
	// Index is the position of the tool call within the message, for the
	// tool-call events.
	Index int
	// ToolCall is the call opened (ID, Name) or closed (complete) by the
	// tool-call start and end events.
	ToolCall ToolCall
	// ArgumentsDelta is the arguments fragment of EventToolCallDelta.
	ArgumentsDelta string
	// Response is the final answer of EventDone.
	Response *Response
}

// Collect drains a stream and returns the response of its [EventDone]. It
// returns the first error the stream yields, or an error wrapping
// [ErrMalformedStream] when the stream ends without EventDone.
func Collect(seq iter.Seq2[Event, error]) (*Response, error) {
	for ev, err := range seq {
		if err != nil {
			return nil, err
		}
		if ev.Type == EventDone {
			if ev.Response == nil {
				return nil, fmt.Errorf("%w: done event without response", ErrMalformedStream)
			}
			return ev.Response, nil
		}
	}
	return nil, fmt.Errorf("%w: stream ended without a final message", ErrMalformedStream)
}

// ErrorStream returns a stream that yields err and stops. Models use it to
// report a failure detected before streaming begins.
func ErrorStream(err error) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		yield(Event{}, err)
	}
}
