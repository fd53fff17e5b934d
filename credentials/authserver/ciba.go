package authserver

// OpenID Client-Initiated Backchannel Authentication (CIBA Core 1.0,
// https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html;
// SPECS.md §7) with RFC 9396 authorization details: the backchannel
// authentication endpoint and the requests it stores. The token grant is in
// grant_ciba.go, the approval side (the user's decision) in
// ciba_approval.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// PathBackchannel is the backchannel authentication endpoint (CIBA Core
// §7), relative to the issuer.
const PathBackchannel = "/oauth2/bc-authorize"

// CIBA defaults and limits ([CIBAConfig]).
const (
	// DefaultCIBAExpiry is the lifetime of a request that names no
	// requested_expiry: long enough for a person to notice and decide.
	DefaultCIBAExpiry = 10 * time.Minute
	// DefaultCIBAMaxExpiry caps requested_expiry.
	DefaultCIBAMaxExpiry = time.Hour
	// DefaultCIBAInterval is the polling interval the server asks for
	// (CIBA Core §7.3's default).
	DefaultCIBAInterval = oauth.DefaultPollInterval * time.Second
	// DefaultMaxPendingApprovals caps the requests waiting for one user's
	// decision, so that a client cannot bury a user in requests.
	DefaultMaxPendingApprovals = 50
	// MaxBindingMessage is the longest binding_message, in characters.
	MaxBindingMessage = 128
	// maxNotificationToken caps client_notification_token (CIBA Core
	// §7.1: at most 1024 characters).
	maxNotificationToken = 1024
	// maxLoginHintBytes caps login_hint before any lookup.
	maxLoginHintBytes = 256
	// maxToolName caps the tool member of a tool-call detail.
	maxToolName = 256
	// cibaRetention is how long a request is kept after it expires, so
	// that a late poll is answered expired_token and a replayed
	// auth_req_id invalid_grant with a reason, rather than not found.
	cibaRetention = 10 * time.Minute
	// idTokenHintMaxAge is how long after its expiry an ID token of this
	// server still names its user as id_token_hint: it is a hint, not a
	// credential, and the user still signs in and decides.
	idTokenHintMaxAge = 24 * time.Hour
)

// Namespaces of the backchannel requests: one record per request, keyed
// by its approval ID, and one index per user of the requests waiting for
// that user.
const (
	nsCIBA      = "as.ciba"
	nsCIBAUsers = "as.ciba.user"
)

// CIBAConfig turns on CIBA ([Config.CIBA]). The server then serves
// PathBackchannel and the grant urn:openid:params:grant-type:ciba, in
// poll and ping mode (push mode is not offered), and keeps every request
// in the Store, so a restart loses none. A request is decided by the
// hinted user, signed in at this server, through the approval API
// ([Server.DecideApproval]) that package consent puts a page on.
type CIBAConfig struct {
	// Clients are the clients that may send backchannel requests, with
	// their delivery mode (the client metadata of CIBA Core §4). Each
	// must be a confidential agent or static client of this server.
	Clients []CIBAClient
	// AuthorizationDetailsTypes are the RFC 9396 types a request may
	// carry (authorization_details_types_supported); any other is
	// invalid_authorization_details. Empty means just
	// oauth.AuthorizationDetailsToolCall, which the server checks and
	// completes (see [oauth.ToolCallDetail]).
	AuthorizationDetailsTypes []string
	// Expiry is the lifetime of a request without requested_expiry; zero
	// means DefaultCIBAExpiry. MaxExpiry caps requested_expiry; zero
	// means DefaultCIBAMaxExpiry.
	Expiry    time.Duration
	MaxExpiry time.Duration
	// Interval is the minimum time between a client's polls, in whole
	// seconds; zero means DefaultCIBAInterval. A faster poll is answered
	// slow_down and adds five seconds to the request's interval.
	Interval time.Duration
	// MaxPendingPerUser caps the requests waiting for one user; a request
	// beyond it is access_denied. Zero means DefaultMaxPendingApprovals.
	MaxPendingPerUser int
	// OnRequest, when set, is told of every request the endpoint accepts,
	// after it is stored and before the client is answered, so the host
	// can surface it to the user (console, CLI). It must not block.
	OnRequest func(ctx context.Context, a Approval)
}

