package signals

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
)

const (
	waiterID  = "spiffe://example.org/agent/waiter"
	aliceMail = "alice@example.com"
)

// fakeHost records what a Remediator asks of it; its err fields make an
// action fail.
type fakeHost struct {
	mu          sync.Mutex
	quarantined []string // agent + "|" + cause
	revoked     []string // user + "|" + reason
	forgotten   []string
	stopped     []string // user + "|" + cause
	risk        map[string]string
	published   []UserRemedy
	records     []Remediation

	revokeErr, quarantineErr, recordErr error
}

func (f *fakeHost) config() RemediatorConfig {
	return RemediatorConfig{
		AgentByID: func(id string) (string, bool) {
			if id == waiterID {
				return "waiter", true
			}
			return "", false
		},
		Users: func() []User {
			return []User{{Name: "alice", Email: "Alice@Example.com"}, {Name: "bob"}}
		},
		UserIssuers: []string{"https://as.example.org", "https://idp.example"},
		Quarantine: func(_ context.Context, agent, cause string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.quarantined = append(f.quarantined, agent+"|"+cause)
			return f.quarantineErr
		},
		RevokeUser: func(_ context.Context, user, reason string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.revoked = append(f.revoked, user+"|"+reason)
			return f.revokeErr
		},
		ForgetUser: func(_ context.Context, user string) int {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.forgotten = append(f.forgotten, user)
			return 3
		},
		StopTasks: func(_ context.Context, user, cause string) int {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.stopped = append(f.stopped, user+"|"+cause)
			return 2
		},
		SetRisk: func(_ context.Context, user, level string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.risk == nil {
				f.risk = map[string]string{}
			}
			f.risk[user] = level
		},
		Risk: func(user string) string {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.risk[user]
		},
		Publish: func(_ context.Context, r UserRemedy) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.published = append(f.published, r)
		},
		Record: func(_ context.Context, r Remediation) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.records = append(f.records, r)
			return f.recordErr
		},
	}
}

func newRemediator(t testing.TB, f *fakeHost) *Remediator {
	t.Helper()
	r, err := NewRemediator(f.config())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// userActions is what a fakeHost was asked to do about users.
type userActions struct {
	Revoked, Forgotten, Stopped []string
	Published                   []UserRemedy
}

func (f *fakeHost) userActions() userActions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return userActions{Revoked: f.revoked, Forgotten: f.forgotten, Stopped: f.stopped, Published: f.published}
}

