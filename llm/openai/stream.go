package llmopenai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/llm"
	"github.com/agenthost/agenthost/llm/internal/sse"
)

// errStopped ends the parse loop when the consumer stops iterating.
var errStopped = errors.New("llmopenai: iteration stopped")

// pendingCall is a tool call being assembled from deltas.
type pendingCall struct {
	id, name string
	args     strings.Builder
	ended    bool
}

// streamState assembles one streamed answer.
type streamState struct {
	c     *Client
	ctx   context.Context
	yield func(llm.Event, error) bool

	model    string
	text     strings.Builder
	calls    map[int]*pendingCall
	order    []int
	finish   *string
	usage    llm.Usage
	finished bool
}

func (s *streamState) emit(ev llm.Event) error {
	if !s.yield(ev, nil) {
		return errStopped
	}
	return nil
}

// run reads the SSE body until "data: [DONE]" and yields events, ending with
// llm.EventDone. It returns nil when the consumer stops early.
func (s *streamState) run(body io.Reader) error {
	err := s.read(body)
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

func (s *streamState) read(body io.Reader) error {
	r := sse.NewReader(body, 0)
	s.calls = map[int]*pendingCall{}
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			if s.finish == nil {
				return fmt.Errorf("llmopenai: %w: stream ended before finish_reason and [DONE]", llm.ErrMalformedStream)
			}
			return s.done()
		}
		if err != nil {
			return s.c.wrapErr(s.ctx, fmt.Errorf("llmopenai: read stream: %w", err))
		}
		data := strings.TrimSpace(ev.Data)
		if data == "[DONE]" {
			return s.done()
		}
		if data == "" {
			continue
		}
		var chunk chatResponse
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return fmt.Errorf("llmopenai: %w: chunk is not JSON: %w", llm.ErrMalformedStream, err)
		}
		if err := s.chunk(&chunk); err != nil {
			return err
		}
	}
}

// chunk applies one chat.completion.chunk.
func (s *streamState) chunk(ch *chatResponse) error {
	if ch.Error != nil {
		return s.c.apiError(0, ch.Error, nil)
	}
	if ch.Model != "" {
		s.model = ch.Model
	}
	if ch.Usage != nil {
		s.usage = llm.Usage{InputTokens: ch.Usage.PromptTokens, OutputTokens: ch.Usage.CompletionTokens}
	}
	for _, choice := range ch.Choices {
		if choice.Index != 0 {
			continue
		}
		if d := choice.Delta; d != nil {
			if d.Content != nil && *d.Content != "" {
				s.text.WriteString(*d.Content)
				if err := s.emit(llm.Event{Type: llm.EventTextDelta, Text: *d.Content}); err != nil {
					return err
				}
			}
			for pos, tc := range d.ToolCalls {
				if err := s.toolDelta(pos, tc); err != nil {
					return err
				}
			}
		}
		if choice.FinishReason != nil {
			fr := *choice.FinishReason
			s.finish = &fr
			if err := s.endCalls(); err != nil {
				return err
			}
		}
	}
	return nil
}

// toolDelta applies one tool_calls entry of a delta; entries are matched by
// their index, or by position when a server omits it.
func (s *streamState) toolDelta(pos int, tc chatToolCall) error {
	idx := pos
	if tc.Index != nil {
		idx = *tc.Index
	}
	if idx < 0 || idx > 1024 {
		return fmt.Errorf("llmopenai: %w: tool call index %d out of range", llm.ErrMalformedStream, idx)
	}
	pc, ok := s.calls[idx]
	if !ok {
		pc = &pendingCall{id: tc.ID, name: tc.Function.Name}
		s.calls[idx] = pc
		s.order = append(s.order, idx)
		if err := s.emit(llm.Event{Type: llm.EventToolCallStart, Index: idx, ToolCall: llm.ToolCall{ID: pc.id, Name: pc.name}}); err != nil {
			return err
		}
	} else {
		if pc.ended {
			return fmt.Errorf("llmopenai: %w: delta for tool call %d after it ended", llm.ErrMalformedStream, idx)
		}
		if pc.id == "" {
			pc.id = tc.ID
		}
		pc.name += tc.Function.Name
	}
	if tc.Function.Arguments != "" {
		pc.args.WriteString(tc.Function.Arguments)
		return s.emit(llm.Event{Type: llm.EventToolCallDelta, Index: idx, ArgumentsDelta: tc.Function.Arguments})
	}
	return nil
}

// endCalls closes every open tool call in index order.
func (s *streamState) endCalls() error {
	idxs := append([]int(nil), s.order...)
	sort.Ints(idxs)
	for _, idx := range idxs {
		pc := s.calls[idx]
		if pc.ended {
			continue
		}
		pc.ended = true
		id := pc.id
		if id == "" {
			id = "call_" + strconv.Itoa(idx)
		}
		call, err := toolCall(id, pc.name, pc.args.String())
		if err != nil {
			return fmt.Errorf("llmopenai: tool call %d: %w", idx, err)
		}
		if err := s.emit(llm.Event{Type: llm.EventToolCallEnd, Index: idx, ToolCall: call}); err != nil {
			return err
		}
	}
	return nil
}

// done closes any open calls and yields the assembled response.
func (s *streamState) done() error {
	if s.finished {
		return nil
	}
	s.finished = true
	if err := s.endCalls(); err != nil {
		return err
	}
	msg := llm.Message{Role: llm.RoleAssistant, Content: s.text.String()}
	idxs := append([]int(nil), s.order...)
	sort.Ints(idxs)
	for _, idx := range idxs {
		pc := s.calls[idx]
		id := pc.id
		if id == "" {
			id = "call_" + strconv.Itoa(idx)
		}
		call, err := toolCall(id, pc.name, pc.args.String())
		if err != nil {
			return fmt.Errorf("llmopenai: tool call %d: %w", idx, err)
		}
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	resp := &llm.Response{Model: s.model, Message: msg, StopReason: finalStop(s.finish, msg)}
	resp.Usage = s.usage
	return s.emit(llm.Event{Type: llm.EventDone, Response: resp})
}

// finalStop normalises finish_reason; a "stop" that carries tool calls, as
// some compatible servers send, counts as tool use.
func finalStop(fr *string, msg llm.Message) llm.StopReason {
	r := stopReason(fr)
	if r == llm.StopEndTurn && len(msg.ToolCalls) > 0 {
		return llm.StopToolUse
	}
	return r
}
