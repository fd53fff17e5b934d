package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/audit"
)

// TestGraph: a transaction of alice's: the assistant delegates to payments,
// whose transfer needed alice's approval and was approved, and whose
// refund was hidden from its tool list; the assistant's delegation to a
// quarantined research agent was refused.
func TestGraph(t *testing.T) {
	rec := func(r audit.Record) audit.Entry { return audit.Entry{Record: r} }
	root := &audit.TraceNode{Txn: "txn-1", Agent: "assistant", Task: "task-a", Records: []audit.Entry{
		rec(audit.Record{Action: "task.run", Agent: "assistant", Subject: "alice", Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK}),
		rec(audit.Record{Action: audit.ActionAgentCall, Agent: "assistant", Subject: "alice", Resource: "payments", Decision: audit.DecisionAllow}),
		rec(audit.Record{Action: audit.ActionAgentCall, Agent: "assistant", Subject: "alice", Resource: "spiffe://example.test/agent/research", Decision: audit.DecisionDeny}),
	}, Children: []*audit.TraceNode{
		{Txn: "txn-1", Agent: "payments", Task: "task-p", Parent: "task-a", Records: []audit.Entry{
			rec(audit.Record{Action: audit.ActionToolList, Resource: "payments/refund", Decision: audit.DecisionDeny, Reason: "hidden"}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/transfer", Decision: audit.DecisionApprovalRequired}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/transfer", Decision: audit.DecisionAllow, Approver: "alice", ApprovalID: "ap"}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/transfer", Decision: audit.DecisionAllow, Outcome: audit.OutcomeOK}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/balance", Decision: audit.DecisionAllow}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/balance", Decision: audit.DecisionAllow}),
			rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/delete", Decision: audit.DecisionDeny}),
		}},
		{Txn: "txn-1", Agent: "research", Task: "task-r", Parent: "task-a", Records: []audit.Entry{
			rec(audit.Record{Action: "task.run", Decision: audit.DecisionDeny, Reason: "quarantined"}),
		}},
	}}
	g := newGraph(root)
	var nodes []string
	for _, n := range g.Nodes {
		nodes = append(nodes, n.Kind+":"+n.Label)
	}
	wantNodes := "user:alice agent:assistant agent:payments tool:payments/refund tool:payments/transfer tool:payments/balance tool:payments/delete agent:research"
	if got := strings.Join(nodes, " "); got != wantNodes {
		t.Errorf("nodes %s\nwant  %s", got, wantNodes)
	}
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, e.Mark+":"+e.Label)
	}
	wantEdges := "allow:task, allow:delegates, deny:hidden from the tool list, approval:approved by alice, allow:allow ×2, deny:deny, deny:delegates"
	if got := strings.Join(edges, ", "); got != wantEdges {
		t.Errorf("edges %s\nwant  %s", got, wantEdges)
	}
	// Columns by depth, every node inside the drawing, none overlapping.
	seen := map[[2]int]bool{}
	for _, n := range g.Nodes {
		if n.X < 0 || n.Y < 0 || n.X+n.W > g.Width || n.Y+n.H > g.Height {
			t.Errorf("node %s at (%d,%d) outside %dx%d", n.Label, n.X, n.Y, g.Width, g.Height)
		}
		if seen[[2]int{n.X, n.Y}] {
			t.Errorf("two nodes at (%d,%d)", n.X, n.Y)
		}
		seen[[2]int{n.X, n.Y}] = true
	}
	if g.Nodes[0].X != margin || g.Nodes[1].X != margin+colWidth || g.Nodes[3].X != margin+3*colWidth {
		t.Errorf("columns: %+v", g.Nodes)
	}

	// A transaction for nobody, with a pending approval.
	g = newGraph(&audit.TraceNode{Txn: "txn-2", Agent: "payer", Task: "t", Records: []audit.Entry{
		rec(audit.Record{Action: audit.ActionToolCall, Resource: "payments/transfer", Decision: audit.DecisionApprovalRequired}),
	}})
	if g.Nodes[0].Label != "no user" || g.Edges[1].Mark != markApproval || g.Edges[1].Label != "waiting for approval" {
		t.Errorf("pending: %+v %+v", g.Nodes, g.Edges)
	}
}

