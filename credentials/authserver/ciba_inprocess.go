package authserver

// CIBA for the host itself, in process: the host is a workload of the
// trust domain and a CIBA client of its own server (a poll-mode client
// of [CIBAConfig.Clients]). It asks for a user's approval with
// [Server.RequestApproval] and collects the outcome with
// [Server.RedeemApproval], which run exactly the checks and state changes
// of the backchannel endpoint and of the CIBA grant, minus the client
// authentication the process boundary makes moot. An approval is redeemed
// once, whichever way it is asked for.

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// ApprovalRequest is a backchannel authentication request the host makes
// in process ([Server.RequestApproval]).
type ApprovalRequest struct {
	// ClientID is the client asking: a poll-mode client of
	// CIBAConfig.Clients (the host's own ID).
	ClientID string
	// LoginHint names the user who must decide.
	LoginHint string
	// BindingMessage is shown on both sides (at most MaxBindingMessage
	// printable characters on one line).
	BindingMessage string
	// Scope is the requested scope; empty means "openid".
	Scope string
	// AuthorizationDetails is the RFC 9396 JSON array describing the call.
	AuthorizationDetails json.RawMessage
	// RequestedExpiry, when set, is requested_expiry (whole seconds).
	RequestedExpiry time.Duration
}

// ApprovalTicket is a started request: the auth_req_id to redeem (a
// secret of the client), its approval ID, its lifetime and the polling
// interval.
type ApprovalTicket struct {
	AuthReqID string
	ID        string
	Expires   time.Time
	Interval  time.Duration
}

// RedeemedApproval is an approved request, redeemed: who approved it,
// when, and what exactly they approved.
type RedeemedApproval struct {
	ID                   string
	ClientID             string
	Approver             string
	Decided              time.Time
	Scopes               []string
	AuthorizationDetails json.RawMessage
}

// RequestApproval sends the backchannel authentication request r in
// process: the same checks as PathBackchannel (the client must be a CIBA
// client of this server, in poll mode), the same record in the Store,
// the same OnRequest notice. Errors are *oauth.Error as the endpoint
// would answer them.
func (s *Server) RequestApproval(ctx context.Context, r ApprovalRequest) (*ApprovalTicket, error) {
	if s.ciba == nil {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "CIBA is not enabled")
	}
	cc, ok := s.ciba.clients[r.ClientID]
	c := s.clients.static[r.ClientID]
	if !ok || c == nil || c.public() {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use CIBA")
	}
	if cc.TokenDeliveryMode != oauth.DeliveryPoll {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "an in-process request is for a poll-mode client")
	}
	v := url.Values{"login_hint": {r.LoginHint}, "scope": {"openid"}}
	if r.Scope != "" {
		v.Set("scope", r.Scope)
	}
	if r.BindingMessage != "" {
		v.Set("binding_message", r.BindingMessage)
	}
	if len(r.AuthorizationDetails) > 0 {
		v.Set("authorization_details", string(r.AuthorizationDetails))
	}
	if r.RequestedExpiry > 0 {
		v.Set("requested_expiry", strconv.FormatInt(int64(r.RequestedExpiry/time.Second), 10))
	}
	rec, err := s.validateBackchannel(ctx, oauth.NewForm(v), &authenticated{client: c, Method: "in_process"}, cc)
	if err != nil {
		return nil, err
	}
	resp, err := s.startBackchannel(ctx, rec)
	if err != nil {
		return nil, err
	}
	return &ApprovalTicket{AuthReqID: resp.AuthReqID, ID: ApprovalID(resp.AuthReqID), Expires: rec.Expires,
		Interval: time.Duration(resp.Interval) * time.Second}, nil
}

// RedeemApproval collects the outcome of the request authReqID for
// clientID in process, with the CIBA grant's rules and answers: an
// *oauth.Error with code authorization_pending, slow_down (the interval
// grew), access_denied, expired_token or invalid_grant (unknown, another
// client's, or already redeemed: an approval is redeemed once, here or at
// the token endpoint). An approved request is marked redeemed and
// returned; an approver revoked since deciding gets access_denied.
func (s *Server) RedeemApproval(ctx context.Context, clientID, authReqID string) (*RedeemedApproval, error) {
	if s.ciba == nil {
		return nil, oauth.Errorf(oauth.CodeInvalidGrant, "CIBA is not enabled")
	}
	if _, ok := s.ciba.clients[clientID]; !ok {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use CIBA")
	}
	id, rec, err := s.redeemCIBA(ctx, clientID, authReqID)
	if err != nil {
		return nil, err
	}
	if err := s.checkApprover(ctx, rec); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "backchannel authentication redeemed in process", "client_id", rec.ClientID,
		"sub", rec.Approver, "approval_id", id)
	return &RedeemedApproval{ID: id, ClientID: rec.ClientID, Approver: rec.Approver, Decided: rec.Decided,
		Scopes: append([]string(nil), rec.Scopes...), AuthorizationDetails: rec.AuthorizationDetails}, nil
}

// ApprovalErrorCode is the OAuth error code of an error of
// [Server.RequestApproval] or [Server.RedeemApproval], "" for another
// error.
func ApprovalErrorCode(err error) string {
	var oe *oauth.Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}
