package remotetools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// ErrNoUser reports a remote that acts as the user called in a task that
// has no user's token to act with. [Config.Subject], and the subject
// token source it returns, wrap it (with a prefix of their own): the call
// is then refused as permission denied.
var ErrNoUser = errors.New("the task has no user's access token to act with")

// callError is a failed remote call as the calling plugin gets it: with
// the Host error kind permission denied when authority was refused (the
// remote's authorization server refused the token request, the remote
// refused the token, or the task has no user to act for), unavailable
// otherwise. The message names the remote and, for a refused token
// request, its authorization server and the OAuth error, first (the
// plugin may show only the start of it); it never holds a token. The
// whole cause stays in the chain. The plugin called the host, so a
// canceled call reads "host: remote …".
func callError(remote string, err error) error {
	var (
		te *mcpclient.TokenError
		oe *oauth.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("host: remote %s: %w", remote, err)
	case errors.As(err, &te) && errors.As(te.Err, &oe):
		grant := "client_credentials request"
		if te.Exchange {
			grant = "token exchange"
		}
		return &remoteError{kind: pluginpb.ErrPermissionDenied, cause: err,
			msg: fmt.Sprintf("remote %s: its authorization server %s refused the %s: %s", remote, te.Issuer, grant, strings.TrimPrefix(oe.Error(), "oauth: "))}
	case errors.Is(err, ErrNoUser), errors.Is(err, mcpclient.ErrUnauthorized), errors.Is(err, mcpclient.ErrInsufficientScope):
		return fmt.Errorf("%w: remote %s: %w", pluginpb.ErrPermissionDenied, remote, err)
	}
	return fmt.Errorf("%w: remote %s: %w", pluginpb.ErrUnavailable, remote, err)
}

// remoteError is a failed remote call with a message of its own.
type remoteError struct {
	kind, cause error
	msg         string
}

func (e *remoteError) Error() string   { return e.kind.Error() + ": " + e.msg }
func (e *remoteError) Unwrap() []error { return []error{e.kind, e.cause} }
