package a2aserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
	"github.com/a2aproject/a2a-go/a2asrv/eventqueue"
)

// responseArtifact names the artifact that holds a task's answer.
const responseArtifact = "response"

// failedMessage is the status message of a task whose Runner failed
// without a message for the client.
const failedMessage = "the agent could not complete the task"

// executor is one hosted agent's a2asrv.AgentExecutor: it turns a task's
// messages into Runner runs and the Runner's progress into A2A events.
type executor struct {
	srv   *Server
	agent string
}

var _ a2asrv.AgentExecutor = (*executor)(nil)

// Execute runs the Runner for the message in reqCtx. ctx is the request
// context without its cancellation (a2a-go detaches executions), so the
// caller is known and the run outlives a client that goes away.
func (e *executor) Execute(ctx context.Context, reqCtx *a2asrv.RequestContext, q eventqueue.Queue) error {
	c, ok := callFrom(ctx)
	if !ok || c.caller == nil || c.agent != e.agent {
		return fmt.Errorf("a2aserver: execution without a verified caller: %w", a2a.ErrInternalError)
	}
	s := e.srv
	if reqCtx.StoredTask == nil {
		if err := q.Write(ctx, a2a.NewSubmittedTask(reqCtx, reqCtx.Message)); err != nil {
			return err
		}
	}
	if err := q.Write(ctx, s.status(reqCtx, a2a.TaskStateWorking, "", "", false)); err != nil {
		return err
	}

	req := &Request{
		Agent:     e.agent,
		TaskID:    string(reqCtx.TaskID),
		ContextID: reqCtx.ContextID,
		Caller:    c.caller,
		TxnToken:  c.txnToken,
		TxnClaims: c.txnClaims,
		Input:     messageText(reqCtx.Message),
		Metadata:  reqCtx.Message.Metadata,
	}
	if reqCtx.StoredTask != nil {
		req.History = history(reqCtx.StoredTask, reqCtx.Message)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()

	r := &run{srv: s, ctx: runCtx, reqCtx: reqCtx, q: q}
	final, err := s.runner.Run(runCtx, req, r.emit)
	r.end()

	log := s.log.With(slog.String("agent", e.agent), slog.String("task_id", req.TaskID))
	switch {
	case ctx.Err() != nil:
		// Canceled by tasks/cancel: the cancellation event is written.
		return nil
	case runCtx.Err() != nil:
		log.InfoContext(ctx, "task stopped by server close")
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateCanceled, "the host is shutting down", "", true))
	}
	var (
		input *InputRequiredError
		auth  *AuthRequiredError
		fail  *FailedError
	)
	switch {
	case err == nil:
		if ev := r.finalArtifact(final); ev != nil {
			if err := q.Write(ctx, ev); err != nil {
				return err
			}
		}
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateCompleted, "", "", true))
	case errors.As(err, &input):
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateInputRequired, input.Message, "", true))
	case errors.As(err, &auth):
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateAuthRequired, auth.Message, auth.URL, true))
	case errors.As(err, &fail):
		log.InfoContext(ctx, "task failed", slog.String("reason", fail.Message))
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateFailed, fail.Message, "", true))
	default:
		log.WarnContext(ctx, "task failed", slog.Any("error", err))
		return q.Write(ctx, s.status(reqCtx, a2a.TaskStateFailed, failedMessage, "", true))
	}
}

// Cancel ends a task: the canceled status is final, so a2a-go stops the
// execution, which cancels the Runner's context.
func (e *executor) Cancel(ctx context.Context, reqCtx *a2asrv.RequestContext, q eventqueue.Queue) error {
	return q.Write(ctx, e.srv.status(reqCtx, a2a.TaskStateCanceled, "", "", true))
}

// run turns one Runner run's events into A2A events.
type run struct {
	srv    *Server
	ctx    context.Context
	reqCtx *a2asrv.RequestContext
	q      eventqueue.Queue

	mu       sync.Mutex
	done     bool
	artifact a2a.ArtifactID
	// waiting is set while the task is in auth-required because of an
	// approval event.
	waiting bool
}

var errRunEnded = errors.New("a2aserver: the run has ended")

