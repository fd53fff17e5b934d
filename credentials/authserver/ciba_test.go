package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

// Agents of the CIBA tests: payments polls, notifier is pinged, research
// may not use CIBA at all.
var notifierID = credentials.MustParseIdentity("spiffe://example.org/agent/notifier")

const (
	transferArgs    = `{"amount":20,"currency":"EUR","to":"bob"}`
	transferBinding = "Transfer 20 EUR to bob (ref 4F2A)"
)

// cibaEnv is a testEnv with users and CIBA on, whose server can be
// replaced by a new one on the same store (a restart), and an endpoint
// that records ping notifications.
type cibaEnv struct {
	*testEnv
	cfg     Config
	current atomic.Pointer[Server]
	pings   chan ping
	issued  chan Issued
}

type ping struct {
	auth string
	body oauth.PingNotification
}

func newCIBAEnv(t testing.TB, opts ...func(*Config)) *cibaEnv {
	t.Helper()
	ctx := context.Background()
	users, err := testUsers()
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	authority, err := ca.New(ctx, ca.Config{TrustDomain: "spiffe://" + testTD, Journal: &ca.MemoryJournal{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &cibaEnv{pings: make(chan ping, 8), issued: make(chan Issued, 64)}
	e.testEnv = &testEnv{t: t, ctx: ctx, clock: clock, ca: authority, store: NewMemoryStore(clock.Now)}
	e.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.current.Load().Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(e.http.Close)
	e.issuer = e.http.URL
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p ping
		p.auth = r.Header.Get("Authorization")
		_ = json.NewDecoder(r.Body).Decode(&p.body)
		e.pings <- p
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	e.cfg = Config{
		Issuer:      e.issuer,
		Store:       e.store,
		TrustDomain: testTD,
		SVIDs:       authority,
		Users:       users,
		Agents: []AgentClient{
			{ID: credentials.MustParseIdentity(researchID.String()), Scopes: []string{"notes:read"}},
			{ID: credentials.MustParseIdentity(paymentsID.String()), Scopes: []string{"notes:read", "payments:transfer"}},
			{ID: notifierID, Scopes: []string{"notes:read"}},
		},
		Resources: []Resource{
			{URI: notesURI, Scopes: []string{"notes:read", "notes:write"}},
			{URI: paymentsURI, Scopes: []string{"payments:transfer"}},
		},
		CIBA: &CIBAConfig{Clients: []CIBAClient{
			{ClientID: paymentsID.String()},
			{ClientID: notifierID.String(), TokenDeliveryMode: oauth.DeliveryPing, NotificationEndpoint: hook.URL + "/cb"},
		}},
		AllowPrivateFetch: true,
		OnIssue: func(_ context.Context, is Issued) error {
			select {
			case e.issued <- is:
			default:
			}
			return nil
		},
		Now: clock.Now,
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.restart()
	return e
}

// restart replaces the server with a new one on the same store and
// configuration, as a host restart does.
func (e *cibaEnv) restart() {
	e.t.Helper()
	srv, err := New(e.ctx, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	e.current.Store(srv)
}

// toolCall is authorization_details for one transfer.
func toolCall(args string) string {
	return `[{"type":"agenthost_tool_call","locations":["` + paymentsURI + `"],"tool":"payments/transfer","arguments":` + args + `}]`
}

// bcForm is a good backchannel request for alice.
func bcForm() url.Values {
	return url.Values{
		"scope":                 {"openid payments:transfer"},
		"resource":              {paymentsURI},
		"login_hint":            {"alice"},
		"binding_message":       {transferBinding},
		"authorization_details": {toolCall(transferArgs)},
	}
}

// asAgent adds a JWT-SVID client assertion of id to form.
func (e *cibaEnv) asAgent(id credentials.Identity, form url.Values) url.Values {
	e.t.Helper()
	out := url.Values{}
	for k, v := range form {
		if v != nil {
			out[k] = v
		}
	}
	sid, err := spiffeid.FromString(id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	out.Set("client_assertion_type", oauth.AssertionJWTSPIFFE)
	out.Set("client_assertion", e.svid(sid))
	return out
}

var paymentsIdentity = credentials.MustParseIdentity(paymentsID.String())

// backchannel sends a backchannel request of the agent id; mutate may
// change the good form.
func (e *cibaEnv) backchannel(id credentials.Identity, mutate func(url.Values)) (int, map[string]any) {
	e.t.Helper()
	form := bcForm()
	if mutate != nil {
		mutate(form)
	}
	status, body, _ := e.post(PathBackchannel, e.asAgent(id, form), nil)
	return status, body
}

// request sends a good backchannel request and returns its auth_req_id.
func (e *cibaEnv) request(id credentials.Identity, mutate func(url.Values)) string {
	e.t.Helper()
	status, body := e.backchannel(id, mutate)
	if status != http.StatusOK {
		e.t.Fatalf("backchannel: status %d: %v", status, body)
	}
	authReqID, _ := body["auth_req_id"].(string)
	if authReqID == "" {
		e.t.Fatalf("no auth_req_id in %v", body)
	}
	return authReqID
}

// poll sends a CIBA token request of the agent id.
func (e *cibaEnv) poll(id credentials.Identity, authReqID string) (int, map[string]any) {
	e.t.Helper()
	status, body, _ := e.post(PathToken, e.asAgent(id, url.Values{
		"grant_type": {oauth.GrantCIBA}, "auth_req_id": {authReqID},
	}), nil)
	return status, body
}

// wantError checks an OAuth error response.
func wantError(t testing.TB, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || body["error"] != code {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, code)
	}
}

func TestCIBAPollFlow(t *testing.T) {
	e := newCIBAEnv(t)
	status, body := e.backchannel(paymentsIdentity, nil)
	if status != http.StatusOK || body["expires_in"] != float64(600) || body["interval"] != float64(5) {
		t.Fatalf("backchannel: %d %v", status, body)
	}
	authReqID := body["auth_req_id"].(string)
	if len(authReqID) < 43 {
		t.Fatalf("auth_req_id %q is too short to be unguessable", authReqID)
	}

	// The user has not decided: pending, and slow_down when too fast.
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeAuthorizationPending)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeSlowDown)
	// The interval is now 10 s: 6 s later is still too fast, and adds 5 s
	// more.
	e.clock.Advance(6 * time.Second)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeSlowDown)
	e.clock.Advance(15 * time.Second)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeAuthorizationPending)

	// Another client cannot use the auth_req_id, even with its own
	// valid authentication.
	status, body = e.poll(credentials.MustParseIdentity(researchID.String()), authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeUnauthorizedClient)
	e.cfg.CIBA.Clients = append(e.cfg.CIBA.Clients, CIBAClient{ClientID: researchID.String()})
	e.restart()
	e.clock.Advance(20 * time.Second)
	status, body = e.poll(credentials.MustParseIdentity(researchID.String()), authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeInvalidGrant)

	// The approval page's view, then alice approves.
	id := ApprovalID(authReqID)
	a, err := e.srv.Approval(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := txntoken.ArgsDigest(json.RawMessage(transferArgs))
	if err != nil {
		t.Fatal(err)
	}
	wantDetails := `[{"args_sha256":"` + digest + `","arguments":` + transferArgs + `,"locations":["` + paymentsURI +
		`"],"tool":"payments/transfer","type":"agenthost_tool_call"}]`
	if a.State != ApprovalPending || a.User != "alice" || a.ClientID != paymentsID.String() || a.BindingMessage != transferBinding ||
		string(a.AuthorizationDetails) != wantDetails || !slices.Equal(a.Resources, []string{paymentsURI}) {
		t.Fatalf("approval %+v\ndetails %s\nwant    %s", a, a.AuthorizationDetails, wantDetails)
	}
	if err := e.srv.DecideApproval(e.ctx, id, "alice", true); err != nil {
		t.Fatal(err)
	}

	status, body = e.poll(paymentsIdentity, authReqID)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	if body["token_type"] != oauth.TokenTypeBearer || body["refresh_token"] != nil || body["scope"] != "openid payments:transfer" {
		t.Fatalf("token response %v", body)
	}
	if got, _ := json.Marshal(body["authorization_details"]); string(got) != wantDetails {
		t.Fatalf("token response authorization_details %s, want %s", got, wantDetails)
	}
	c := e.verify(body["access_token"].(string), paymentsURI)
	if c.Subject != "alice" || c.ClientID != paymentsID.String() || string(c.AuthorizationDetails) != wantDetails || c.Actor != nil {
		t.Fatalf("claims %+v, details %s", c, c.AuthorizationDetails)
	}
	idt, err := jose.Verify(e.ctx, body["id_token"].(string), jose.VerifyOptions{Types: []jose.Typ{jose.TypJWT},
		Keys: e.srv.Keys(), Issuer: e.issuer, Audience: paymentsID.String(), RequireSubject: true, Now: e.clock.Now})
	if err != nil || idt.Subject != "alice" {
		t.Fatalf("ID token: %v", err)
	}
	select {
	case is := <-e.issued:
		if is.GrantType != oauth.GrantCIBA || is.ApprovalID != id || is.Claims.ID != c.ID {
			t.Fatalf("OnIssue got %+v", is)
		}
	default:
		t.Fatal("OnIssue was not called")
	}
	if a, _ := e.srv.Approval(e.ctx, id); a.State != ApprovalApproved || a.DecidedBy != "alice" {
		t.Fatalf("after redemption: %+v", a)
	}

	// One approval, one token.
	e.clock.Advance(time.Minute)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeInvalidGrant)
}

func TestCIBADenied(t *testing.T) {
	e := newCIBAEnv(t)
	authReqID := e.request(paymentsIdentity, nil)
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", false); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		status, body := e.poll(paymentsIdentity, authReqID)
		wantError(t, status, body, http.StatusBadRequest, oauth.CodeAccessDenied)
		e.clock.Advance(10 * time.Second)
	}
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); !errors.Is(err, ErrApprovalDecided) {
		t.Fatalf("approving a denied request: %v", err)
	}
}

