package mcpserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth/resource"
)

// TestSubjectTokenOnlyWhenKept: a handler sees the caller's token through
// SubjectToken only on a server built with KeepSubjectToken.
func TestSubjectTokenOnlyWhenKept(t *testing.T) {
	for _, keep := range []bool{false, true} {
		var got string
		var ok bool
		probe := []Tool{{Name: "probe", Scope: "notes:read", Handler: func(ctx context.Context, _ *resource.Caller, _ json.RawMessage) (Result, error) {
			got, ok = SubjectToken(ctx)
			return Result{Text: "ok"}, nil
		}}}
		f := newFixture(t, fixtureOpts{tools: func(*fixture) []Tool { return probe }})
		if keep {
			s, err := New(Config{Name: serverName, Tools: probe, Verifier: f.v, KeepSubjectToken: true})
			if err != nil {
				t.Fatal(err)
			}
			f.s = s
		}
		tok := f.token("notes:read")
		req, _ := http.NewRequest(http.MethodPost, f.resource, strings.NewReader(callBody("probe")))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", legacyHdr)
		w := httptest.NewRecorder()
		f.s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("keep=%v: status %d %s", keep, w.Code, w.Body)
		}
		if keep != ok || (keep && got != tok) {
			t.Fatalf("keep=%v: SubjectToken = %q, %v", keep, got, ok)
		}
	}
}
