package a2aremote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2aclient"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TokenSource returns the access token to present, as a Bearer token, to
// the agent whose A2A URL is audience (the host supplies a token it
// obtained by token exchange for that audience). The token is sent only
// to that URL.
type TokenSource func(ctx context.Context, audience string) (string, error)

// MetadataApprovalURL is the status-message metadata key under which
// agenthost's A2A server puts an approval URL (a2aserver's constant of
// the same name).
const MetadataApprovalURL = "agenthost/approval_url"

// Sentinel errors of a task that did not complete; test with errors.Is.
var (
	// ErrInputRequired is wrapped by [*InputRequiredError].
	ErrInputRequired = errors.New("a2aremote: the agent needs input")
	// ErrAuthRequired is wrapped by [*AuthRequiredError].
	ErrAuthRequired = errors.New("a2aremote: the agent needs authorization")
	// ErrTaskFailed is wrapped by [*TaskError].
	ErrTaskFailed = errors.New("a2aremote: the task did not complete")
	// ErrUnauthorized is wrapped by [*UnauthorizedError].
	ErrUnauthorized = errors.New("a2aremote: the agent refused the call's token")
)

// UnauthorizedError is a call the agent refused at the HTTP level (SPECS.md
// §16.2): 401 (no valid token) or 403 (a token without enough authority),
// with the challenges of its WWW-Authenticate header. A client learns from
// them where the agent's RFC 9728 metadata is (§5.1: a new challenge
// naming it means the metadata may have changed) and, with 403, what the
// token lacks.
type UnauthorizedError struct {
	// Status is 401 or 403.
	Status int
	// Challenges are the WWW-Authenticate values as sent (untrusted).
	Challenges []string
	// ResourceMetadata is the resource_metadata parameter of the first
	// Bearer or DPoP challenge that has one; empty when none does (or the
	// header does not parse).
	ResourceMetadata string
	// Code is the error parameter of those challenges (invalid_token,
	// insufficient_scope), when given.
	Code string
	// Err is the call's error as the A2A client reported it.
	Err error
}