func TestCIBAExpired(t *testing.T) {
	e := newCIBAEnv(t)
	status, body := e.backchannel(paymentsIdentity, func(f url.Values) { f.Set("requested_expiry", "60") })
	if status != http.StatusOK || body["expires_in"] != float64(60) {
		t.Fatalf("backchannel: %d %v", status, body)
	}
	authReqID := body["auth_req_id"].(string)
	e.clock.Advance(61 * time.Second)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeExpiredToken)
	id := ApprovalID(authReqID)
	if err := e.srv.DecideApproval(e.ctx, id, "alice", true); !errors.Is(err, ErrApprovalExpired) {
		t.Fatalf("deciding an expired request: %v", err)
	}
	if a, err := e.srv.Approval(e.ctx, id); err != nil || a.State != ApprovalExpired {
		t.Fatalf("Approval: %+v, %v", a, err)
	}

	// An approval the client did not redeem in time is expired too.
	authReqID = e.request(paymentsIdentity, func(f url.Values) { f.Set("requested_expiry", "30") })
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Second)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeExpiredToken)

	// Long after expiry the request is gone: invalid_grant.
	e.clock.Advance(cibaRetention + time.Minute)
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeInvalidGrant)
}

func TestCIBARequestedExpiryIsCapped(t *testing.T) {
	e := newCIBAEnv(t)
	status, body := e.backchannel(paymentsIdentity, func(f url.Values) { f.Set("requested_expiry", "999999") })
	if status != http.StatusOK || body["expires_in"] != float64(DefaultCIBAMaxExpiry/time.Second) {
		t.Fatalf("backchannel: %d %v", status, body)
	}
}

