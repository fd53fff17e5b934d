package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/agenthost/agenthost/runtime/policy"
)

// benchRequest is a typical tool call: it goes through every guard of the
// realistic set and is permitted by one policy.
var benchRequest = policy.Request{
	Principal:   policy.Principal{Name: "buyer", SPIFFEID: "spiffe://agenthost.local/agent/buyer"},
	Subject:     "alice",
	Action:      policy.ActionCallTool,
	Resource:    "payments/pay",
	Scopes:      []string{"payments:write", "notes:read"},
	Attestation: "verified",
	Risk:        policy.RiskLow,
	ArgsSHA256:  strings.Repeat("ab", 32),
	Chain:       []string{"root"},
	Context:     map[string]any{"amount": 42, "currency": "EUR"},
}

func BenchmarkDecide(b *testing.B) {
	e := loadRealistic(b)
	if n := len(e.PolicyIDs()); n != 20 {
		b.Fatalf("%d policies", n)
	}
	ctx := b.Context()
	d, err := e.Decide(ctx, benchRequest)
	if err != nil || d.Effect != policy.Allow {
		b.Fatalf("%+v %v", d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, benchRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCedarRaw evaluates the same policy set and request with Cedar
// directly, on entities and a request built once, to show the cost of the
// engine's translation and bookkeeping.
func BenchmarkCedarRaw(b *testing.B) {
	ps := cedar.NewPolicySet()
	names, err := filepath.Glob(filepath.Join(realistic, "*.cedar"))
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(names)
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		list, err := cedar.NewPolicyListFromBytes(filepath.Base(name), src)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range list {
			ps.Add(cedar.PolicyID(p.Annotations()["id"]), p)
		}
	}
	principal := cedar.NewEntityUID("Agent", "buyer")
	server := cedar.NewEntityUID("Server", "payments")
	tool := cedar.NewEntityUID("Tool", "payments/pay")
	entities := cedar.EntityMap{
		principal: {UID: principal, Attributes: cedar.NewRecord(cedar.RecordMap{
			"name": cedar.String("buyer"), "spiffe_id": cedar.String("spiffe://agenthost.local/agent/buyer")})},
		tool: {UID: tool, Parents: cedar.NewEntityUIDSet(server), Attributes: cedar.NewRecord(cedar.RecordMap{
			"server": cedar.String("payments"), "name": cedar.String("pay")})},
	}
	req := cedar.Request{
		Principal: principal,
		Action:    cedar.NewEntityUID("Action", "tool.call"),
		Resource:  tool,
		Context: cedar.NewRecord(cedar.RecordMap{
			"subject":     cedar.String("alice"),
			"scopes":      cedar.NewSet(cedar.String("payments:write"), cedar.String("notes:read")),
			"attestation": cedar.String("verified"),
			"risk":        cedar.String("low"),
			"risk_score":  cedar.Long(1),
			"args_sha256": cedar.String(strings.Repeat("ab", 32)),
			"chain":       cedar.NewSet(cedar.String("root")),
			"chain_depth": cedar.Long(1),
			"amount":      cedar.Long(42),
			"currency":    cedar.String("EUR"),
		}),
	}
	dec, diag := ps.IsAuthorized(entities, req) //nolint:staticcheck // the comparison is with this entry point
	if dec != cedar.Allow || len(diag.Reasons) != 1 || len(diag.Errors) != 0 {
		b.Fatalf("%v %+v", dec, diag)
	}
	b.ReportAllocs()
	for b.Loop() {
		ps.IsAuthorized(entities, req) //nolint:staticcheck // as above
	}
}
