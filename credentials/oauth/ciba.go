package oauth

import "encoding/json"

// OpenID Client-Initiated Backchannel Authentication (CIBA Core 1.0,
// SPECS.md §7): the values of its backchannel authentication endpoint, its
// token delivery and its metadata.

// Error codes of the backchannel authentication endpoint (CIBA Core §13);
// authorization_pending, slow_down, expired_token and access_denied at the
// token endpoint are CodeAuthorizationPending, CodeSlowDown,
// CodeExpiredToken and CodeAccessDenied.
const (
	CodeExpiredLoginHintToken = "expired_login_hint_token"
	CodeUnknownUserID         = "unknown_user_id"
	CodeMissingUserCode       = "missing_user_code"
	CodeInvalidUserCode       = "invalid_user_code"
	CodeInvalidBindingMessage = "invalid_binding_message"
	CodeTransactionFailed     = "transaction_failed"
)

// Token delivery modes (CIBA Core §5), the values of
// backchannel_token_delivery_modes_supported and of a client's
// backchannel_token_delivery_mode.
const (
	DeliveryPoll = "poll"
	DeliveryPing = "ping"
	DeliveryPush = "push"
)

// DefaultPollInterval is the interval a client waits between token
// requests when the backchannel response names none (CIBA Core §7.3).
const DefaultPollInterval = 5

// SlowDownIncrement is how many seconds a slow_down answer adds to the
// polling interval, for that poll and every later one (CIBA Core §11, RFC
// 8628 §3.5).
const SlowDownIncrement = 5

// BackchannelAuthenticationResponse is the successful answer of the
// backchannel authentication endpoint (CIBA Core §7.3).
type BackchannelAuthenticationResponse struct {
	// AuthReqID ("auth_req_id", REQUIRED) identifies the request at the
	// token endpoint. It is a credential of the client: keep it secret.
	AuthReqID string `json:"auth_req_id"`
	// ExpiresIn ("expires_in", REQUIRED) is the lifetime of AuthReqID in
	// seconds.
	ExpiresIn int64 `json:"expires_in"`
	// Interval ("interval", OPTIONAL; poll and ping modes) is the minimum
	// number of seconds between token requests; absent means
	// DefaultPollInterval.
	Interval int64 `json:"interval,omitempty"`
}

// PingNotification is the body a CIBA provider POSTs to a ping-mode
// client's backchannel_client_notification_endpoint, with the client's
// client_notification_token as bearer token (CIBA Core §10.2).
type PingNotification struct {
	// AuthReqID ("auth_req_id", REQUIRED) is the request that completed.
	AuthReqID string `json:"auth_req_id"`
}

// AuthorizationDetailsToolCall is agenthost's RFC 9396 authorization
// details type for one tool call a user is asked to approve (see
// [ToolCallDetail]).
const AuthorizationDetailsToolCall = "agenthost_tool_call"

// ToolCallDetail is an authorization_details entry of type
// [AuthorizationDetailsToolCall] (RFC 9396 §2): one call of one tool with
// exactly these arguments. A token carrying it is good for that call
// alone; the arguments digest is what ties it to the call (the same
// digest a Transaction Token's tctx carries, credentials/txntoken
// ArgsDigest).
//
// Of the RFC 9396 §2.2 common fields only locations is used; a member
// not listed here makes the entry invalid.
type ToolCallDetail struct {
	// Type ("type", REQUIRED) is AuthorizationDetailsToolCall.
	Type string `json:"type"`
	// Locations ("locations", OPTIONAL, RFC 9396 §2.2) are the resources
	// (MCP server URLs) the call goes to.
	Locations []string `json:"locations,omitempty"`
	// Tool ("tool", REQUIRED) is the tool's name as the host knows it
	// ("payments/transfer").
	Tool string `json:"tool"`
	// Agent ("agent", OPTIONAL) names who makes the call, for the person
	// deciding: a hosted agent's name, or the MCP client acting for them.
	Agent string `json:"agent,omitempty"`
	// Arguments ("arguments", OPTIONAL) is the JSON object of the call's
	// arguments; absent means {}.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	// ArgsSHA256 ("args_sha256", OPTIONAL in a request, always present
	// when granted) is the lowercase hex SHA-256 of the canonical
	// arguments (credentials/txntoken ArgsDigest).
	ArgsSHA256 string `json:"args_sha256,omitempty"`
}
