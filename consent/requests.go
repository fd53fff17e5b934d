package consent

// The asking side: a process that needs a user's approval for a call (the
// host, for its agents and its MCP clients) asks through [Requests], which
// keeps one pending request per call so that a retry of the call, or the
// same call after a restart, waits for the same request instead of asking
// the user twice.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// Namespaces of the store [Requests] writes.
const (
	// NamespacePending holds the pending request of each call waiting for
	// one, by call key.
	NamespacePending = "consent.pending"
	// NamespaceUsed holds one record per approval whose call ran.
	NamespaceUsed = "consent.used"
)

// usedTTL is how long a used approval is remembered: far longer than any
// approval can be redeemed (the server's maximum expiry plus its
// retention).
const usedTTL = 7 * 24 * time.Hour

// Errors of [Requests.Collect] and [Requests.Claim].
var (
	// ErrPending: nobody decided yet; poll again after the interval.
	ErrPending = errors.New("consent: approval pending")
	// ErrSlowDown: polled too often; add SlowDownIncrement to the interval.
	ErrSlowDown = errors.New("consent: approval polled too often")
	// ErrDenied: the user said no.
	ErrDenied = errors.New("consent: approval denied")
	// ErrExpired: nobody decided in time.
	ErrExpired = errors.New("consent: approval expired")
	// ErrUsed: the approval's call already ran.
	ErrUsed = errors.New("consent: the approval was already used")
)

// SlowDownIncrement is what a slow_down adds to the polling interval
// (CIBA Core §11).
const SlowDownIncrement = oauth.SlowDownIncrement * time.Second

// Backchannel is the authorization server asked in process.
// *authserver.Server implements it.
type Backchannel interface {
	RequestApproval(ctx context.Context, r authserver.ApprovalRequest) (*authserver.ApprovalTicket, error)
	RedeemApproval(ctx context.Context, clientID, authReqID string) (*authserver.RedeemedApproval, error)
}

var _ Backchannel = (*authserver.Server)(nil)

// RequestsConfig configures [NewRequests].
type RequestsConfig struct {
	// Server is the authorization server that asks the users. Required.
	Server Backchannel
	// ClientID is the CIBA client the requests are made as (a poll-mode
	// client of the server). Required.
	ClientID string
	// Store keeps the pending request of each call and the used
	// approvals, so that a restart forgets neither. Required.
	Store authserver.Store
	// Pages builds the approval page's URL of a request. Required.
	Pages *Pages
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnDecided, when set, is told of each request [Requests.Collect]
	// finds decided: [OutcomeApproved], [OutcomeDenied] or
	// [OutcomeExpired], and how long it waited since it was asked (by
	// Now). It must not block.
	OnDecided func(ctx context.Context, outcome string, waited time.Duration)
}

// Requests asks users to approve calls, one request per call.
type Requests struct {
	as        Backchannel
	clientID  string
	store     authserver.Store
	pages     *Pages
	now       func() time.Time
	onDecided func(ctx context.Context, outcome string, waited time.Duration)
}

// NewRequests checks cfg and returns the asking side.
func NewRequests(cfg RequestsConfig) (*Requests, error) {
	switch {
	case cfg.Server == nil:
		return nil, errors.New("consent: requests: Server is required")
	case cfg.ClientID == "":
		return nil, errors.New("consent: requests: ClientID is required")
	case cfg.Store == nil:
		return nil, errors.New("consent: requests: Store is required")
	case cfg.Pages == nil:
		return nil, errors.New("consent: requests: Pages is required")
	}
	r := &Requests{as: cfg.Server, clientID: cfg.ClientID, store: cfg.Store, pages: cfg.Pages, now: cfg.Now,
		onDecided: cfg.OnDecided}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Call is a call that needs a user's approval.
type Call struct {
	// Subject is the user who must approve.
	Subject string
	// Requester names who makes the call, for the binding message and
	// the call's key: an agent's name, or "mcp:<user>" for a client of a
	// hosted MCP server.
	Requester string
	// ClientID is the OAuth client making the call, if any (an MCP
	// client): two clients of one user ask separately.
	ClientID string
	// Tool is the host's name of the tool ("payments/transfer").
	Tool string
	// Arguments are the call's arguments, a JSON object, and ArgsDigest
	// their txntoken.ArgsDigest.
	Arguments  json.RawMessage
	ArgsDigest string
}

// key names the pending request of c.
func (c Call) key() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{c.Subject, c.Requester, c.ClientID, c.Tool, c.ArgsDigest}, "\x00")))
	return hex.EncodeToString(sum[:])
}