func (r *run) emit(ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return errRunEnded
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	var out a2a.Event
	switch ev.Kind {
	case EventText:
		if ev.Text == "" {
			return nil
		}
		if r.artifact == "" {
			ae := a2a.NewArtifactEvent(r.reqCtx, a2a.TextPart{Text: ev.Text})
			ae.Artifact.Name = responseArtifact
			r.artifact = ae.Artifact.ID
			out = ae
		} else {
			out = a2a.NewArtifactUpdateEvent(r.reqCtx, r.artifact, a2a.TextPart{Text: ev.Text})
		}
	case EventStatus:
		r.waiting = false
		return r.q.Write(r.ctx, r.srv.status(r.reqCtx, a2a.TaskStateWorking, ev.Text, "", false))
	case EventApproval:
		if ev.URL == "" && ev.Text == "" {
			return errors.New("a2aserver: an approval event needs a URL or a text")
		}
		r.waiting = true
		return r.q.Write(r.ctx, r.srv.status(r.reqCtx, a2a.TaskStateAuthRequired, ev.Text, ev.URL, false))
	default:
		return fmt.Errorf("a2aserver: unknown event kind %q", ev.Kind)
	}
	if err := r.resume(); err != nil {
		return err
	}
	return r.q.Write(r.ctx, out)
}

// resume moves a task waiting for an approval back to working.
func (r *run) resume() error {
	if !r.waiting {
		return nil
	}
	r.waiting = false
	return r.q.Write(r.ctx, r.srv.status(r.reqCtx, a2a.TaskStateWorking, "", "", false))
}

func (r *run) end() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
}

// finalArtifact is the event that makes the response artifact hold
// exactly final: the artifact itself when nothing was streamed, or a
// replacement of the streamed chunks. A run that streamed its answer and
// returns "" keeps the chunks.
func (r *run) finalArtifact(final string) a2a.Event {
	switch {
	case r.artifact == "" && final == "":
		return nil
	case r.artifact == "":
		ae := a2a.NewArtifactEvent(r.reqCtx, a2a.TextPart{Text: final})
		ae.Artifact.Name = responseArtifact
		ae.LastChunk = true
		return ae
	case final == "":
		return nil
	}
	info := r.reqCtx.TaskInfo()
	return &a2a.TaskArtifactUpdateEvent{
		TaskID: info.TaskID, ContextID: info.ContextID, LastChunk: true,
		Artifact: &a2a.Artifact{ID: r.artifact, Name: responseArtifact, Parts: a2a.ContentParts{a2a.TextPart{Text: final}}},
	}
}

// status is a status-update event of the task in info, with an agent
// message holding text (and url, also in its metadata) when either is set.
func (s *Server) status(info a2a.TaskInfoProvider, state a2a.TaskState, text, url string, final bool) *a2a.TaskStatusUpdateEvent {
	ti := info.TaskInfo()
	now := s.now()
	ev := &a2a.TaskStatusUpdateEvent{
		TaskID: ti.TaskID, ContextID: ti.ContextID, Final: final,
		Status: a2a.TaskStatus{State: state, Timestamp: &now},
	}
	if text == "" && url == "" {
		return ev
	}
	body := text
	if url != "" && !strings.Contains(text, url) {
		body = strings.TrimSpace(text + "\n" + url)
	}
	msg := a2a.NewMessageForTask(a2a.MessageRoleAgent, info, a2a.TextPart{Text: body})
	if url != "" {
		msg.Metadata = map[string]any{MetadataApprovalURL: url}
	}
	ev.Status.Message = msg
	return ev
}

// messageText joins m's text parts with newlines.
func messageText(m *a2a.Message) string {
	if m == nil {
		return ""
	}
	var parts []string
	for _, p := range m.Parts {
		if t, ok := p.(a2a.TextPart); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// history lists the stored task's messages before current (which a2a-go
// has already appended), and its current status message, as turns.
func history(task *a2a.Task, current *a2a.Message) []Turn {
	var out []Turn
	add := func(m *a2a.Message) {
		if m == nil || (current != nil && m.ID == current.ID) {
			return
		}
		role := "user"
		if m.Role == a2a.MessageRoleAgent {
			role = "agent"
		}
		out = append(out, Turn{Role: role, Text: messageText(m)})
	}
	for _, m := range task.History {
		add(m)
	}
	add(task.Status.Message)
	return out
}
