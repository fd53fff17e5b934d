package a2aserver

import (
	"context"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// call is what the HTTP layer learned about a JSON-RPC request, carried
// to the task store, the ownership check and the executor in the request
// context (which a2a-go keeps, without its cancellation, for the
// execution of a task).
type call struct {
	agent     string
	caller    *resource.Caller
	owner     string
	txnToken  string
	txnClaims *txntoken.Claims
}

type callKey struct{}

func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(resource.WithCaller(ctx, c.caller), callKey{}, c)
}

func callFrom(ctx context.Context) (*call, bool) {
	c, ok := ctx.Value(callKey{}).(*call)
	return c, ok && c != nil
}

// ownerFrom returns the task owner of the request in ctx, or "".
func ownerFrom(ctx context.Context) string {
	if c, ok := callFrom(ctx); ok {
		return c.owner
	}
	return ""
}

// ownerKey is who owns the tasks a caller creates at an agent: the agent,
// the token's issuer, its subject and its client. A task is visible only
// to requests with the same four (SPECS.md §16.2: a caller never learns
// of tasks it cannot access).
func ownerKey(agent string, c *resource.Caller) string {
	// Length-prefixed, so no choice of the four strings can produce
	// another's key.
	var b strings.Builder
	for _, s := range []string{agent, c.Issuer, c.Subject, c.ClientID} {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}
