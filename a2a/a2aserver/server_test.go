package a2aserver_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/a2a"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/a2a/a2aremote"
	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/dpop"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/txntoken"
)

func TestCardAndMetadata(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	rc, err := a2aremote.New(a2aremote.Config{HTTPClient: f.http.Client(), AllowHTTP: true, AllowPrivate: true,
		RequireSignedCards: true,
		CardKeys:           func(context.Context, string) (jose.KeyFunc, error) { return f.cardKeys(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	card, err := rc.FetchCard(ctx, f.agentURL("research"))
	if err != nil {
		t.Fatal(err)
	}
	ac := card.AgentCard
	if ac.URL != f.agentURL("research") || card.Endpoint != ac.URL || ac.PreferredTransport != a2a.TransportProtocolJSONRPC ||
		ac.ProtocolVersion != a2acard.ProtocolVersion || !ac.Capabilities.Streaming {
		t.Fatalf("card %+v", ac)
	}
	if card.Verified == nil || card.Verified.KeyID != cardKID {
		t.Fatalf("verified %+v", card.Verified)
	}
	oa := ac.SecuritySchemes[a2acard.SchemeOAuth2].(a2a.OAuth2SecurityScheme)
	if oa.Flows.ClientCredentials.TokenURL != issuer+"/token" || oa.Oauth2MetadataURL != issuer+"/.well-known/oauth-authorization-server" {
		t.Fatalf("oauth2 scheme %+v", oa)
	}
	if _, err := a2acard.Verify(ctx, ac, a2acard.VerifyOptions{Keys: f.cardKeys()}); err != nil {
		t.Fatalf("the decoded card verifies too: %v", err)
	}
	if got, ok := f.srv.Card("research"); !ok || got.URL != ac.URL {
		t.Fatalf("Server.Card = %+v, %v", got, ok)
	}

	// RFC 9728: the metadata of the agent at the path derived from its
	// URL, naming it as the resource.
	resp, err := f.http.Client().Get(f.http.URL + "/.well-known/oauth-protected-resource/a2a/research")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md oauth.ResourceMetadata
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || md.Resource != f.agentURL("research") || len(md.AuthorizationServers) != 1 ||
		md.AuthorizationServers[0] != issuer || md.ScopesSupported[0] != scopeAgent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("metadata %d %+v", resp.StatusCode, md)
	}

	for _, path := range []string{"/a2a/nobody/.well-known/agent-card.json", "/.well-known/oauth-protected-resource/a2a/nobody"} {
		resp, err := f.http.Client().Get(f.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestSendMessage(t *testing.T) {
	f := newFixture(t)
	cl := f.client("research", f.token("research", "alice", "cli"), "Txn-Token", "txn.token.value")
	res, err := cl.SendMessage(context.Background(), text("hello"))
	if err != nil {
		t.Fatal(err)
	}
	task, ok := res.(*a2a.Task)
	if !ok {
		t.Fatalf("result %T", res)
	}
	if task.Status.State != a2a.TaskStateCompleted || artifactText(task) != "Hello, alice" {
		t.Fatalf("task %s %q", task.Status.State, artifactText(task))
	}
	req := f.runner.last()
	if req.Agent != "research" || req.Caller.Subject != "alice" || req.Caller.ClientID != "cli" || req.Caller.Actor == nil ||
		req.Caller.Actor.Subject != "spiffe://td/agent/assistant" || req.TxnToken != "txn.token.value" || req.TxnClaims != nil ||
		req.TaskID != string(task.ID) || req.ContextID != task.ContextID || len(req.History) != 0 {
		t.Fatalf("runner request %+v", req)
	}

	got, err := cl.GetTask(context.Background(), &a2a.TaskQueryParams{ID: task.ID})
	if err != nil || got.Status.State != a2a.TaskStateCompleted || artifactText(got) != "Hello, alice" {
		t.Fatalf("tasks/get: %+v %v", got, err)
	}
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	cl := f.client("research", f.token("research", "alice", "cli"))
	var kinds []string
	var last *a2a.TaskStatusUpdateEvent
	var streamed strings.Builder
	for ev, err := range cl.SendStreamingMessage(context.Background(), text("chunks")) {
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *a2a.Task:
			kinds = append(kinds, "task:"+string(e.Status.State))
		case *a2a.TaskStatusUpdateEvent:
			kinds = append(kinds, "status:"+string(e.Status.State))
			last = e
		case *a2a.TaskArtifactUpdateEvent:
			kinds = append(kinds, "artifact")
			for _, p := range e.Artifact.Parts {
				streamed.WriteString(p.(a2a.TextPart).Text)
			}
		}
	}
	want := "task:submitted status:working status:working artifact artifact status:completed"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("events %v, want %s", kinds, want)
	}
	if !last.Final || streamed.String() != "ab" {
		t.Fatalf("last %+v, streamed %q", last, streamed.String())
	}
	task := waitState(t, cl, last.TaskID, a2a.TaskStateCompleted)
	if artifactText(task) != "ab" || len(task.Artifacts) != 1 || task.Artifacts[0].Name != "response" {
		t.Fatalf("artifacts %+v", task.Artifacts)
	}

	// The final answer replaces the streamed chunks.
	var final *a2a.TaskArtifactUpdateEvent
	for ev, err := range cl.SendStreamingMessage(context.Background(), text("hello")) {
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := ev.(*a2a.TaskArtifactUpdateEvent); ok {
			final = e
		}
	}
	if final == nil || final.Append || !final.LastChunk {
		t.Fatalf("final artifact event %+v", final)
	}
	task = waitState(t, cl, final.TaskID, a2a.TaskStateCompleted)
	if artifactText(task) != "Hello, alice" {
		t.Fatalf("answer %q", artifactText(task))
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	tok := f.token("research", "alice", "cli")
	cl := f.pollingClient("research", tok)
	ctx := context.Background()
	res, err := cl.SendMessage(ctx, text("block"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.(*a2a.Task).ID
	select {
	case got := <-f.runner.started:
		if got != string(id) {
			t.Fatalf("started %s, want %s", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the runner did not start")
	}
	waitState(t, cl, id, a2a.TaskStateWorking)

	task, err := cl.CancelTask(ctx, &a2a.TaskIDParams{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	if task.Status.State != a2a.TaskStateCanceled {
		t.Fatalf("tasks/cancel: %s", task.Status.State)
	}
	select {
	case got := <-f.runner.canceled:
		if got != string(id) {
			t.Fatalf("canceled %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the runner's context was not canceled")
	}
	waitState(t, cl, id, a2a.TaskStateCanceled)
	if _, err := cl.CancelTask(ctx, &a2a.TaskIDParams{ID: id}); err == nil {
		// a2a-go answers a second cancel of a canceled task with the
		// task; a completed task is not cancelable.
		t.Log("second cancel accepted")
	}
	done, err := cl.SendMessage(ctx, text("done"))
	if err != nil {
		t.Fatal(err)
	}
	doneID := waitState(t, cl, done.(*a2a.Task).ID, a2a.TaskStateCompleted).ID
	if _, err := cl.CancelTask(ctx, &a2a.TaskIDParams{ID: doneID}); !errors.Is(err, a2a.ErrTaskNotCancelable) {
		t.Fatalf("cancel of a completed task: %v", err)
	}
}

func TestCloseCancelsRuns(t *testing.T) {
	f := newFixture(t)
	cl := f.pollingClient("research", f.token("research", "alice", "cli"))
	res, err := cl.SendMessage(context.Background(), text("block"))
	if err != nil {
		t.Fatal(err)
	}
	<-f.runner.started
	_ = f.srv.Close()
	select {
	case <-f.runner.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the run")
	}
	task := waitState(t, cl, res.(*a2a.Task).ID, a2a.TaskStateCanceled)
	if !strings.Contains(statusText(task.Status), "shutting down") {
		t.Fatalf("status %+v", task.Status)
	}
}

func TestApproval(t *testing.T) {
	f := newFixture(t)
	cl := f.client("research", f.token("research", "alice", "cli"))
	ctx := context.Background()

	// A blocking message/send returns as soon as the task needs an
	// approval; the run goes on.
	res, err := cl.SendMessage(ctx, text("approve"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	if task.Status.State != a2a.TaskStateAuthRequired {
		t.Fatalf("state %s", task.Status.State)
	}
	msg := task.Status.Message
	if msg == nil || msg.Role != a2a.MessageRoleAgent || statusText(task.Status) != "Approve the transfer of 3 EUR\nhttps://as.example/approve/42" ||
		msg.Metadata[a2aserver.MetadataApprovalURL] != "https://as.example/approve/42" {
		t.Fatalf("status message %+v", msg)
	}
	<-f.runner.started
	f.runner.release <- struct{}{}
	task = waitState(t, cl, task.ID, a2a.TaskStateCompleted)
	if artifactText(task) != "approved" {
		t.Fatalf("answer %q", artifactText(task))
	}

	// A streaming client sees auth-required, then the end.
	var states []string
	go func() { <-f.runner.started; f.runner.release <- struct{}{} }()
	for ev, err := range cl.SendStreamingMessage(ctx, text("approve")) {
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
			states = append(states, string(e.Status.State))
		}
	}
	if got := strings.Join(states, " "); got != "working auth-required completed" {
		t.Fatalf("states %s", got)
	}

	// Progress after the approval moves the task back to working.
	states = nil
	go func() { <-f.runner.started; f.runner.release <- struct{}{} }()
	for ev, err := range cl.SendStreamingMessage(ctx, text("approve-then-stream")) {
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *a2a.TaskStatusUpdateEvent:
			states = append(states, string(e.Status.State))
			if e.Status.State == a2a.TaskStateAuthRequired && statusText(e.Status) != "https://as.example/approve/43" {
				t.Errorf("approval without text: %q", statusText(e.Status))
			}
		case *a2a.TaskArtifactUpdateEvent:
			states = append(states, "artifact")
		}
	}
	if got := strings.Join(states, " "); got != "working auth-required working artifact completed" {
		t.Fatalf("states %s", got)
	}
}

func TestInputRequired(t *testing.T) {
	f := newFixture(t)
	cl := f.client("research", f.token("research", "alice", "cli"))
	ctx := context.Background()
	res, err := cl.SendMessage(ctx, text("ask"))
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	if task.Status.State != a2a.TaskStateInputRequired || statusText(task.Status) != "Which paper?" {
		t.Fatalf("task %s %q", task.Status.State, statusText(task.Status))
	}
	answer := a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.TextPart{Text: "A2A"})
	res, err = cl.SendMessage(ctx, &a2a.MessageSendParams{Message: answer})
	if err != nil {
		t.Fatal(err)
	}
	task = res.(*a2a.Task)
	if task.Status.State != a2a.TaskStateCompleted || artifactText(task) != "continued with A2A" {
		t.Fatalf("task %s %q", task.Status.State, artifactText(task))
	}
	hist := f.runner.last().History
	if len(hist) < 2 || hist[0].Role != "user" || hist[0].Text != "ask" || hist[len(hist)-1].Role != "agent" || hist[len(hist)-1].Text != "Which paper?" {
		t.Fatalf("history %+v", hist)
	}

	// A task that ended takes no more messages.
	again := a2a.NewMessageForTask(a2a.MessageRoleUser, task, a2a.TextPart{Text: "more"})
	if _, err := cl.SendMessage(ctx, &a2a.MessageSendParams{Message: again}); !errors.Is(err, a2a.ErrInvalidParams) {
		t.Fatalf("message to a completed task: %v", err)
	}
}

func TestRunEndings(t *testing.T) {
	f := newFixture(t)
	cl := f.client("research", f.token("research", "alice", "cli"))
	tests := []struct {
		input, state, message string
	}{
		{"fail", "failed", "the agent could not complete the task"},
		{"denied", "failed", "denied by policy"},
		{"needauth", "auth-required", "Sign in to the bank\nhttps://bank.example/login"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			res, err := cl.SendMessage(context.Background(), text(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			task := res.(*a2a.Task)
			if string(task.Status.State) != tt.state || statusText(task.Status) != tt.message {
				t.Fatalf("task %s %q", task.Status.State, statusText(task.Status))
			}
			b, _ := json.Marshal(task)
			if bytes.Contains(b, []byte("secret")) {
				t.Fatalf("the runner's error leaked: %s", b)
			}
		})
	}
}

// rawCall posts body to agent with the Authorization value auth (none
// when empty) and returns the response.
func (f *fixture) rawCall(agent, auth string, body []byte) (*http.Response, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.agentURL(agent), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.http.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const getTask = `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"x"}}`

func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	md := f.http.URL + "/.well-known/oauth-protected-resource/a2a/research"
	tests := []struct {
		name   string
		auth   string
		status int
		want   string
	}{
		{"no token", "", 401, `Bearer scope="agent:call", resource_metadata="` + md + `"`},
		{"token for another agent", "Bearer " + f.token("payments", "alice", "cli"), 401, `error="invalid_token"`},
		{"token for another host", "Bearer " + f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) {
			c.Audience = oauth.Audience{"https://elsewhere.example/a2a/research"}
		}), 401, `error="invalid_token"`},
		{"expired", "Bearer " + f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) {
			c.ExpiresAt = time.Now().Add(-time.Minute).Unix()
		}), 401, `error="invalid_token"`},
		{"another issuer", "Bearer " + f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) { c.Issuer = "https://evil.example" }), 401, `error="invalid_token"`},
		{"garbage", "Bearer not-a-token", 401, `error="invalid_token"`},
		{"Basic", "Basic YTpi", 401, `error="invalid_request"`},
		{"without the agent's scope", "Bearer " + f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) { c.Scope = "other" }), 403,
			`error="insufficient_scope", error_description="the request needs scope agent:call", scope="agent:call"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := f.rawCall("research", tt.auth, []byte(getTask))
			wa := strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
			if resp.StatusCode != tt.status || !strings.Contains(wa, tt.want) || !strings.Contains(wa, `resource_metadata="`+md+`"`) {
				t.Fatalf("%d WWW-Authenticate: %s", resp.StatusCode, wa)
			}
		})
	}

	// The a2a-go client sees the refusal as an error.
	cl := f.client("research", f.token("payments", "alice", "cli"))
	if _, err := cl.SendMessage(context.Background(), text("hello")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("token for another agent: %v", err)
	}
	if n := len(f.runner.requests); n != 0 {
		t.Fatalf("the runner ran %d times", n)
	}
}

// rpcResponse is a JSON-RPC response as the tests read it.
type rpcResponse struct {
	ID    json.RawMessage `json:"id"`
	Error *struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
	Result json.RawMessage `json:"result"`
}

func TestTaskIsolation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	alice := f.pollingClient("research", f.token("research", "alice", "cli"))
	res, err := alice.SendMessage(ctx, text("block"))
	if err != nil {
		t.Fatal(err)
	}
	id := res.(*a2a.Task).ID
	<-f.runner.started
	waitState(t, alice, id, a2a.TaskStateWorking)

	others := map[string]string{
		"another subject":                    f.token("research", "bob", "cli"),
		"another client of the same subject": f.token("research", "alice", "other-cli"),
	}
	for name, tok := range others {
		t.Run(name, func(t *testing.T) {
			cl := f.client("research", tok)
			if _, err := cl.GetTask(ctx, &a2a.TaskQueryParams{ID: id}); !errors.Is(err, a2a.ErrTaskNotFound) {
				t.Errorf("tasks/get: %v", err)
			}
			if _, err := cl.CancelTask(ctx, &a2a.TaskIDParams{ID: id}); !errors.Is(err, a2a.ErrTaskNotFound) {
				t.Errorf("tasks/cancel: %v", err)
			}
			msg := a2a.NewMessageForTask(a2a.MessageRoleUser, res.(*a2a.Task), a2a.TextPart{Text: "hijack"})
			if _, err := cl.SendMessage(ctx, &a2a.MessageSendParams{Message: msg}); !errors.Is(err, a2a.ErrTaskNotFound) {
				t.Errorf("message/send to the task: %v", err)
			}
			for _, err := range cl.ResubscribeToTask(ctx, &a2a.TaskIDParams{ID: id}) {
				if !errors.Is(err, a2a.ErrTaskNotFound) {
					t.Errorf("tasks/resubscribe: %v", err)
				}
				break
			}
			// Byte for byte the answer for a task that does not exist.
			_, mine := f.rawCall("research", "Bearer "+tok, []byte(`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"`+string(id)+`"}}`))
			_, none := f.rawCall("research", "Bearer "+tok, []byte(`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"no-such-task"}}`))
			if !bytes.Equal(mine, none) {
				t.Errorf("another's task:\n%s\nno task:\n%s", mine, none)
			}
		})
	}

	// The same caller at another agent does not see it either.
	pay := f.client("payments", f.token("payments", "alice", "cli"))
	if _, err := pay.GetTask(ctx, &a2a.TaskQueryParams{ID: id}); !errors.Is(err, a2a.ErrTaskNotFound) {
		t.Errorf("tasks/get at another agent: %v", err)
	}

	// The task is untouched and still Alice's.
	waitState(t, alice, id, a2a.TaskStateWorking)
	if _, err := alice.CancelTask(ctx, &a2a.TaskIDParams{ID: id}); err != nil {
		t.Fatal(err)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token("research", "alice", "cli")
	tests := []struct {
		name string
		body string
		code int
		id   string
	}{
		{"not JSON", `{"jsonrpc":"2.0",`, -32700, "null"},
		{"empty body", ``, -32700, "null"},
		{"batch", `[` + getTask + `]`, -32600, "null"},
		{"a string", `"tasks/get"`, -32600, "null"},
		{"JSON-RPC 1.0", `{"jsonrpc":"1.0","id":1,"method":"tasks/get","params":{"id":"x"}}`, -32600, "1"},
		{"no jsonrpc", `{"id":1,"method":"tasks/get","params":{"id":"x"}}`, -32600, "1"},
		{"no method", `{"jsonrpc":"2.0","id":"a","params":{}}`, -32600, `"a"`},
		{"method not a string", `{"jsonrpc":"2.0","id":"a","method":7,"params":{}}`, -32600, `"a"`},
		{"notification", `{"jsonrpc":"2.0","method":"tasks/get","params":{"id":"x"}}`, -32600, "null"},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"tasks/get","params":{"id":"x"}}`, -32600, "null"},
		{"member in another case", `{"jsonrpc":"2.0","id":1,"Method":"tasks/cancel","method":"tasks/get","params":{"id":"x"}}`, -32600, "null"},
		{"params an array", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":["x"]}`, -32602, "1"},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"tasks/get"}`, -32602, "1"},
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"tasks/list","params":{}}`, -32601, "1"},
		{"v1.0 method name", `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}`, -32601, "1"},
		{"message without text", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"m","role":"user","parts":[{"kind":"data","data":{"a":1}}]}}}`, -32602, "1"},
		{"agent message", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"m","role":"agent","parts":[{"kind":"text","text":"hi"}]}}}`, -32602, "1"},
		{"push config", `{"jsonrpc":"2.0","id":1,"method":"tasks/pushNotificationConfig/get","params":{"id":"x"}}`, -32003, "1"},
		{"push config on send", `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"configuration":{"pushNotificationConfig":{"url":"https://x.example"}},"message":{"kind":"message","messageId":"m","role":"user","parts":[{"kind":"text","text":"hi"}]}}}`, -32003, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.rawCall("research", auth, []byte(tt.body))
			var r rpcResponse
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
			}
			if resp.StatusCode != 200 || r.Error == nil || r.Error.Code != tt.code || string(r.ID) != tt.id {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	if n := len(f.runner.requests); n != 0 {
		t.Fatalf("the runner ran %d times", n)
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token("research", "alice", "cli")
	big := `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"kind":"message","messageId":"m","role":"user","parts":[{"kind":"text","text":"` +
		strings.Repeat("x", 128<<10) + `"}]}}}`
	resp, body := f.rawCall("research", auth, []byte(big))
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || r.Error == nil || r.Error.Code != -32600 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	// Without a token the size does not matter: 401 first.
	resp, _ = f.rawCall("research", "", []byte(big))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated oversized request: %d", resp.StatusCode)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodOptions, "/a2a/research/.well-known/agent-card.json", nil))
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Methods") == "" {
		t.Fatalf("card preflight: %d %v", w.Code, w.Header())
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/a2a/research/.well-known/agent-card.json", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("card: %d %v", w.Code, w.Header())
	}
	req, _ := http.NewRequest(http.MethodGet, f.agentURL("research"), nil)
	resp, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on the endpoint: %d", resp.StatusCode)
	}
	resp, _ = f.rawCall("nobody", "Bearer x", []byte(getTask))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", resp.StatusCode)
	}
}

