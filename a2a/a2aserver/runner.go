package a2aserver

import (
	"context"
	"errors"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// Runner runs hosted agents' tasks; the host implements it (the agent
// plugin behind the mediator).
type Runner interface {
	// Run performs one run of a task for req.Caller and returns the
	// complete answer. A task runs once per message: the first message
	// starts it, and a message sent to a task the Runner left waiting for
	// input ([InputRequired]) runs it again with the earlier turns in
	// req.History.
	//
	// emit reports progress as it happens (see [Event]); it returns an
	// error once the task is canceled or the server closes, and the Runner
	// should then stop. ctx is canceled when the task is canceled
	// (tasks/cancel) or the server closes; it is not canceled when the
	// client that sent the message goes away.
	//
	// Errors: [InputRequired] and [AuthRequired] end the run with the task
	// waiting (input-required, auth-required); [Failed] fails it with a
	// message the client sees; any other error fails it with a generic
	// message (the error itself is only logged).
	Run(ctx context.Context, req *Request, emit func(Event) error) (string, error)
}

// RunnerFunc adapts a function to [Runner].
type RunnerFunc func(ctx context.Context, req *Request, emit func(Event) error) (string, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, req *Request, emit func(Event) error) (string, error) {
	return f(ctx, req, emit)
}

// Request is one run of a task of a hosted agent: the task's context.
type Request struct {
	// Agent is the hosted agent's name.
	Agent string
	// TaskID is the A2A task id.
	TaskID string
	// ContextID is the A2A context id of the task.
	ContextID string
	// Caller is who the verified access token speaks for: the user (sub),
	// the client that called, the scopes, and the act chain of a
	// delegated token. The token itself is never passed on.
	Caller *resource.Caller
	// TxnToken is the request's Txn-Token header, when it had one. It is
	// verified ([Config.VerifyTxnToken]) when TxnClaims is not nil, and
	// unverified otherwise.
	TxnToken string
	// TxnClaims are TxnToken's verified claims; nil when the request had
	// no Txn-Token or the server verifies none.
	TxnClaims *txntoken.Claims
	// Input is the text of the message that started this run (its text
	// parts, joined by newlines).
	Input string
	// History holds the task's earlier turns, oldest first, when this run
	// continues a task; empty for a new task.
	History []Turn
	// Metadata is the message's metadata as the client sent it
	// (untrusted).
	Metadata map[string]any
}

// Turn is one earlier message of a task.
type Turn struct {
	// Role is "user" or "agent".
	Role string
	// Text is the message's text parts, joined by newlines.
	Text string
}

// EventKind is the kind of an [Event].
type EventKind string

// Event kinds.
const (
	// EventText is a chunk of the answer: appended to the task's response
	// artifact (an artifact-update event to streaming clients).
	EventText EventKind = "text"
	// EventStatus is a progress note: a working status whose message is
	// Event.Text.
	EventStatus EventKind = "status"
	// EventApproval asks a person to approve something at Event.URL: the
	// task goes to auth-required with Event.Text (and the URL) as its
	// status message, while the run goes on waiting; the next event, or
	// the end of the run, moves the task on. A client that sent
	// message/send without blocking, or any streaming client, learns it at
	// once; a blocking message/send returns the task in auth-required.
	EventApproval EventKind = "approval"
)

// Event is progress a [Runner] reports while it runs.
type Event struct {
	// Kind says what the event is.
	Kind EventKind
	// Text is the answer chunk (EventText), the progress note
	// (EventStatus) or what is to be approved (EventApproval).
	Text string
	// URL is where the person approves (EventApproval); it goes into the
	// status message's text and its metadata under
	// [MetadataApprovalURL].
	URL string
}

// MetadataApprovalURL is the status-message metadata key under which an
// auth-required status carries the approval URL.
const MetadataApprovalURL = "agenthost/approval_url"

// Sentinel errors of the task-ending errors; test with errors.Is.
var (
	// ErrInputRequired is wrapped by the error [InputRequired] returns.
	ErrInputRequired = errors.New("a2aserver: input required")
	// ErrAuthRequired is wrapped by the error [AuthRequired] returns.
	ErrAuthRequired = errors.New("a2aserver: authorization required")
	// ErrFailed is wrapped by the error [Failed] returns.
	ErrFailed = errors.New("a2aserver: task failed")
)

// InputRequiredError ends a run with the task in input-required: the
// client is asked Message and answers with a new message to the task.
type InputRequiredError struct {
	// Message is the question to the client.
	Message string
}

// Error implements error.
func (e *InputRequiredError) Error() string { return ErrInputRequired.Error() + ": " + e.Message }

// Unwrap returns [ErrInputRequired].
func (e *InputRequiredError) Unwrap() error { return ErrInputRequired }

// AuthRequiredError ends a run with the task in auth-required: Message
// (and URL, where to authorize) is the status message. The client
// resumes the task with a new message once it has authorized out of band.
type AuthRequiredError struct {
	// Message explains what to authorize.
	Message string
	// URL is where to authorize; optional.
	URL string
}

// Error implements error.
func (e *AuthRequiredError) Error() string { return ErrAuthRequired.Error() + ": " + e.Message }

// Unwrap returns [ErrAuthRequired].
func (e *AuthRequiredError) Unwrap() error { return ErrAuthRequired }

// FailedError fails a task with a message the client may see.
type FailedError struct {
	// Message is the status message the client sees.
	Message string
}

// Error implements error.
func (e *FailedError) Error() string { return ErrFailed.Error() + ": " + e.Message }

// Unwrap returns [ErrFailed].
func (e *FailedError) Unwrap() error { return ErrFailed }

// InputRequired returns the error that ends a run waiting for the
// client's answer to question.
func InputRequired(question string) error { return &InputRequiredError{Message: question} }

// AuthRequired returns the error that ends a run waiting for
// authorization at url, explained by message.
func AuthRequired(message, url string) error { return &AuthRequiredError{Message: message, URL: url} }

// Failed returns the error that fails a task with message, which the
// client sees.
func Failed(message string) error { return &FailedError{Message: message} }
