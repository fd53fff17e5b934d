package signals

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

func TestPushReceiverRejects(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	iss := js.srv.URL

	with := func(mod func(c map[string]any)) map[string]any {
		c := validClaims(iss)
		mod(c)
		return c
	}
	good := func() string { return mint(t, key, "k1", jose.TypSecEvent, validClaims(iss)) }
	ctSET := MediaTypeSET
	auth := map[string]string{"Authorization": "Bearer push-secret"}

	tests := []struct {
		name        string
		method      string
		contentType string
		body        func() string
		header      map[string]string
		prime       bool // deliver the same body once first
		status      int
		code        string
	}{
		{name: "bad signature", body: func() string { return mint(t, other, "k1", jose.TypSecEvent, validClaims(iss)) }, code: CodeAuthenticationFailed},
		{name: "unknown kid", body: func() string { return mint(t, other, "k9", jose.TypSecEvent, validClaims(iss)) }, code: CodeInvalidKey},
		{name: "unknown issuer", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["iss"] = "https://evil.example" }))
		}, code: CodeInvalidIssuer},
		{name: "wrong audience", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["aud"] = []string{"https://other.example"} }))
		}, code: CodeInvalidAudience},
		{name: "typ at+jwt", body: func() string { return mint(t, key, "k1", jose.TypAccessToken, validClaims(iss)) }, code: CodeInvalidRequest},
		{name: "typ JWT", body: func() string { return mint(t, key, "k1", jose.TypJWT, validClaims(iss)) }, code: CodeInvalidRequest},
		{name: "replayed jti", body: func() string { return good() }, prime: true, code: CodeInvalidRequest},
		{name: "two events", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["events"] = map[string]any{EventSessionRevoked: map[string]any{}, EventCredentialChange: map[string]any{"credential_type": "password", "change_type": "update"}}
			}))
		}, code: CodeInvalidRequest},
		{name: "no events", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["events"] = map[string]any{} }))
		}, code: CodeInvalidRequest},
		{name: "unknown subject format", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["sub_id"] = map[string]any{"format": "x-custom", "value": "alice"}
			}))
		}, code: CodeInvalidRequest},
		{name: "no subject", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { delete(c, "sub_id") }))
		}, code: CodeInvalidRequest},
		{name: "sub claim", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["sub"] = "alice" }))
		}, code: CodeInvalidRequest},
		{name: "no iat", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { delete(c, "iat") }))
		}, code: CodeInvalidRequest},
		{name: "iat in future", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }))
		}, code: CodeInvalidRequest},
		{name: "expired exp", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
		}, code: CodeInvalidRequest},
		{name: "no jti", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) { delete(c, "jti") }))
		}, code: CodeInvalidRequest},
		{name: "unsupported event type", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["events"] = map[string]any{"https://schemas.openid.net/secevent/risc/event-type/account-disabled": map[string]any{}}
			}))
		}, code: CodeInvalidRequest},
		{name: "credential-change without change_type", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["events"] = map[string]any{EventCredentialChange: map[string]any{"credential_type": "password"}}
			}))
		}, code: CodeInvalidRequest},
		{name: "critical complex member", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["sub_id"] = map[string]any{"format": "complex", "user": map[string]any{"format": "email", "email": "a@example.com"}, "x_realm": map[string]any{"format": "opaque", "id": "r"}}
			}))
		}, code: CodeInvalidRequest},
		{name: "verification with unrequested state", body: func() string {
			return mint(t, key, "k1", jose.TypSecEvent, with(func(c map[string]any) {
				c["sub_id"] = map[string]any{"format": "opaque", "id": "stream-1"}
				c["events"] = map[string]any{EventVerification: map[string]any{"state": "forged"}}
			}))
		}, code: CodeInvalidState},
		{name: "not a JWT", body: func() string { return "hello" }, code: CodeInvalidRequest},
		{name: "oversized", body: func() string { return strings.Repeat("a", DefaultMaxBodyBytes+1) }, code: CodeInvalidRequest},
		{name: "wrong content type", contentType: "application/json", body: good, code: CodeInvalidRequest},
		{name: "no content type", contentType: "-", body: good, code: CodeInvalidRequest},
		{name: "non-POST", method: http.MethodGet, body: func() string { return "" }, status: http.StatusMethodNotAllowed, code: CodeInvalidRequest},
		{name: "no bearer", header: map[string]string{}, body: good, code: CodeAuthenticationFailed},
		{name: "bearer denied", header: map[string]string{"Authorization": "Bearer other-transmitter"}, body: good, code: CodeAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			r := receiverFor(t, js, rec, func(c *ReceiverConfig) {
				c.CriticalSubjectMembers = []string{"x_realm"}
				c.Authorize = func(r *http.Request) error {
					switch r.Header.Get("Authorization") {
					case "Bearer push-secret":
						return nil
					case "":
						return ErrAuthenticationFailed
					}
					return ErrAccessDenied
				}
			})
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = ctSET
			case "-":
				ct = ""
			}
			hdr := tt.header
			if hdr == nil {
				hdr = auth
			}
			body := tt.body()
			wantCalls := 0
			if tt.prime {
				if rec := postSET(t, r, method, ct, body, hdr); rec.Code != http.StatusAccepted {
					t.Fatalf("first delivery: status %d, body %s", rec.Code, rec.Body)
				}
				wantCalls = 1
			}
			resp := postSET(t, r, method, ct, body, hdr)
			status := tt.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			if resp.Code != status {
				t.Fatalf("status %d, want %d; body %s", resp.Code, status, resp.Body)
			}
			if got := resp.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			var eb ErrorBody
			if err := json.Unmarshal(resp.Body.Bytes(), &eb); err != nil {
				t.Fatalf("error body %q: %v", resp.Body, err)
			}
			if eb.Err != tt.code {
				t.Errorf("err %q (%s), want %q", eb.Err, eb.Description, tt.code)
			}
			if eb.Description == "" {
				t.Error("no description")
			}
			if n := len(rec.got()); n != wantCalls {
				t.Errorf("handler called %d times, want %d", n, wantCalls)
			}
			st := r.Stats()
			if st.Rejected != 1 || st.RejectedByCode[tt.code] != 1 {
				t.Errorf("stats %+v, want one rejection with %s", st, tt.code)
			}
		})
	}
}