// Pending is a request the authorization server accepted and nobody has
// collected the outcome of yet.
type Pending struct {
	// AuthReqID is the CIBA auth_req_id: a secret of the asking process,
	// never recorded or shown.
	AuthReqID string `json:"auth_req_id"`
	// ID is the approval ID (the SHA-256 of AuthReqID), which names the
	// request in audit records and URLs.
	ID string `json:"id"`
	// BindingMessage is what the user sees on both sides.
	BindingMessage string        `json:"binding_message"`
	URL            string        `json:"url"`
	Expires        time.Time     `json:"expires"`
	Interval       time.Duration `json:"interval"`
	// Asked is when the request was made.
	Asked time.Time `json:"asked,omitzero"`
	// Resumed says the request was made before, for the same call (by an
	// earlier attempt, or before a restart), and is still waiting.
	Resumed bool `json:"-"`
	// Handle is what [Requests.Collect] forgets once the request is
	// decided; opaque.
	Handle string `json:"-"`
}

// Grant is a collected approval: who approved, and the RFC 9396
// authorization_details the server granted.
type Grant struct {
	ID                   string
	Approver             string
	AuthorizationDetails json.RawMessage
}

// Ask returns the pending request of call: the one already waiting for the
// same call (same user, requester, client, tool and arguments), or a new
// backchannel request carrying call as one authorization detail of type
// agenthost_tool_call. Of two first asks at once, one request is kept and
// both get it.
func (r *Requests) Ask(ctx context.Context, call Call) (Pending, error) {
	if call.Subject == "" || call.Tool == "" || call.ArgsDigest == "" {
		return Pending{}, errors.New("consent: a request needs a user, a tool and the arguments' digest")
	}
	key := call.key()
	if p, ok, err := r.waiting(ctx, key); err != nil || ok {
		return p, err
	}
	details, err := json.Marshal([]oauth.ToolCallDetail{{Type: oauth.AuthorizationDetailsToolCall, Tool: call.Tool,
		Agent: call.Requester, Arguments: call.Arguments, ArgsSHA256: call.ArgsDigest}})
	if err != nil {
		return Pending{}, fmt.Errorf("consent: %w", err)
	}
	msg := BindingMessage(call.Requester, call.Tool, call.Arguments)
	t, err := r.as.RequestApproval(ctx, authserver.ApprovalRequest{ClientID: r.clientID, LoginHint: call.Subject,
		BindingMessage: msg, AuthorizationDetails: details})
	if err != nil {
		return Pending{}, err
	}
	p := Pending{AuthReqID: t.AuthReqID, ID: t.ID, BindingMessage: msg, URL: r.pages.URL(t.AuthReqID),
		Expires: t.Expires, Interval: t.Interval, Asked: r.now()}
	v, err := json.Marshal(p)
	if err != nil {
		return Pending{}, fmt.Errorf("consent: %w", err)
	}
	ttl := max(t.Expires.Sub(r.now()), time.Second) + time.Minute
	ver, err := r.store.Put(ctx, NamespacePending, key, v, authserver.Write{IfAbsent: true, TTL: ttl})
	if errors.Is(err, authserver.ErrConflict) {
		// Another attempt of the same call asked first: wait for its
		// request (ours expires unanswered).
		if p, ok, werr := r.waiting(ctx, key); werr != nil || ok {
			return p, werr
		}
	}
	if err != nil {
		return Pending{}, fmt.Errorf("consent: keep the pending request: %w", err)
	}
	p.Handle = handle(key, ver)
	return p, nil
}

// waiting is the stored pending request under key, if one is live and
// not past its expiry.
func (r *Requests) waiting(ctx context.Context, key string) (Pending, bool, error) {
	v, ver, err := r.store.Get(ctx, NamespacePending, key)
	if errors.Is(err, authserver.ErrNotFound) {
		return Pending{}, false, nil
	}
	if err != nil {
		return Pending{}, false, fmt.Errorf("consent: read the pending request: %w", err)
	}
	var p Pending
	if err := json.Unmarshal(v, &p); err != nil || p.AuthReqID == "" {
		// Unreadable: forget it and ask anew rather than wait forever.
		_ = r.store.Delete(ctx, NamespacePending, key, ver)
		return Pending{}, false, nil
	}
	if !r.now().Before(p.Expires) {
		// Expired unanswered: the next attempt asks anew.
		_ = r.store.Delete(ctx, NamespacePending, key, ver)
		return Pending{}, false, nil
	}
	// The page's address as the pages are served now (the origin may
	// have moved since the request was made).
	p.URL = r.pages.PageURL(p.ID)
	p.Resumed, p.Handle = true, handle(key, ver)
	return p, true, nil
}