// TestRemediatorUserEvents: each CAEP event type about a user gets its
// remedy, is published to other hosts when it did something, and is
// recorded with its cause and what was done.
func TestRemediatorUserEvents(t *testing.T) {
	const cause = "idp: %s (account compromised)"
	sub := EmailSubject(aliceMail)
	acted := func(short string) []string { return []string{"alice|" + fmt.Sprintf(cause, short)} }
	tests := []struct {
		name     string
		ev       Event
		remedy   string
		actions  userActions
		risk     string
		wantNone bool // recorded as doing nothing
	}{
		{name: "session-revoked", ev: Event{Type: EventSessionRevoked}, remedy: RemedyRevoke,
			actions: userActions{Revoked: []string{"alice|session-revoked"}, Forgotten: []string{"alice"}, Stopped: acted("session-revoked"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Cause: fmt.Sprintf(cause, "session-revoked")}}}},
		{name: "credential-change", ev: Event{Type: EventCredentialChange, CredentialType: "password", ChangeType: "update"}, remedy: RemedyRevoke,
			actions: userActions{Revoked: []string{"alice|credential-change"}, Forgotten: []string{"alice"}, Stopped: acted("credential-change"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Cause: fmt.Sprintf(cause, "credential-change")}}}},
		{name: "token-claims-change", ev: Event{Type: EventTokenClaimsChange, Claims: map[string]any{"role": "guest"}}, remedy: RemedyRefresh,
			actions: userActions{Forgotten: []string{"alice"}, Stopped: acted("token-claims-change"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Cause: fmt.Sprintf(cause, "token-claims-change")}}}},
		{name: "assurance decreased", ev: Event{Type: EventAssuranceLevelChange, Namespace: "nist-aal", CurrentLevel: "aal1", ChangeDirection: "decrease"},
			remedy: RemedyRefresh,
			actions: userActions{Forgotten: []string{"alice"}, Stopped: acted("assurance-level-change"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Cause: fmt.Sprintf(cause, "assurance-level-change")}}}},
		{name: "assurance increased", ev: Event{Type: EventAssuranceLevelChange, Namespace: "nist-aal", CurrentLevel: "aal3", ChangeDirection: "increase"},
			remedy: RemedyNone, wantNone: true},
		{name: "assurance without direction", ev: Event{Type: EventAssuranceLevelChange, Namespace: "nist-aal", CurrentLevel: "aal1"},
			remedy: RemedyNone, wantNone: true},
		{name: "device not compliant", ev: Event{Type: EventDeviceComplianceChange, CurrentStatus: "not-compliant"}, remedy: RemedyRefresh,
			actions: userActions{Forgotten: []string{"alice"}, Stopped: acted("device-compliance-change"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Cause: fmt.Sprintf(cause, "device-compliance-change")}}}},
		{name: "device compliant", ev: Event{Type: EventDeviceComplianceChange, CurrentStatus: "compliant"}, remedy: RemedyNone, wantNone: true},
		{name: "risk high", ev: Event{Type: EventRiskLevelChange, Principal: "USER", CurrentLevel: "HIGH"}, remedy: "risk high", risk: "high",
			actions: userActions{Forgotten: []string{"alice"}, Stopped: acted("risk-level-change"),
				Published: []UserRemedy{{User: "alice", Stop: true, Drop: true, Risk: "high", Cause: fmt.Sprintf(cause, "risk-level-change")}}}},
		{name: "risk medium", ev: Event{Type: EventRiskLevelChange, Principal: "USER", CurrentLevel: "MEDIUM"}, remedy: "risk medium", risk: "medium",
			actions: userActions{Published: []UserRemedy{{User: "alice", Risk: "medium", Cause: fmt.Sprintf(cause, "risk-level-change")}}}},
		{name: "session-established", ev: Event{Type: EventSessionEstablished}, remedy: RemedyNone, wantNone: true},
		{name: "session-presented", ev: Event{Type: EventSessionPresented}, remedy: RemedyNone, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeHost{}
			ev := tt.ev
			ev.Subject, ev.ReasonAdmin = sub, map[string]string{"en": "account compromised"}
			if err := newRemediator(t, f).Remediate(context.Background(), "idp", ev); err != nil {
				t.Fatal(err)
			}
			if got := f.userActions(); !reflect.DeepEqual(got, tt.actions) {
				t.Errorf("actions\n got %+v\nwant %+v", got, tt.actions)
			}
			if len(f.quarantined) != 0 {
				t.Errorf("quarantined %v", f.quarantined)
			}
			short := ev.Type[strings.LastIndex(ev.Type, "/")+1:]
			reason := "2 tasks stopped, 3 sessions dropped"
			if tt.wantNone || len(tt.actions.Stopped) == 0 {
				reason = "0 tasks stopped, 0 sessions dropped"
			}
			want := []Remediation{{User: "alice", Resource: "idp", Remedy: tt.remedy, Cause: fmt.Sprintf(cause, short),
				Reason: reason, Risk: tt.risk}}
			if !reflect.DeepEqual(f.records, want) {
				t.Errorf("records\n got %+v\nwant %+v", f.records, want)
			}
		})
	}
}

