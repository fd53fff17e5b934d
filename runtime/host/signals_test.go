package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/supervisor"
)

func pushSET(t *testing.T, url, set string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/secevent+jwt", strings.NewReader(set))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestSessionRevokedStopsTasksAndTokens: a CAEP session-revoked event for
// alice, pushed by her identity provider, stops alice's running task (not
// bob's), drops the token the gateway holds for her, and her very next
// call is refused without reaching the upstream, while bob carries on.
// The remediation is audited with its cause; a replayed SET is refused.
func TestSessionRevokedStopsTasksAndTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	idp, ts := bearerTransmitter(t, "not-used")
	idpURL := ts.URL
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h, upstreamCalls := newGatewayHost(t, func(c *config.Config) {
		c.Signals.Receivers = []config.SignalReceiverConfig{{Name: "idp", Issuer: idpURL, AllowPrivate: true}}
		c.Agents = []config.AgentConfig{{Name: "waiter", Path: exe, Env: map[string]string{testAgentEnv: "wait"}}}
	})

	if _, err := h.sup.WaitFor(ctx, "waiter", func(st supervisor.AgentStatus) bool { return st.State == supervisor.StateRunning }); err != nil {
		t.Fatal(err)
	}
	// alice and bob each have a running task and a gateway session, so
	// the host holds a delegated token for each.
	type result struct {
		user string
		err  error
	}
	done := make(chan result, 2)
	var wg sync.WaitGroup
	for _, user := range []string{"alice", "bob"} {
		wg.Add(1)
		go func() {
			started := false
			err := h.RunTask(ctx, localapi.TaskRequest{Agent: "waiter", Input: "wait", Subject: user}, func(ev localapi.TaskEvent) error {
				if !started && ev.Type == "thought" {
					started = true
					wg.Done()
				}
				return nil
			})
			if !started {
				wg.Done()
			}
			done <- result{user, err}
		}()
	}
	wg.Wait()
	sessions := map[string]*mcp.ClientSession{}
	upstreamToken := map[string]string{} // the delegated token's id the upstream saw
	for _, user := range []string{"alice", "bob"} {
		s := sdkSession(t, ctx, h.Issuer()+"/mcp/gw", user, user+"-pw", []string{"docs:read"})
		defer s.Close()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			t.Fatalf("%s before revocation: %v %+v", user, err, res)
		}
		_, upstreamToken[user], _ = strings.Cut(res.Content[0].(*mcp.TextContent).Text, " token ")
		sessions[user] = s
	}
	if n := upstreamCalls.Load(); n != 2 {
		t.Fatalf("%d upstream calls, want 2", n)
	}

	set, _, err := idp.SignSET(ctx, signals.Event{Type: signals.EventSessionRevoked,
		Subject: signals.Subject{Format: signals.FormatEmail, Email: "alice@example.com"}, EventTimestamp: time.Now(),
		InitiatingEntity: "admin", ReasonAdmin: map[string]string{"en": "account compromised"}}, []string{h.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	if resp := pushSET(t, h.Issuer()+PathSSFPush+"idp", set); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d", resp.StatusCode)
	}

	// alice's task stops, with the cause; bob's keeps running.
	select {
	case r := <-done:
		if r.user != "alice" || !errors.Is(r.err, ErrTaskStopped) || !strings.Contains(r.err.Error(), "session-revoked") {
			t.Fatalf("task of %s ended with %v", r.user, r.err)
		}
	case <-ctx.Done():
		t.Fatal("alice's task did not stop")
	}
	select {
	case r := <-done:
		t.Fatalf("task of %s ended too: %v", r.user, r.err)
	case <-time.After(200 * time.Millisecond):
	}

	// alice's very next call never uses the token the host held for her:
	// her access token is refused, so either the call fails without
	// reaching the upstream, or her client signs her in again (the test
	// browser knows her password) and the upstream sees a new token.
	res, err := sessions["alice"].CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err == nil && !res.IsError {
		_, tok, _ := strings.Cut(res.Content[0].(*mcp.TextContent).Text, " token ")
		if tok == upstreamToken["alice"] {
			t.Fatal("alice's call after revocation reached the upstream with the token held before")
		}
	} else if n := upstreamCalls.Load(); n != 2 {
		t.Fatalf("the upstream was called for alice after revocation (%d calls)", n)
	}
	res, err = sessions["bob"].CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("bob after alice's revocation: %v %+v", err, res)
	}
	if _, tok, _ := strings.Cut(res.Content[0].(*mcp.TextContent).Text, " token "); tok != upstreamToken["bob"] {
		t.Fatal("bob's cached delegated token was dropped too")
	}

	// The remediation is in the audit log with its cause.
	entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	remediations := 0
	for _, e := range entries {
		r := e.Record
		if r.Action == audit.ActionRemediation && r.Subject == "alice" {
			remediations++
			if r.Remedy != "revoke" || !strings.Contains(r.Cause, "idp: session-revoked (account compromised)") || !strings.Contains(r.Reason, "1 tasks stopped, 1 sessions dropped") {
				t.Fatalf("remediation record %+v", r)
			}
		}
	}
	if remediations != 1 {
		t.Fatalf("%d remediation records for alice, want 1", remediations)
	}
	// The same SET again is refused and changes nothing.
	if resp := pushSET(t, h.Issuer()+PathSSFPush+"idp", set); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed SET: %d", resp.StatusCode)
	}
	cancel()
	<-done
}