func TestTxnTokenVerification(t *testing.T) {
	f := newFixture(t, func(_ *fixture, c *a2aserver.Config) {
		c.VerifyTxnToken = func(_ context.Context, tok string) (*txntoken.Claims, error) {
			if tok != "good.txn.token" {
				return nil, errors.New("bad signature")
			}
			return &txntoken.Claims{Subject: "alice", Txn: "txn-1"}, nil
		}
	})
	tok := f.token("research", "alice", "cli")
	if _, err := f.client("research", tok, "Txn-Token", "good.txn.token").SendMessage(context.Background(), text("echo")); err != nil {
		t.Fatal(err)
	}
	if req := f.runner.last(); req.TxnClaims == nil || req.TxnClaims.Txn != "txn-1" || req.TxnToken != "good.txn.token" {
		t.Fatalf("request %+v", req)
	}
	for _, bad := range []string{"bad.txn.token", "two tokens"} {
		req, _ := http.NewRequest(http.MethodPost, f.agentURL("research"), strings.NewReader(getTask))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Txn-Token", bad)
		resp, err := f.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("Txn-Token %q: %d", bad, resp.StatusCode)
		}
	}
}

func TestSetAgents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.srv.SetAgents(ctx, []a2acard.AgentInfo{{Name: "research"}, {Name: "notes", Scopes: []string{scopeAgent}}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.srv.Agents(), ","); got != "notes,research" {
		t.Fatalf("agents %s", got)
	}
	if u, ok := f.srv.AgentURL("notes"); !ok || u != f.agentURL("notes") {
		t.Fatalf("AgentURL %q %v", u, ok)
	}
	res, err := f.client("notes", f.token("notes", "alice", "cli")).SendMessage(ctx, text("echo"))
	if err != nil || res.(*a2a.Task).Status.State != a2a.TaskStateCompleted {
		t.Fatalf("new agent: %v %v", res, err)
	}
	resp, _ := f.rawCall("payments", "Bearer "+f.token("payments", "alice", "cli"), []byte(getTask))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("removed agent: %d", resp.StatusCode)
	}
	for _, bad := range [][]a2acard.AgentInfo{{{Name: "a/b"}}, {{Name: ".."}}, {{Name: "x"}, {Name: "x"}}, {{Name: ""}}} {
		if err := f.srv.SetAgents(ctx, bad); !errors.Is(err, a2aserver.ErrInvalidConfig) {
			t.Errorf("SetAgents(%v) = %v", bad, err)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	base := func() a2aserver.Config {
		return a2aserver.Config{
			BaseURL: "https://host.example", Runner: a2aserver.RunnerFunc(func(context.Context, *a2aserver.Request, func(a2aserver.Event) error) (string, error) { return "", nil }),
			Authenticator: func(string, string, string) (a2aserver.Authenticator, error) { return nil, errors.New("unused") },
			AuthServer:    &oauth.ServerMetadata{Issuer: issuer, TokenEndpoint: issuer + "/token"},
		}
	}
	tests := []struct {
		name   string
		mutate func(*a2aserver.Config)
	}{
		{"base URL with a path", func(c *a2aserver.Config) { c.BaseURL = "https://host.example/x" }},
		{"base URL not absolute", func(c *a2aserver.Config) { c.BaseURL = "host.example" }},
		{"no runner", func(c *a2aserver.Config) { c.Runner = nil }},
		{"no authenticator", func(c *a2aserver.Config) { c.Authenticator = nil }},
		{"no token endpoint", func(c *a2aserver.Config) { c.AuthServer = &oauth.ServerMetadata{Issuer: issuer} }},
		{"authorization code without endpoint", func(c *a2aserver.Config) { c.AuthorizationCode = true }},
		{"negative limit", func(c *a2aserver.Config) { c.MaxBodyBytes = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mutate(&cfg)
			if _, err := a2aserver.New(context.Background(), cfg); !errors.Is(err, a2aserver.ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// TestDPoP: with a resource verifier that accepts DPoP, a DPoP-bound token
// works with a proof for this request, and not as a Bearer token.
func TestDPoP(t *testing.T) {
	dv, err := dpop.NewVerifier(dpop.VerifierConfig{Replay: dpop.NewMemoryReplayCache(time.Now)})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(f *fixture, c *a2aserver.Config) {
		c.DPoPAlgorithms = []string{"ES256"}
		c.Authenticator = func(agent, resourceURL, metadataURL string) (a2aserver.Authenticator, error) {
			return resource.New(resource.Config{Resource: resourceURL, MetadataURL: metadataURL, Issuer: issuer,
				Keys: jose.StaticKeys(map[string]crypto.PublicKey{asKID: f.asKey.Public()}), DPoP: dv})
		}
	})
	holder, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := dpop.Thumbprint(holder.Public())
	tok := f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) { c.Confirmation = &oauth.Confirmation{JKT: jkt} })
	call := func(scheme string, withProof bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, f.agentURL("research"), strings.NewReader(getTask))
		req.Header.Set("Authorization", scheme+" "+tok)
		if withProof {
			p, err := dpop.NewProof(context.Background(), holder, dpop.ProofParams{Method: http.MethodPost, URL: f.agentURL("research"), AccessToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("DPoP", p)
		}
		resp, err := f.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := call("DPoP", true)
	var r rpcResponse
	if err := json.Unmarshal(body, &r); err != nil || resp.StatusCode != 200 || r.Error == nil || r.Error.Code != -32001 {
		t.Fatalf("DPoP with a proof: %d %s", resp.StatusCode, body)
	}
	for _, c := range []struct {
		scheme string
		proof  bool
	}{{"DPoP", false}, {"Bearer", false}, {"Bearer", true}} {
		if resp, _ := call(c.scheme, c.proof); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s, proof %v: %d", c.scheme, c.proof, resp.StatusCode)
		}
	}
	md, err := f.http.Client().Get(f.http.URL + "/.well-known/oauth-protected-resource/a2a/research")
	if err != nil {
		t.Fatal(err)
	}
	defer md.Body.Close()
	var doc oauth.ResourceMetadata
	_ = json.NewDecoder(md.Body).Decode(&doc)
	if len(doc.DPoPSigningAlgValuesSupported) != 1 {
		t.Fatalf("metadata %+v", doc)
	}
}

// TestRunLimits: a caller cannot run more than MaxTasksPerCaller tasks at
// once at an agent; another caller still can.
func TestRunLimits(t *testing.T) {
	f := newFixture(t, func(_ *fixture, c *a2aserver.Config) { c.MaxTasksPerCaller = 1 })
	ctx := context.Background()
	alice := f.pollingClient("research", f.token("research", "alice", "cli"))
	if _, err := alice.SendMessage(ctx, text("block")); err != nil {
		t.Fatal(err)
	}
	<-f.runner.started
	if _, err := alice.SendMessage(ctx, text("block")); err == nil {
		t.Fatal("a second run for the same caller was started")
	}
	bob := f.pollingClient("research", f.token("research", "bob", "cli"))
	if _, err := bob.SendMessage(ctx, text("block")); err != nil {
		t.Fatal(err)
	}
	<-f.runner.started
}

// plainAuthenticator hides every capability of the authenticator it wraps
// but Authenticate.
type plainAuthenticator struct{ a2aserver.Authenticator }

// TestStepUpWithoutStepUpper: an authenticator without StepUp still gets
// a 403 naming the missing scope.
func TestStepUpWithoutStepUpper(t *testing.T) {
	f := newFixture(t, func(f *fixture, c *a2aserver.Config) {
		inner := c.Authenticator
		c.Authenticator = func(agent, resourceURL, metadataURL string) (a2aserver.Authenticator, error) {
			a, err := inner(agent, resourceURL, metadataURL)
			return plainAuthenticator{a}, err
		}
	})
	resp, _ := f.rawCall("research", "Bearer "+f.token("research", "alice", "cli", func(c *oauth.AccessTokenClaims) { c.Scope = "" }), []byte(getTask))
	wa := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="agent:call"`) ||
		!strings.Contains(wa, "resource_metadata=") {
		t.Fatalf("%d %s", resp.StatusCode, wa)
	}
}