// CIBAClient is a client allowed to use CIBA and how it receives the
// result.
type CIBAClient struct {
	// ClientID is the client's ID (an agent's SPIFFE ID).
	ClientID string
	// TokenDeliveryMode is oauth.DeliveryPoll (the default when empty)
	// or oauth.DeliveryPing.
	TokenDeliveryMode string
	// NotificationEndpoint is the client's
	// backchannel_client_notification_endpoint, required in ping mode:
	// an https URL (http is accepted with Config.AllowPrivateFetch). The
	// server POSTs {"auth_req_id": …} to it with the request's
	// client_notification_token as bearer token once the user decides,
	// through a bounded fetch: no redirects, a size cap, a timeout, and
	// no private addresses unless Config.AllowPrivateFetch.
	NotificationEndpoint string
}

// cibaSettings are the checked CIBAConfig.
type cibaSettings struct {
	clients    map[string]CIBAClient
	types      []string
	expiry     time.Duration
	maxExpiry  time.Duration
	interval   time.Duration
	maxPending int
	onRequest  func(context.Context, Approval)
	notify     *fetch.Fetcher
}

// initCIBA checks Config.CIBA. It runs once the client registry exists.
func (s *Server) initCIBA() error {
	cfg := s.cfg.CIBA
	if cfg == nil {
		return nil
	}
	if s.cfg.Users == nil {
		return errors.New("authserver: CIBA needs Users: a person must sign in to decide")
	}
	c := &cibaSettings{
		clients:    make(map[string]CIBAClient, len(cfg.Clients)),
		types:      slices.Clone(cfg.AuthorizationDetailsTypes),
		expiry:     cfg.Expiry,
		maxExpiry:  cfg.MaxExpiry,
		interval:   cfg.Interval,
		maxPending: cfg.MaxPendingPerUser,
		onRequest:  cfg.OnRequest,
	}
	if len(c.types) == 0 {
		c.types = []string{oauth.AuthorizationDetailsToolCall}
	}
	for _, t := range c.types {
		if t == "" || !printableText(t, 128) {
			return fmt.Errorf("authserver: CIBA authorization details type %q is not a valid name", t)
		}
	}
	if c.maxExpiry <= 0 {
		c.maxExpiry = DefaultCIBAMaxExpiry
	}
	if c.expiry <= 0 {
		c.expiry = min(DefaultCIBAExpiry, c.maxExpiry)
	}
	if c.expiry > c.maxExpiry || c.expiry < time.Second {
		return fmt.Errorf("authserver: CIBA expiry %v is not between a second and the maximum %v", c.expiry, c.maxExpiry)
	}
	if c.interval <= 0 {
		c.interval = DefaultCIBAInterval
	}
	if c.interval%time.Second != 0 {
		return fmt.Errorf("authserver: CIBA interval %v is not a whole number of seconds", c.interval)
	}
	if c.maxPending <= 0 {
		c.maxPending = DefaultMaxPendingApprovals
	}
	for _, cc := range cfg.Clients {
		known, ok := s.clients.static[cc.ClientID]
		if !ok {
			return fmt.Errorf("authserver: CIBA client %q is not an agent or static client", cc.ClientID)
		}
		if known.public() {
			return fmt.Errorf("authserver: CIBA client %q is public; CIBA is for confidential clients", cc.ClientID)
		}
		if _, dup := c.clients[cc.ClientID]; dup {
			return fmt.Errorf("authserver: CIBA client %q is listed twice", cc.ClientID)
		}
		switch cc.TokenDeliveryMode {
		case "":
			cc.TokenDeliveryMode = oauth.DeliveryPoll
		case oauth.DeliveryPoll:
		case oauth.DeliveryPing:
		default:
			return fmt.Errorf("authserver: CIBA client %q: delivery mode %q is not poll or ping", cc.ClientID, cc.TokenDeliveryMode)
		}
		if cc.TokenDeliveryMode == oauth.DeliveryPing {
			if err := s.checkNotificationEndpoint(cc.NotificationEndpoint); err != nil {
				return fmt.Errorf("authserver: CIBA client %q: notification endpoint: %w", cc.ClientID, err)
			}
		} else if cc.NotificationEndpoint != "" {
			return fmt.Errorf("authserver: CIBA client %q: a notification endpoint is for ping mode", cc.ClientID)
		}
		c.clients[cc.ClientID] = cc
	}
	c.notify = fetch.New(fetch.Config{Client: s.cfg.HTTPClient, AllowPrivate: s.cfg.AllowPrivateFetch,
		AllowHTTP: s.cfg.AllowPrivateFetch, MaxBytes: 4 << 10, Logger: s.log})
	s.ciba = c
	return nil
}