func TestPushReceiverAcceptsSessionRevoked(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	rec := &recorder{}
	r := receiverFor(t, js, rec, nil)

	claims := validClaims(js.srv.URL)
	claims["txn"] = "txn-42"
	set := mint(t, key, "k1", jose.TypSecEvent, claims)
	resp := postSET(t, r, http.MethodPost, "application/secevent+jwt; charset=utf-8", set+"\r\n", nil)
	if resp.Code != http.StatusAccepted || resp.Body.Len() != 0 {
		t.Fatalf("status %d body %q, want 202 and empty", resp.Code, resp.Body)
	}
	evs := rec.got()
	if len(evs) != 1 {
		t.Fatalf("handler got %d events", len(evs))
	}
	ev := evs[0]
	if ev.Type != EventSessionRevoked || ev.JTI != claims["jti"] || ev.Issuer != js.srv.URL || ev.TXN != "txn-42" {
		t.Errorf("event %+v", ev)
	}
	if ev.Subject.Format != FormatComplex || ev.Subject.User == nil || ev.Subject.User.Email != "alice@example.com" || ev.Subject.Tenant.ID != "t-1" {
		t.Errorf("subject %s", ev.Subject)
	}
	if !ev.Subject.Matches(EmailSubject("Alice@Example.com")) {
		t.Error("complex subject does not match its user")
	}
	if ev.InitiatingEntity != "policy" || ev.ReasonAdmin["en"] != "Landspeed policy violation" || ev.EventTimestamp.IsZero() {
		t.Errorf("common members %+v", ev)
	}
	if st := r.Stats(); st.Accepted != 1 || st.Handled != 1 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverLegacySubjectAndTypedEvents(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	rec := &recorder{}
	r := receiverFor(t, js, rec, nil)
	ctx := context.Background()

	tests := []struct {
		typ     string
		payload map[string]any
		check   func(Event) bool
	}{
		{EventTokenClaimsChange, map[string]any{"claims": map[string]any{"role": "ro-admin"}}, func(e Event) bool { return e.Claims["role"] == "ro-admin" }},
		{EventCredentialChange, map[string]any{"credential_type": "fido2-roaming", "change_type": "create", "fido2_aaguid": "accced6a"}, func(e Event) bool {
			return e.CredentialType == "fido2-roaming" && e.ChangeType == "create" && e.FIDO2AAGUID == "accced6a"
		}},
		{EventAssuranceLevelChange, map[string]any{"namespace": "NIST-AAL", "current_level": "nist-aal2", "previous_level": "nist-aal1", "change_direction": "increase"}, func(e Event) bool {
			return e.Namespace == "NIST-AAL" && e.CurrentLevel == "nist-aal2" && e.PreviousLevel == "nist-aal1"
		}},
		{EventDeviceComplianceChange, map[string]any{"current_status": "not-compliant", "previous_status": "compliant"}, func(e Event) bool { return e.CurrentStatus == "not-compliant" }},
		{EventRiskLevelChange, map[string]any{"principal": "USER", "current_level": "HIGH", "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH"}, func(e Event) bool {
			return e.Principal == "USER" && e.CurrentLevel == "HIGH" && e.RiskReason != ""
		}},
	}
	for _, tt := range tests {
		c := validClaims(js.srv.URL)
		delete(c, "sub_id")
		tt.payload["subject"] = map[string]any{"format": "iss_sub", "iss": "https://idp.example", "sub": "u-7"}
		c["events"] = map[string]any{tt.typ: tt.payload}
		ev, err := r.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c))
		if err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
		if !tt.check(*ev) || ev.Subject.Iss != "https://idp.example" || ev.Subject.Sub != "u-7" {
			t.Errorf("%s: decoded %+v", tt.typ, ev)
		}
	}
	if len(rec.got()) != len(tests) {
		t.Errorf("handler got %d events", len(rec.got()))
	}
}