// Error implements error.
func (e *UnauthorizedError) Error() string {
	s := fmt.Sprintf("%s (%d %s)", ErrUnauthorized.Error(), e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	return s
}

// Unwrap returns [ErrUnauthorized] and the call's error.
func (e *UnauthorizedError) Unwrap() []error { return []error{ErrUnauthorized, e.Err} }

// refusalKey carries, in a call's context, the record of an HTTP refusal
// of the call: the A2A client reports one by its status line alone, so the
// transport (cappedTransport) notes the status and challenges here.
type refusalKey struct{}

// refusal is what the transport noted of a refused call.
type refusal struct {
	mu         sync.Mutex
	status     int
	challenges []string
}

// withRefusal returns ctx carrying a fresh refusal record.
func withRefusal(ctx context.Context) (context.Context, *refusal) {
	r := &refusal{}
	return context.WithValue(ctx, refusalKey{}, r), r
}

// note records a 401 or 403 answer of the call whose context is ctx.
func note(ctx context.Context, status int, challenges []string) {
	if r, ok := ctx.Value(refusalKey{}).(*refusal); ok {
		r.mu.Lock()
		r.status, r.challenges = status, challenges
		r.mu.Unlock()
	}
}

// wrap returns err as an [*UnauthorizedError] when the call was refused
// with 401 or 403, else err.
func (r *refusal) wrap(err error) error {
	r.mu.Lock()
	status, challenges := r.status, r.challenges
	r.mu.Unlock()
	if err == nil || status == 0 {
		return err
	}
	e := &UnauthorizedError{Status: status, Challenges: challenges, Err: err}
	parsed, perr := oauth.ParseChallenges(challenges)
	if perr != nil {
		return e
	}
	for _, ch := range parsed {
		if !strings.EqualFold(ch.Scheme, "Bearer") && !strings.EqualFold(ch.Scheme, "DPoP") {
			continue
		}
		if e.ResourceMetadata == "" {
			e.ResourceMetadata = ch.Param("resource_metadata")
		}
		if e.Code == "" {
			e.Code = ch.Param("error")
		}
	}
	return e
}

// InputRequiredError is a remote task waiting for input (input-required):
// answer Message with a new message to TaskID (and ContextID).
type InputRequiredError struct {
	// TaskID and ContextID name the remote task to answer.
	TaskID, ContextID string
	// Message is the agent's question.
	Message string
}

// Error implements error.
func (e *InputRequiredError) Error() string { return ErrInputRequired.Error() + ": " + e.Message }

// Unwrap returns [ErrInputRequired].
func (e *InputRequiredError) Unwrap() error { return ErrInputRequired }

// AuthRequiredError is a remote task waiting for authorization
// (auth-required): a person must act, at URL when the agent gave one.
// The task resumes by itself (poll it with [Client.GetTask]) or with a
// new message to TaskID, as the agent says.
type AuthRequiredError struct {
	// TaskID and ContextID name the remote task.
	TaskID, ContextID string
	// Message is the agent's explanation.
	Message string
	// URL is where to authorize, when the agent gave one.
	URL string
}

// Error implements error.
func (e *AuthRequiredError) Error() string { return ErrAuthRequired.Error() + ": " + e.Message }

// Unwrap returns [ErrAuthRequired].
func (e *AuthRequiredError) Unwrap() error { return ErrAuthRequired }

// TaskError is a remote task that ended failed, canceled or rejected.
type TaskError struct {
	// TaskID names the remote task.
	TaskID string
	// State is the state it ended in.
	State a2a.TaskState
	// Message is the agent's status message (untrusted text).
	Message string
}

// Error implements error.
func (e *TaskError) Error() string {
	s := fmt.Sprintf("%s: %s", ErrTaskFailed.Error(), e.State)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns [ErrTaskFailed].
func (e *TaskError) Unwrap() error { return ErrTaskFailed }

// Result is what a remote agent answered.
type Result struct {
	// Task is the task, when the agent answered with one.
	Task *a2a.Task
	// Message is the message, when the agent answered with one instead.
	Message *a2a.Message
	// State is the task's state (empty for a message answer): completed,
	// or submitted / working when the agent answered before finishing.
	State a2a.TaskState
	// Text is the answer's text: each artifact's text parts
	// concatenated, artifacts joined by newlines (else the task's status
	// message), or the message's text parts joined by newlines.
	Text string
}

// UpdateKind is the kind of an [Update].
type UpdateKind string

// Update kinds.
const (
	// UpdateText is a chunk of the answer (an artifact update).
	UpdateText UpdateKind = "text"
	// UpdateStatus is a progress note (a working status with a message).
	UpdateStatus UpdateKind = "status"
	// UpdateApproval is an auth-required status while the task goes on:
	// a person must act, at URL when given.
	UpdateApproval UpdateKind = "approval"
)

// Update is progress of a remote task during [Client.Stream].
type Update struct {
	// Kind says what the update is.
	Kind UpdateKind
	// TaskID names the remote task.
	TaskID string
	// Text is the answer chunk, the progress note or what to approve.
	Text string
	// URL is where to approve (UpdateApproval), when the agent gave one.
	URL string
}

// NewTextMessage returns a user message with one text part, for a new
// task; set its TaskID and ContextID to answer a task that asked for
// input.
func NewTextMessage(text string) *a2a.Message {
	return a2a.NewMessage(a2a.MessageRoleUser, a2a.TextPart{Text: text})
}

// Send sends msg to the agent of card (message/send, waiting for the task
// to end or to need something) with a token from tokens for the card's
// endpoint. A task that needs input, authorization, or ended otherwise
// than completed is an error ([*InputRequiredError], [*AuthRequiredError],
// [*TaskError]); a call the agent refuses with 401 or 403 is an
// [*UnauthorizedError].
func (c *Client) Send(ctx context.Context, card *Card, tokens TokenSource, msg *a2a.Message) (*Result, error) {
	cl, err := c.client(ctx, card, tokens)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Destroy() }()
	ctx, ref := withRefusal(ctx)
	res, err := cl.SendMessage(ctx, &a2a.MessageSendParams{Message: msg})
	if err != nil {
		return nil, ref.wrap(fmt.Errorf("a2aremote: message/send to %s: %w", card.Endpoint, err))
	}
	switch r := res.(type) {
	case *a2a.Message:
		return &Result{Message: r, Text: messageText(r)}, nil
	case *a2a.Task:
		return taskResult(r)
	}
	return nil, fmt.Errorf("a2aremote: message/send to %s: unexpected result %T", card.Endpoint, res)
}

// Stream is [Client.Send] over message/stream: emit receives the task's
// progress as it comes (an error from emit stops the stream and is
// returned). An agent whose card does not declare streaming is sent
// message/send instead.
func (c *Client) Stream(ctx context.Context, card *Card, tokens TokenSource, msg *a2a.Message, emit func(Update) error) (*Result, error) {
	if !card.AgentCard.Capabilities.Streaming {
		return c.Send(ctx, card, tokens, msg)
	}
	cl, err := c.client(ctx, card, tokens)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Destroy() }()
	var (
		task      *a2a.Task
		artifacts = &artifactText{}
	)
	ctx, ref := withRefusal(ctx)
	for ev, err := range cl.SendStreamingMessage(ctx, &a2a.MessageSendParams{Message: msg}) {
		if err != nil {
			return nil, ref.wrap(fmt.Errorf("a2aremote: message/stream to %s: %w", card.Endpoint, err))
		}
		switch e := ev.(type) {
		case *a2a.Message:
			return &Result{Message: e, Text: messageText(e)}, nil
		case *a2a.Task:
			task = e
			artifacts.reset(e.Artifacts)
			if e.Status.State.Terminal() || e.Status.State == a2a.TaskStateInputRequired {
				return taskResult(e)
			}
		case *a2a.TaskArtifactUpdateEvent:
			if e.Artifact == nil {
				continue
			}
			artifacts.apply(e)
			if t := artifactString(e.Artifact); t != "" {
				if err := emit(Update{Kind: UpdateText, TaskID: string(e.TaskID), Text: t}); err != nil {
					return nil, err
				}
			}
		case *a2a.TaskStatusUpdateEvent:
			if task == nil {
				task = &a2a.Task{ID: e.TaskID, ContextID: e.ContextID}
			}
			task.Status = e.Status
			if e.Final || e.Status.State.Terminal() || e.Status.State == a2a.TaskStateInputRequired {
				task.Artifacts = artifacts.list()
				return taskResult(task)
			}
			text, url := statusMessage(e.Status)
			var u *Update
			switch {
			case e.Status.State == a2a.TaskStateAuthRequired:
				u = &Update{Kind: UpdateApproval, TaskID: string(e.TaskID), Text: text, URL: url}
			case text != "":
				u = &Update{Kind: UpdateStatus, TaskID: string(e.TaskID), Text: text}
			}
			if u != nil {
				if err := emit(*u); err != nil {
					return nil, err
				}
			}
		}
	}
	if task == nil {
		return nil, fmt.Errorf("a2aremote: message/stream to %s: the stream ended without a task", card.Endpoint)
	}
	task.Artifacts = artifacts.list()
	return taskResult(task)
}