// TestRemediatorAgentEvents: revocation, credential change and high risk
// quarantine one of the host's agents (Quarantine audits itself); other
// events about it are recorded as needing no action, and no user action
// is taken for an agent.
func TestRemediatorAgentEvents(t *testing.T) {
	tests := []struct {
		name       string
		ev         Event
		quarantine bool
	}{
		{"session-revoked", Event{Type: EventSessionRevoked}, true},
		{"credential-change", Event{Type: EventCredentialChange, CredentialType: "x509", ChangeType: "revoke"}, true},
		{"risk high", Event{Type: EventRiskLevelChange, Principal: "NHI", CurrentLevel: "HIGH"}, true},
		{"risk medium", Event{Type: EventRiskLevelChange, Principal: "NHI", CurrentLevel: "MEDIUM"}, false},
		{"token-claims-change", Event{Type: EventTokenClaimsChange, Claims: map[string]any{}}, false},
		{"device not compliant", Event{Type: EventDeviceComplianceChange, CurrentStatus: "not-compliant"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeHost{}
			ev := tt.ev
			ev.Subject = Subject{Format: FormatURI, URI: waiterID}
			if err := newRemediator(t, f).Remediate(context.Background(), "idp", ev); err != nil {
				t.Fatal(err)
			}
			short := ev.Type[strings.LastIndex(ev.Type, "/")+1:]
			if got := f.userActions(); !reflect.DeepEqual(got, userActions{}) || f.risk != nil {
				t.Errorf("user actions for an agent: %+v, risk %v", got, f.risk)
			}
			if tt.quarantine {
				if want := []string{"waiter|idp: " + short}; !reflect.DeepEqual(f.quarantined, want) || len(f.records) != 0 {
					t.Errorf("quarantined %v, records %+v; want %v and no record", f.quarantined, f.records, want)
				}
				return
			}
			want := []Remediation{{Agent: "waiter", AgentID: waiterID, Resource: waiterID, Remedy: RemedyNone, Cause: "idp: " + short,
				Reason: short + " needs no action for an agent"}}
			if len(f.quarantined) != 0 || !reflect.DeepEqual(f.records, want) {
				t.Errorf("quarantined %v, records\n got %+v\nwant %+v", f.quarantined, f.records, want)
			}
		})
	}
}

