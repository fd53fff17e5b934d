package authzen_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/policy"
	"github.com/agenthost/agenthost/runtime/policy/authzen"
)

func engine(t testing.TB) *policy.Engine {
	t.Helper()
	e, err := policy.Load("../testdata/realistic")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newServer(t testing.TB, cfg authzen.ServerConfig) *authzen.Server {
	t.Helper()
	if cfg.Decider == nil {
		cfg.Decider = engine(t)
	}
	s, err := authzen.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t testing.TB, h http.Handler, method, path, ctype, body string, hdr ...string) answer {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if method != http.MethodHead {
		if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil {
			t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, path, w.Code, w.Body.String())
		}
	}
	return a
}

const (
	evalPath  = "/access/v1/evaluation"
	evalsPath = "/access/v1/evaluations"
	jsonType  = "application/json"
)

func TestEvaluation(t *testing.T) {
	s := newServer(t, authzen.ServerConfig{})
	for _, tc := range []struct {
		name, body string
		decision   bool
		effect     string
		policies   string
	}{
		{"allow", `{"subject": {"type": "agent", "id": "reader"}, "action": {"name": "tool.call"},
		  "resource": {"type": "tool", "id": "notes/read_note"},
		  "context": {"scopes": ["notes:read"], "attestation": "verified", "risk": "low"}}`,
			true, "allow", "notes-read"},
		{"deny by forbid", `{"subject": {"type": "agent", "id": "reader"}, "action": {"name": "tool.call"},
		  "resource": {"type": "tool", "id": "notes/read_note"}, "context": {"scopes": ["notes:read"]}}`,
			false, "deny", "attested-only"},
		{"deny by default", `{"subject": {"type": "agent", "id": "reader"}, "action": {"name": "llm.complete"},
		  "resource": {"type": "model", "id": "large"}, "context": {"attestation": "verified"}}`,
			false, "deny", ""},
		{"approval", `{"subject": {"type": "agent", "id": "buyer", "properties": {"user": "alice"}},
		  "action": {"name": "tool.call"}, "resource": {"type": "tool", "id": "payments/pay"},
		  "context": {"attestation": "verified", "amount": 500}}`,
			false, "approval_required", "payments-approval"},
		{"spiffe subject", `{"subject": {"type": "agent", "id": "spiffe://agenthost.local/agent/researcher"},
		  "action": {"name": "llm.complete"}, "resource": {"type": "model", "id": "large"},
		  "context": {"attestation": "verified"}}`,
			true, "allow", "models-large"},
		{"foreign spiffe subject", `{"subject": {"type": "agent", "id": "spiffe://evil.example/x", "properties": {"name": "researcher"}},
		  "action": {"name": "llm.complete"}, "resource": {"type": "model", "id": "large"},
		  "context": {"attestation": "verified"}}`,
			false, "deny", "trusted-domain"},
		{"delegation", `{"subject": {"type": "agent", "id": "planner"}, "action": {"name": "agent.call"},
		  "resource": {"type": "agent", "id": "buyer"}, "context": {"attestation": "verified", "chain": ["a", "b", "c"]}}`,
			false, "deny", "deep-delegation"},
		{"tool list", `{"subject": {"type": "agent", "id": "x"}, "action": {"name": "tool.list"},
		  "resource": {"type": "tool_list", "id": "*"}, "context": {"attestation": "verified"}}`,
			true, "allow", "list-tools"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, s, http.MethodPost, evalPath, "application/json; charset=utf-8", tc.body, "X-Request-ID", "req-42")
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.raw)
			}
			if a.header.Get("X-Request-ID") != "req-42" {
				t.Error("X-Request-ID not echoed")
			}
			ctx, _ := a.body["context"].(map[string]any)
			if a.body["decision"] != tc.decision || ctx["effect"] != tc.effect {
				t.Fatalf("got %s", a.raw)
			}
			if got := fmt.Sprint(ctx["policies"]); tc.policies != "" && got != "["+tc.policies+"]" {
				t.Errorf("policies %s, want %s", got, tc.policies)
			}
			if ps, _ := ctx["policy_set"].(string); !strings.HasPrefix(ps, "sha256:") {
				t.Errorf("policy_set %q", ps)
			}
			if (tc.effect == "approval_required") != (ctx["approval_required"] == true) {
				t.Errorf("approval_required member: %s", a.raw)
			}
		})
	}
}