// checkNotificationEndpoint requires an absolute https URL without
// userinfo or fragment (CIBA Core §4); http only for development.
func (s *Server) checkNotificationEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("ping mode needs one")
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return errors.New("is not an absolute URL")
	case u.User != nil || u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("has userinfo or a fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && s.cfg.AllowPrivateFetch:
	default:
		return errors.New("must be https")
	}
	return nil
}

// cibaAllowed reports whether client c may use the CIBA grant.
func (s *Server) cibaAllowed(c *client) bool {
	if s.ciba == nil {
		return false
	}
	_, ok := s.ciba.clients[c.ID]
	return ok
}

// Request states of a cibaRecord. An approval is used once: issued is
// final.
const (
	cibaPending  = "pending"
	cibaApproved = "approved"
	cibaDenied   = "denied"
	cibaIssued   = "issued"
)

// cibaRecord is a backchannel authentication request, stored in nsCIBA
// under its approval ID (the SHA-256 of its auth_req_id, so the store
// never holds a usable auth_req_id, except in ping mode where the
// notification must carry it).
type cibaRecord struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name,omitempty"`
	// User is the hinted user, the only one who may decide.
	User   string   `json:"user"`
	Scopes []string `json:"scopes"`
	// Audience is the issued token's aud: the requested resource, or
	// this server.
	Audience []string `json:"aud"`
	// Resources records that the request named its resource.
	Resources            bool            `json:"resources,omitempty"`
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
	BindingMessage       string          `json:"binding_message,omitempty"`

	// Mode is the delivery mode; ping mode keeps what the notification
	// needs.
	Mode                 string `json:"mode"`
	AuthReqID            string `json:"auth_req_id,omitempty"`
	NotificationEndpoint string `json:"notification_endpoint,omitempty"`
	NotificationToken    string `json:"notification_token,omitempty"`

	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Interval is the current minimum time between polls, in seconds;
	// LastPoll is when the client last polled.
	Interval int64     `json:"interval"`
	LastPoll time.Time `json:"last_poll,omitzero"`

	Status   string    `json:"status"`
	Approver string    `json:"approver,omitempty"`
	Decided  time.Time `json:"decided,omitzero"`
	Issued   time.Time `json:"issued,omitzero"`
}

// ttl is how long the record is kept from now: until it expires, plus
// cibaRetention.
func (rec *cibaRecord) ttl(now time.Time) time.Duration {
	return max(rec.Expires.Add(cibaRetention).Sub(now), time.Second)
}

// handleBackchannel serves the backchannel authentication endpoint (CIBA
// Core §7.1): an authenticated client asks for a user's approval and gets
// an auth_req_id to collect the result with (§7.3), or an error (§13).
func (s *Server) handleBackchannel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidRequest, "the method must be POST").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	resp, err := s.backchannel(r)
	if err != nil {
		s.writeTokenError(w, r, err)
		return
	}
	oauth.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) backchannel(r *http.Request) (*oauth.BackchannelAuthenticationResponse, error) {
	ctx := r.Context()
	f, err := oauth.ParseForm(r)
	if err != nil {
		return nil, err
	}
	// Client authentication as at the token endpoint (CIBA Core §7.1).
	c, err := s.authenticateClient(ctx, r, f)
	if err != nil {
		return nil, err
	}
	cc, ok := s.ciba.clients[c.ID]
	if !ok || c.public() {
		return nil, oauth.Errorf(oauth.CodeUnauthorizedClient, "the client may not use CIBA")
	}
	rec, err := s.validateBackchannel(ctx, f, c, cc)
	if err != nil {
		return nil, err
	}
	return s.startBackchannel(ctx, rec)
}

