package authzen_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/policy"
	"github.com/agenthost/agenthost/runtime/policy/authzen"
)

func newClient(t testing.TB, url string, timeout time.Duration) *authzen.Client {
	t.Helper()
	c, err := authzen.NewClient(authzen.Config{Endpoint: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The client against this package's server gives the engine's decisions.
func TestClientAgainstServer(t *testing.T) {
	e := engine(t)
	var sawAuth string
	s := newServer(t, authzen.ServerConfig{Decider: e, Authorize: func(r *http.Request) error {
		sawAuth = r.Header.Get("Authorization")
		return nil
	}})
	ts := httptest.NewServer(s)
	defer ts.Close()
	hc := ts.Client()
	hc.Transport = bearer{hc.Transport}
	c, err := authzen.NewClient(authzen.Config{Endpoint: ts.URL + "/access/v1/evaluation", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	buyer := policy.Principal{Name: "buyer", SPIFFEID: "spiffe://agenthost.local/agent/buyer"}
	for _, r := range []policy.Request{
		{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay", Attestation: "verified", Context: map[string]any{"amount": 50}},
		{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay", Attestation: "verified", Context: map[string]any{"amount": 500}},
		{Principal: buyer, Action: policy.ActionCallTool, Resource: "payments/pay", Attestation: "verified", Context: map[string]any{"amount": 50}},
		{Principal: buyer, Action: policy.ActionComplete, Resource: "model:default", Attestation: "verified", Risk: "low"},
		{Principal: policy.Principal{Name: "planner"}, Action: policy.ActionCallAgent, Resource: "buyer", Attestation: "verified", Chain: []string{"x"}},
		{Principal: policy.Principal{Name: "reader"}, Action: policy.ActionCallTool, Resource: "notes/read_note", Attestation: "verified", Scopes: []string{"notes:read"}},
		{Principal: policy.Principal{Name: "researcher"}, Action: policy.ActionCallTool, Resource: "search/fetch", Attestation: "verified", ArgsSHA256: "00ff"},
	} {
		want, err := e.Decide(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decide(t.Context(), r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got.Effect != want.Effect || !slices.Equal(got.Policies, want.Policies) || got.Reason != want.Reason || got.Version != want.Version {
			t.Errorf("%s %s: got %+v, want %+v", r.Action, r.Resource, got, want)
		}
	}
	if sawAuth != "Bearer pep-token" {
		t.Errorf("Authorization %q", sawAuth)
	}
}

type bearer struct{ next http.RoundTripper }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer pep-token")
	return b.next.RoundTrip(r)
}

func TestClientExternalApproval(t *testing.T) {
	var got map[string]any
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &got)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		_, _ = io.WriteString(w, `{"decision": true, "context": {"approval_required": true, "reason": "ask a human", "policies": ["ext-1"]}}`)
	}))
	defer ts.Close()
	d, err := newClient(t, ts.URL, 0).Decide(t.Context(), policy.Request{
		Principal: policy.Principal{Name: "a"}, Action: policy.ActionComplete, Resource: "model:big"})
	if err != nil || d.Effect != policy.ApprovalRequired || d.Reason != "ask a human" || !slices.Equal(d.Policies, []string{"ext-1"}) {
		t.Fatalf("got %+v, %v", d, err)
	}
	if res := got["resource"].(map[string]any); res["type"] != "model" || res["id"] != "big" {
		t.Errorf("sent resource %v", res)
	}
}

func TestClientFailsClosed(t *testing.T) {
	respond := func(status int, ctype, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if ctype != "" {
				w.Header().Set("Content-Type", ctype)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}
	}
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"server error", respond(500, "application/json", `{"decision": true}`), "500"},
		{"unauthorized", respond(401, "application/json", `{"error": "no"}`), "401"},
		{"not json", respond(200, "application/json", `decision: true`), "decode"},
		{"no decision", respond(200, "application/json", `{"context": {}}`), "no decision"},
		{"decision not bool", respond(200, "application/json", `{"decision": "true"}`), "decode"},
		{"wrong content type", respond(200, "text/html", `{"decision": true}`), "content type"},
		{"oversized", respond(200, "application/json", `{"decision": true, "context": {"x": "`+strings.Repeat("a", 70000)+`"}}`), "larger than"},
		{"request id mismatch", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-ID", "someone-else")
			respond(200, "application/json", `{"decision": true}`)(w, r)
		}, "X-Request-ID"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond)
			respond(200, "application/json", `{"decision": true}`)(w, r)
		}, "deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(tc.h)
			defer ts.Close()
			d, err := newClient(t, ts.URL, 100*time.Millisecond).Decide(t.Context(), policy.Request{
				Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "authzen: ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if d.Effect != policy.Deny || d.Reason == "" {
				t.Fatalf("decision %+v", d)
			}
		})
	}

	// An unreachable PDP denies.
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	d, err := newClient(t, url, time.Second).Decide(t.Context(), policy.Request{
		Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"})
	if err == nil || d.Effect != policy.Deny {
		t.Fatalf("unreachable: %+v %v", d, err)
	}
	// An invalid request is refused before any call.
	d, err = newClient(t, url, time.Second).Decide(t.Context(), policy.Request{Action: "x"})
	if !errors.Is(err, policy.ErrInvalidRequest) || d.Effect != policy.Deny {
		t.Fatalf("invalid: %+v %v", d, err)
	}
}

func TestNewClientConfig(t *testing.T) {
	for _, ep := range []string{"", "pdp.example/x", "ftp://pdp.example", "https://pdp.example/#x", "https://%zz"} {
		if _, err := authzen.NewClient(authzen.Config{Endpoint: ep}); err == nil {
			t.Errorf("%q accepted", ep)
		}
	}
}

func TestMappingRoundTrip(t *testing.T) {
	for _, r := range []policy.Request{
		{Principal: policy.Principal{Name: "a", SPIFFEID: "spiffe://d/agent/a"}, Subject: "u", Action: policy.ActionCallTool,
			Resource: "s/t", Scopes: []string{"x", "y"}, Attestation: "verified", Risk: "high", ArgsSHA256: "ab",
			Chain: []string{"p", "q"}, Context: map[string]any{"amount": "12"}},
		{Principal: policy.Principal{Name: "a"}, Action: policy.ActionComplete, Resource: "model:m"},
		{Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"},
		{Principal: policy.Principal{Name: "a"}, Action: policy.ActionCallAgent, Resource: "b"},
	} {
		back, err := authzen.ToPolicy(authzen.FromPolicy(r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, r)
		}
	}
}
