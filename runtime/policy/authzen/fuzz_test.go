package authzen_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/policy/authzen"
)

// FuzzEvaluation feeds arbitrary bodies to both evaluation endpoints: the
// handler must never answer 5xx nor anything but a JSON object.
func FuzzEvaluation(f *testing.F) {
	for _, seed := range []string{
		`{"subject": {"type": "agent", "id": "buyer", "properties": {"user": "alice"}}, "action": {"name": "tool.call"}, "resource": {"type": "tool", "id": "payments/pay"}, "context": {"attestation": "verified", "amount": 500}}`,
		`{"subject": {"type": "agent", "id": "spiffe://agenthost.local/agent/researcher"}, "action": {"name": "llm.complete"}, "resource": {"type": "model", "id": "large"}, "context": {"risk": "low", "scopes": ["a"], "chain": []}}`,
		`{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}, "context": {"n": 1e400, "d": 12.5, "deep": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}`,
		`{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.call"}, "evaluations": [{"resource": {"type": "tool", "id": "x/y"}}, {}], "options": {"evaluations_semantic": "deny_on_first_deny"}}`,
		`{"evaluations": [{"subject": null}]}`,
		`{"context": {"amount": -9223372036854775809}}`,
		`null`, `[]`, `"x"`, `{`, ``, `{"subject": {"type": "agent", "id": "spiffe://"}}`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	s, err := authzen.NewServer(authzen.ServerConfig{Decider: engine(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, batch bool) {
		path := "/access/v1/evaluation"
		if batch {
			path = "/access/v1/evaluations"
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out == nil {
			t.Fatalf("answer %q is not a JSON object", w.Body.String())
		}
		if w.Code == http.StatusOK {
			if _, single := out["decision"].(bool); !single {
				if _, ok := out["evaluations"].([]any); !ok {
					t.Fatalf("200 without a decision: %s", w.Body.String())
				}
			}
		}
	})
}