func TestReceiverStreamEventsNotForwarded(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	rec := &recorder{}
	var updates []Event
	r := receiverFor(t, js, rec, func(c *ReceiverConfig) {
		c.OnStreamUpdated = func(_ context.Context, ev Event) { updates = append(updates, ev) }
	})
	ctx := context.Background()
	stream := map[string]any{"format": "opaque", "id": "s-1"}

	r.ExpectVerification("st-1")
	c := validClaims(js.srv.URL)
	c["sub_id"] = stream
	c["events"] = map[string]any{EventVerification: map[string]any{"state": "st-1"}}
	if _, err := r.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); err != nil {
		t.Fatalf("verification: %v", err)
	}
	// The same state is not accepted twice.
	c = validClaims(js.srv.URL)
	c["sub_id"] = stream
	c["events"] = map[string]any{EventVerification: map[string]any{"state": "st-1"}}
	if _, err := r.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); ErrorCode(err) != CodeInvalidState {
		t.Fatalf("second verification: %v, want invalid_state", err)
	}

	c = validClaims(js.srv.URL)
	c["sub_id"] = stream
	c["events"] = map[string]any{EventStreamUpdated: map[string]any{"status": "paused", "reason": "maintenance"}}
	if _, err := r.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); err != nil {
		t.Fatalf("stream-updated: %v", err)
	}
	if st, reason := r.StreamStatus(); st != StatusPaused || reason != "maintenance" {
		t.Errorf("stream status %q %q", st, reason)
	}
	if len(updates) != 1 || len(rec.got()) != 0 {
		t.Errorf("updates %d, handler events %d", len(updates), len(rec.got()))
	}
	if st := r.Stats(); st.Verifications != 1 || st.StreamUpdates != 1 || st.Handled != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverHandlerFailureIsRetryable(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	rec := &recorder{fail: errors.New("store down")}
	r := receiverFor(t, js, rec, nil)
	set := mint(t, key, "k1", jose.TypSecEvent, validClaims(js.srv.URL))

	resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil)
	if resp.Code != http.StatusServiceUnavailable || strings.Contains(resp.Body.String(), "store down") {
		t.Fatalf("status %d body %q, want 503 without internals", resp.Code, resp.Body)
	}
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	// The jti was released, so the retry is accepted.
	if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusAccepted {
		t.Fatalf("retry: status %d body %s", resp.Code, resp.Body)
	}
	if st := r.Stats(); st.HandlerFailures != 1 || st.Handled != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReceiverHandlerPanicIs503(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	r := receiverFor(t, js, HandlerFunc(func(context.Context, Event) error { panic("boom") }), nil)
	resp := postSET(t, r, http.MethodPost, MediaTypeSET, mint(t, key, "k1", jose.TypSecEvent, validClaims(js.srv.URL)), nil)
	if resp.Code != http.StatusServiceUnavailable || strings.Contains(resp.Body.String(), "boom") {
		t.Fatalf("status %d body %q", resp.Code, resp.Body)
	}
}