// TestPolledSignal: a transmitter that is polled (RFC 8936) rather than
// pushing; its session-revoked event for alice reaches the host through
// the poll and is acted on and audited.
func TestPolledSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	idp, ts := bearerTransmitter(t, "poll-secret")
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/ssf/streams",
		strings.NewReader(`{"delivery":{"method":"`+signals.DeliveryPoll+`"},"events_requested":["`+signals.EventSessionRevoked+`"]}`))
	req.Header.Set("Authorization", "Bearer poll-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var stream signals.StreamConfig
	err = json.NewDecoder(resp.Body).Decode(&stream)
	resp.Body.Close()
	if err != nil || stream.Delivery == nil || stream.Delivery.EndpointURL == "" {
		t.Fatalf("stream: %d %+v %v", resp.StatusCode, stream, err)
	}

	t.Setenv("IDP_POLL_TOKEN", "poll-secret")
	h, _ := newGatewayHost(t, func(c *config.Config) {
		c.Signals.Receivers = []config.SignalReceiverConfig{{Name: "idp", Issuer: ts.URL, Audience: "agenthost",
			Delivery: config.DeliveryPoll, PollURL: stream.Delivery.EndpointURL, TokenEnv: "IDP_POLL_TOKEN", AllowPrivate: true}}
	})
	if err := idp.Transmit(ctx, signals.Event{Type: signals.EventSessionRevoked,
		Subject: signals.Subject{Format: signals.FormatEmail, Email: "alice@example.com"}, EventTimestamp: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for {
		entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if r := e.Record; r.Action == audit.ActionRemediation && r.Subject == "alice" && strings.HasPrefix(r.Cause, "idp: session-revoked") {
				if revoked, err := h.as.SubjectRevoked(ctx, "alice", time.Now().Add(-time.Second)); err != nil || !revoked {
					t.Fatalf("alice is not revoked at the authorization server: %v %v", revoked, err)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the polled event was never acted on")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestManagedStreams: with manage, the host sets up its own stream at the
// transmitter when it starts (a push stream to its push endpoint with a
// fresh secret, or a poll stream whose endpoint it learns), and acts on
// what arrives. A push without the secret is refused.
func TestManagedStreams(t *testing.T) {
	for _, delivery := range []string{config.DeliveryPush, config.DeliveryPoll} {
		t.Run(delivery, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			idp, ts := bearerTransmitter(t, "mgmt-secret")

			t.Setenv("IDP_TOKEN", "mgmt-secret")
			h, _ := newGatewayHost(t, func(c *config.Config) {
				c.Signals.Receivers = []config.SignalReceiverConfig{{Name: "idp", Issuer: ts.URL, Audience: "agenthost",
					Delivery: delivery, Manage: true, TokenEnv: "IDP_TOKEN", AllowPrivate: true}}
			})
			wantMethod := map[string]string{config.DeliveryPush: signals.DeliveryPush, config.DeliveryPoll: signals.DeliveryPoll}[delivery]
			// Wait for the host's stream to exist.
			for {
				req, _ := http.NewRequest(http.MethodGet, ts.URL+"/ssf/streams", nil)
				req.Header.Set("Authorization", "Bearer mgmt-secret")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var streams []signals.StreamConfig
				_ = json.NewDecoder(resp.Body).Decode(&streams)
				resp.Body.Close()
				if len(streams) == 1 {
					if d := streams[0].Delivery; d == nil || d.Method != wantMethod {
						t.Fatalf("stream delivery %+v", d)
					}
					break
				}
				select {
				case <-ctx.Done():
					t.Fatal("the host never set up its stream")
				case <-time.After(20 * time.Millisecond):
				}
			}
			if err := idp.Transmit(ctx, signals.Event{Type: signals.EventSessionRevoked,
				Subject: signals.Subject{Format: signals.FormatEmail, Email: "alice@example.com"}, EventTimestamp: time.Now()}); err != nil {
				t.Fatal(err)
			}
			for {
				entries, err := audit.Read(ctx, syncedStore(t, h), 0, 10000)
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(entries, func(e audit.Entry) bool {
					return e.Record.Action == audit.ActionRemediation && e.Record.Subject == "alice"
				}) {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("the event was never acted on (transmitter: %+v)", idp.Stats())
				case <-time.After(20 * time.Millisecond):
				}
			}
			if delivery == config.DeliveryPush {
				set, _, err := idp.SignSET(ctx, signals.Event{Type: signals.EventSessionRevoked,
					Subject: signals.Subject{Format: signals.FormatEmail, Email: "bob@example.com"}, EventTimestamp: time.Now()}, []string{"agenthost"})
				if err != nil {
					t.Fatal(err)
				}
				if resp := pushSET(t, h.Issuer()+PathSSFPush+"idp", set); resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("push without the stream's secret: %d", resp.StatusCode)
				}
			}
		})
	}
}

// bearerTransmitter is an SSF transmitter on an httptest server whose
// stream management accepts the bearer token as the client "agenthost";
// it covers every subject and may push to loopback http endpoints.
func bearerTransmitter(t *testing.T, token string) (*signals.Transmitter, *httptest.Server) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler = http.NotFoundHandler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	idp, err := signals.NewTransmitter(signals.TransmitterConfig{Issuer: ts.URL, Signer: key, KeyID: "idp-1",
		DefaultSubjects: signals.DefaultSubjectsAll, AllowHTTPPush: true, AllowPrivatePush: true,
		Authorize: func(r *http.Request) (string, error) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				return "", errors.New("wrong token")
			}
			return "agenthost", nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	handler = idp.Handler()
	return idp, ts
}