// GetTask returns the remote task id (tasks/get), mapped as Send maps it.
func (c *Client) GetTask(ctx context.Context, card *Card, tokens TokenSource, id string) (*Result, error) {
	cl, err := c.client(ctx, card, tokens)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Destroy() }()
	ctx, ref := withRefusal(ctx)
	t, err := cl.GetTask(ctx, &a2a.TaskQueryParams{ID: a2a.TaskID(id)})
	if err != nil {
		return nil, ref.wrap(fmt.Errorf("a2aremote: tasks/get at %s: %w", card.Endpoint, err))
	}
	return taskResult(t)
}

// CancelTask cancels the remote task id (tasks/cancel).
func (c *Client) CancelTask(ctx context.Context, card *Card, tokens TokenSource, id string) error {
	cl, err := c.client(ctx, card, tokens)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Destroy() }()
	ctx, ref := withRefusal(ctx)
	if _, err := cl.CancelTask(ctx, &a2a.TaskIDParams{ID: a2a.TaskID(id)}); err != nil {
		return ref.wrap(fmt.Errorf("a2aremote: tasks/cancel at %s: %w", card.Endpoint, err))
	}
	return nil
}

// client is an a2a-go client for card's JSON-RPC endpoint that presents
// a token from tokens.
func (c *Client) client(ctx context.Context, card *Card, tokens TokenSource) (*a2aclient.Client, error) {
	if card == nil || card.AgentCard == nil || card.Endpoint == "" {
		return nil, fmt.Errorf("%w: use a card from FetchCard", ErrCard)
	}
	if tokens == nil {
		return nil, errors.New("a2aremote: no token source")
	}
	cl, err := a2aclient.NewFromEndpoints(ctx,
		[]a2a.AgentInterface{{Transport: a2a.TransportProtocolJSONRPC, URL: card.Endpoint}},
		a2aclient.WithDefaultsDisabled(),
		a2aclient.WithJSONRPCTransport(c.calls),
		a2aclient.WithInterceptors(&bearer{tokens: tokens, audience: card.Endpoint}),
	)
	if err != nil {
		return nil, fmt.Errorf("a2aremote: %w", err)
	}
	return cl, nil
}