// TestRemediatorSubjects: how a subject resolves to one of the host's
// agents, one of its users, or nobody. An agent is known only by its exact
// SPIFFE ID (not another trust domain's agent of the same name), and takes
// precedence over a user in a complex subject; a subject the host cannot
// resolve (an unknown format, a user it does not have) only leaves an
// "unknown subject" record.
func TestRemediatorSubjects(t *testing.T) {
	uri := func(u string) Subject { return Subject{Format: FormatURI, URI: u} }
	tests := []struct {
		name  string
		sub   Subject
		user  string
		agent string
	}{
		{name: "email, other case", sub: EmailSubject("ALICE@example.COM"), user: "alice"},
		{name: "iss_sub", sub: IssSubSubject("https://idp.example", "alice"), user: "alice"},
		{name: "opaque", sub: OpaqueSubject("bob"), user: "bob"},
		{name: "account by email", sub: Subject{Format: FormatAccount, URI: "acct:alice@example.com"}, user: "alice"},
		{name: "account at a user issuer's host", sub: Subject{Format: FormatAccount, URI: "acct:bob@IDP.example"}, user: "bob"},
		{name: "complex user", sub: Subject{Format: FormatComplex, User: ptr(EmailSubject(aliceMail)), Tenant: ptr(OpaqueSubject("t-1"))}, user: "alice"},
		{name: "aliases, second known", sub: Subject{Format: FormatAliases, Identifiers: []Subject{
			{Format: FormatPhoneNumber, PhoneNumber: "+12065550100"}, OpaqueSubject("bob")}}, user: "bob"},
		{name: "agent uri", sub: uri(waiterID), agent: "waiter"},
		{name: "agent as complex application", sub: Subject{Format: FormatComplex, Application: ptr(uri(waiterID))}, agent: "waiter"},
		{name: "agent wins over user in complex", sub: Subject{Format: FormatComplex, User: ptr(EmailSubject(aliceMail)),
			Application: ptr(uri(waiterID))}, agent: "waiter"},
		{name: "agent in aliases", sub: Subject{Format: FormatAliases, Identifiers: []Subject{OpaqueSubject("nobody"), uri(waiterID)}}, agent: "waiter"},

		// Attacker-ish or unknown: nothing is done.
		{name: "agent of another trust domain", sub: uri("spiffe://evil.example/agent/waiter")},
		{name: "agent id with a trailing slash", sub: uri(waiterID + "/")},
		{name: "agent id as opaque", sub: OpaqueSubject(waiterID)},
		{name: "agent name as opaque", sub: OpaqueSubject("waiter")},
		{name: "agent id as complex user", sub: Subject{Format: FormatComplex, User: ptr(uri(waiterID))}},
		{name: "unknown user", sub: EmailSubject("mallory@example.com")},
		{name: "iss_sub of another issuer", sub: IssSubSubject("https://evil.example", "alice")},
		{name: "iss_sub of a user issuer with another path", sub: IssSubSubject("https://idp.example/other", "alice")},
		{name: "account at another domain", sub: Subject{Format: FormatAccount, URI: "acct:alice@evil.example"}},
		{name: "account without a domain", sub: Subject{Format: FormatAccount, URI: "acct:bob"}},
		{name: "empty email never matches a user without one", sub: EmailSubject("")},
		{name: "user uri", sub: uri("https://example.com/users/alice")},
		{name: "phone number", sub: Subject{Format: FormatPhoneNumber, PhoneNumber: "+12065550100"}},
		{name: "did", sub: Subject{Format: FormatDID, URL: "did:example:alice"}},
		{name: "jwt_id", sub: Subject{Format: FormatJWTID, Iss: "https://idp.example", JTI: "alice"}},
		{name: "ip addresses", sub: Subject{Format: FormatIPAddresses, IPAddresses: []string{"10.0.0.1"}}},
		{name: "format the host does not know", sub: Subject{Format: "spiffe", URI: waiterID, ID: "alice"}},
		{name: "no format", sub: Subject{ID: "alice", Email: aliceMail}},
		{name: "complex device only", sub: Subject{Format: FormatComplex, Device: ptr(OpaqueSubject("alice"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeHost{}
			ev := Event{Type: EventSessionRevoked, Subject: tt.sub}
			if err := newRemediator(t, f).Remediate(context.Background(), "idp", ev); err != nil {
				t.Fatal(err)
			}
			got := f.userActions()
			switch {
			case tt.agent != "":
				if want := []string{tt.agent + "|idp: session-revoked"}; !reflect.DeepEqual(f.quarantined, want) || len(got.Revoked) != 0 {
					t.Errorf("quarantined %v, revoked %v; want %v only", f.quarantined, got.Revoked, want)
				}
			case tt.user != "":
				if want := []string{tt.user + "|session-revoked"}; !reflect.DeepEqual(got.Revoked, want) || len(f.quarantined) != 0 {
					t.Errorf("revoked %v, quarantined %v; want %v only", got.Revoked, f.quarantined, want)
				}
			default:
				if !reflect.DeepEqual(got, userActions{}) || len(f.quarantined) != 0 || f.risk != nil {
					t.Errorf("acted on an unknown subject: %+v, quarantined %v", got, f.quarantined)
				}
				want := []Remediation{{Resource: "idp", Remedy: RemedyNone, Cause: "idp: session-revoked", Reason: "unknown subject"}}
				if !reflect.DeepEqual(f.records, want) {
					t.Errorf("records\n got %+v\nwant %+v", f.records, want)
				}
			}
		})
	}
}

func ptr(s Subject) *Subject { return &s }

// TestRemediatorCause: the cause names the source and event and carries
// the event's reason, the admin's before the user's, English first.
func TestRemediatorCause(t *testing.T) {
	tests := []struct {
		name        string
		admin, user map[string]string
		want        string
	}{
		{"no reason", nil, nil, "idp: session-established"},
		{"admin english", map[string]string{"de": "Konto gesperrt", "en": "account locked"}, map[string]string{"en": "bye"}, "idp: session-established (account locked)"},
		{"admin other language", map[string]string{"und": "locked"}, map[string]string{"en": "bye"}, "idp: session-established (locked)"},
		{"user only", nil, map[string]string{"en": "you signed out"}, "idp: session-established (you signed out)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeHost{}
			ev := Event{Type: EventSessionEstablished, Subject: OpaqueSubject("bob"), ReasonAdmin: tt.admin, ReasonUser: tt.user}
			if err := newRemediator(t, f).Remediate(context.Background(), "idp", ev); err != nil {
				t.Fatal(err)
			}
			if len(f.records) != 1 || f.records[0].Cause != tt.want {
				t.Errorf("records %+v, want cause %q", f.records, tt.want)
			}
		})
	}
}

// TestRemediatorFailures: when an action or the record fails the error
// is returned (so the SET is delivered again); a failed revocation does
// not keep the other actions from running and is recorded.
func TestRemediatorFailures(t *testing.T) {
	errDown := errors.New("store down")
	ctx := context.Background()
	alice := Event{Type: EventSessionRevoked, Subject: EmailSubject(aliceMail)}

	t.Run("revoke", func(t *testing.T) {
		f := &fakeHost{revokeErr: errDown}
		err := newRemediator(t, f).Remediate(ctx, "idp", alice)
		if !errors.Is(err, errDown) || !strings.HasPrefix(err.Error(), "signals: ") {
			t.Fatalf("error %v, want one wrapping %v", err, errDown)
		}
		if got := f.userActions(); len(got.Forgotten) != 1 || len(got.Stopped) != 1 || len(got.Published) != 1 {
			t.Errorf("the other actions did not run: %+v", got)
		}
		if len(f.records) != 1 || !errors.Is(f.records[0].Err, errDown) || f.records[0].Remedy != RemedyRevoke {
			t.Errorf("records %+v", f.records)
		}
	})
	t.Run("record", func(t *testing.T) {
		f := &fakeHost{recordErr: errDown}
		if err := newRemediator(t, f).Remediate(ctx, "idp", alice); !errors.Is(err, errDown) {
			t.Fatalf("error %v, want one wrapping %v", err, errDown)
		}
		if got := f.userActions(); len(got.Revoked) != 1 {
			t.Errorf("actions %+v", got)
		}
	})
	t.Run("revoke and record", func(t *testing.T) {
		errAudit := errors.New("audit full")
		f := &fakeHost{revokeErr: errDown, recordErr: errAudit}
		if err := newRemediator(t, f).Remediate(ctx, "idp", alice); !errors.Is(err, errDown) || !errors.Is(err, errAudit) {
			t.Fatalf("error %v, want both", err)
		}
	})
	t.Run("record of an unknown subject", func(t *testing.T) {
		f := &fakeHost{recordErr: errDown}
		ev := Event{Type: EventSessionRevoked, Subject: EmailSubject("mallory@example.com")}
		if err := newRemediator(t, f).Remediate(ctx, "idp", ev); !errors.Is(err, errDown) {
			t.Fatalf("error %v, want one wrapping %v", err, errDown)
		}
	})
	t.Run("record of an agent needing nothing", func(t *testing.T) {
		f := &fakeHost{recordErr: errDown}
		ev := Event{Type: EventTokenClaimsChange, Subject: Subject{Format: FormatURI, URI: waiterID}}
		if err := newRemediator(t, f).Remediate(ctx, "idp", ev); !errors.Is(err, errDown) {
			t.Fatalf("error %v, want one wrapping %v", err, errDown)
		}
	})
	t.Run("quarantine", func(t *testing.T) {
		f := &fakeHost{quarantineErr: errDown}
		ev := Event{Type: EventCredentialChange, Subject: Subject{Format: FormatURI, URI: waiterID}}
		if err := newRemediator(t, f).Remediate(ctx, "idp", ev); !errors.Is(err, errDown) {
			t.Fatalf("error %v, want one wrapping %v", err, errDown)
		}
	})
}

// TestRemediatorFailureNotAcknowledged: as a receiver's handler, a
// remediation that fails answers 503 and releases the jti, so the
// transmitter's retry is accepted and acted on.
func TestRemediatorFailureNotAcknowledged(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	f := &fakeHost{revokeErr: errors.New("authorization server down")}
	r := receiverFor(t, js, newRemediator(t, f).Handler("idp"), nil)
	set := mint(t, key, "k1", jose.TypSecEvent, validClaims(js.srv.URL))

	if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.Code)
	}
	f.mu.Lock()
	f.revokeErr = nil
	f.mu.Unlock()
	if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusAccepted {
		t.Fatalf("retry: status %d body %s", resp.Code, resp.Body)
	}
	if st := r.Stats(); st.HandlerFailures != 1 || st.Handled != 1 {
		t.Errorf("stats %+v", st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.revoked) != 2 || len(f.records) != 2 || f.records[0].Err == nil || f.records[1].Err != nil {
		t.Errorf("revoked %v, records %+v", f.revoked, f.records)
	}
	if c := f.records[1].Cause; c != "idp: session-revoked (Landspeed policy violation)" {
		t.Errorf("cause %q", c)
	}
	// A third delivery is a replay.
	if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusBadRequest {
		t.Fatalf("replay: status %d", resp.Code)
	}
}