// startBackchannel stores the checked request rec under a new
// auth_req_id, tells Config.CIBA.OnRequest, and returns the answer.
func (s *Server) startBackchannel(ctx context.Context, rec *cibaRecord) (*oauth.BackchannelAuthenticationResponse, error) {
	authReqID, err := randomToken(32)
	if err != nil {
		return nil, err
	}
	id := ApprovalID(authReqID)
	if rec.Mode == oauth.DeliveryPing {
		rec.AuthReqID = authReqID
	}
	if err := s.addPending(ctx, rec.User, id, rec.Expires); err != nil {
		return nil, err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("authserver: encode backchannel request: %w", err)
	}
	if _, err := s.store.Put(ctx, nsCIBA, id, data, Write{IfAbsent: true, TTL: rec.ttl(rec.Created)}); err != nil {
		s.removePending(ctx, rec.User, id)
		return nil, fmt.Errorf("authserver: save backchannel request: %w", err)
	}
	s.log.InfoContext(ctx, "backchannel authentication requested", "client_id", rec.ClientID, "user", rec.User,
		"approval_id", id, "mode", rec.Mode, "expires", rec.Expires)
	if s.ciba.onRequest != nil {
		s.ciba.onRequest(ctx, rec.approval(id, rec.Created))
	}
	return &oauth.BackchannelAuthenticationResponse{
		AuthReqID: authReqID,
		ExpiresIn: int64(rec.Expires.Sub(rec.Created) / time.Second),
		Interval:  rec.Interval,
	}, nil
}