func TestEvaluations(t *testing.T) {
	s := newServer(t, authzen.ServerConfig{})
	const defaults = `"subject": {"type": "agent", "id": "buyer", "properties": {"user": "alice"}},
	  "action": {"name": "tool.call"}, "resource": {"type": "tool", "id": "payments/pay"},
	  "context": {"attestation": "verified", "amount": 10}`
	items := `[
	  {},
	  {"context": {"attestation": "verified", "amount": 500}},
	  {"resource": {"type": "tool", "id": "notes/delete"}},
	  {"action": {"name": "llm.complete"}, "resource": {"type": "model", "id": "default"}},
	  {"action": {"name": "tool.burn"}}
	]`
	decisions := func(a answer) string {
		var out []string
		evs, _ := a.body["evaluations"].([]any)
		for _, e := range evs {
			m := e.(map[string]any)
			ctx, _ := m["context"].(map[string]any)
			switch {
			case ctx["approval_required"] == true:
				out = append(out, "approval")
			case ctx["error"] != nil:
				out = append(out, fmt.Sprintf("error%v", ctx["error"].(map[string]any)["status"]))
			default:
				out = append(out, fmt.Sprint(m["decision"]))
			}
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ semantic, want string }{
		{"", "true,approval,false,true,error400"},
		{`"options": {"evaluations_semantic": "execute_all"},`, "true,approval,false,true,error400"},
		{`"options": {"evaluations_semantic": "deny_on_first_deny"},`, "true,approval"},
		{`"options": {"evaluations_semantic": "permit_on_first_permit"},`, "true"},
	} {
		a := do(t, s, http.MethodPost, evalsPath, jsonType, `{`+tc.semantic+defaults+`, "evaluations": `+items+`}`, "X-Request-ID", "b1")
		if a.status != http.StatusOK || a.header.Get("X-Request-ID") != "b1" {
			t.Fatalf("%s: %d %s", tc.semantic, a.status, a.raw)
		}
		if _, ok := a.body["decision"]; ok {
			t.Errorf("batch answer has a top-level decision: %s", a.raw)
		}
		if got := decisions(a); got != tc.want {
			t.Errorf("%q: got %s, want %s (%s)", tc.semantic, got, tc.want, a.raw)
		}
	}

	// Without items the batch is a single evaluation.
	a := do(t, s, http.MethodPost, evalsPath, jsonType, `{`+defaults+`}`)
	if a.status != http.StatusOK || a.body["decision"] != true || a.body["evaluations"] != nil {
		t.Fatalf("single via batch: %d %s", a.status, a.raw)
	}
	a = do(t, s, http.MethodPost, evalsPath, jsonType, `{`+defaults+`, "evaluations": []}`)
	if a.status != http.StatusOK || a.body["decision"] != true {
		t.Fatalf("empty batch: %d %s", a.status, a.raw)
	}
}

func TestMetadata(t *testing.T) {
	s := newServer(t, authzen.ServerConfig{Identifier: "https://pdp.example/tenant1/",
		Authorize: func(*http.Request) error { return authzen.ErrUnauthenticated }})
	a := do(t, s, http.MethodGet, "/.well-known/authzen-configuration/tenant1", "", "")
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	want := map[string]any{
		"policy_decision_point":       "https://pdp.example/tenant1",
		"access_evaluation_endpoint":  "https://pdp.example/tenant1/access/v1/evaluation",
		"access_evaluations_endpoint": "https://pdp.example/tenant1/access/v1/evaluations",
	}
	for k, v := range want {
		if a.body[k] != v {
			t.Errorf("%s = %v, want %v", k, a.body[k], v)
		}
	}
	if a := do(t, s, http.MethodHead, "/.well-known/authzen-configuration/tenant1", "", ""); a.status != http.StatusOK || a.raw != "" {
		t.Errorf("HEAD: %d %q", a.status, a.raw)
	}
	// The evaluation endpoints live under the identifier's path.
	if a := do(t, s, http.MethodPost, "/tenant1"+evalPath, jsonType, `{}`); a.status != http.StatusUnauthorized {
		t.Errorf("tenant evaluation: %d", a.status)
	}
	if a := do(t, s, http.MethodPost, evalPath, jsonType, `{}`); a.status != http.StatusNotFound {
		t.Errorf("root evaluation: %d", a.status)
	}
	// Without an identifier there is no metadata document.
	plain := newServer(t, authzen.ServerConfig{})
	if a := do(t, plain, http.MethodGet, "/.well-known/authzen-configuration", "", ""); a.status != http.StatusNotFound {
		t.Errorf("metadata without identifier: %d", a.status)
	}
}

func TestServerRejects(t *testing.T) {
	errForbidden := errors.New("not this client")
	auth := func(r *http.Request) error {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			return nil
		case "Bearer other":
			return errForbidden
		}
		return fmt.Errorf("no token: %w", authzen.ErrUnauthenticated)
	}
	s := newServer(t, authzen.ServerConfig{Authorize: auth, MaxEvaluations: 2,
		Identifier: "https://pdp.example"})
	good := `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`
	for _, tc := range []struct {
		name, method, path, ctype, body, token string
		status                                 int
		msg                                    string
	}{
		{"get", http.MethodGet, evalPath, jsonType, good, "good", 405, "method"},
		{"metadata post", http.MethodPost, "/.well-known/authzen-configuration", jsonType, good, "", 405, "method"},
		{"unknown path", http.MethodPost, "/access/v1/search/subject", jsonType, good, "good", 404, "not found"},
		{"no token", http.MethodPost, evalPath, jsonType, good, "", 401, "unauthenticated"},
		{"other client", http.MethodPost, evalPath, jsonType, good, "other", 403, "forbidden"},
		{"no content type", http.MethodPost, evalPath, "", good, "good", 415, "content type"},
		{"text", http.MethodPost, evalPath, "text/plain", good, "good", 415, "content type"},
		{"oversized", http.MethodPost, evalPath, jsonType, `{"context": {"x": "` + strings.Repeat("a", 70000) + `"}}`, "good", 413, "larger than"},
		{"malformed", http.MethodPost, evalPath, jsonType, `{"subject": `, "good", 400, "malformed"},
		{"not an object", http.MethodPost, evalPath, jsonType, `[1]`, "good", 400, "malformed"},
		{"trailing", http.MethodPost, evalPath, jsonType, good + `{}`, "good", 400, "trailing"},
		{"unknown field", http.MethodPost, evalPath, jsonType, `{"subjekt": {}}`, "good", 400, "unknown field"},
		{"unknown nested field", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a", "role": "x"}}`, "good", 400, "unknown field"},
		{"wrong type", http.MethodPost, evalPath, jsonType, `{"subject": {"type": 1}}`, "good", 400, "wrong type"},
		{"empty", http.MethodPost, evalPath, jsonType, ``, "good", 400, "malformed"},
		{"null", http.MethodPost, evalPath, jsonType, `null`, "good", 400, "missing subject"},
		{"no subject", http.MethodPost, evalPath, jsonType, `{"action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "missing subject"},
		{"no action", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "missing action"},
		{"no resource", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}}`, "good", 400, "missing resource"},
		{"no resource type", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"id": "*"}}`, "good", 400, "missing resource.type"},
		{"no subject id", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "missing subject.id"},
		{"user subject", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "user", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "not supported"},
		{"unknown action", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.burn"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "unknown action"},
		{"type mismatch", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.call"}, "resource": {"type": "model", "id": "m"}}`, "good", 400, "does not fit"},
		{"bad tool id", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.call"}, "resource": {"type": "tool", "id": "x"}}`, "good", 400, "server/tool"},
		{"bad scopes", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}, "context": {"scopes": "all"}}`, "good", 400, "array of strings"},
		{"reserved context", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}, "context": {"risk_score": 0}}`, "good", 400, "reserved"},
		{"null context value", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}, "context": {"x": null}}`, "good", 400, "null"},
		{"bad risk", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}, "context": {"risk": "extreme"}}`, "good", 400, "risk"},
		{"unknown subject property", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a", "properties": {"role": "admin"}}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "unknown subject property"},
		{"spiffe without agent path", http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "spiffe://d/workload/x"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`, "good", 400, "not an agent SPIFFE ID"},
		{"bad semantic", http.MethodPost, evalsPath, jsonType, `{"options": {"evaluations_semantic": "first"}, "evaluations": [` + good + `]}`, "good", 400, "evaluations_semantic"},
		{"unknown option", http.MethodPost, evalsPath, jsonType, `{"options": {"limit": 1}, "evaluations": [` + good + `]}`, "good", 400, "unknown field"},
		{"too many", http.MethodPost, evalsPath, jsonType, `{"evaluations": [` + good + `,` + good + `,` + good + `]}`, "good", 400, "more than 2"},
		{"batch without defaults", http.MethodPost, evalsPath, jsonType, `{}`, "good", 400, "missing subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{"X-Request-ID", "neg-1"}
			if tc.token != "" {
				hdr = append(hdr, "Authorization", "Bearer "+tc.token)
			}
			a := do(t, s, tc.method, tc.path, tc.ctype, tc.body, hdr...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.raw)
			}
			msg, _ := a.body["error"].(string)
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q lacks %q", msg, tc.msg)
			}
			if tc.status == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("401 without a challenge")
			}
			if a.header.Get("X-Request-ID") != "neg-1" || a.header.Get("Content-Type") != jsonType {
				t.Errorf("headers %v", a.header)
			}
		})
	}
}

type failing struct{ err error }

func (f failing) Decide(context.Context, policy.Request) (policy.Decision, error) {
	return policy.Decision{Effect: policy.Allow}, f.err
}

func TestDeciderFailureIsADeny(t *testing.T) {
	s := newServer(t, authzen.ServerConfig{Decider: failing{errors.New("disk on fire at /secret/path")}})
	a := do(t, s, http.MethodPost, evalPath, jsonType, `{"subject": {"type": "agent", "id": "a"}, "action": {"name": "tool.list"}, "resource": {"type": "tool_list", "id": "*"}}`)
	if a.status != http.StatusOK || a.body["decision"] != false || strings.Contains(a.raw, "secret") {
		t.Fatalf("%d %s", a.status, a.raw)
	}
	ctx := a.body["context"].(map[string]any)
	if e := ctx["error"].(map[string]any); e["status"] != float64(500) {
		t.Fatalf("%s", a.raw)
	}
}

func TestNewServerConfig(t *testing.T) {
	e := engine(t)
	for _, cfg := range []authzen.ServerConfig{
		{},
		{Decider: e, Identifier: "http://pdp.example"},
		{Decider: e, Identifier: "https://pdp.example/?q=1"},
		{Decider: e, Identifier: "https://pdp.example/#f"},
		{Decider: e, Identifier: "pdp.example"},
		{Decider: e, Identifier: "https://%zz"},
	} {
		if _, err := authzen.NewServer(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