func TestKeySetRefetchOnUnknownKID(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: k1.Public()})
	now := time.Now()
	clock := func() time.Time { return now }
	ks, err := NewKeySet(KeySetConfig{Fetcher: testFetcher(), URL: js.srv.URL + "/jwks", MinRefresh: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ks.Key(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Key(ctx, "k1"); err != nil || js.fetches.Load() != 1 {
		t.Fatalf("cached lookup: %v, fetches %d", err, js.fetches.Load())
	}
	js.setKeys(jose.SetKey{KID: "k1", Key: k1.Public()}, jose.SetKey{KID: "k2", Key: k2.Public()})
	// Within MinRefresh of the first fetch, an unknown kid does not refetch.
	if _, err := ks.Key(ctx, "k2"); !errors.Is(err, jose.ErrUnknownKey) || js.fetches.Load() != 1 {
		t.Fatalf("rate-limited: %v, fetches %d", err, js.fetches.Load())
	}
	now = now.Add(2 * time.Minute)
	if _, err := ks.Key(ctx, "k2"); err != nil || js.fetches.Load() != 2 {
		t.Fatalf("rotated key: %v, fetches %d", err, js.fetches.Load())
	}
	// Still unknown after one refetch: one fetch only.
	now = now.Add(2 * time.Minute)
	if _, err := ks.Key(ctx, "k3"); !errors.Is(err, jose.ErrUnknownKey) || js.fetches.Load() != 3 {
		t.Fatalf("unknown kid: %v, fetches %d", err, js.fetches.Load())
	}
}

func TestDiscoverTransmitterIssuerMismatch(t *testing.T) {
	js := newJWKSServer(t)
	js.issuer = "https://other.example"
	_, err := DiscoverTransmitter(context.Background(), testFetcher(), js.srv.URL)
	if !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err %v, want ErrIssuerMismatch", err)
	}
	// A trailing slash is a different issuer too.
	js.issuer = ""
	if _, err := DiscoverTransmitter(context.Background(), testFetcher(), js.srv.URL+"/"); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("trailing slash: %v", err)
	}
	// Private addresses are refused unless the fetcher allows them.
	if _, err := DiscoverTransmitter(context.Background(), strictFetcher(), js.srv.URL); err == nil {
		t.Fatal("fetch of a loopback transmitter allowed")
	}
}

func TestMetadataURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://tr.example":          "https://tr.example/.well-known/ssf-configuration",
		"https://tr.example/":         "https://tr.example/.well-known/ssf-configuration",
		"https://tr.example/issuer1":  "https://tr.example/.well-known/ssf-configuration/issuer1",
		"https://tr.example:8443/a/b": "https://tr.example:8443/.well-known/ssf-configuration/a/b",
	} {
		got, err := MetadataURL(in)
		if err != nil || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "tr.example", "https://tr.example/?q=1", "https://u@tr.example"} {
		if _, err := MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) accepted", bad)
		}
	}
}

func TestReceiverOptions(t *testing.T) {
	key := newKey(t)
	js := newJWKSServer(t, jose.SetKey{KID: "k1", Key: key.Public()})
	ctx := context.Background()

	strict := receiverFor(t, js, &recorder{}, func(c *ReceiverConfig) { c.ForbidExp = true; c.StreamID = "s-1" })
	c := validClaims(js.srv.URL)
	c["exp"] = time.Now().Add(time.Hour).Unix()
	if _, err := strict.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); ErrorCode(err) != CodeInvalidRequest {
		t.Errorf("exp with ForbidExp: %v", err)
	}
	lenient := receiverFor(t, js, &recorder{}, nil)
	c = validClaims(js.srv.URL)
	c["exp"] = time.Now().Add(time.Hour).Unix()
	if _, err := lenient.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); err != nil {
		t.Errorf("unexpired exp: %v", err)
	}
	c = validClaims(js.srv.URL)
	c["sub_id"] = map[string]any{"format": "opaque", "id": "s-2"}
	c["events"] = map[string]any{EventStreamUpdated: map[string]any{"status": "disabled"}}
	if _, err := strict.Receive(ctx, mint(t, key, "k1", jose.TypSecEvent, c)); ErrorCode(err) != CodeInvalidRequest {
		t.Errorf("stream event for another stream: %v", err)
	}
	if st, _ := strict.StreamStatus(); st != StatusEnabled {
		t.Errorf("status changed to %q by another stream's event", st)
	}
}

func TestBearerAuthorizer(t *testing.T) {
	auth := BearerAuthorizer("s3cret")
	for hdr, want := range map[string]error{
		"Bearer s3cret": nil,
		"Bearer other":  ErrAuthenticationFailed,
		"":              ErrAuthenticationFailed,
		"s3cret":        ErrAuthenticationFailed,
	} {
		r, _ := http.NewRequest(http.MethodPost, "https://r.example/", nil)
		if hdr != "" {
			r.Header.Set("Authorization", hdr)
		}
		if err := auth(r); !errors.Is(err, want) && !(err == nil && want == nil) {
			t.Errorf("%q: %v, want %v", hdr, err, want)
		}
	}
	r, _ := http.NewRequest(http.MethodPost, "https://r.example/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if BearerAuthorizer("")(r) == nil {
		t.Error("empty token accepted")
	}
}

func TestReceiverKeysUnavailableIsRetryable(t *testing.T) {
	key := newKey(t)
	var down atomic.Bool
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	fetches := atomic.Int32{}
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		b, _ := jose.MarshalKeySet([]jose.SetKey{{KID: "k1", Key: key.Public()}})
		_, _ = w.Write(b)
	})
	down.Store(true)
	ks, err := NewKeySet(KeySetConfig{Fetcher: testFetcher(), URL: srv.URL + "/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	r, err := NewReceiver(ReceiverConfig{Issuer: srv.URL, Audience: testAudience, Keys: ks.Key, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	set := mint(t, key, "k1", jose.TypSecEvent, validClaims(srv.URL))
	for range 3 {
		if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusServiceUnavailable {
			t.Fatalf("keys down: status %d body %s", resp.Code, resp.Body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches while down, want 1 (rate-limited)", n)
	}
	if st := r.Stats(); st.Rejected != 0 || st.Transient != 3 {
		t.Errorf("stats %+v", st)
	}
	down.Store(false)
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp := postSET(t, r, http.MethodPost, MediaTypeSET, set, nil); resp.Code != http.StatusAccepted {
		t.Fatalf("keys back: status %d body %s", resp.Code, resp.Body)
	}
}
