package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agenthost/agenthost/runtime/policy"
)

// The policies of the package documentation.
const notesCedar = `
@id("notes-read")
permit (principal, action == Action::"tool.call", resource in Server::"notes")
when { context.scopes.contains("notes:read") && context.risk_score <= 2 };

@id("payments-approval")
@approval("required")
@reason("payments above 100 need a human")
permit (principal == Agent::"buyer", action == Action::"tool.call", resource == Tool::"payments/pay")
when { context has amount && context.amount > 100 };

@id("unattested-no-tools")
forbid (principal, action == Action::"tool.call", resource)
unless { context.attestation == "verified" };
`

func Example() {
	dir, err := os.MkdirTemp("", "policies")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "notes.cedar"), []byte(notesCedar), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	engine, err := policy.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, r := range []policy.Request{
		{Principal: policy.Principal{Name: "reader"}, Action: policy.ActionCallTool, Resource: "notes/search",
			Scopes: []string{"notes:read"}, Attestation: "verified", Risk: policy.RiskLow},
		{Principal: policy.Principal{Name: "reader"}, Action: policy.ActionCallTool, Resource: "notes/search",
			Scopes: []string{"notes:read"}, Risk: policy.RiskLow},
		{Principal: policy.Principal{Name: "buyer"}, Action: policy.ActionCallTool, Resource: "payments/pay",
			Attestation: "verified", Context: map[string]any{"amount": 250}},
	} {
		d, err := engine.Decide(ctx, r)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(d.Effect, d.Policies, d.Reason)
	}
	// Output:
	// allow [notes-read] permitted by notes-read
	// deny [unattested-no-tools] forbidden by unattested-no-tools
	// approval_required [payments-approval] payments above 100 need a human
}