// TestAuditSearch: the search reads the log from its newest record back
// across pages, shows matches newest first, and filters by agent, user,
// action, transaction (its own, its task, its parent) and decision.
func TestAuditSearch(t *testing.T) {
	be := testBackend()
	for i := range 2500 {
		r := audit.Record{Seq: int64(i), Agent: []string{"research", "payments"}[i%2], Action: audit.ActionToolCall,
			Txn: fmt.Sprintf("txn-%d", i/10), Decision: audit.DecisionAllow}
		if i%7 == 0 {
			r.Subject = "alice"
		}
		if i == 3 {
			r.Decision, r.Txn, r.ParentTxn = audit.DecisionDeny, "txn-child", "txn-parent"
		}
		be.records = append(be.records, audit.Entry{Index: int64(i), Record: r})
	}
	e := newEnv(t, be)
	c := e.console
	ctx := context.Background()
	tests := []struct {
		name    string
		q       auditQuery
		n       int
		first   int64
		scanned int
		more    bool
	}{
		{"everything: the latest 100", auditQuery{}, 100, 2499, 100, true},
		{"one agent", auditQuery{Agent: "research"}, maxResults, 2498, 400, true},
		{"a transaction", auditQuery{Txn: "txn-5"}, 10, 59, 2500, false},
		{"a parent transaction", auditQuery{Txn: "txn-parent"}, 1, 3, 2500, false},
		{"a decision", auditQuery{Decision: audit.DecisionDeny}, 1, 3, 2500, false},
		{"user and agent", auditQuery{User: "alice", Agent: "payments"}, 179, 2499, 2500, false},
		{"nothing", auditQuery{Action: "llm.complete"}, 0, -1, 2500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, scanned, more, err := c.search(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			first := int64(-1)
			if len(found) > 0 {
				first = found[0].Index
			}
			if len(found) != tt.n || first != tt.first || scanned != tt.scanned || more != tt.more {
				t.Errorf("%d found (first %d), %d scanned, more %v; want %d (first %d), %d, %v", len(found), first, scanned, more, tt.n, tt.first, tt.scanned, tt.more)
			}
			for i := 1; i < len(found); i++ {
				if found[i].Index >= found[i-1].Index || !tt.q.matches(&found[i].Record) {
					t.Fatalf("result %d: %+v", i, found[i])
				}
			}
		})
	}
	// The page: the search's form is filled in, a transaction links to
	// its graph, and the log's checkpoint and verification are shown.
	alice := e.signIn("alice")
	_, body, _ := alice.get(Path + "audit?agent=payments&txn=txn-child&decision=deny")
	for _, want := range []string{`name="agent" value="payments"`, `<option value="deny" selected>`, `href="/console/audit/txn/txn-child"`,
		"1 record, newest first", "2500 records", "Verified at", `id="verify"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	if status, _, _ := alice.get(Path + "audit?agent=" + url.QueryEscape(strings.Repeat("x", 300))); status != http.StatusBadRequest {
		t.Errorf("a search field of 300 characters: %d", status)
	}
	if status, _, _ := alice.get(Path + "audit/txn/txn-unknown"); status != http.StatusNotFound {
		t.Errorf("an unknown transaction: %d", status)
	}
}

// TestAuditVerification: the audit page verifies the log when it was not
// verified recently and shows the result: a problem as a failure, a log
// that cannot be read as such, never as verified; "Verify now" verifies
// again at once.
func TestAuditVerification(t *testing.T) {
	be := testBackend()
	be.verifyProblem = "hash 3: record 3 does not hash to the stored hash"
	e := newEnv(t, be)
	alice := e.signIn("alice")
	_, body, _ := alice.get(Path + "audit")
	if !strings.Contains(body, `class="verification problem"`) || !strings.Contains(body, "record 3 does not hash") || strings.Contains(body, "Verified at") {
		t.Errorf("a log with a problem:\n%s", body)
	}
	if _, _, _ = alice.get(Path + "audit"); be.verifies != 1 {
		t.Errorf("the page verified %d times; a recent verification is shown again", be.verifies)
	}
	be.mu.Lock()
	be.verifyProblem = ""
	be.mu.Unlock()
	if status, body := alice.post(Path+"audit/verify", url.Values{"csrf": {alice.csrf()}}); status != http.StatusOK || !strings.Contains(body, "Verified at") || be.verifies != 2 {
		t.Errorf("verify now: %d, %d verifications\n%s", status, be.verifies, body)
	}
	be.mu.Lock()
	be.verifyErr = errors.New("the store does not answer")
	be.mu.Unlock()
	if status, body := alice.post(Path+"audit/verify", url.Values{"csrf": {alice.csrf()}}); status != http.StatusInternalServerError || !strings.Contains(body, "the store does not answer") {
		t.Errorf("verify now with the store down: %d\n%s", status, body)
	}
}
