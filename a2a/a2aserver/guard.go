package a2aserver

import (
	"context"
	"fmt"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/a2aproject/a2a-go/a2asrv"
)

// guard is the a2asrv.CallInterceptor that runs before every A2A method
// of one agent: a method naming a task goes on only when the caller owns
// the task, and otherwise fails exactly as for a task that does not exist
// (a2a.ErrTaskNotFound, the same error text either way), so a task id of
// another caller reveals nothing, not even that an execution of it is
// running. It also refuses push notification methods (not supported) and
// messages without text, and a new task when the store is full.
type guard struct {
	a2asrv.PassthroughCallInterceptor
	store *taskStore
	agent string
}

var _ a2asrv.CallInterceptor = (*guard)(nil)

// Before checks the call as the type documentation says.
func (g *guard) Before(ctx context.Context, _ *a2asrv.CallContext, req *a2asrv.Request) (context.Context, error) {
	c, ok := callFrom(ctx)
	if !ok || c.owner == "" || c.agent != g.agent {
		return ctx, a2a.ErrInternalError
	}
	switch p := req.Payload.(type) {
	case *a2a.TaskQueryParams:
		if p == nil || !g.store.owns(c.owner, p.ID) {
			return ctx, a2a.ErrTaskNotFound
		}
	case *a2a.TaskIDParams:
		if p == nil || !g.store.owns(c.owner, p.ID) {
			return ctx, a2a.ErrTaskNotFound
		}
	case *a2a.MessageSendParams:
		if err := checkMessage(p); err != nil {
			return ctx, err
		}
		if p.Message.TaskID != "" {
			if !g.store.owns(c.owner, p.Message.TaskID) {
				return ctx, a2a.ErrTaskNotFound
			}
		} else if err := g.store.admit(); err != nil {
			return ctx, err
		}
	case *a2a.GetTaskPushConfigParams, *a2a.ListTaskPushConfigParams, *a2a.TaskPushConfig, *a2a.DeleteTaskPushConfigParams:
		return ctx, a2a.ErrPushNotificationNotSupported
	}
	return ctx, nil
}

// checkMessage accepts a user message with at least one text part and no
// push notification config.
func checkMessage(p *a2a.MessageSendParams) error {
	switch {
	case p == nil || p.Message == nil:
		return fmt.Errorf("%w: no message", a2a.ErrInvalidParams)
	case p.Message.Role != a2a.MessageRoleUser:
		return fmt.Errorf("%w: the message's role must be user", a2a.ErrInvalidParams)
	case p.Config != nil && p.Config.PushConfig != nil:
		return a2a.ErrPushNotificationNotSupported
	}
	for _, part := range p.Message.Parts {
		if _, ok := part.(a2a.TextPart); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: the message has no text part", a2a.ErrInvalidParams)
}