func TestDecideApprovalRules(t *testing.T) {
	e := newCIBAEnv(t)
	id := ApprovalID(e.request(paymentsIdentity, nil))
	tests := []struct {
		name string
		id   string
		user string
		want error
	}{
		{"another user", id, "bob", ErrApprovalWrongUser},
		{"no user", id, "", ErrApprovalWrongUser},
		{"unknown request", ApprovalID("nope"), "alice", ErrApprovalNotFound},
		{"not an approval ID", "../as.keys/session", "alice", ErrApprovalNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.srv.DecideApproval(e.ctx, tt.id, tt.user, true); !errors.Is(err, tt.want) {
				t.Fatalf("DecideApproval: %v, want %v", err, tt.want)
			}
		})
	}
	if a, _ := e.srv.Approval(e.ctx, id); a.State != ApprovalPending {
		t.Fatalf("refused decisions changed the request: %+v", a)
	}

	// Of concurrent decisions exactly one counts.
	var wg sync.WaitGroup
	var won, decided atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			err := e.srv.DecideApproval(e.ctx, id, "alice", i%2 == 0)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrApprovalDecided):
				decided.Add(1)
			default:
				t.Errorf("DecideApproval: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || decided.Load() != 7 {
		t.Fatalf("%d decisions won, %d refused", won.Load(), decided.Load())
	}
}

func TestCIBAApprovedRedeemedOnce(t *testing.T) {
	e := newCIBAEnv(t)
	authReqID := e.request(paymentsIdentity, nil)
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var tokens atomic.Int32
	for range 8 {
		wg.Go(func() {
			status, body := e.poll(paymentsIdentity, authReqID)
			switch {
			case status == http.StatusOK:
				tokens.Add(1)
			case body["error"] != oauth.CodeInvalidGrant && body["error"] != oauth.CodeSlowDown:
				t.Errorf("poll: %d %v", status, body)
			}
		})
	}
	wg.Wait()
	if tokens.Load() != 1 {
		t.Fatalf("%d tokens for one approval", tokens.Load())
	}
}

func TestCIBARestartKeepsPendingRequest(t *testing.T) {
	e := newCIBAEnv(t)
	authReqID := e.request(paymentsIdentity, nil)
	status, body := e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeAuthorizationPending)

	e.restart()
	// The poll state came through the store: a poll right away is still
	// too fast.
	status, body = e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeSlowDown)
	pending, err := e.srv.PendingApprovals(e.ctx, "alice")
	if err != nil || len(pending) != 1 || pending[0].ID != ApprovalID(authReqID) {
		t.Fatalf("pending after restart: %+v, %v", pending, err)
	}
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); err != nil {
		t.Fatal(err)
	}
	e.restart()
	status, body = e.poll(paymentsIdentity, authReqID)
	if status != http.StatusOK {
		t.Fatalf("token after restart: %d %v", status, body)
	}
	if c := e.verify(body["access_token"].(string), paymentsURI); c.Subject != "alice" {
		t.Fatalf("sub %q", c.Subject)
	}
}

