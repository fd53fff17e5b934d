package remotetools

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/mcp/mcpclient"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
)

// TestCallError: every failure of a remote call maps to the Host error
// kind the plugin gets (permission denied when authority was refused,
// unavailable otherwise, neither for a canceled call), with a message
// that names the remote first and keeps the cause in the chain.
func TestCallError(t *testing.T) {
	const issuer = "https://as.example"
	refused := &oauth.Error{Code: oauth.CodeInvalidGrant, Description: "the subject token is not for this client"}
	tests := []struct {
		name string
		err  func(testing.TB) error
		// kind is the Host error kind, nil for none.
		kind error
		want string
	}{
		{
			name: "canceled",
			err:  func(testing.TB) error { return fmt.Errorf("mcpclient: call: %w", context.Canceled) },
			want: "host: remote docs: mcpclient: call: context canceled",
		},
		{
			name: "deadline",
			err:  func(testing.TB) error { return context.DeadlineExceeded },
			want: "host: remote docs: context deadline exceeded",
		},
		{
			name: "client_credentials refused",
			err: func(testing.TB) error {
				return &mcpclient.TokenError{Resource: "https://docs.example/mcp", Issuer: issuer, Err: refused}
			},
			kind: pluginpb.ErrPermissionDenied,
			want: "permission denied: remote docs: its authorization server https://as.example refused the client_credentials request: " +
				"invalid_grant: the subject token is not for this client",
		},
		{
			name: "token exchange refused",
			err: func(testing.TB) error {
				return fmt.Errorf("call: %w", &mcpclient.TokenError{Resource: "https://docs.example/mcp", Issuer: issuer, Exchange: true, Err: refused})
			},
			kind: pluginpb.ErrPermissionDenied,
			want: "permission denied: remote docs: its authorization server https://as.example refused the token exchange: " +
				"invalid_grant: the subject token is not for this client",
		},
		{
			name: "token request failed without an OAuth error",
			err: func(testing.TB) error {
				return &mcpclient.TokenError{Resource: "https://docs.example/mcp", Issuer: issuer, Err: errors.New("connection refused")}
			},
			kind: pluginpb.ErrUnavailable,
			want: "unavailable: remote docs: mcpclient: token acquisition failed: client_credentials for https://docs.example/mcp " +
				"at the authorization server https://as.example: connection refused",
		},
		{
			name: "no user to act for",
			err:  func(testing.TB) error { return fmt.Errorf("host: %w: its task has ended", ErrNoUser) },
			kind: pluginpb.ErrPermissionDenied,
			want: "permission denied: remote docs: host: the task has no user's access token to act with: its task has ended",
		},
		{
			name: "token refused by the remote",
			err:  func(testing.TB) error { return fmt.Errorf("%w: 401 invalid_token", mcpclient.ErrUnauthorized) },
			kind: pluginpb.ErrPermissionDenied,
			want: "permission denied: remote docs: mcpclient: the server refused the access token: 401 invalid_token",
		},
		{
			name: "scope not granted",
			err:  func(testing.TB) error { return mcpclient.ErrInsufficientScope },
			kind: pluginpb.ErrPermissionDenied,
			want: "permission denied: remote docs: mcpclient: insufficient scope",
		},
		{
			name: "protocol failure",
			err:  func(testing.TB) error { return fmt.Errorf("%w: tools/call: boom", mcpclient.ErrProtocol) },
			kind: pluginpb.ErrUnavailable,
			want: "unavailable: remote docs: mcpclient: MCP request failed: tools/call: boom",
		},
	}
	kinds := []error{pluginpb.ErrPermissionDenied, pluginpb.ErrUnavailable}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := tt.err(t)
			got := callError("docs", cause)
			if got.Error() != tt.want {
				t.Fatalf("message:\n got %q\nwant %q", got.Error(), tt.want)
			}
			for _, k := range kinds {
				if errors.Is(got, k) != (k == tt.kind) {
					t.Fatalf("errors.Is(%v) = %v, want kind %v", k, !(k == tt.kind), tt.kind)
				}
			}
			if !errors.Is(got, cause) {
				t.Fatal("the cause is not in the chain")
			}
		})
	}
}