// bearer puts the token for audience in every call's Authorization.
type bearer struct {
	a2aclient.PassthroughInterceptor
	tokens   TokenSource
	audience string
}

// Before sets the Authorization header of the call.
func (b *bearer) Before(ctx context.Context, req *a2aclient.Request) (context.Context, error) {
	tok, err := b.tokens(ctx, b.audience)
	if err != nil {
		return ctx, fmt.Errorf("a2aremote: token for %s: %w", b.audience, err)
	}
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return ctx, fmt.Errorf("a2aremote: token for %s: malformed", b.audience)
	}
	req.Meta["Authorization"] = []string{"Bearer " + tok}
	return ctx, nil
}

// taskResult maps a task to a Result or the error of its state.
func taskResult(t *a2a.Task) (*Result, error) {
	text, url := statusMessage(t.Status)
	id := string(t.ID)
	switch t.Status.State {
	case a2a.TaskStateInputRequired:
		return nil, &InputRequiredError{TaskID: id, ContextID: t.ContextID, Message: text}
	case a2a.TaskStateAuthRequired:
		return nil, &AuthRequiredError{TaskID: id, ContextID: t.ContextID, Message: text, URL: url}
	case a2a.TaskStateFailed, a2a.TaskStateCanceled, a2a.TaskStateRejected, a2a.TaskStateUnknown:
		return nil, &TaskError{TaskID: id, State: t.Status.State, Message: text}
	}
	out := &Result{Task: t, State: t.Status.State}
	var parts []string
	for _, a := range t.Artifacts {
		if a != nil {
			if s := artifactString(a); s != "" {
				parts = append(parts, s)
			}
		}
	}
	out.Text = strings.Join(parts, "\n")
	if out.Text == "" {
		out.Text = text
	}
	return out, nil
}

// statusMessage returns a status's message text and its approval URL (from
// the metadata agenthost writes, else from a data part's "url").
func statusMessage(st a2a.TaskStatus) (text, url string) {
	m := st.Message
	if m == nil {
		return "", ""
	}
	text = messageText(m)
	if u, ok := m.Metadata[MetadataApprovalURL].(string); ok {
		return text, u
	}
	for _, p := range m.Parts {
		if d, ok := p.(a2a.DataPart); ok {
			if u, ok := d.Data["url"].(string); ok {
				return text, u
			}
		}
	}
	return text, ""
}

func messageText(m *a2a.Message) string {
	if m == nil {
		return ""
	}
	return partsText(m.Parts)
}

// artifactString concatenates an artifact's text parts: the chunks of
// one answer.
func artifactString(a *a2a.Artifact) string {
	var b strings.Builder
	for _, p := range a.Parts {
		if t, ok := p.(a2a.TextPart); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// partsText joins a message's text parts with newlines.
func partsText(parts a2a.ContentParts) string {
	var out []string
	for _, p := range parts {
		if t, ok := p.(a2a.TextPart); ok {
			out = append(out, t.Text)
		}
	}
	return strings.Join(out, "\n")
}

// artifactText rebuilds a task's artifacts from artifact-update events
// (an update appends to or replaces the artifact of its id).
type artifactText struct {
	order []a2a.ArtifactID
	byID  map[a2a.ArtifactID]*a2a.Artifact
}

func (a *artifactText) reset(list []*a2a.Artifact) {
	a.order, a.byID = nil, map[a2a.ArtifactID]*a2a.Artifact{}
	for _, x := range list {
		if x != nil {
			a.put(x)
		}
	}
}

func (a *artifactText) put(x *a2a.Artifact) {
	if a.byID == nil {
		a.byID = map[a2a.ArtifactID]*a2a.Artifact{}
	}
	if _, ok := a.byID[x.ID]; !ok {
		a.order = append(a.order, x.ID)
	}
	cp := *x
	cp.Parts = append(a2a.ContentParts(nil), x.Parts...)
	a.byID[x.ID] = &cp
}

func (a *artifactText) apply(e *a2a.TaskArtifactUpdateEvent) {
	if cur, ok := a.byID[e.Artifact.ID]; ok && e.Append {
		cur.Parts = append(cur.Parts, e.Artifact.Parts...)
		return
	}
	a.put(e.Artifact)
}

func (a *artifactText) list() []*a2a.Artifact {
	out := make([]*a2a.Artifact, 0, len(a.order))
	for _, id := range a.order {
		out = append(out, a.byID[id])
	}
	return out
}