func handle(key string, version int64) string { return key + "@" + strconv.FormatInt(version, 10) }

// Collect polls p once: the granted approval, or an error wrapping
// ErrPending, ErrSlowDown, ErrDenied or ErrExpired, or another error. Once
// decided (granted, denied, expired or refused), the request is no longer
// the call's pending one: the next attempt of the call asks anew. A grant
// is collected once; check it names the call, then [Requests.Claim] it.
func (r *Requests) Collect(ctx context.Context, p Pending) (Grant, error) {
	res, err := r.as.RedeemApproval(ctx, r.clientID, p.AuthReqID)
	code := authserver.ApprovalErrorCode(err)
	switch code {
	case oauth.CodeAuthorizationPending:
		return Grant{}, ErrPending
	case oauth.CodeSlowDown:
		return Grant{}, ErrSlowDown
	}
	if code != "" || err == nil {
		// Decided one way or the other.
		r.forget(ctx, p.Handle)
		r.decided(ctx, p, code)
	}
	switch code {
	case "":
		if err != nil {
			return Grant{}, err
		}
	case oauth.CodeAccessDenied:
		return Grant{}, fmt.Errorf("%w: %v", ErrDenied, err)
	case oauth.CodeExpiredToken:
		return Grant{}, ErrExpired
	default:
		return Grant{}, err
	}
	return Grant{ID: res.ID, Approver: res.Approver, AuthorizationDetails: res.AuthorizationDetails}, nil
}

// forget drops the pending record named by h, if it is still that one.
func (r *Requests) forget(ctx context.Context, h string) {
	key, ver, ok := strings.Cut(h, "@")
	if !ok {
		return
	}
	v, err := strconv.ParseInt(ver, 10, 64)
	if err != nil {
		return
	}
	_ = r.store.Delete(context.WithoutCancel(ctx), NamespacePending, key, v)
}

// Claim durably marks the approval id as used for a call (note says
// which, for the record), before the call runs: ErrUsed if it was marked
// before, so that no approval runs a call twice, across retries and
// restarts.
func (r *Requests) Claim(ctx context.Context, id string, note map[string]any) error {
	rec := map[string]any{"time": r.now().UTC()}
	for k, v := range note {
		rec[k] = v
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	_, err = r.store.Put(ctx, NamespaceUsed, id, v, authserver.Write{IfAbsent: true, TTL: usedTTL})
	if errors.Is(err, authserver.ErrConflict) {
		return ErrUsed
	}
	if err != nil {
		return fmt.Errorf("consent: claim approval %s: %w", id, err)
	}
	return nil
}

// MatchesCall checks that granted authorization_details are exactly one
// tool-call detail for tool with the arguments' digest.
func MatchesCall(granted json.RawMessage, tool, digest string) error {
	var details []oauth.ToolCallDetail
	if err := json.Unmarshal(granted, &details); err != nil {
		return errors.New("the granted authorization_details are not tool-call details")
	}
	if len(details) != 1 {
		return fmt.Errorf("%d authorization details were granted, not 1", len(details))
	}
	d := details[0]
	switch {
	case d.Type != oauth.AuthorizationDetailsToolCall:
		return fmt.Errorf("type %q", d.Type)
	case d.Tool != tool:
		return fmt.Errorf("it is for tool %q", d.Tool)
	case d.ArgsSHA256 != digest:
		return errors.New("it is for other arguments")
	}
	return nil
}

// BindingMessage is the short text the user sees on both sides:
// "agenthost: payments/transfer 500.00 to bob" when the arguments have an
// amount and a payee, else the requester and the tool. It stays within
// the server's limit of printable characters on one line.
func BindingMessage(requester, tool string, args json.RawMessage) string {
	var in map[string]json.RawMessage
	_ = json.Unmarshal(args, &in)
	msg := "agenthost: " + requester + " calls " + tool
	var amount json.Number
	var to string
	if json.Unmarshal(in["amount"], &amount) == nil && amount != "" {
		msg = "agenthost: " + tool + " " + string(amount)
		if json.Unmarshal(in["to"], &to) == nil && to != "" {
			msg += " to " + to
		}
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, msg)
	if r := []rune(msg); len(r) > 100 {
		msg = string(r[:99]) + "…"
	}
	return msg
}
