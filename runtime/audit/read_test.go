package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// appendAll writes recs through a fresh log and closes it.
func appendAll(t *testing.T, st *fakeLog, recs []Record) {
	t.Helper()
	s, v := testKeys(t)
	l := openLog(t, st, s, v, 0)
	ctx := context.Background()
	for _, r := range recs {
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTrace(t *testing.T) {
	ctx := context.Background()
	st := newFakeLog()
	appendAll(t, st, []Record{
		/* 0 */ {Agent: "planner", Action: ActionLLMComplete, Resource: "model-a", Decision: DecisionAllow, Outcome: OutcomeOK, Task: "T1", Txn: "A"},
		/* 1 */ {Agent: "other", Action: ActionToolCall, Resource: "search", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "D"},
		/* 2 */ {Agent: "planner", Action: ActionAgentCall, Resource: "worker", Decision: DecisionAllow, Outcome: OutcomeOK, Task: "T1", Txn: "A"},
		/* 3 */ {Agent: "worker", Action: ActionToolCall, Resource: "payments", Decision: DecisionApprovalRequired, Task: "T2", Txn: "B", ParentTxn: "A"},
		/* 4 */ {Agent: "alice", Action: ActionApproval, Resource: "payments", Decision: DecisionAllow, Txn: "B"},
		/* 5 */ {Agent: "worker", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Task: "T2", Txn: "B", ParentTxn: "A"},
		/* 6 */ {Agent: "helper", Action: ActionToolCall, Resource: "fs.read", Decision: DecisionDeny, Outcome: OutcomeDenied, Task: "T3", ParentTask: "T2"},
		/* 7 */ {Agent: "worker", Action: ActionToolCall, Resource: "mail", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "E", ParentTxn: "A"},
	})
	for _, id := range []string{"A", "B", "T3", "T1"} {
		tree, err := Trace(ctx, st, id)
		if err != nil {
			t.Fatalf("Trace(%s): %v", id, err)
		}
		// Shape: A{0,2} -> [B{3,4,5} -> [task:T3{6}], E{7}]; D is unrelated.
		if tree.Txn != "A" || tree.Agent != "planner" || tree.Task != "T1" || indexes(tree) != "0,2" || len(tree.Children) != 2 {
			t.Fatalf("Trace(%s) root = %+v", id, tree)
		}
		b, e := tree.Children[0], tree.Children[1]
		if b.Txn != "B" || b.Parent != "A" || indexes(b) != "3,4,5" || len(b.Children) != 1 {
			t.Fatalf("Trace(%s) child B = %+v", id, b)
		}
		if e.Txn != "E" || indexes(e) != "7" || len(e.Children) != 0 {
			t.Fatalf("Trace(%s) child E = %+v", id, e)
		}
		c := b.Children[0]
		if c.Txn != "task:T3" || c.Parent != "T2" || indexes(c) != "6" || len(c.Children) != 0 {
			t.Fatalf("Trace(%s) grandchild = %+v", id, c)
		}
	}
	tree, err := Trace(ctx, st, "D")
	if err != nil || indexes(tree) != "1" || len(tree.Children) != 0 {
		t.Fatalf("Trace(D) = %+v, %v", tree, err)
	}
	if _, err := Trace(ctx, st, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Trace(nope): %v, want ErrNotFound", err)
	}

	tree, _ = Trace(ctx, st, "A")
	var buf bytes.Buffer
	if err := tree.Format(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("trace:\n%s", out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4+8-1 { // 4 transactions, 7 of the 8 records
		t.Fatalf("%d lines, want 11", len(lines))
	}
	for _, want := range []string{
		"txn A agent=planner task=T1",
		"  #2 ",
		"    txn B agent=worker task=T2 parent=A",
		"        txn task:T3 agent=helper task=T3 parent=T2",
		"          #6 ",
		"    txn E agent=worker parent=A",
	} {
		if !strings.Contains(out, "\n"+want) && !strings.HasPrefix(out, want) {
			t.Errorf("trace lacks a line starting %q", want)
		}
	}
	if !strings.Contains(out, `approval payments decision="allow"`) {
		t.Error("trace lacks the approval")
	}
}

// TestTraceSharedTransaction: the tasks of one transaction share its txn
// (the user's request, the tasks it delegated, their tool calls): tracing
// the txn or any of its tasks shows them as one tree, a delegated task
// under the task that delegated it, and a record of the transaction that
// names no task (an approval) with the transaction's first task.
func TestTraceSharedTransaction(t *testing.T) {
	ctx := context.Background()
	st := newFakeLog()
	appendAll(t, st, []Record{
		/* 0 */ {Agent: "assistant", Action: ActionAgentCall, Resource: "payments", Decision: DecisionAllow, Task: "T1", Txn: "txn-1"},
		/* 1 */ {Agent: "payments", Action: ActionToolCall, Resource: "payments/transfer", Decision: DecisionAllow, Task: "T2", Txn: "txn-1", ParentTask: "T1"},
		/* 2 */ {Agent: "mcp:bob", Action: "mcp.tools.call", Resource: "clock/now", Decision: DecisionAllow, Txn: "mcp-1"},
		/* 3 */ {Agent: "alice", Action: ActionApproval, Resource: "payments/transfer", Decision: DecisionAllow, Txn: "txn-1"},
		/* 4 */ {Agent: "payments", Action: ActionToolCall, Resource: "payments/transfer", Outcome: OutcomeOK, Task: "T2", Txn: "txn-1", ParentTask: "T1"},
		/* 5 */ {Agent: "research", Action: ActionToolCall, Resource: "clock/now", Decision: DecisionAllow, Task: "T3", Txn: "txn-1", ParentTask: "T2"},
		/* 6 */ {Agent: "payments", Action: "task.run", Outcome: OutcomeOK, Task: "T2", Txn: "txn-1", ParentTask: "T1"},
		/* 7 */ {Agent: "assistant", Action: "task.run", Outcome: OutcomeOK, Task: "T1", Txn: "txn-1"},
	})
	for _, id := range []string{"txn-1", "T1", "T2", "T3"} {
		tree, err := Trace(ctx, st, id)
		if err != nil {
			t.Fatalf("Trace(%s): %v", id, err)
		}
		if tree.Txn != "txn-1" || tree.Task != "T1" || tree.Agent != "assistant" || indexes(tree) != "0,3,7" || len(tree.Children) != 1 {
			t.Fatalf("Trace(%s) root = %+v", id, tree)
		}
		t2 := tree.Children[0]
		if t2.Txn != "txn-1" || t2.Task != "T2" || t2.Parent != "T1" || indexes(t2) != "1,4,6" || len(t2.Children) != 1 {
			t.Fatalf("Trace(%s) delegated task = %+v", id, t2)
		}
		if t3 := t2.Children[0]; t3.Task != "T3" || t3.Agent != "research" || indexes(t3) != "5" {
			t.Fatalf("Trace(%s) task delegated by the delegated task = %+v", id, t3)
		}
	}
	if tree, err := Trace(ctx, st, "mcp-1"); err != nil || indexes(tree) != "2" || tree.Task != "" || tree.Agent != "mcp:bob" {
		t.Fatalf("Trace(mcp-1) = %+v, %v", tree, err)
	}
	tree, _ := Trace(ctx, st, "txn-1")
	var buf bytes.Buffer
	if err := tree.Format(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"txn txn-1 agent=assistant task=T1\n",
		"\n    txn txn-1 agent=payments task=T2 parent=T1\n",
		"\n        txn txn-1 agent=research task=T3 parent=T2\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, buf.String())
		}
	}
}

func indexes(n *TraceNode) string {
	var s []string
	for _, e := range n.Records {
		s = append(s, itoa(e.Index))
	}
	return strings.Join(s, ",")
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestTraceCycle(t *testing.T) {
	ctx := context.Background()
	st := newFakeLog()
	appendAll(t, st, []Record{
		{Agent: "a", Action: ActionAgentCall, Txn: "X", ParentTxn: "Y"},
		{Agent: "b", Action: ActionAgentCall, Txn: "Y", ParentTxn: "X"},
	})
	tree, err := Trace(ctx, st, "X")
	if err != nil {
		t.Fatal(err)
	}
	if tree.Txn != "Y" || len(tree.Children) != 1 || tree.Children[0].Txn != "X" || len(tree.Children[0].Children) != 0 {
		t.Errorf("cyclic trace = %+v", tree)
	}
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	s, v := testKeys(t)
	st := newFakeLog()
	fill(t, st, s, v, 12, 0)
	var buf bytes.Buffer
	n, err := Export(ctx, st, &buf, 0)
	if err != nil || n != 12 {
		t.Fatalf("Export = %d, %v", n, err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	var i int64
	for ; sc.Scan(); i++ {
		line := sc.Bytes()
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if r.Seq != i || r.Txn != testRecord(int(i)).Txn {
			t.Errorf("line %d holds record %d (%s)", i, r.Seq, r.Txn)
		}
		// Each line is exactly what was hashed.
		leaf := st.data(t, HashesLog, i)[:tlog.HashSize]
		if h := tlog.RecordHash(line); !bytes.Equal(h[:], leaf) {
			t.Errorf("line %d does not hash to its leaf", i)
		}
	}
	if i != 12 {
		t.Errorf("%d lines, want 12", i)
	}
	buf.Reset()
	if n, err := Export(ctx, st, &buf, 10); err != nil || n != 2 || strings.Count(buf.String(), "\n") != 2 {
		t.Errorf("Export from 10 = %d, %v, %q", n, err, buf.String())
	}
	st.set(t, RecordsLog, 3, []byte("{\"seq\":3,\n\"x\":1}"))
	if _, err := Export(ctx, st, &bytes.Buffer{}, 0); err == nil {
		t.Error("Export of a multi-line record succeeded")
	}
	if _, err := Export(ctx, st, &bytes.Buffer{}, -1); err == nil {
		t.Error("Export from -1 succeeded")
	}
}

func TestRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := os.WriteFile(path, []byte(`{"token_actions": ["tool.call", "agent.call"], "approval_required": ["payments"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.AllowActions != nil || strings.Join(r.TokenActions, ",") != "tool.call,agent.call" || strings.Join(r.ApprovalRequired, ",") != "payments" || r.IgnoreQuarantine {
		t.Errorf("rules %+v", r)
	}
	for _, bad := range []string{`{"tokens": []}`, `{"approval_required": [""]}`, `[]`, `{} {}`, `{`} {
		if _, err := ParseRules([]byte(bad)); err == nil {
			t.Errorf("ParseRules(%s) succeeded", bad)
		}
	}
	if _, err := LoadRules(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadRules of a missing file succeeded")
	}
}

// TestCheckApprovalOnDecision: the host records an approval on the allow
// decision of the call it approved; that satisfies approval_required, and
// the same call without it does not.
func TestCheckApprovalOnDecision(t *testing.T) {
	ctx := context.Background()
	tok := TokenRef("token")
	records := []Record{
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Txn: "a", TokenJTI: "j-1",
			ApprovalID: "ap-1", Approver: "alice"},
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "a",
			ApprovalID: "ap-1", Approver: "alice"},
		// No approval on the decision: a violation.
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Txn: "b", TokenSHA256: tok},
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "b"},
		// An approval named only on the outcome does not come before the call.
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "c",
			TokenSHA256: tok, ApprovalID: "ap-2", Approver: "alice"},
	}
	st := newFakeLog()
	appendAll(t, st, records)
	vs, err := Check(ctx, st, Rules{ApprovalRequired: []string{"payments"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, itoa(v.Index)+" "+v.Rule)
	}
	if want := []string{"3 " + RuleApproval, "4 " + RuleApproval}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("violations %v, want %v", got, want)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	tok := TokenRef("token")
	clean := []Record{
		{Agent: "w", Action: ActionToolCall, Resource: "search", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t1", TokenSHA256: tok},
		// Decision and outcome in separate records of one txn.
		{Agent: "w", Action: ActionToolCall, Resource: "mail", Decision: DecisionAllow, Txn: "t2", TokenJTI: "j-1"},
		{Agent: "w", Action: ActionToolCall, Resource: "mail", Outcome: OutcomeOK, Txn: "t2"},
		// An approval before a call that needs one.
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionApprovalRequired, Txn: "t3"},
		{Agent: "alice", Action: ActionApproval, Resource: "payments", Decision: DecisionAllow, Txn: "t3"},
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t3", TokenSHA256: tok},
		// Denied calls and failed calls need nothing.
		{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionDeny, Outcome: OutcomeDenied, Txn: "t4"},
		// Quarantine, then release: allowed afterwards.
		{Agent: "x", AgentID: "spiffe://example.org/x", Action: ActionRemediation, Remedy: RemedyQuarantine, Cause: "attestation.failed"},
		{Agent: "x", Action: ActionToolCall, Resource: "search", Decision: DecisionDeny, Outcome: OutcomeDenied, Txn: "t5"},
		{Agent: "x", Action: ActionRemediation, Remedy: RemedyRelease, Cause: "attestation.ok"},
		{Agent: "x", Action: ActionToolCall, Resource: "search", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t6", TokenJTI: "j-2"},
		{Agent: "x", Action: ActionLLMComplete, Resource: "model", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t7"},
	}
	rules := Rules{ApprovalRequired: []string{"payments"}}
	st := newFakeLog()
	appendAll(t, st, clean)
	vs, err := Check(ctx, st, rules)
	if err != nil || len(vs) != 0 {
		t.Fatalf("clean log: %v, %v", vs, err)
	}

	bad := append([]Record(nil), clean...)
	bad = append(bad,
		/* 12 */ Record{Agent: "w", Action: ActionToolCall, Resource: "search", Outcome: OutcomeOK, Txn: "t8", TokenSHA256: tok},
		/* 13 */ Record{Agent: "w", Action: ActionToolCall, Resource: "search", Decision: DecisionDeny, Outcome: OutcomeOK, Txn: "t9", TokenSHA256: tok},
		/* 14 */ Record{Agent: "w", Action: ActionToolCall, Resource: "search", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t10"},
		/* 15 */ Record{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t11", TokenSHA256: tok},
		// An approval for another transaction does not count.
		/* 16 */
		Record{Agent: "alice", Action: ActionApproval, Resource: "payments", Decision: DecisionAllow, Txn: "t12"},
		/* 17 */ Record{Agent: "w", Action: ActionToolCall, Resource: "payments", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t13", TokenSHA256: tok},
		/* 18 */ Record{Agent: "y", AgentID: "spiffe://example.org/y", Action: ActionRemediation, Remedy: RemedyQuarantine, Cause: "risk.high"},
		/* 19 */ Record{AgentID: "spiffe://example.org/y", Action: ActionLLMComplete, Resource: "model", Decision: DecisionAllow, Outcome: OutcomeOK, Txn: "t14"},
		/* 20 */ Record{Agent: "y", Action: ActionToolCall, Resource: "search", Decision: DecisionDeny, Outcome: OutcomeDenied, Txn: "t15"},
		// The tasks of one transaction share its txn: one task's allow
		// decision does not cover another task's call.
		/* 21 */
		Record{Agent: "w", Action: ActionToolCall, Resource: "mail", Decision: DecisionAllow, Txn: "t16", Task: "A", TokenJTI: "j-3"},
		/* 22 */ Record{Agent: "v", Action: ActionToolCall, Resource: "mail", Outcome: OutcomeOK, Txn: "t16", Task: "B", TokenSHA256: tok},
	)
	st = newFakeLog()
	appendAll(t, st, bad)
	vs, err = Check(ctx, st, rules)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, itoa(v.Index)+" "+v.Rule)
		t.Log(v)
	}
	want := []string{
		"12 " + RuleAllow,
		"13 " + RuleAllow,
		"14 " + RuleToken,
		"15 " + RuleApproval,
		"17 " + RuleApproval,
		"19 " + RuleQuarantine,
		"22 " + RuleAllow,
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("violations\n got %v\nwant %v", got, want)
	}

	// Configured rule sets: token references also for llm.complete,
	// quarantine ignored, allow rule disabled.
	vs, err = Check(ctx, st, Rules{AllowActions: []string{}, TokenActions: []string{ActionToolCall, ActionLLMComplete}, IgnoreQuarantine: true})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, v := range vs {
		got = append(got, itoa(v.Index)+" "+v.Rule)
	}
	want = []string{"11 " + RuleToken, "14 " + RuleToken, "19 " + RuleToken}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("violations with custom rules\n got %v\nwant %v", got, want)
	}
}
