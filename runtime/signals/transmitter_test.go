package signals

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// receiverForTransmitter discovers e's transmitter and returns a receiver
// trusting it.
func receiverForTransmitter(t *testing.T, e *transmitterEnv, h Handler, mod func(*ReceiverConfig)) *Receiver {
	t.Helper()
	md, ks, err := DiscoverKeys(context.Background(), testFetcher(), e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ReceiverConfig{Issuer: md.Issuer, Audience: testAudience, Keys: ks.Key, Handler: h}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPollRoundTrip(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	ctx := context.Background()
	sc := e.streamClient(t, tokenA)
	rec := &recorder{}
	// The receiver accepts session-revoked only, so a credential-change
	// SET is rejected and must come back to the transmitter in setErrs.
	r := receiverForTransmitter(t, e, rec, func(c *ReceiverConfig) { c.EventTypes = []string{EventSessionRevoked} })

	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked, EventCredentialChange, "urn:example:unsupported"}})
	if err != nil {
		t.Fatal(err)
	}
	if stream.Delivery == nil || stream.Delivery.Method != DeliveryPoll || !strings.HasPrefix(stream.Delivery.EndpointURL, e.srv.URL+"/ssf/poll/") {
		t.Fatalf("delivery %+v", stream.Delivery)
	}
	if len(stream.EventsDelivered) != 2 || len(stream.Aud) != 1 || stream.Aud[0] != testAudience || stream.Iss != e.srv.URL {
		t.Fatalf("stream %+v", stream)
	}
	alice := EmailSubject("alice@example.com")
	if err := sc.AddSubject(ctx, stream.StreamID, alice, nil); err != nil {
		t.Fatal(err)
	}

	for _, ev := range []Event{
		{Type: EventSessionRevoked, Subject: alice, InitiatingEntity: "admin"},
		{Type: EventCredentialChange, Subject: alice, CredentialType: "x509", ChangeType: "revoke"},
		{Type: EventSessionRevoked, Subject: EmailSubject("bob@example.com")}, // not subscribed
	} {
		if err := e.tr.Transmit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.tr.Pending(stream.StreamID); n != 2 {
		t.Fatalf("pending %d, want 2", n)
	}

	p, err := NewPoller(PollerConfig{
		Endpoint: stream.Delivery.EndpointURL, Receiver: r, ReturnImmediately: true, AllowHTTP: true,
		Token: func(context.Context) (string, error) { return tokenA, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.PollOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 2 || res.Accepted != 1 || res.Rejected != 1 || res.MoreAvailable {
		t.Fatalf("result %+v", res)
	}
	if evs := rec.got(); len(evs) != 1 || evs[0].Type != EventSessionRevoked || !evs[0].Subject.Matches(alice) || evs[0].InitiatingEntity != "admin" {
		t.Fatalf("handler got %+v", evs)
	}
	if p.Pending() != 2 || e.tr.Pending(stream.StreamID) != 2 {
		t.Fatalf("before flush: poller pending %d, transmitter pending %d", p.Pending(), e.tr.Pending(stream.StreamID))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Pending() != 0 || e.tr.Pending(stream.StreamID) != 0 {
		t.Fatalf("after flush: poller pending %d, transmitter pending %d", p.Pending(), e.tr.Pending(stream.StreamID))
	}
	errs := e.tr.SETErrors(stream.StreamID)
	if len(errs) != 1 {
		t.Fatalf("setErrs %+v", errs)
	}
	for _, eb := range errs {
		if eb.Err != CodeInvalidRequest {
			t.Errorf("setErr %+v", eb)
		}
	}
	if st := e.tr.Stats(); st.Acked != 1 || st.Failed != 1 {
		t.Errorf("transmitter stats %+v", st)
	}

	// Verification over poll: requested state comes back and is accepted.
	r.ExpectVerification("state-1")
	if err := sc.RequestVerification(ctx, stream.StreamID, "state-1"); err != nil {
		t.Fatal(err)
	}
	if res, err := p.PollOnce(ctx); err != nil || res.Accepted != 1 {
		t.Fatalf("verification poll: %+v, %v", res, err)
	}
	if st := r.Stats(); st.Verifications != 1 || st.Handled != 1 {
		t.Errorf("receiver stats %+v", st)
	}
	// Too soon for another verification.
	var he *HTTPError
	if err := sc.RequestVerification(ctx, stream.StreamID, "state-2"); !errors.As(err, &he) || he.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second verification: %v, want 429", err)
	}

	if err := p.Flush(ctx); err != nil || e.tr.Pending(stream.StreamID) != 0 {
		t.Fatalf("pending %d after verification flush, err %v", e.tr.Pending(stream.StreamID), err)
	}

	// moreAvailable with a small maxEvents.
	small, err := NewPoller(PollerConfig{
		Endpoint: stream.Delivery.EndpointURL, Receiver: r, ReturnImmediately: true, AllowHTTP: true, MaxEvents: 2,
		Token: func(context.Context) (string, error) { return tokenA, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: alice}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = small.PollOnce(ctx)
	if err != nil || res.Received != 2 || !res.MoreAvailable {
		t.Fatalf("first page: %+v, %v", res, err)
	}
	res, err = small.PollOnce(ctx)
	if err != nil || res.Received != 1 || res.MoreAvailable {
		t.Fatalf("second page: %+v, %v", res, err)
	}
	if err := small.Flush(ctx); err != nil || e.tr.Pending(stream.StreamID) != 0 {
		t.Fatalf("pending %d after final flush, err %v", e.tr.Pending(stream.StreamID), err)
	}
	if n := len(rec.got()); n != 4 {
		t.Errorf("handler got %d events, want 4", n)
	}
}

func TestPollLongPollWakesOnEvent(t *testing.T) {
	e := newTransmitterEnv(t, func(c *TransmitterConfig) { c.LongPollMax = 5 * time.Second })
	ctx := context.Background()
	sc := e.streamClient(t, tokenA)
	rec := &recorder{}
	r := receiverForTransmitter(t, e, rec, nil)
	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	sub := OpaqueSubject("agent-7")
	if err := sc.AddSubject(ctx, stream.StreamID, sub, nil); err != nil {
		t.Fatal(err)
	}
	p, err := NewPoller(PollerConfig{
		Endpoint: stream.Delivery.EndpointURL, Receiver: r, AllowHTTP: true,
		Token: func(context.Context) (string, error) { return tokenA, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: sub})
	}()
	start := time.Now()
	res, err := p.PollOnce(ctx)
	if err != nil || res.Received != 1 {
		t.Fatalf("long poll: %+v, %v", res, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("long poll took %v", d)
	}
}

func TestPollRunStopsOnCancel(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := e.streamClient(t, tokenA)
	rec := &recorder{}
	r := receiverForTransmitter(t, e, rec, nil)
	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	sub := OpaqueSubject("agent-9")
	if err := sc.AddSubject(ctx, stream.StreamID, sub, nil); err != nil {
		t.Fatal(err)
	}
	p, err := NewPoller(PollerConfig{
		Endpoint: stream.Delivery.EndpointURL, Receiver: r, AllowHTTP: true, Interval: 50 * time.Millisecond,
		Token: func(context.Context) (string, error) { return tokenA, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: sub}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "event via Run", func() bool { return len(rec.got()) == 1 })
	waitFor(t, "ack via Run", func() bool { return e.tr.Pending(stream.StreamID) == 0 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestPushDeliveryEndToEnd(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	ctx := context.Background()
	rec := &recorder{}
	var r *Receiver
	r = receiverForTransmitter(t, e, rec, func(c *ReceiverConfig) {
		c.Authorize = func(req *http.Request) error {
			if req.Header.Get("Authorization") != "Bearer push-secret" {
				return ErrAuthenticationFailed
			}
			return nil
		}
	})
	rsrv := httptest.NewServer(r)
	t.Cleanup(rsrv.Close)

	sc := e.streamClient(t, tokenA)
	stream, err := sc.CreateStream(ctx, StreamConfig{
		EventsRequested: []string{EventCredentialChange, EventSessionRevoked},
		Delivery:        &Delivery{Method: DeliveryPush, EndpointURL: rsrv.URL + "/events", AuthorizationHeader: "Bearer push-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if stream.Delivery.AuthorizationHeader != "" {
		t.Error("authorization_header echoed back")
	}
	agent := IssSubSubject(e.srv.URL, "agent-1")
	if err := sc.AddSubject(ctx, stream.StreamID, agent, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Transmit(ctx, Event{Type: EventCredentialChange, Subject: agent, CredentialType: "x509", ChangeType: "revoke", ReasonAdmin: map[string]string{"en": "agent quarantined"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "push delivery", func() bool { return len(rec.got()) == 1 })
	ev := rec.got()[0]
	if ev.Type != EventCredentialChange || ev.ChangeType != "revoke" || !ev.Subject.Matches(agent) || ev.ReasonAdmin["en"] != "agent quarantined" {
		t.Errorf("event %+v", ev)
	}
	waitFor(t, "queue drained", func() bool { return e.tr.Pending(stream.StreamID) == 0 })
	if st := e.tr.Stats(); st.Pushed != 1 {
		t.Errorf("stats %+v", st)
	}

	// Pausing sends stream-updated and holds events; re-enabling sends
	// stream-updated and the held events.
	if _, err := sc.SetStatus(ctx, StreamStatus{StreamID: stream.StreamID, Status: StatusPaused, Reason: "maintenance"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "paused update", func() bool { s, _ := r.StreamStatus(); return s == StatusPaused })
	if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: agent}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if len(rec.got()) != 1 || e.tr.Pending(stream.StreamID) != 1 {
		t.Fatalf("paused: handler %d, pending %d", len(rec.got()), e.tr.Pending(stream.StreamID))
	}
	if st, err := sc.Status(ctx, stream.StreamID); err != nil || st.Status != StatusPaused {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := sc.SetStatus(ctx, StreamStatus{StreamID: stream.StreamID, Status: StatusEnabled}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "held event", func() bool { return len(rec.got()) == 2 })
	waitFor(t, "enabled update", func() bool { s, _ := r.StreamStatus(); return s == StatusEnabled })
	if st := r.Stats(); st.StreamUpdates != 2 || st.Rejected != 0 {
		t.Errorf("receiver stats %+v", st)
	}
}

func TestPushRejectionIsPermanent(t *testing.T) {
	// Client B's streams carry aud client-b, which the receiver refuses.
	e := newTransmitterEnv(t, nil)
	ctx := context.Background()
	rec := &recorder{}
	r := receiverForTransmitter(t, e, rec, nil)
	var hits atomic.Int32
	rsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hits.Add(1)
		r.ServeHTTP(w, req)
	}))
	t.Cleanup(rsrv.Close)
	sc := e.streamClient(t, tokenB)
	stream, err := sc.CreateStream(ctx, StreamConfig{
		EventsRequested: []string{EventSessionRevoked},
		Delivery:        &Delivery{Method: DeliveryPush, EndpointURL: rsrv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := OpaqueSubject("agent-2")
	if err := sc.AddSubject(ctx, stream.StreamID, sub, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: sub}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rejection recorded", func() bool { return len(e.tr.SETErrors(stream.StreamID)) == 1 })
	for _, eb := range e.tr.SETErrors(stream.StreamID) {
		if eb.Err != CodeInvalidAudience {
			t.Errorf("recorded %+v", eb)
		}
	}
	if hits.Load() != 1 || len(rec.got()) != 0 || e.tr.Pending(stream.StreamID) != 0 {
		t.Errorf("hits %d, handled %d, pending %d", hits.Load(), len(rec.got()), e.tr.Pending(stream.StreamID))
	}
}

func TestPushRetriesTransientFailures(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	ctx := context.Background()
	calls := make(chan int, 10)
	n := 0
	rsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n++
		calls <- n
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rsrv.Close)
	sc := e.streamClient(t, tokenA)
	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}, Delivery: &Delivery{Method: DeliveryPush, EndpointURL: rsrv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	sub := OpaqueSubject("agent-3")
	if err := sc.AddSubject(ctx, stream.StreamID, sub, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: sub}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered after retries", func() bool { return e.tr.Stats().Pushed == 1 })
	if len(calls) != 3 {
		t.Errorf("%d attempts, want 3", len(calls))
	}
}

func TestPushRefusesPrivateAddressByDefault(t *testing.T) {
	e := newTransmitterEnv(t, func(c *TransmitterConfig) { c.AllowPrivatePush = false })
	ctx := context.Background()
	hit := make(chan struct{}, 1)
	rsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { hit <- struct{}{} }))
	t.Cleanup(rsrv.Close)
	sc := e.streamClient(t, tokenA)
	stream, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}, Delivery: &Delivery{Method: DeliveryPush, EndpointURL: rsrv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	sub := OpaqueSubject("agent-4")
	if err := sc.AddSubject(ctx, stream.StreamID, sub, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: sub}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drop after attempts", func() bool { return e.tr.Stats().Failed == 1 })
	if len(hit) != 0 {
		t.Fatal("push reached a loopback address")
	}
}

func TestStreamCRUDAndOwnership(t *testing.T) {
	e := newTransmitterEnv(t, func(c *TransmitterConfig) { c.MaxStreamsPerClient = 2 })
	ctx := context.Background()
	a := e.streamClient(t, tokenA)
	b := e.streamClient(t, tokenB)

	s, err := a.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}, Description: "first"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Stream(ctx, s.StreamID)
	if err != nil || got.Description != "first" || got.StreamID != s.StreamID {
		t.Fatalf("read: %+v %v", got, err)
	}
	is404 := func(err error) bool {
		var he *HTTPError
		return errors.As(err, &he) && he.StatusCode == http.StatusNotFound
	}
	if _, err := b.Stream(ctx, s.StreamID); !is404(err) {
		t.Errorf("other client read: %v, want 404", err)
	}
	if _, err := b.UpdateStream(ctx, StreamConfig{StreamID: s.StreamID, Description: "mine"}); !is404(err) {
		t.Errorf("other client update: %v, want 404", err)
	}
	if err := b.DeleteStream(ctx, s.StreamID); !is404(err) {
		t.Errorf("other client delete: %v, want 404", err)
	}
	if _, err := b.Status(ctx, s.StreamID); !is404(err) {
		t.Errorf("other client status: %v, want 404", err)
	}
	if err := b.AddSubject(ctx, s.StreamID, OpaqueSubject("x"), nil); !is404(err) {
		t.Errorf("other client add subject: %v, want 404", err)
	}
	if err := b.RequestVerification(ctx, s.StreamID, "x"); !is404(err) {
		t.Errorf("other client verification: %v, want 404", err)
	}
	if list, err := b.Streams(ctx); err != nil || len(list) != 0 {
		t.Errorf("other client list: %+v %v", list, err)
	}

	upd, err := a.UpdateStream(ctx, StreamConfig{StreamID: s.StreamID, EventsRequested: []string{EventSessionRevoked, EventCredentialChange}})
	if err != nil || len(upd.EventsDelivered) != 2 || upd.Description != "first" {
		t.Fatalf("patch: %+v %v", upd, err)
	}
	rep, err := a.ReplaceStream(ctx, StreamConfig{StreamID: s.StreamID, EventsRequested: []string{EventRiskLevelChange}})
	if err != nil || len(rep.EventsDelivered) != 1 || rep.Description != "" || rep.Delivery.Method != DeliveryPoll {
		t.Fatalf("put: %+v %v", rep, err)
	}
	var he *HTTPError
	if _, err := a.UpdateStream(ctx, StreamConfig{StreamID: s.StreamID, Aud: Audience{"https://elsewhere.example"}}); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Errorf("aud change: %v, want 400", err)
	}
	if _, err := a.CreateStream(ctx, StreamConfig{Aud: Audience{"https://elsewhere.example"}}); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign aud: %v, want 400", err)
	}
	if _, err := a.CreateStream(ctx, StreamConfig{Delivery: &Delivery{Method: DeliveryPush, EndpointURL: "ftp://x"}}); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Errorf("bad push URL: %v, want 400", err)
	}
	if _, err := a.CreateStream(ctx, StreamConfig{Description: "second"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateStream(ctx, StreamConfig{Description: "third"}); !errors.As(err, &he) || he.StatusCode != http.StatusConflict {
		t.Errorf("over limit: %v, want 409", err)
	}
	if list, err := a.Streams(ctx); err != nil || len(list) != 2 {
		t.Errorf("list: %d %v", len(list), err)
	}
	if st, err := a.Status(ctx, s.StreamID); err != nil || st.Status != StatusEnabled {
		t.Errorf("status: %+v %v", st, err)
	}
	if err := a.RemoveSubject(ctx, s.StreamID, OpaqueSubject("x")); err != nil {
		t.Errorf("remove subject: %v", err)
	}
	if err := a.AddSubject(ctx, s.StreamID, Subject{Format: "x-custom"}, nil); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
		t.Errorf("bad subject: %v, want 400", err)
	}
	if err := a.DeleteStream(ctx, s.StreamID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stream(ctx, s.StreamID); !is404(err) {
		t.Errorf("read after delete: %v, want 404", err)
	}

	// Unauthenticated and denied callers.
	for token, want := range map[string]int{"nope": http.StatusUnauthorized, "denied": http.StatusForbidden} {
		c := e.streamClient(t, token)
		if _, err := c.Streams(ctx); !errors.As(err, &he) || he.StatusCode != want {
			t.Errorf("token %q: %v, want %d", token, err, want)
		}
	}
}

func TestStreamClientChecksIss(t *testing.T) {
	// A configuration endpoint answering with another iss is refused.
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET "+WellKnownPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, TransmitterMetadata{Issuer: srv.URL, ConfigurationEndpoint: srv.URL + "/streams"})
	})
	mux.HandleFunc("POST /streams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, StreamConfig{StreamID: "s", Iss: "https://evil.example"})
	})
	c, err := NewStreamClient(StreamClientConfig{Issuer: srv.URL, Fetcher: testFetcher(), AllowHTTP: true, Token: func(context.Context) (string, error) { return "t", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(context.Background(), StreamConfig{}); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err %v, want ErrIssuerMismatch", err)
	}
	// And metadata naming another issuer is refused before any call.
	c2, _ := NewStreamClient(StreamClientConfig{Issuer: srv.URL + "/x", Fetcher: testFetcher(), AllowHTTP: true, Token: func(context.Context) (string, error) { return "t", nil }})
	if _, err := c2.Metadata(context.Background()); err == nil {
		t.Fatal("metadata of another issuer accepted")
	}
}

func TestTransmitterMetadataAndJWKS(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	md, err := DiscoverTransmitter(context.Background(), testFetcher(), e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if md.SpecVersion != "1_0" || md.ConfigurationEndpoint != e.srv.URL+"/ssf/streams" || md.VerificationEndpoint == "" ||
		md.StatusEndpoint == "" || md.AddSubjectEndpoint == "" || md.RemoveSubjectEndpoint == "" ||
		len(md.DeliveryMethodsSupported) != 2 || len(md.AuthorizationSchemes) != 1 || md.AuthorizationSchemes[0].SpecURN != "urn:ietf:rfc:6749" {
		t.Errorf("metadata %+v", md)
	}
	ks, err := NewKeySet(KeySetConfig{Fetcher: testFetcher(), URL: md.JWKSURI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Key(context.Background(), "tk1"); err != nil {
		t.Fatalf("published key: %v", err)
	}
}

func TestTransmitRefusesBadEvents(t *testing.T) {
	e := newTransmitterEnv(t, nil)
	ctx := context.Background()
	for _, ev := range []Event{
		{Type: EventVerification, Subject: OpaqueSubject("s")},
		{Type: EventCredentialChange, Subject: OpaqueSubject("a")}, // no credential_type
		{Type: EventSessionRevoked, Subject: Subject{Format: "x-custom"}},
		{Type: "urn:example:unknown", Subject: OpaqueSubject("a")},
	} {
		if err := e.tr.Transmit(ctx, ev); err == nil {
			t.Errorf("Transmit(%s) accepted", ev.Type)
		}
	}
}

func TestDefaultSubjectsAll(t *testing.T) {
	e := newTransmitterEnv(t, func(c *TransmitterConfig) { c.DefaultSubjects = DefaultSubjectsAll })
	ctx := context.Background()
	sc := e.streamClient(t, tokenA)
	s, err := sc.CreateStream(ctx, StreamConfig{EventsRequested: []string{EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.RemoveSubject(ctx, s.StreamID, OpaqueSubject("muted")); err != nil {
		t.Fatal(err)
	}
	_ = e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: OpaqueSubject("anyone")})
	_ = e.tr.Transmit(ctx, Event{Type: EventSessionRevoked, Subject: OpaqueSubject("muted")})
	if n := e.tr.Pending(s.StreamID); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
}

func TestTransmitterIssuerWithPath(t *testing.T) {
	lh := &lateHandler{}
	srv := httptest.NewServer(lh)
	t.Cleanup(srv.Close)
	iss := srv.URL + "/issuer1"
	tr, err := NewTransmitter(TransmitterConfig{Issuer: iss, Signer: newKey(t), KeyID: "k", Authorize: bearerAuthorize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	lh.set(tr.Handler())
	if tr.MetadataPath() != "/.well-known/ssf-configuration/issuer1" {
		t.Errorf("metadata path %q", tr.MetadataPath())
	}
	sc, err := NewStreamClient(StreamClientConfig{Issuer: iss, Fetcher: testFetcher(), AllowHTTP: true, Token: func(context.Context) (string, error) { return tokenA, nil }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sc.CreateStream(context.Background(), StreamConfig{EventsRequested: []string{EventSessionRevoked}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Iss != iss || !strings.HasPrefix(s.Delivery.EndpointURL, iss+"/ssf/poll/") {
		t.Errorf("stream %+v", s)
	}
}
