package mediator

import (
	"encoding/json"
	"testing"

	"github.com/agenthost/agenthost/credentials/txntoken"
)

// TestApprovalMatchesCall: an approval granted for other arguments,
// another tool, or with more than the one detail does not authorize the
// call.
func TestApprovalMatchesCall(t *testing.T) {
	args := json.RawMessage(`{"from":"alice","to":"bob","amount":500}`)
	digest, err := txntoken.ArgsDigest(args)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := txntoken.ArgsDigest(json.RawMessage(`{"from":"alice","to":"bob","amount":5000}`))
	detail := func(typ, tool, d string) string {
		b, _ := json.Marshal(map[string]any{"type": typ, "tool": tool, "arguments": args, "args_sha256": d})
		return string(b)
	}
	good := detail("agenthost_tool_call", "payments/transfer", digest)
	if err := MatchesCall(json.RawMessage("["+good+"]"), "payments/transfer", digest); err != nil {
		t.Fatalf("the exact call: %v", err)
	}
	for name, granted := range map[string]string{
		"other amount": "[" + detail("agenthost_tool_call", "payments/transfer", other) + "]",
		"other tool":   "[" + detail("agenthost_tool_call", "payments/refund", digest) + "]",
		"other type":   "[" + detail("payment_initiation", "payments/transfer", digest) + "]",
		"two details":  "[" + good + "," + good + "]",
		"none":         "[]",
		"not details":  `{"type":"agenthost_tool_call"}`,
	} {
		if err := MatchesCall(json.RawMessage(granted), "payments/transfer", digest); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