func TestRevokedApproverGetsNoToken(t *testing.T) {
	e := newCIBAEnv(t)
	authReqID := e.request(paymentsIdentity, nil)
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.RevokeSubject(e.ctx, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	status, body := e.poll(paymentsIdentity, authReqID)
	wantError(t, status, body, http.StatusBadRequest, oauth.CodeAccessDenied)
}

func TestBackchannelRequestErrors(t *testing.T) {
	e := newCIBAEnv(t)
	set := func(kv ...string) func(url.Values) {
		return func(f url.Values) {
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == "" {
					f.Del(kv[i])
				} else {
					f.Set(kv[i], kv[i+1])
				}
			}
		}
	}
	tests := []struct {
		name   string
		agent  credentials.Identity
		mutate func(url.Values)
		status int
		code   string
	}{
		{"two hints", paymentsIdentity, set("id_token_hint", "x.y.z"), 400, oauth.CodeInvalidRequest},
		{"no hint", paymentsIdentity, set("login_hint", ""), 400, oauth.CodeInvalidRequest},
		{"login_hint_token", paymentsIdentity, set("login_hint", "", "login_hint_token", "x.y.z"), 400, oauth.CodeInvalidRequest},
		{"unknown user", paymentsIdentity, set("login_hint", "mallory"), 400, oauth.CodeUnknownUserID},
		{"unknown email", paymentsIdentity, set("login_hint", "mallory@example.org"), 400, oauth.CodeUnknownUserID},
		{"hint too long", paymentsIdentity, set("login_hint", strings.Repeat("a", 300)), 400, oauth.CodeUnknownUserID},
		{"no scope", paymentsIdentity, set("scope", ""), 400, oauth.CodeInvalidRequest},
		{"scope without openid", paymentsIdentity, set("scope", "payments:transfer"), 400, oauth.CodeInvalidScope},
		{"scope the agent may not have", paymentsIdentity, set("scope", "openid notes:write", "resource", ""), 400, oauth.CodeInvalidScope},
		{"scope the agent may not have: profile", paymentsIdentity, set("scope", "openid profile"), 400, oauth.CodeInvalidScope},
		{"unknown resource", paymentsIdentity, set("resource", "https://elsewhere.example/"), 400, oauth.CodeInvalidTarget},
		{"unknown RAR type", paymentsIdentity, set("authorization_details", `[{"type":"payment_initiation","amount":"20"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"RAR not an array", paymentsIdentity, set("authorization_details", `{"type":"agenthost_tool_call"}`), 400, oauth.CodeInvalidAuthDetails},
		{"RAR duplicate member", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"payments/transfer","tool":"notes/read"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call unknown member", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"payments/transfer","note":"hidden"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call without tool", paymentsIdentity, set("authorization_details", `[{"type":"agenthost_tool_call"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call with an invisible agent", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"payments/transfer","agent":"pay\u202eer"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call with an empty agent", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"payments/transfer","agent":""}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call with control character in tool", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"pay\u202ements"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call arguments not an object", paymentsIdentity, set("authorization_details", toolCall(`[1,2]`)), 400, oauth.CodeInvalidAuthDetails},
		{"tool call duplicate argument", paymentsIdentity, set("authorization_details", toolCall(`{"amount":1,"amount":1000}`)), 400, oauth.CodeInvalidAuthDetails},
		{"tool call wrong digest", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"payments/transfer","arguments":{"amount":1000},"args_sha256":"`+
				strings.Repeat("0", 64)+`"}]`), 400, oauth.CodeInvalidAuthDetails},
		{"tool call bad location", paymentsIdentity, set("authorization_details",
			`[{"type":"agenthost_tool_call","tool":"t","locations":["relative"]}]`), 400, oauth.CodeInvalidAuthDetails},
		{"binding message too long", paymentsIdentity, set("binding_message", strings.Repeat("x", MaxBindingMessage+1)), 400, oauth.CodeInvalidBindingMessage},
		{"binding message with newline", paymentsIdentity, set("binding_message", "pay\nbob"), 400, oauth.CodeInvalidBindingMessage},
		{"binding message with bidi override", paymentsIdentity, set("binding_message", "pay \u202e001"), 400, oauth.CodeInvalidBindingMessage},
		{"requested_expiry zero", paymentsIdentity, set("requested_expiry", "0"), 400, oauth.CodeInvalidRequest},
		{"requested_expiry negative", paymentsIdentity, set("requested_expiry", "-5"), 400, oauth.CodeInvalidRequest},
		{"requested_expiry signed", paymentsIdentity, set("requested_expiry", "+5"), 400, oauth.CodeInvalidRequest},
		{"requested_expiry fraction", paymentsIdentity, set("requested_expiry", "1.5"), 400, oauth.CodeInvalidRequest},
		{"signed request object", paymentsIdentity, set("request", "x.y.z"), 400, oauth.CodeInvalidRequest},
		{"user_code", paymentsIdentity, set("user_code", "1234"), 400, oauth.CodeInvalidRequest},
		{"client not allowed CIBA", credentials.MustParseIdentity(researchID.String()), set("scope", "openid notes:read", "resource", notesURI),
			400, oauth.CodeUnauthorizedClient},
		{"ping without notification token", notifierID, set("scope", "openid", "resource", "", "authorization_details", ""), 400, oauth.CodeInvalidRequest},
		{"ping notification token not a bearer token", notifierID, set("scope", "openid", "resource", "", "authorization_details", "",
			"client_notification_token", "a b"), 400, oauth.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.backchannel(tt.agent, tt.mutate)
			wantError(t, status, body, tt.status, tt.code)
		})
	}

	t.Run("no client authentication", func(t *testing.T) {
		status, body, _ := e.post(PathBackchannel, bcForm(), nil)
		wantError(t, status, body, http.StatusUnauthorized, oauth.CodeInvalidClient)
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(e.issuer + PathBackchannel)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if pending, _ := e.srv.PendingApprovals(e.ctx, "alice"); len(pending) != 0 {
		t.Fatalf("refused requests were stored: %+v", pending)
	}
}

func TestBackchannelHints(t *testing.T) {
	e := newCIBAEnv(t)
	idToken := func(aud string, exp time.Time, typ jose.Typ) string {
		tok, err := e.srv.keys.sign(e.ctx, typ, idTokenClaims{Issuer: e.issuer, Subject: "bob", Audience: oauth.Audience{aud},
			IssuedAt: exp.Add(-5 * time.Minute).Unix(), ExpiresAt: exp.Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := e.clock.Now()
	tests := []struct {
		name   string
		hints  url.Values
		user   string
		status int
		code   string
	}{
		{"user name", url.Values{"login_hint": {"bob"}}, "bob", 200, ""},
		{"email", url.Values{"login_hint": {"Alice@Example.ORG"}}, "alice", 200, ""},
		{"id_token_hint", url.Values{"id_token_hint": {idToken(paymentsID.String(), now.Add(time.Minute), jose.TypJWT)}}, "bob", 200, ""},
		{"id_token_hint expired an hour ago", url.Values{"id_token_hint": {idToken(paymentsID.String(), now.Add(-time.Hour), jose.TypJWT)}}, "bob", 200, ""},
		{"id_token_hint expired two days ago", url.Values{"id_token_hint": {idToken(paymentsID.String(), now.Add(-48*time.Hour), jose.TypJWT)}},
			"", 400, oauth.CodeInvalidRequest},
		{"id_token_hint of another client", url.Values{"id_token_hint": {idToken("notes-cli", now.Add(time.Minute), jose.TypJWT)}},
			"", 400, oauth.CodeInvalidRequest},
		{"access token as id_token_hint", url.Values{"id_token_hint": {idToken(paymentsID.String(), now.Add(time.Minute), jose.TypAccessToken)}},
			"", 400, oauth.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.backchannel(paymentsIdentity, func(f url.Values) {
				f.Del("login_hint")
				for k, v := range tt.hints {
					f[k] = v
				}
			})
			if tt.code != "" {
				wantError(t, status, body, tt.status, tt.code)
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d %v", status, body)
			}
			a, err := e.srv.Approval(e.ctx, ApprovalID(body["auth_req_id"].(string)))
			if err != nil || a.User != tt.user {
				t.Fatalf("approval %+v, %v; want user %s", a, err, tt.user)
			}
		})
	}
}

func TestCIBAPing(t *testing.T) {
	e := newCIBAEnv(t)
	const notificationToken = "8d67dc78-7faa-4d41-aabd-67707b374255"
	status, body := e.backchannel(notifierID, func(f url.Values) {
		f.Set("scope", "openid notes:read")
		f.Set("resource", notesURI)
		f.Del("authorization_details")
		f.Set("client_notification_token", notificationToken)
	})
	if status != http.StatusOK {
		t.Fatalf("backchannel: %d %v", status, body)
	}
	authReqID := body["auth_req_id"].(string)
	select {
	case p := <-e.pings:
		t.Fatalf("notified before any decision: %+v", p)
	default:
	}
	if err := e.srv.DecideApproval(e.ctx, ApprovalID(authReqID), "alice", true); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-e.pings:
		if p.auth != "Bearer "+notificationToken || p.body.AuthReqID != authReqID {
			t.Fatalf("notification %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ping notification")
	}
	status, body = e.poll(notifierID, authReqID)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	if c := e.verify(body["access_token"].(string), notesURI); c.Subject != "alice" || c.Scope != "openid notes:read" {
		t.Fatalf("claims %+v", c)
	}
}

func TestPendingApprovals(t *testing.T) {
	e := newCIBAEnv(t, func(c *Config) { c.CIBA.MaxPendingPerUser = 2 })
	first := e.request(paymentsIdentity, nil)
	e.clock.Advance(time.Second)
	second := e.request(paymentsIdentity, nil)
	forBob := e.request(paymentsIdentity, func(f url.Values) { f.Set("login_hint", "bob") })

	pending, err := e.srv.PendingApprovals(e.ctx, "alice")
	if err != nil || len(pending) != 2 || pending[0].ID != ApprovalID(first) || pending[1].ID != ApprovalID(second) {
		t.Fatalf("alice's pending: %+v, %v", pending, err)
	}
	// A third request for alice is one too many.
	status, body := e.backchannel(paymentsIdentity, nil)
	wantError(t, status, body, http.StatusForbidden, oauth.CodeAccessDenied)

	if err := e.srv.DecideApproval(e.ctx, ApprovalID(first), "alice", false); err != nil {
		t.Fatal(err)
	}
	pending, _ = e.srv.PendingApprovals(e.ctx, "alice")
	if len(pending) != 1 || pending[0].ID != ApprovalID(second) {
		t.Fatalf("after a decision: %+v", pending)
	}
	if pending, _ := e.srv.PendingApprovals(e.ctx, "bob"); len(pending) != 1 || pending[0].ID != ApprovalID(forBob) {
		t.Fatalf("bob's pending: %+v", pending)
	}
	// Expired requests leave the list and free their place.
	e.clock.Advance(DefaultCIBAExpiry + time.Second)
	if pending, _ := e.srv.PendingApprovals(e.ctx, "alice"); len(pending) != 0 {
		t.Fatalf("expired requests listed: %+v", pending)
	}
	e.request(paymentsIdentity, nil)
}

func TestCIBAMetadata(t *testing.T) {
	get := func(t *testing.T, issuer string) map[string]any {
		resp, err := http.Get(issuer + PathOAuthMetadata)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		return md
	}
	t.Run("on", func(t *testing.T) {
		e := newCIBAEnv(t)
		md := get(t, e.issuer)
		if md["backchannel_authentication_endpoint"] != e.issuer+PathBackchannel ||
			md["backchannel_user_code_parameter_supported"] != false {
			t.Fatalf("metadata %v", md)
		}
		modes, _ := json.Marshal(md["backchannel_token_delivery_modes_supported"])
		types, _ := json.Marshal(md["authorization_details_types_supported"])
		if string(modes) != `["poll","ping"]` || string(types) != `["agenthost_tool_call"]` {
			t.Fatalf("modes %s, types %s", modes, types)
		}
		grants, _ := md["grant_types_supported"].([]any)
		if !slices.Contains(grants, any(oauth.GrantCIBA)) {
			t.Fatalf("grants %v", grants)
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newCIBAEnv(t, func(c *Config) { c.CIBA = nil })
		md := get(t, e.issuer)
		for _, k := range []string{"backchannel_authentication_endpoint", "backchannel_token_delivery_modes_supported",
			"backchannel_user_code_parameter_supported", "authorization_details_types_supported"} {
			if _, ok := md[k]; ok {
				t.Errorf("%s advertised with CIBA off", k)
			}
		}
		status, body := e.poll(paymentsIdentity, "whatever")
		wantError(t, status, body, http.StatusBadRequest, oauth.CodeUnsupportedGrantType)
		resp, err := http.PostForm(e.issuer+PathBackchannel, e.asAgent(paymentsIdentity, bcForm()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("backchannel endpoint with CIBA off: %d", resp.StatusCode)
		}
		if _, err := e.srv.Approval(e.ctx, ApprovalID("x")); !errors.Is(err, ErrApprovalNotFound) {
			t.Fatalf("Approval with CIBA off: %v", err)
		}
	})
}

func TestCIBAConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no users", func(c *Config) { c.Users = nil }, "needs Users"},
		{"unknown client", func(c *Config) { c.CIBA.Clients = []CIBAClient{{ClientID: "nobody"}} }, "not an agent or static client"},
		{"public client", func(c *Config) {
			c.Clients = []StaticClient{{ID: "cli", AuthMethod: oauth.AuthNone, RedirectURIs: []string{"http://127.0.0.1/cb"}}}
			c.CIBA.Clients = []CIBAClient{{ClientID: "cli"}}
		}, "public"},
		{"listed twice", func(c *Config) {
			c.CIBA.Clients = []CIBAClient{{ClientID: paymentsID.String()}, {ClientID: paymentsID.String()}}
		}, "twice"},
		{"push mode", func(c *Config) {
			c.CIBA.Clients = []CIBAClient{{ClientID: paymentsID.String(), TokenDeliveryMode: "push"}}
		}, "not poll or ping"},
		{"ping without endpoint", func(c *Config) {
			c.CIBA.Clients = []CIBAClient{{ClientID: paymentsID.String(), TokenDeliveryMode: oauth.DeliveryPing}}
		}, "ping mode needs one"},
		{"ping over http", func(c *Config) {
			c.AllowPrivateFetch = false
			c.CIBA.Clients = []CIBAClient{{ClientID: paymentsID.String(), TokenDeliveryMode: oauth.DeliveryPing, NotificationEndpoint: "http://agent.example/cb"}}
		}, "must be https"},
		{"poll with endpoint", func(c *Config) {
			c.CIBA.Clients = []CIBAClient{{ClientID: paymentsID.String(), NotificationEndpoint: "https://agent.example/cb"}}
		}, "for ping mode"},
		{"fractional interval", func(c *Config) { c.CIBA.Interval = 1500 * time.Millisecond }, "whole number"},
		{"expiry above maximum", func(c *Config) { c.CIBA.Expiry, c.CIBA.MaxExpiry = time.Hour, time.Minute }, "not between"},
	}
	e := newCIBAEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.cfg
			c := *cfg.CIBA
			cfg.CIBA = &c
			tt.mutate(&cfg)
			_, err := New(e.ctx, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestSignInPage(t *testing.T) {
	e := newCIBAEnv(t)
	const back = "/approve/abc?x=1"
	signInURL := e.srv.SignInURL(back)
	if !strings.HasPrefix(signInURL, e.issuer+PathSignIn+"?") {
		t.Fatalf("SignInURL %q", signInURL)
	}

	b := newBrowser(t)
	page := b.do(http.MethodGet, signInURL, nil)
	action, fields := page.form(t)
	if page.status != http.StatusOK || action != e.issuer+PathSignIn || fields.Get("return_to") != back {
		t.Fatalf("sign-in page %d, action %q, fields %v", page.status, action, fields)
	}
	fields.Set("username", "alice")
	fields.Set("password", "wrong")
	if r := b.do(http.MethodPost, action, fields); r.status != http.StatusUnauthorized || !strings.Contains(r.body, badLogin) {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}
	noCSRF := url.Values{"return_to": {back}, "username": {"alice"}, "password": {alicePassword}}
	if r := b.do(http.MethodPost, action, noCSRF); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF token: %d", r.status)
	}
	fields.Set("password", alicePassword)
	r := b.do(http.MethodPost, action, fields)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != back {
		t.Fatalf("sign-in: %d, Location %q", r.status, r.header.Get("Location"))
	}
	// The browser is now signed in.
	req := httptest.NewRequest(http.MethodGet, e.issuer+back, nil)
	u, _ := url.Parse(e.issuer)
	for _, c := range b.client.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	if user, ok := e.srv.SignedInUser(req); !ok || user != "alice" {
		t.Fatalf("SignedInUser: %q %v", user, ok)
	}
	if user, ok := e.srv.SignedInUser(httptest.NewRequest(http.MethodGet, e.issuer+back, nil)); ok {
		t.Fatalf("SignedInUser without cookies: %q", user)
	}

	// Nowhere but a path of this origin.
	for _, bad := range []string{"", "//evil.example/x", "https://evil.example/", "/\\evil.example", "approve/x", "/a#frag",
		"/a b", "/" + strings.Repeat("a", maxReturnTo)} {
		page := b.do(http.MethodGet, e.issuer+PathSignIn+"?"+url.Values{"return_to": {bad}}.Encode(), nil)
		if page.status != http.StatusBadRequest {
			t.Errorf("return_to %q: status %d", bad, page.status)
		}
		fields.Set("return_to", bad)
		if r := b.do(http.MethodPost, action, fields); r.status != http.StatusBadRequest {
			t.Errorf("posted return_to %q: status %d", bad, r.status)
		}
	}
}

func TestApprovalCSRFToken(t *testing.T) {
	e := newCIBAEnv(t)
	signedIn := func(user string) *http.Request {
		rec := httptest.NewRecorder()
		if _, err := e.srv.sessions.Start(rec, user); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, e.issuer+"/approve/x", nil)
		for _, c := range rec.Result().Cookies() {
			r.AddCookie(c)
		}
		return r
	}
	alice, alice2 := signedIn("alice"), signedIn("alice")
	id, other := ApprovalID("one"), ApprovalID("two")
	token := e.srv.ApprovalCSRFToken(alice, id)
	if token == "" {
		t.Fatal("no token in a session")
	}
	if err := e.srv.CheckApprovalCSRF(alice, id, token); err != nil {
		t.Fatalf("own token: %v", err)
	}
	for name, check := range map[string]func() error{
		"another request": func() error { return e.srv.CheckApprovalCSRF(alice, other, token) },
		"another session": func() error { return e.srv.CheckApprovalCSRF(alice2, id, token) },
		"no session": func() error {
			return e.srv.CheckApprovalCSRF(httptest.NewRequest(http.MethodPost, "/", nil), id, token)
		},
		"empty token": func() error { return e.srv.CheckApprovalCSRF(alice, id, "") },
		"session CSRF": func() error {
			return e.srv.CheckApprovalCSRF(alice, id, e.srv.sessions.SessionCSRFToken(mustSession(t, e, alice)))
		},
		"malformed token": func() error { return e.srv.CheckApprovalCSRF(alice, id, "!!") },
	} {
		if err := check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A session ended by revoking its user counts for nothing.
	e.clock.Advance(time.Second)
	if err := e.srv.RevokeSubject(e.ctx, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.CheckApprovalCSRF(alice, id, token); err == nil {
		t.Error("revoked session: accepted")
	}
	if tok := e.srv.ApprovalCSRFToken(httptest.NewRequest(http.MethodGet, "/", nil), id); tok != "" {
		t.Fatalf("token without a session: %q", tok)
	}
}

func mustSession(t *testing.T, e *cibaEnv, r *http.Request) userauth.Session {
	t.Helper()
	sess, err := e.srv.sessions.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// BenchmarkBackchannelRequest measures an accepted backchannel request:
// JWT-SVID client authentication, validation of a tool-call detail, the
// user's index and the stored request.
func BenchmarkBackchannelRequest(b *testing.B) {
	e := newCIBAEnv(b, func(c *Config) { c.CIBA.MaxPendingPerUser = 1 << 20 })
	form := bcForm()
	form.Set("requested_expiry", "30")
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if i%64 == 0 {
			// Keep the user's index short, as expiry does.
			e.clock.Advance(31 * time.Second)
		}
		body := strings.NewReader(e.asAgent(paymentsIdentity, form).Encode())
		b.StartTimer()
		req := httptest.NewRequest(http.MethodPost, e.issuer+PathBackchannel, body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkCIBAPoll measures a poll of a pending request answered
// authorization_pending (the common case) with client authentication.
func BenchmarkCIBAPoll(b *testing.B) {
	e := newCIBAEnv(b, func(c *Config) { c.CIBA.MaxExpiry = 24 * time.Hour })
	authReqID := e.request(paymentsIdentity, func(f url.Values) { f.Set("requested_expiry", "86400") })
	form := url.Values{"grant_type": {oauth.GrantCIBA}, "auth_req_id": {authReqID}}
	for b.Loop() {
		b.StopTimer()
		e.clock.Advance(5 * time.Second)
		body := strings.NewReader(e.asAgent(paymentsIdentity, form).Encode())
		b.StartTimer()
		req := httptest.NewRequest(http.MethodPost, e.issuer+PathToken, body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), oauth.CodeAuthorizationPending) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// FuzzCIBADetails sends arbitrary authorization_details to the checks of
// a backchannel request: never a panic; what is accepted is unambiguous
// JSON whose tool calls each carry the digest of their arguments.
func FuzzCIBADetails(f *testing.F) {
	for _, s := range []string{toolCall(transferArgs), toolCall(`{}`), `[{"type":"agenthost_tool_call","tool":"t"}]`,
		`[{"type":"x"}]`, `[]`, `{"a":1}`, `[{"type":"agenthost_tool_call","tool":"t","arguments":{"a":1,"a":2}}]`} {
		f.Add(s)
	}
	e := newCIBAEnv(f)
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := e.srv.cibaDetails(oauth.NewForm(url.Values{"authorization_details": {raw}}))
		if err != nil {
			if oauth.AsError(err).Code != oauth.CodeInvalidAuthDetails {
				t.Fatalf("error %v", err)
			}
			return
		}
		if raw == "" {
			return
		}
		if _, err := txntoken.ArgsDigest(out); err != nil {
			t.Fatalf("accepted %q as %s: %v", raw, out, err)
		}
		var details []oauth.ToolCallDetail
		if err := json.Unmarshal(out, &details); err != nil {
			t.Fatalf("accepted %q as %s: %v", raw, out, err)
		}
		for _, d := range details {
			if d.Type != oauth.AuthorizationDetailsToolCall {
				t.Fatalf("accepted type %q", d.Type)
			}
			if want, err := txntoken.ArgsDigest(d.Arguments); err != nil || d.ArgsSHA256 != want || d.Tool == "" {
				t.Fatalf("accepted %q as %s", raw, out)
			}
		}
	})
}