// TestNewRemediator: Record is required, and so is Quarantine when agents
// are recognized; with nothing else the remediator only records.
func TestNewRemediator(t *testing.T) {
	record := func(context.Context, Remediation) error { return nil }
	for name, cfg := range map[string]RemediatorConfig{
		"no record":                 {},
		"agents without quarantine": {Record: record, AgentByID: func(string) (string, bool) { return "a", true }},
	} {
		if _, err := NewRemediator(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	var recs []Remediation
	r, err := NewRemediator(RemediatorConfig{Users: func() []User { return []User{{Name: "alice"}} },
		Record: func(_ context.Context, rec Remediation) error { recs = append(recs, rec); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []Event{
		{Type: EventSessionRevoked, Subject: OpaqueSubject("alice")},
		{Type: EventRiskLevelChange, Principal: "USER", CurrentLevel: "HIGH", Subject: OpaqueSubject("alice")},
		{Type: EventSessionRevoked, Subject: Subject{Format: FormatURI, URI: waiterID}},
	} {
		if err := r.Remediate(context.Background(), "idp", ev); err != nil {
			t.Fatal(err)
		}
	}
	want := []Remediation{
		{User: "alice", Resource: "idp", Remedy: RemedyRevoke, Cause: "idp: session-revoked", Reason: "0 tasks stopped, 0 sessions dropped"},
		{User: "alice", Resource: "idp", Remedy: "risk high", Cause: "idp: risk-level-change", Reason: "0 tasks stopped, 0 sessions dropped"},
		{Resource: "idp", Remedy: RemedyNone, Cause: "idp: session-revoked", Reason: "unknown subject"},
	}
	if !reflect.DeepEqual(recs, want) {
		t.Errorf("records\n got %+v\nwant %+v", recs, want)
	}
}

// TestReasonTextStable: without an English reason the text is the first
// language's in sorted order, the same on every call.
func TestReasonTextStable(t *testing.T) {
	ev := Event{ReasonAdmin: map[string]string{"fr": "révoqué", "de": "widerrufen", "es": ""}}
	for range 50 {
		if got := reasonText(ev); got != "widerrufen" {
			t.Fatalf("reasonText = %q, want the de text", got)
		}
	}
	ev.ReasonUser = map[string]string{"en": "revoked"}
	if got := reasonText(ev); got != "widerrufen" {
		t.Errorf("reasonText = %q, want reason_admin before reason_user", got)
	}
	if got := reasonText(Event{ReasonAdmin: map[string]string{"en": ""}, ReasonUser: map[string]string{"en": "revoked"}}); got != "revoked" {
		t.Errorf("reasonText = %q, want reason_user when reason_admin is empty", got)
	}
}