// validateBackchannel checks a backchannel request's parameters (CIBA
// Core §7.1, §7.1.1, §13; RFC 9396 §2, §3; RFC 8707 §2) and returns the
// request to store.
func (s *Server) validateBackchannel(ctx context.Context, f oauth.Form, c *authenticated, cc CIBAClient) (*cibaRecord, error) {
	if f.Has("request") || f.Has("request_uri") {
		// No backchannel_authentication_request_signing_alg_values_supported.
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "signed authentication requests are not supported")
	}
	if f.Has("user_code") {
		// backchannel_user_code_parameter_supported is false.
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "user_code is not supported")
	}
	now := s.now().UTC()
	rec := &cibaRecord{ClientID: c.ID, ClientName: c.Name, Mode: cc.TokenDeliveryMode, Created: now,
		Interval: int64(s.ciba.interval / time.Second), Status: cibaPending}

	// Exactly one hint (§7.1). Which user is resolved last, after every
	// other parameter is known good, so an unknown user is the only
	// thing unknown_user_id ever says.
	var hints [3]string
	for i, name := range []string{"login_hint_token", "id_token_hint", "login_hint"} {
		v, err := f.Get(name)
		if err != nil {
			return nil, err
		}
		hints[i] = v
	}
	n := 0
	for _, h := range hints {
		if h != "" {
			n++
		}
	}
	if n != 1 {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "exactly one of login_hint_token, id_token_hint and login_hint is required")
	}
	if hints[0] != "" {
		return nil, oauth.Errorf(oauth.CodeInvalidRequest, "login_hint_token is not supported; send login_hint or id_token_hint")
	}

	var err error
	if rec.Scopes, rec.Audience, err = s.cibaScope(f, c.client); err != nil {
		return nil, err
	}
	rec.Resources = f.Has("resource")
	if rec.AuthorizationDetails, err = s.cibaDetails(f); err != nil {
		return nil, err
	}
	if rec.BindingMessage, err = f.Get("binding_message"); err != nil {
		return nil, err
	}
	if !validBindingMessage(rec.BindingMessage) {
		return nil, oauth.Errorf(oauth.CodeInvalidBindingMessage,
			"binding_message must be at most %d printable characters on one line", MaxBindingMessage)
	}
	expiry, err := s.requestedExpiry(f)
	if err != nil {
		return nil, err
	}
	rec.Expires = now.Add(expiry)
	if rec.Mode == oauth.DeliveryPing {
		token, err := f.Get("client_notification_token")
		if err != nil {
			return nil, err
		}
		if token == "" {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest, "client_notification_token is required in ping mode")
		}
		if len(token) > maxNotificationToken || !validToken68(token) {
			return nil, oauth.Errorf(oauth.CodeInvalidRequest,
				"client_notification_token must be a bearer token (RFC 6750 §2.1) of at most %d characters", maxNotificationToken)
		}
		rec.NotificationToken, rec.NotificationEndpoint = token, cc.NotificationEndpoint
	}

	if hints[1] != "" {
		rec.User, err = s.userFromIDTokenHint(ctx, hints[1], c.ID)
	} else {
		rec.User, err = s.userFromLoginHint(hints[2])
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// cibaScope checks scope, which CIBA requires to include openid (§7.1),
// and resource (RFC 8707), and returns the token's scopes and audience.
// The scopes besides openid are limited as everywhere else: the client's
// own and the resource's.
//
// A request that asks for nothing but authorization_details still sends
// scope=openid. RFC 9396 §3 lets authorization_details stand in for scope
// in OAuth, but a CIBA request is an OpenID request and scope is REQUIRED
// there; openid costs nothing (it adds the ID token that names the
// approving user) and keeps standard CIBA clients working.
func (s *Server) cibaScope(f oauth.Form, c *client) (scopes, aud []string, err error) {
	raw, err := f.Get("scope")
	if err != nil {
		return nil, nil, err
	}
	if raw == "" {
		return nil, nil, oauth.Errorf(oauth.CodeInvalidRequest, "scope is required and must include openid")
	}
	requested, err := oauth.ParseScope(raw)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(requested, "openid") {
		return nil, nil, oauth.Errorf(oauth.CodeInvalidScope, "scope must include openid")
	}
	others := slices.DeleteFunc(slices.Clone(requested), func(sc string) bool { return sc == "openid" })
	resources, err := f.All("resource")
	if err != nil {
		return nil, nil, oauth.Errorf(oauth.CodeInvalidTarget, "resource has an empty value")
	}
	if len(others) > 0 {
		scopes, aud, err = s.targetFor(resources, oauth.FormatScope(others), c, nil)
	} else {
		// An empty limit: no scopes by default, only the audience.
		_, aud, err = s.targetFor(resources, "", c, []string{})
	}
	if err != nil {
		return nil, nil, err
	}
	return append([]string{"openid"}, scopes...), aud, nil
}

// cibaDetails reads authorization_details (RFC 9396 §2): a JSON array of
// objects of the configured types, with no duplicate member names
// anywhere. Entries of type oauth.AuthorizationDetailsToolCall are checked
// and completed with their args_sha256 (see toolCallDetail). The result is
// what the user is shown and what the token carries.
func (s *Server) cibaDetails(f oauth.Form) (json.RawMessage, error) {
	raw, err := f.Get("authorization_details")
	if err != nil || raw == "" {
		return nil, err
	}
	// A JSON reader that keeps the last of two equal names would show the
	// user one value and hand a resource server, reading the same text
	// another, the other one: refuse them, and anything else two readers
	// could disagree about.
	if _, err := txntoken.ArgsDigest(json.RawMessage(raw)); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details is not unambiguous JSON (duplicate member names?)")
	}
	if _, err := parseAuthorizationDetails(raw); err != nil {
		return nil, err
	}
	var details []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &details); err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details must be a JSON array of objects")
	}
	for i, d := range details {
		var typ string
		_ = json.Unmarshal(d["type"], &typ)
		if !slices.Contains(s.ciba.types, typ) {
			return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details[%d] has type %q, which this server does not support",
				i, truncate(typ, 64))
		}
		if typ == oauth.AuthorizationDetailsToolCall {
			if details[i], err = toolCallDetail(i, d); err != nil {
				return nil, err
			}
		}
	}
	out, err := json.Marshal(details)
	if err != nil {
		return nil, oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details could not be encoded")
	}
	return out, nil
}

// toolCallMembers are the members an oauth.ToolCallDetail may have.
var toolCallMembers = []string{"type", "locations", "tool", "agent", "arguments", "args_sha256"}

