package llmanthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/llm/internal/sse"
)

// errStopped ends the parse loop when the consumer stops iterating.
var errStopped = errors.New("llmanthropic: iteration stopped")

// maxBlocks bounds the content block index a stream may use.
const maxBlocks = 4096

// block is a content block being assembled.
type block struct {
	kind    string // "text", "tool_use", or a skipped type
	call    int    // ordinal among the message's tool calls
	id      string
	name    string
	input   strings.Builder
	initial json.RawMessage
	stopped bool
}

// streamState assembles one streamed message.
type streamState struct {
	c     *Client
	ctx   context.Context
	yield func(llm.Event, error) bool

	started bool
	model   string
	text    strings.Builder
	blocks  map[int]*block
	calls   []llm.ToolCall
	stop    *string
	usage   wireUsage
}

func (s *streamState) emit(ev llm.Event) error {
	if !s.yield(ev, nil) {
		return errStopped
	}
	return nil
}

// run reads the event stream until message_stop and yields events, ending
// with llm.EventDone. It returns nil when the consumer stops early.
func (s *streamState) run(body io.Reader) error {
	err := s.read(body)
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

func (s *streamState) read(body io.Reader) error {
	r := sse.NewReader(body, 0)
	s.blocks = map[int]*block{}
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("llmanthropic: %w: stream ended before message_stop", llm.ErrMalformedStream)
		}
		if err != nil {
			return s.c.wrapErr(s.ctx, fmt.Errorf("llmanthropic: read stream: %w", err))
		}
		var se streamEvent
		if err := json.Unmarshal([]byte(ev.Data), &se); err != nil {
			return fmt.Errorf("llmanthropic: %w: %s event data is not JSON: %w", llm.ErrMalformedStream, eventName(ev), err)
		}
		if se.Type == "" {
			se.Type = ev.Type
		}
		if ev.Type != "" && ev.Type != se.Type {
			return fmt.Errorf("llmanthropic: %w: event %q carries data of type %q", llm.ErrMalformedStream, ev.Type, se.Type)
		}
		done, err := s.event(&se)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func eventName(ev sse.Event) string {
	if ev.Type == "" {
		return "unnamed"
	}
	return fmt.Sprintf("%q", ev.Type)
}

// event applies one streamed event; done is true after message_stop.
func (s *streamState) event(se *streamEvent) (done bool, err error) {
	if se.Type != "message_start" && se.Type != "ping" && se.Type != "error" && !s.started {
		return false, fmt.Errorf("llmanthropic: %w: %s before message_start", llm.ErrMalformedStream, se.Type)
	}
	switch se.Type {
	case "ping":
		return false, nil
	case "error":
		if se.Error == nil {
			return false, fmt.Errorf("llmanthropic: %w: error event without error", llm.ErrMalformedStream)
		}
		return false, s.c.apiError(0, se.Error, nil)
	case "message_start":
		if s.started {
			return false, fmt.Errorf("llmanthropic: %w: second message_start", llm.ErrMalformedStream)
		}
		if se.Message == nil {
			return false, fmt.Errorf("llmanthropic: %w: message_start without message", llm.ErrMalformedStream)
		}
		s.started = true
		s.model = se.Message.Model
		s.usage = se.Message.Usage
		return false, nil
	case "content_block_start":
		return false, s.blockStart(se)
	case "content_block_delta":
		return false, s.blockDelta(se)
	case "content_block_stop":
		return false, s.blockStop(se)
	case "message_delta":
		if se.Delta != nil && se.Delta.StopReason != nil {
			sr := *se.Delta.StopReason
			s.stop = &sr
		}
		if u := se.Usage; u != nil {
			// message_delta usage counts are cumulative.
			s.usage.OutputTokens = u.OutputTokens
			if u.InputTokens > 0 {
				s.usage.InputTokens = u.InputTokens
			}
			if u.CacheCreationInputTokens > 0 {
				s.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
			}
			if u.CacheReadInputTokens > 0 {
				s.usage.CacheReadInputTokens = u.CacheReadInputTokens
			}
		}
		return false, nil
	case "message_stop":
		return true, s.done()
	}
	// Event types added to the API later are skipped, as its versioning
	// policy asks of clients.
	return false, nil
}

func (s *streamState) index(se *streamEvent) (int, error) {
	if se.Index == nil || *se.Index < 0 || *se.Index >= maxBlocks {
		return 0, fmt.Errorf("llmanthropic: %w: %s without a valid index", llm.ErrMalformedStream, se.Type)
	}
	return *se.Index, nil
}

func (s *streamState) blockStart(se *streamEvent) error {
	idx, err := s.index(se)
	if err != nil {
		return err
	}
	if _, dup := s.blocks[idx]; dup {
		return fmt.Errorf("llmanthropic: %w: content block %d started twice", llm.ErrMalformedStream, idx)
	}
	if se.ContentBlock == nil {
		return fmt.Errorf("llmanthropic: %w: content_block_start %d without content_block", llm.ErrMalformedStream, idx)
	}
	cb := se.ContentBlock
	b := &block{kind: cb.Type}
	s.blocks[idx] = b
	switch cb.Type {
	case "text":
		if cb.Text != "" {
			s.text.WriteString(cb.Text)
			return s.emit(llm.Event{Type: llm.EventTextDelta, Text: cb.Text})
		}
	case "tool_use":
		if cb.ID == "" || cb.Name == "" {
			return fmt.Errorf("llmanthropic: %w: tool_use block %d without id or name", llm.ErrMalformedStream, idx)
		}
		b.id, b.name, b.initial = cb.ID, cb.Name, cb.Input
		b.call = len(s.calls)
		s.calls = append(s.calls, llm.ToolCall{})
		return s.emit(llm.Event{Type: llm.EventToolCallStart, Index: b.call, ToolCall: llm.ToolCall{ID: b.id, Name: b.name}})
	}
	return nil
}

func (s *streamState) blockDelta(se *streamEvent) error {
	idx, err := s.index(se)
	if err != nil {
		return err
	}
	b, ok := s.blocks[idx]
	if !ok || b.stopped {
		return fmt.Errorf("llmanthropic: %w: delta for content block %d that is not open", llm.ErrMalformedStream, idx)
	}
	if se.Delta == nil {
		return fmt.Errorf("llmanthropic: %w: content_block_delta %d without delta", llm.ErrMalformedStream, idx)
	}
	switch se.Delta.Type {
	case "text_delta":
		if b.kind != "text" {
			return fmt.Errorf("llmanthropic: %w: text_delta for %s block %d", llm.ErrMalformedStream, b.kind, idx)
		}
		if se.Delta.Text == "" {
			return nil
		}
		s.text.WriteString(se.Delta.Text)
		return s.emit(llm.Event{Type: llm.EventTextDelta, Text: se.Delta.Text})
	case "input_json_delta":
		if b.kind != "tool_use" {
			return fmt.Errorf("llmanthropic: %w: input_json_delta for %s block %d", llm.ErrMalformedStream, b.kind, idx)
		}
		if se.Delta.PartialJSON == "" {
			return nil
		}
		b.input.WriteString(se.Delta.PartialJSON)
		return s.emit(llm.Event{Type: llm.EventToolCallDelta, Index: b.call, ArgumentsDelta: se.Delta.PartialJSON})
	}
	// thinking_delta, signature_delta, citations_delta and later delta
	// types belong to blocks this client skips.
	return nil
}

func (s *streamState) blockStop(se *streamEvent) error {
	idx, err := s.index(se)
	if err != nil {
		return err
	}
	b, ok := s.blocks[idx]
	if !ok || b.stopped {
		return fmt.Errorf("llmanthropic: %w: content_block_stop for content block %d that is not open", llm.ErrMalformedStream, idx)
	}
	b.stopped = true
	if b.kind != "tool_use" {
		return nil
	}
	input := b.input.String()
	if input == "" && len(b.initial) > 0 {
		input = string(b.initial)
	}
	call, err := toolCall(b.id, b.name, input)
	if err != nil {
		return fmt.Errorf("llmanthropic: content block %d: %w", idx, err)
	}
	s.calls[b.call] = call
	return s.emit(llm.Event{Type: llm.EventToolCallEnd, Index: b.call, ToolCall: call})
}

// done checks that every block was closed and yields the final response.
func (s *streamState) done() error {
	open := -1
	for idx, b := range s.blocks {
		if !b.stopped && (open < 0 || idx < open) {
			open = idx
		}
	}
	if open >= 0 {
		return fmt.Errorf("llmanthropic: %w: message_stop with content block %d still open", llm.ErrMalformedStream, open)
	}
	msg := llm.Message{Role: llm.RoleAssistant, Content: s.text.String()}
	if len(s.calls) > 0 {
		msg.ToolCalls = s.calls
	}
	return s.emit(llm.Event{Type: llm.EventDone, Response: &llm.Response{
		Model:      s.model,
		Message:    msg,
		StopReason: stopReason(s.stop),
		Usage:      usage(s.usage),
	}})
}
