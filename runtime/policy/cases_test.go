package policy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/policy"
)

func TestRunCasesFile(t *testing.T) {
	cases, err := policy.LoadCases("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 7 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, r := range policy.RunCases(t.Context(), loadRealistic(t), cases) {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Why)
		}
	}
}

func TestRunCasesFailures(t *testing.T) {
	cases, err := policy.ParseCases([]byte(`[
	  {"name": "wrong effect", "request": {"principal": {"name": "a"}, "action": "tool.list", "resource": "*", "attestation": "verified"}, "expect": "deny"},
	  {"name": "wrong policies", "request": {"principal": {"name": "a"}, "action": "tool.list", "resource": "*", "attestation": "verified"}, "expect": "allow", "policies": ["other"]},
	  {"name": "invalid request", "request": {"principal": {"name": "a"}, "action": "tool.burn", "resource": "*"}, "expect": "deny"},
	  {"name": "passes", "request": {"principal": {"name": "a"}, "action": "tool.list", "resource": "*", "attestation": "verified"}, "expect": "allow", "policies": ["list-tools"]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	res := policy.RunCases(t.Context(), loadRealistic(t), cases)
	want := []struct {
		pass bool
		why  string
	}{
		{false, "expected deny, got allow"},
		{false, "expected policies [other], got [list-tools]"},
		{false, "decide failed: policy: invalid request: unknown action"},
		{true, ""},
	}
	for i, w := range want {
		if res[i].Pass != w.pass || !strings.HasPrefix(res[i].Why, w.why) || (w.why == "" && res[i].Why != "") {
			t.Errorf("%s: pass=%v why=%q, want pass=%v why=%q", res[i].Name, res[i].Pass, res[i].Why, w.pass, w.why)
		}
	}
}

func TestLoadCasesErrors(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"not json":        {`nope`, "invalid character"},
		"unknown field":   {`[{"name": "a", "request": {"principal": {"name": "a"}}, "expect": "allow", "expected": 1}]`, "unknown field"},
		"unknown req key": {`[{"name": "a", "request": {"agent": "a"}, "expect": "allow"}]`, "unknown field"},
		"bad expect":      {`[{"name": "a", "request": {}, "expect": "permit"}]`, "unknown effect"},
		"no expect":       {`[{"name": "a", "request": {}}]`, "has no expect"},
		"no name":         {`{"cases": [{"request": {}, "expect": "deny"}]}`, "case 0 has no name"},
		"duplicate":       {`[{"name": "a", "request": {}, "expect": "deny"}, {"name": "a", "request": {}, "expect": "deny"}]`, "duplicate case name"},
		"trailing":        {`[] []`, "trailing data"},
	} {
		path := filepath.Join(t.TempDir(), "cases.json")
		if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := policy.LoadCases(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "policy: "+path+": ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := policy.LoadCases(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("missing file loaded")
	}
}