// toolCallDetail checks the i-th detail d, of type
// oauth.AuthorizationDetailsToolCall: only known members; a tool name of
// printable characters; locations absolute URIs; arguments a JSON object
// (absent means {}); args_sha256, when sent, the digest of the arguments
// (credentials/txntoken ArgsDigest), which is added when it is not, so the
// granted detail always binds the exact arguments.
func toolCallDetail(i int, d map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	bad := func(format string, args ...any) error {
		return oauth.Errorf(oauth.CodeInvalidAuthDetails, "authorization_details[%d]: "+format, append([]any{i}, args...)...)
	}
	for name := range d {
		if !slices.Contains(toolCallMembers, name) {
			return nil, bad("member %q is not part of type %s", truncate(name, 40), oauth.AuthorizationDetailsToolCall)
		}
	}
	var tool string
	if err := json.Unmarshal(d["tool"], &tool); err != nil || tool == "" || !printableText(tool, maxToolName) {
		return nil, bad("tool must be a name of 1 to %d printable characters", maxToolName)
	}
	if raw, ok := d["agent"]; ok {
		var agent string
		if err := json.Unmarshal(raw, &agent); err != nil || agent == "" || !printableText(agent, maxToolName) {
			return nil, bad("agent must be a name of 1 to %d printable characters", maxToolName)
		}
	}
	if raw, ok := d["locations"]; ok {
		var locations []string
		if err := json.Unmarshal(raw, &locations); err != nil || len(locations) == 0 {
			return nil, bad("locations must be a non-empty array of URIs")
		}
		for _, l := range locations {
			if checkResourceURI(l) != nil {
				return nil, bad("location %q is not an absolute URI", truncate(l, 80))
			}
		}
	}
	args, ok := d["arguments"]
	if !ok {
		args = json.RawMessage("{}")
	}
	if trimmed := strings.TrimLeft(string(args), " \t\r\n"); !strings.HasPrefix(trimmed, "{") {
		return nil, bad("arguments must be a JSON object")
	}
	digest, err := txntoken.ArgsDigest(args)
	if err != nil {
		return nil, bad("arguments are not valid JSON")
	}
	if raw, ok := d["args_sha256"]; ok {
		var sent string
		if err := json.Unmarshal(raw, &sent); err != nil || sent != digest {
			return nil, bad("args_sha256 is not the digest of the arguments")
		}
	}
	d["arguments"] = args
	d["args_sha256"], _ = json.Marshal(digest)
	return d, nil
}

// validBindingMessage reports whether m is at most MaxBindingMessage
// printable characters (letters, marks, numbers, punctuation, symbols and
// spaces; no control, format or line-breaking characters), which a person
// can compare on two screens (CIBA Core §7.1). Empty is valid: the
// parameter is OPTIONAL.
func validBindingMessage(m string) bool {
	return printableText(m, MaxBindingMessage)
}

