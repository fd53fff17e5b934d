package httpaudit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/mediator"
)

type recordingAuditor struct {
	mu      sync.Mutex
	records []mediator.Record
	err     error
}

func (a *recordingAuditor) Record(_ context.Context, r mediator.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return a.err
}

func TestNew(t *testing.T) {
	if _, err := New(Config{}); err == nil || err.Error() != "httpaudit: Auditor is required" {
		t.Fatalf("New without an Auditor: %v", err)
	}
	if _, err := New(Config{Auditor: &recordingAuditor{}}); err != nil {
		t.Fatal(err)
	}
}

// TestWrap: a refused request is recorded with its status and the error
// code of its challenge, or else the reason a handler gave; an answered
// one is not recorded.
func TestWrap(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name       string
		handler    http.HandlerFunc
		wantReason string // "" means no record
	}{
		{name: "ok", handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) }},
		{name: "challenge", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="expired"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, wantReason: "401 invalid_token"},
		{name: "challenge without error", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://x.example/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, wantReason: "401 Unauthorized"},
		{name: "reason", handler: func(w http.ResponseWriter, _ *http.Request) {
			SetReason(w, "the workload proof is stale")
			w.WriteHeader(http.StatusForbidden)
		}, wantReason: "403 Forbidden: the workload proof is stale"},
		{name: "body first", handler: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
			w.WriteHeader(http.StatusBadRequest) // superfluous: the status was 200
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &recordingAuditor{}
			d, err := New(Config{Auditor: a, Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			h := d.Wrap("a2a.request", func(r *http.Request) string { return r.URL.Path }, tc.handler)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/a2a/research", nil))
			if tc.wantReason == "" {
				if len(a.records) != 0 {
					t.Fatalf("records %+v, want none", a.records)
				}
				return
			}
			want := mediator.Record{Time: at.UTC(), Action: "a2a.request", Resource: "/a2a/research", Decision: "deny",
				Policy: "oauth", Reason: tc.wantReason, Outcome: "denied"}
			if len(a.records) != 1 || !reflect.DeepEqual(a.records[0], want) {
				t.Fatalf("records %+v, want %+v", a.records, want)
			}
		})
	}

	// A record the auditor does not take does not change the answer.
	d, _ := New(Config{Auditor: &recordingAuditor{err: errors.New("store down")}})
	w := httptest.NewRecorder()
	d.Wrap("mcp.request", func(*http.Request) string { return "notes" }, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusTeapot {
		t.Fatalf("status %d", w.Code)
	}
}

// TestSetReasonElsewhere: outside Wrap, SetReason does nothing.
func TestSetReasonElsewhere(t *testing.T) {
	w := httptest.NewRecorder()
	SetReason(w, "why")
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("SetReason changed the answer: %d %q", w.Code, w.Body)
	}
}
