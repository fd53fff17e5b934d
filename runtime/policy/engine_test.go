package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/runtime/policy"
)

const realistic = "testdata/realistic"

func loadRealistic(t testing.TB) *policy.Engine {
	t.Helper()
	e, err := policy.Load(realistic)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writePolicies creates a directory holding the given files.
func writePolicies(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func verified(r policy.Request) policy.Request {
	r.Attestation = "verified"
	return r
}

func TestDecideActions(t *testing.T) {
	e := loadRealistic(t)
	buyer := policy.Principal{Name: "buyer", SPIFFEID: "spiffe://agenthost.local/agent/buyer"}
	tests := []struct {
		name     string
		req      policy.Request
		want     policy.Effect
		policies []string
	}{
		{"model default allowed",
			verified(policy.Request{Principal: buyer, Action: policy.ActionComplete, Resource: "model:default"}),
			policy.Allow, []string{"models-default"}},
		{"model without prefix",
			verified(policy.Request{Principal: buyer, Action: policy.ActionComplete, Resource: "fast"}),
			policy.Allow, []string{"models-default"}},
		{"large model only for researcher",
			verified(policy.Request{Principal: buyer, Action: policy.ActionComplete, Resource: "model:large"}),
			policy.Deny, nil},
		{"researcher large model",
			verified(policy.Request{Principal: policy.Principal{Name: "researcher"}, Action: policy.ActionComplete, Resource: "model:large"}),
			policy.Allow, []string{"models-large"}},
		{"tool list",
			verified(policy.Request{Principal: buyer, Action: policy.ActionListTools, Resource: "*"}),
			policy.Allow, []string{"list-tools"}},
		{"tool list of one server",
			verified(policy.Request{Principal: buyer, Action: policy.ActionListTools, Resource: "notes"}),
			policy.Allow, []string{"list-tools"}},
		{"payment small",
			verified(policy.Request{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay", Context: map[string]any{"amount": 40}}),
			policy.Allow, []string{"payments-small"}},
		{"payment large needs approval",
			verified(policy.Request{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay", Context: map[string]any{"amount": 400}}),
			policy.ApprovalRequired, []string{"payments-approval"}},
		{"payment over cap denied",
			verified(policy.Request{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay", Context: map[string]any{"amount": 40000}}),
			policy.Deny, []string{"payments-cap"}},
		{"payment without user denied",
			verified(policy.Request{Principal: buyer, Action: policy.ActionCallTool, Resource: "payments/pay", Context: map[string]any{"amount": 40}}),
			policy.Deny, []string{"payments-need-user"}},
		{"payment without amount denied",
			verified(policy.Request{Principal: buyer, Subject: "alice", Action: policy.ActionCallTool, Resource: "payments/pay"}),
			policy.Deny, nil},
		{"planner delegates",
			verified(policy.Request{Principal: policy.Principal{Name: "planner"}, Action: policy.ActionCallAgent, Resource: "buyer"}),
			policy.Allow, []string{"planner-delegates"}},
		{"planner may not delegate to unknown agent",
			verified(policy.Request{Principal: policy.Principal{Name: "planner"}, Action: policy.ActionCallAgent, Resource: "mallory"}),
			policy.Deny, nil},
		{"deep delegation denied",
			verified(policy.Request{Principal: policy.Principal{Name: "planner"}, Action: policy.ActionCallAgent, Resource: "buyer", Chain: []string{"a", "b", "c"}}),
			policy.Deny, []string{"deep-delegation"}},
		{"foreign trust domain denied",
			verified(policy.Request{Principal: policy.Principal{Name: "buyer", SPIFFEID: "spiffe://evil.example/agent/buyer"}, Action: policy.ActionComplete, Resource: "model:default"}),
			policy.Deny, []string{"trusted-domain"}},
		{"search fetch needs args digest",
			verified(policy.Request{Principal: policy.Principal{Name: "researcher"}, Action: policy.ActionCallTool, Resource: "search/fetch"}),
			policy.Deny, []string{"search-fetch-needs-args"}},
		{"search fetch with args digest",
			verified(policy.Request{Principal: policy.Principal{Name: "researcher"}, Action: policy.ActionCallTool, Resource: "search/fetch", ArgsSHA256: strings.Repeat("ab", 32)}),
			policy.Allow, []string{"researcher-search"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Decide(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Effect != tc.want || !slices.Equal(d.Policies, tc.policies) {
				t.Fatalf("got %s %v (%s), want %s %v", d.Effect, d.Policies, d.Reason, tc.want, tc.policies)
			}
			if d.Version != e.Version() || !strings.HasPrefix(d.Version, "sha256:") {
				t.Fatalf("version %q, engine %q", d.Version, e.Version())
			}
			if d.Reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}

func TestForbidBeatsPermit(t *testing.T) {
	dir := writePolicies(t, map[string]string{"p.cedar": `
permit (principal, action, resource);
@reason("notes are read-only today")
forbid (principal, action == Action::"tool.call", resource == Tool::"notes/write");
`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(t.Context(), policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionCallTool, Resource: "notes/write"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Effect != policy.Deny || !slices.Equal(d.Policies, []string{"p.cedar:1"}) || d.Reason != "notes are read-only today" {
		t.Fatalf("got %+v", d)
	}
	d, _ = e.Decide(t.Context(), policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionCallTool, Resource: "notes/read"})
	if d.Effect != policy.Allow || !slices.Equal(d.Policies, []string{"p.cedar:0"}) {
		t.Fatalf("got %+v", d)
	}
}

func TestServerHierarchy(t *testing.T) {
	dir := writePolicies(t, map[string]string{"h.cedar": `
permit (principal == Agent::"a", action, resource in Server::"notes");
`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := policy.Principal{Name: "a"}
	for _, tc := range []struct {
		action, resource string
		want             policy.Effect
	}{
		{policy.ActionCallTool, "notes/read", policy.Allow},
		{policy.ActionCallTool, "notes/write", policy.Allow},
		{policy.ActionListTools, "notes", policy.Allow},
		{policy.ActionCallTool, "notesx/read", policy.Deny},
		{policy.ActionCallTool, "mail/notes", policy.Deny},
		{policy.ActionListTools, "*", policy.Deny},
		{policy.ActionCallAgent, "notes", policy.Deny},
	} {
		d, err := e.Decide(t.Context(), policy.Request{Principal: a, Action: tc.action, Resource: tc.resource})
		if err != nil {
			t.Fatal(err)
		}
		if d.Effect != tc.want {
			t.Errorf("%s %s: got %s, want %s", tc.action, tc.resource, d.Effect, tc.want)
		}
	}
}

func TestScopesAndRisk(t *testing.T) {
	e := loadRealistic(t)
	base := policy.Request{Principal: policy.Principal{Name: "w"}, Subject: "bob", Action: policy.ActionCallTool,
		Resource: "notes/write_note", Attestation: "verified"}
	for _, tc := range []struct {
		name   string
		scopes []string
		risk   string
		want   policy.Effect
	}{
		{"no scope", nil, "", policy.Deny},
		{"wrong scope", []string{"notes:read"}, "low", policy.Deny},
		{"write scope", []string{"notes:write"}, "low", policy.Allow},
		{"write scope medium risk", []string{"notes:read", "notes:write"}, "medium", policy.Allow},
		{"write scope high risk", []string{"notes:write"}, "high", policy.Deny},
	} {
		r := base
		r.Scopes, r.Risk = tc.scopes, tc.risk
		d, err := e.Decide(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Effect != tc.want {
			t.Errorf("%s: got %s (%s), want %s", tc.name, d.Effect, d.Reason, tc.want)
		}
	}
	// The delegated subject is in context: without it notes-write does not match.
	r := base
	r.Subject, r.Scopes = "", []string{"notes:write"}
	if d, _ := e.Decide(t.Context(), r); d.Effect != policy.Deny {
		t.Errorf("no subject: got %s", d.Effect)
	}
	// Deleting needs the admin scope even with the write scope.
	r = base
	r.Resource, r.Scopes = "notes/delete", []string{"notes:write"}
	if d, _ := e.Decide(t.Context(), r); d.Effect != policy.Deny || !slices.Equal(d.Policies, []string{"notes-delete-admin-only"}) {
		t.Errorf("delete: got %+v", d)
	}
	r.Scopes = []string{"notes:write", "notes:admin"}
	if d, _ := e.Decide(t.Context(), r); d.Effect != policy.Allow {
		t.Errorf("delete as admin: got %+v", d)
	}
}

func TestApprovalFromAnyDeterminingPermit(t *testing.T) {
	e := loadRealistic(t)
	// A small payment is permitted by payments-small, but delegated from the
	// planner it also matches payments-delegated-approval: approval wins.
	r := verified(policy.Request{Principal: policy.Principal{Name: "buyer"}, Subject: "alice",
		Action: policy.ActionCallTool, Resource: "payments/pay", Chain: []string{"planner"},
		Context: map[string]any{"amount": 10}})
	d, err := e.Decide(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Effect != policy.ApprovalRequired || !slices.Equal(d.Policies, []string{"payments-delegated-approval", "payments-small"}) {
		t.Fatalf("got %+v", d)
	}
	if d.Allowed() {
		t.Fatal("approval-required decision reports Allowed")
	}
	// A forbid still wins over an approval permit.
	r.Subject = ""
	if d, _ := e.Decide(t.Context(), r); d.Effect != policy.Deny {
		t.Fatalf("got %+v", d)
	}
}

func TestFailedForbidDenies(t *testing.T) {
	dir := writePolicies(t, map[string]string{"f.cedar": `
@id("all") permit (principal, action, resource);
@id("limit") forbid (principal, action, resource) when { context.amount > 10 };
@id("broken-permit") permit (principal, action, resource) when { context.nothing == 1 };
`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionComplete, Resource: "model:x"}
	d, err := e.Decide(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Effect != policy.Deny || !slices.Equal(d.Policies, []string{"limit"}) || len(d.Errors) != 2 {
		t.Fatalf("got %+v", d)
	}
	if d.Errors[0].Policy != "broken-permit" || d.Errors[1].Policy != "limit" {
		t.Fatalf("errors %+v", d.Errors)
	}
	r.Context = map[string]any{"amount": 5}
	if d, _ := e.Decide(t.Context(), r); d.Effect != policy.Allow || len(d.Errors) != 1 {
		t.Fatalf("got %+v", d)
	}
}

func TestContextValues(t *testing.T) {
	dir := writePolicies(t, map[string]string{"c.cedar": `
@id("ok") permit (principal, action, resource) when {
  context.price.greaterThan(decimal("12.3400")) &&
  context.count == 3 &&
  context.flag &&
  context.tags.contains("x") &&
  context.meta.region == "eu" &&
  context.big == 9007199254740993
};`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionComplete, Resource: "m",
		Context: map[string]any{"price": 12.5, "count": float64(3), "flag": true, "tags": []any{"x", "y"},
			"meta": map[string]any{"region": "eu"}, "big": int64(9007199254740993)}}
	d, err := e.Decide(t.Context(), r)
	if err != nil || d.Effect != policy.Allow {
		t.Fatalf("got %+v, %v", d, err)
	}
	for name, ctx := range map[string]map[string]any{
		"null":     {"x": nil},
		"reserved": {"scopes": "all"},
		"type":     {"x": struct{}{}},
		"func":     {"x": []any{1, map[string]any{"y": func() {}}}},
		"too many": {"x": slices.Repeat([]any{1}, 1100)},
		"too deep": {"x": deep(20)},
	} {
		r.Context = ctx
		d, err := e.Decide(t.Context(), r)
		if !errors.Is(err, policy.ErrInvalidRequest) || d.Effect != policy.Deny {
			t.Errorf("%s: got %+v, %v", name, d, err)
		}
	}
}

func deep(n int) any {
	var v any = "leaf"
	for range n {
		v = []any{v}
	}
	return v
}

func TestInvalidRequest(t *testing.T) {
	e := loadRealistic(t)
	p := policy.Principal{Name: "a"}
	for _, r := range []policy.Request{
		{Action: policy.ActionComplete, Resource: "model:default"},
		{Principal: p, Action: "tool.delete", Resource: "x/y"},
		{Principal: p, Action: policy.ActionCallTool, Resource: "notool"},
		{Principal: p, Action: policy.ActionCallTool, Resource: "/x"},
		{Principal: p, Action: policy.ActionListTools, Resource: "a/b"},
		{Principal: p, Action: policy.ActionComplete, Resource: "model:"},
		{Principal: p, Action: policy.ActionCallAgent, Resource: ""},
		{Principal: p, Action: policy.ActionComplete, Resource: "m", Risk: "extreme"},
	} {
		d, err := e.Decide(t.Context(), r)
		if !errors.Is(err, policy.ErrInvalidRequest) || d.Effect != policy.Deny || d.Version == "" {
			t.Errorf("%+v: got %+v, %v", r, d, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if d, err := e.Decide(ctx, policy.Request{Principal: p, Action: policy.ActionListTools, Resource: "*", Attestation: "verified"}); err == nil || d.Effect != policy.Deny {
		t.Errorf("cancelled: got %+v, %v", d, err)
	}
}

func TestLoadIDsAndErrors(t *testing.T) {
	dir := writePolicies(t, map[string]string{
		"b.cedar":      "permit (principal, action, resource);\n@id(\"named\") forbid (principal, action, resource) when { false };\n",
		"a.cedar":      "permit (principal, action == Action::\"tool.list\", resource);\n",
		"ignored.txt":  "not cedar",
		"ignored.json": "{}",
	})
	// A symbolic link is followed; a directory named *.cedar is skipped.
	if err := os.Symlink(filepath.Join(dir, "a.cedar"), filepath.Join(dir, "c.cedar")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d.cedar"), 0o700); err != nil {
		t.Fatal(err)
	}
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.PolicyIDs(); !slices.Equal(got, []string{"a.cedar:0", "b.cedar:0", "c.cedar:0", "named"}) {
		t.Fatalf("ids %v", got)
	}

	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"parse error": {map[string]string{"ok.cedar": "permit (principal, action, resource);", "bad.cedar": "permit (principal, action, resource);\n\npermit (principal,\n  action == Action::\"x\"\n  resource);\n"},
			[]string{"policy: bad.cedar:5:"}},
		"duplicate id": {map[string]string{"a.cedar": "@id(\"x\") permit (principal, action, resource);", "b.cedar": "\n@id(\"x\") permit (principal, action, resource);"},
			[]string{"b.cedar:2", `duplicate policy id "x"`, "first at a.cedar:1"}},
		"bad approval":    {map[string]string{"a.cedar": "@approval(\"yes\") permit (principal, action, resource);"}, []string{"a.cedar:1", "@approval"}},
		"approval forbid": {map[string]string{"a.cedar": "@approval(\"required\") forbid (principal, action, resource);"}, []string{"only meaningful on a permit"}},
		"empty id":        {map[string]string{"a.cedar": "@id(\"\") permit (principal, action, resource);"}, []string{"empty @id"}},
	} {
		_, err := policy.Load(writePolicies(t, tc.files))
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", name, err, w)
			}
		}
	}
	var pe *policy.ParseError
	if _, err := policy.Load(writePolicies(t, map[string]string{"x.cedar": "permit ("})); !errors.As(err, &pe) || pe.File != "x.cedar" || pe.Line != 1 {
		t.Errorf("parse error %v", err)
	}
	_, err = policy.Load(writePolicies(t, map[string]string{"y.cedar": "\npermit (principal, action, resource) when { \"\\q\" };"}))
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.HasPrefix(err.Error(), "policy: y.cedar:2:") {
		t.Errorf("escape error %v", err)
	}
	if _, err := policy.Load(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory loaded")
	}
	if _, err := policy.New(policy.Config{}); err == nil {
		t.Error("no directory accepted")
	}
}

func TestEmptyDirDeniesAll(t *testing.T) {
	e, err := policy.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(t.Context(), policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"})
	if err != nil || d.Effect != policy.Deny || d.Reason != "no policy permits tool.list on *" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

func TestReload(t *testing.T) {
	dir := writePolicies(t, map[string]string{"p.cedar": `@id("v1") permit (principal, action == Action::"tool.list", resource);`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	v1 := e.Version()
	list := policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"}
	model := policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionComplete, Resource: "model:m"}
	if d, _ := e.Decide(t.Context(), model); d.Effect != policy.Deny {
		t.Fatalf("before reload: %+v", d)
	}

	// A good reload swaps the set and the version.
	if err := os.WriteFile(filepath.Join(dir, "q.cedar"), []byte(`@id("v2") permit (principal, action == Action::"llm.complete", resource);`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	v2 := e.Version()
	if v2 == v1 {
		t.Fatal("version unchanged")
	}
	if d, _ := e.Decide(t.Context(), model); d.Effect != policy.Allow || d.Version != v2 || !slices.Equal(d.Policies, []string{"v2"}) {
		t.Fatalf("after reload: %+v", d)
	}

	// A bad reload keeps the old set in force.
	if err := os.WriteFile(filepath.Join(dir, "r.cedar"), []byte("permit (principal, action, resource"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "r.cedar") {
		t.Fatalf("bad reload: %v", err)
	}
	if e.Version() != v2 {
		t.Fatal("bad reload changed the version")
	}
	if d, _ := e.Decide(t.Context(), model); d.Effect != policy.Allow || d.Version != v2 {
		t.Fatalf("after bad reload: %+v", d)
	}
	if d, _ := e.Decide(t.Context(), list); d.Effect != policy.Allow {
		t.Fatalf("after bad reload: %+v", d)
	}

	// Removing the directory is an error too.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); err == nil || e.Version() != v2 {
		t.Fatalf("reload of removed dir: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Reload(ctx); err == nil {
		t.Fatal("reload with cancelled context")
	}
}

func TestConcurrentDecideAndReload(t *testing.T) {
	allow := `@id("p") permit (principal, action, resource);`
	deny := `@id("f") forbid (principal, action, resource);`
	dir := writePolicies(t, map[string]string{"p.cedar": allow})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{e.Version(): "p"}
	if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(deny), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	versions[e.Version()] = "f"

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			r := policy.Request{Principal: policy.Principal{Name: "a"}, Action: policy.ActionListTools, Resource: "*"}
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Decide(context.Background(), r)
				if err != nil {
					errs <- err.Error()
					return
				}
				// Every decision must be consistent with the set it names.
				want := versions[d.Version]
				if want == "" || len(d.Policies) != 1 || d.Policies[0] != want {
					errs <- "inconsistent decision " + d.Effect.String() + " " + d.Version
					return
				}
			}
		})
	}
	for i := range 200 {
		src := allow
		if i%2 == 1 {
			src = deny
		}
		if err := os.WriteFile(filepath.Join(dir, "p.cedar"), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestEffectText(t *testing.T) {
	for _, e := range []policy.Effect{policy.Deny, policy.Allow, policy.ApprovalRequired} {
		b, err := e.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back policy.Effect
		if err := back.UnmarshalText(b); err != nil || back != e {
			t.Fatalf("%s: round trip %v %v", e, back, err)
		}
	}
	if _, err := policy.Effect(7).MarshalText(); err == nil {
		t.Fatal("unknown effect marshalled")
	}
	var e policy.Effect
	if err := e.UnmarshalText([]byte("permit")); err == nil {
		t.Fatal("unknown effect parsed")
	}
}

// Entities are cached by principal and resource; a cached entity must never
// stand in for a different principal.
func TestEntityCacheKeys(t *testing.T) {
	dir := writePolicies(t, map[string]string{"s.cedar": `
permit (principal, action, resource) when { principal.spiffe_id == "b\u{0}c" };`})
	e, err := policy.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name, id string) policy.Request {
		return policy.Request{Principal: policy.Principal{Name: name, SPIFFEID: id}, Action: policy.ActionListTools, Resource: "*"}
	}
	for range 2 {
		if d, _ := e.Decide(t.Context(), mk("a\x00b", "c")); d.Effect != policy.Deny {
			t.Fatalf("got %+v", d)
		}
		if d, _ := e.Decide(t.Context(), mk("a", "b\x00c")); d.Effect != policy.Allow {
			t.Fatalf("got %+v", d)
		}
		long := strings.Repeat("x", 600)
		if d, _ := e.Decide(t.Context(), mk(long, "b\x00c")); d.Effect != policy.Allow {
			t.Fatalf("got %+v", d)
		}
	}
}