// printableText reports whether s is valid UTF-8 of at most n characters,
// each graphic (unicode.IsGraphic: no controls, no format characters such
// as bidirectional overrides, no line or paragraph separators).
func printableText(s string, n int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > n {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// requestedExpiry reads requested_expiry (CIBA Core §7.1: a positive
// integer of seconds); the server caps it at its maximum, which the
// response's expires_in states.
func (s *Server) requestedExpiry(f oauth.Form) (time.Duration, error) {
	raw, err := f.Get("requested_expiry")
	if err != nil || raw == "" {
		return s.ciba.expiry, err
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n <= 0 || raw[0] == '+' {
		return 0, oauth.Errorf(oauth.CodeInvalidRequest, "requested_expiry must be a positive integer of seconds")
	}
	if n > int64(s.ciba.maxExpiry/time.Second) {
		return s.ciba.maxExpiry, nil
	}
	return time.Duration(n) * time.Second, nil
}

// userFromLoginHint resolves login_hint: a user name, else an email
// address held by exactly one user.
func (s *Server) userFromLoginHint(hint string) (string, error) {
	if len(hint) <= maxLoginHintBytes {
		if u, ok := s.cfg.Users.Lookup(hint); ok {
			return u.Name, nil
		}
		if strings.Contains(hint, "@") {
			if u, ok := s.cfg.Users.LookupEmail(hint); ok {
				return u.Name, nil
			}
		}
	}
	return "", oauth.Errorf(oauth.CodeUnknownUserID, "login_hint names no user of this server")
}

// userFromIDTokenHint resolves id_token_hint: an ID token this server
// issued to the client (aud), expired at most idTokenHintMaxAge ago; its
// sub must still be a user.
func (s *Server) userFromIDTokenHint(ctx context.Context, token, clientID string) (string, error) {
	t, err := jose.Verify(ctx, token, jose.VerifyOptions{
		Types:          []jose.Typ{jose.TypJWT},
		Algorithms:     []jose.Alg{jose.ES256},
		Keys:           s.keys.publicKey,
		RequireKID:     true,
		Issuer:         s.issuer,
		Audience:       clientID,
		RequireSubject: true,
		Now:            s.now,
		Leeway:         idTokenHintMaxAge,
	})
	if err != nil {
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "id_token_hint is not an ID token of this server for this client: %s", joseReason(err))
	}
	if iat := t.IssuedAt; !iat.IsZero() && iat.After(s.now().Add(assertionLeeway)) {
		return "", oauth.Errorf(oauth.CodeInvalidRequest, "id_token_hint is issued in the future")
	}
	u, ok := s.cfg.Users.Lookup(t.Subject)
	if !ok {
		return "", oauth.Errorf(oauth.CodeUnknownUserID, "id_token_hint names no user of this server")
	}
	return u.Name, nil
}

// cibaUserIndex lists the requests waiting for one user, for
// [Server.PendingApprovals] and the per-user cap.
type cibaUserIndex struct {
	Entries []cibaIndexEntry `json:"entries"`
}

type cibaIndexEntry struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// errTooManyPending refuses a request for a user who already has the
// maximum waiting.
var errTooManyPending = oauth.Errorf(oauth.CodeAccessDenied,
	"too many requests are waiting for this user's decision").WithStatus(http.StatusForbidden)

// addPending adds request id to user's index, dropping expired entries;
// it fails with errTooManyPending when the user has the maximum waiting.
func (s *Server) addPending(ctx context.Context, user, id string, expires time.Time) error {
	return s.updateIndex(ctx, user, func(idx *cibaUserIndex) error {
		if len(idx.Entries) >= s.ciba.maxPending {
			return errTooManyPending
		}
		idx.Entries = append(idx.Entries, cibaIndexEntry{ID: id, Expires: expires})
		return nil
	})
}

// removePending drops request id from user's index. It is best effort:
// an entry left behind is dropped when it expires, and listing skips
// requests that are no longer pending.
func (s *Server) removePending(ctx context.Context, user, id string) {
	err := s.updateIndex(ctx, user, func(idx *cibaUserIndex) error {
		idx.Entries = slices.DeleteFunc(idx.Entries, func(e cibaIndexEntry) bool { return e.ID == id })
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "backchannel request index not updated", "user", user, "err", err)
	}
}

// updateIndex applies change to user's index, without its expired
// entries, under optimistic concurrency.
func (s *Server) updateIndex(ctx context.Context, user string, change func(*cibaUserIndex) error) error {
	for range 8 {
		idx, version, err := getRecord[cibaUserIndex](ctx, s.store, nsCIBAUsers, user, "backchannel request index")
		w := Write{IfVersion: version}
		switch {
		case errors.Is(err, ErrNotFound):
			idx, w = &cibaUserIndex{}, Write{IfAbsent: true}
		case err != nil:
			return err
		}
		now := s.now()
		idx.Entries = slices.DeleteFunc(idx.Entries, func(e cibaIndexEntry) bool { return !now.Before(e.Expires) })
		if err := change(idx); err != nil {
			return err
		}
		var last time.Time
		for _, e := range idx.Entries {
			if e.Expires.After(last) {
				last = e.Expires
			}
		}
		w.TTL = max(last.Sub(now), time.Second)
		data, err := json.Marshal(idx)
		if err != nil {
			return fmt.Errorf("authserver: encode backchannel request index: %w", err)
		}
		_, err = s.store.Put(ctx, nsCIBAUsers, user, data, w)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("authserver: save backchannel request index: %w", err)
		}
	}
	return errors.New("authserver: backchannel request index: too many concurrent writers")
}
