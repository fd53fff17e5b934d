package host

// Human approval of tool calls (DESIGN §4.5): the host is a CIBA client of
// its own authorization server. A call that policy says needs approval
// becomes a backchannel request for the task's user, asked in process
// (authserver.Server.RequestApproval: the checks and record of the
// backchannel endpoint, minus client authentication, since the host is the
// server's own process), surfaced on the task's event stream with the
// approval page's URL, and collected with authserver.Server.RedeemApproval,
// which applies the CIBA grant's rules (an approval is redeemed once). The
// mediator then checks the granted authorization_details against the call
// and claims the approval in the store before the call runs, so no
// approval runs a call twice. consent.Requests keeps the pending request
// of each call, so the same call made again (after a restart, or a
// retry) waits for the same request.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/store/asstore"
)

// cibaInterval and cibaExpiry, when set, replace the authorization
// server's CIBA defaults (tests poll faster and expire sooner).
var cibaInterval, cibaExpiry time.Duration

// cibaConfig is the authorization server's CIBA configuration: on when
// users can sign in to decide, with the host as its only client, polling,
// with the server's default expiry and interval.
func (h *Host) cibaConfig() *authserver.CIBAConfig {
	if len(h.cfg.Auth.Users) == 0 {
		return nil
	}
	return &authserver.CIBAConfig{Clients: []authserver.CIBAClient{{ClientID: h.hostID.String()}},
		Interval: cibaInterval, Expiry: cibaExpiry}
}

// mountConsent serves the approval pages on the issuer's origin, under
// consent.DefaultPath, when CIBA is on.
func (h *Host) mountConsent(mux *http.ServeMux) error {
	if h.cibaConfig() == nil {
		return nil
	}
	p, err := consent.New(consent.Config{Server: h.as, Now: h.now, Logger: h.log.With("component", "consent")})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.consent = p
	h.requests, err = consent.NewRequests(consent.RequestsConfig{Server: h.as, ClientID: h.hostID.String(),
		Store: asstore.New(h.store), Pages: p, Now: h.now, OnDecided: h.telemetry.ApprovalDecided})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	mux.Handle(consent.DefaultPath, p.Handler())
	return nil
}

// hostApprovals is the mediator's Approvals: the host asking its own
// authorization server, through consent.Requests.
type hostApprovals struct{ h *Host }

var _ mediator.Approvals = hostApprovals{}

// Request implements mediator.Approvals.
func (a hostApprovals) Request(ctx context.Context, c mediator.Caller, call mediator.ApprovalCall) (mediator.PendingApproval, error) {
	if a.h.requests == nil {
		return mediator.PendingApproval{}, errors.New("approvals are off: the authorization server has no users to approve")
	}
	return a.h.requests.Ask(ctx, consent.Call{Subject: c.Subject, Requester: c.Agent, ClientID: c.ClientID,
		Tool: call.Tool, Arguments: call.Arguments, ArgsDigest: call.ArgsDigest})
}

// Redeem implements mediator.Approvals.
func (a hostApprovals) Redeem(ctx context.Context, p mediator.PendingApproval) (mediator.GrantedApproval, error) {
	if a.h.requests == nil {
		return mediator.GrantedApproval{}, errors.New("approvals are off")
	}
	return a.h.requests.Collect(ctx, p)
}

// Claim implements mediator.Approvals.
func (a hostApprovals) Claim(ctx context.Context, id string, c mediator.Caller) error {
	if a.h.requests == nil {
		return errors.New("approvals are off")
	}
	return a.h.requests.Claim(ctx, id, map[string]any{"task": c.TaskID, "txn": c.Txn, "agent": c.Agent})
}

// approvalSinks route approval requests to the stream of the task that
// began their transaction (what `agenthost run` reads), by txn.
type approvalSinks struct {
	mu sync.Mutex
	m  map[string]func(localapi.TaskEvent) error
}

func (s *approvalSinks) add(txn string, emit func(localapi.TaskEvent) error) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]func(localapi.TaskEvent) error{}
	}
	s.m[txn] = emit
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.m, txn)
	}
}

// onApproval surfaces a request on its transaction's stream: an event of
// type "approval" with the binding message and the page's URL.
func (h *Host) onApproval(ctx context.Context, c mediator.Caller, p mediator.PendingApproval) {
	h.approvalSinks.mu.Lock()
	emit := h.approvalSinks.m[c.Txn]
	h.approvalSinks.mu.Unlock()
	h.log.InfoContext(ctx, "approval needed", "task", c.TaskID, "user", c.Subject, "approval_id", p.ID, "url", p.URL)
	if emit != nil {
		_ = emit(localapi.TaskEvent{Type: "approval", Text: p.BindingMessage, URL: p.URL, TaskID: c.TaskID, Txn: c.Txn})
	}
}

// syncEmit makes emit safe to call from several goroutines: the agent's
// events and approval requests reach one stream.
func syncEmit(emit func(localapi.TaskEvent) error) func(localapi.TaskEvent) error {
	var mu sync.Mutex
	return func(ev localapi.TaskEvent) error {
		mu.Lock()
		defer mu.Unlock()
		return emit(ev)
	}
}

var _ localapi.ApprovalsBackend = (*Host)(nil)

// PendingApprovals implements localapi.ApprovalsBackend: the requests
// waiting for a user's decision, the user named by the operator (subject)
// or by their own access token for the host's task resource.
func (h *Host) PendingApprovals(ctx context.Context, subject, accessToken string) ([]localapi.PendingApproval, error) {
	switch {
	case subject != "" && accessToken != "":
		return nil, errors.New("host: name the user by subject or by access token, not both")
	case accessToken != "":
		// The same checks as a task started on the token.
		c, err := h.taskCaller(ctx, "", accessToken)
		if err != nil {
			return nil, err
		}
		subject = c.Subject
	case subject == "":
		return nil, errors.New("host: whose approvals? sign in, or name a user with --for")
	}
	if h.as == nil {
		return nil, errors.New("host: the authorization server is not running")
	}
	list, err := h.as.PendingApprovals(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]localapi.PendingApproval, 0, len(list))
	for _, a := range list {
		pa := localapi.PendingApproval{ID: a.ID, User: a.User, Client: a.ClientID, BindingMessage: a.BindingMessage,
			Created: a.Created, Expires: a.Expires}
		if h.consent != nil {
			pa.URL = h.consent.PageURL(a.ID)
		}
		out = append(out, pa)
	}
	return out, nil
}
