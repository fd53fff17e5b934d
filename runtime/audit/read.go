package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// Read returns up to limit records (1 to store.MaxLimit) from index from on.
func Read(ctx context.Context, log store.Log, from int64, limit int) ([]Entry, error) {
	if log == nil {
		return nil, errors.New("audit: read: nil log")
	}
	es, err := log.Read(ctx, RecordsLog, from, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: read: %w", err)
	}
	out := make([]Entry, 0, len(es))
	for _, e := range es {
		r, err := decodeRecord(e)
		if err != nil {
			return nil, fmt.Errorf("audit: read: %w", err)
		}
		out = append(out, Entry{Index: e.Index, Record: r})
	}
	return out, nil
}

// Tail returns the last n records (1 to store.MaxLimit), oldest first.
func Tail(ctx context.Context, log store.Log, n int) ([]Entry, error) {
	if log == nil {
		return nil, errors.New("audit: tail: nil log")
	}
	if err := store.ValidateLimit(n); err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	size, err := log.Len(ctx, RecordsLog)
	if err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	if size == 0 {
		return nil, nil
	}
	return Read(ctx, log, max(0, size-int64(n)), n)
}

// Export writes the records from index from on to w as JSON lines: each
// line is a record exactly as stored (and hashed), so a line's
// tlog.RecordHash is the record's leaf hash. It returns the number of
// records written.
func Export(ctx context.Context, log store.Log, w io.Writer, from int64) (int64, error) {
	if log == nil {
		return 0, errors.New("audit: export: nil log")
	}
	if from < 0 {
		return 0, fmt.Errorf("audit: export: negative index %d", from)
	}
	bw := bufio.NewWriter(w)
	c := newCursor(log, RecordsLog, from)
	var n int64
	for {
		e, ok, err := c.read(ctx)
		if err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		if !ok {
			break
		}
		if !json.Valid(e.Data) || bytes.ContainsAny(e.Data, "\r\n") {
			return n, fmt.Errorf("audit: export: record %d is not one line of JSON", e.Index)
		}
		if _, err := bw.Write(e.Data); err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		if err := bw.WriteByte('\n'); err != nil {
			return n, fmt.Errorf("audit: export: %w", err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// each calls fn for every record of the log, in order.
func each(ctx context.Context, log store.Log, fn func(Entry) error) error {
	c := newCursor(log, RecordsLog, 0)
	for {
		e, ok, err := c.read(ctx)
		if err != nil || !ok {
			return err
		}
		r, err := decodeRecord(e)
		if err != nil {
			return err
		}
		if err := fn(Entry{Index: e.Index, Record: r}); err != nil {
			return err
		}
	}
}

// TraceNode is one task (or, for records of no task, one transaction) of
// a trace: its records and the tasks and transactions it caused.
type TraceNode struct {
	// Txn is the transaction id of the node's records; for a task whose
	// records have none, "task:" and the task id. The tasks of one
	// transaction (a task and those it delegated) share it.
	Txn string
	// Parent is the transaction or task id this one named as its parent
	// ("" for the root, or when the parent is not in the log).
	Parent string
	// Task is the node's task ("" for a transaction's records of no
	// task) and Agent the agent of its first record.
	Agent string
	Task  string
	// Records of the node, in log order.
	Records []Entry
	// Children are the tasks and transactions caused by this one, in the
	// order of their first record.
	Children []*TraceNode
}

// traceGroup is what the first pass learns about one node: the records of
// one task, or those of one transaction that name no task.
type traceGroup struct {
	key        string
	task       string
	txn        string
	first      int64
	parentTxn  string
	parentTask string
}

// traceKey groups a record: by task when it names one, else by
// transaction.
func traceKey(r *Record) string {
	switch {
	case r.Task != "":
		return "task\x00" + r.Task
	case r.Txn != "":
		return "txn\x00" + r.Txn
	}
	return ""
}

// Trace rebuilds the execution chain of the transaction or task id across
// agents, tools and approvals. Records are grouped by task (by transaction
// for records of no task); a task whose records name a parent_task is a
// child of that task, and one naming a parent_txn a child of that
// transaction. The tasks of one transaction share its txn: the user's
// request, the agents it reached through delegation and their tool calls.
// Records of a transaction that name no task (an approval, say) join the
// transaction's first task. The tree returned is rooted at the topmost
// ancestor of id found in the log, so the whole chain is shown. It returns
// an error wrapping [ErrNotFound] if no record has that transaction or
// task.
func Trace(ctx context.Context, log store.Log, id string) (*TraceNode, error) {
	if log == nil {
		return nil, errors.New("audit: trace: nil log")
	}
	if id == "" {
		return nil, errors.New("audit: trace: empty transaction id")
	}
	groups := make(map[string]*traceGroup)
	var order []*traceGroup
	txnTasks := make(map[string][]string) // txn -> keys of its tasks, in order
	err := each(ctx, log, func(e Entry) error {
		r := &e.Record
		k := traceKey(r)
		if k == "" {
			return nil
		}
		g := groups[k]
		if g == nil {
			g = &traceGroup{key: k, task: r.Task, first: e.Index}
			groups[k] = g
			order = append(order, g)
		}
		if g.txn == "" && r.Txn != "" {
			g.txn = r.Txn
			if g.task != "" {
				txnTasks[r.Txn] = append(txnTasks[r.Txn], k)
			}
		}
		if g.parentTxn == "" && g.parentTask == "" {
			g.parentTxn, g.parentTask = r.ParentTxn, r.ParentTask
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: trace: %w", err)
	}
	// taskParent is a group's parent through parent_task.
	taskParent := func(g *traceGroup) string {
		if g.parentTask != "" {
			if p, ok := groups["task\x00"+g.parentTask]; ok && p.key != g.key {
				return p.key
			}
		}
		return ""
	}
	// ofTxn is the node that stands for transaction txn: its topmost task
	// within the transaction, or the group of its records without a task.
	ofTxn := func(txn string) string {
		if tasks := txnTasks[txn]; len(tasks) > 0 {
			k := tasks[0]
			seen := map[string]bool{k: true}
			for p := taskParent(groups[k]); p != "" && !seen[p] && groups[p].txn == txn; p = taskParent(groups[p]) {
				seen[p] = true
				k = p
			}
			return k
		}
		if _, ok := groups["txn\x00"+txn]; ok {
			return "txn\x00" + txn
		}
		return ""
	}
	// node maps a group to the node its records go to: a transaction's
	// records without a task join the transaction's node.
	node := func(key string) string {
		if g := groups[key]; g != nil && g.task == "" {
			if k := ofTxn(g.txn); k != "" {
				return k
			}
		}
		return key
	}
	parentOf := func(g *traceGroup) string {
		if p := taskParent(g); p != "" {
			return p
		}
		if g.parentTxn != "" {
			if p := ofTxn(g.parentTxn); p != "" && p != g.key {
				return p
			}
		}
		return ""
	}
	start := ""
	if _, ok := groups["task\x00"+id]; ok {
		start = "task\x00" + id
	} else {
		start = ofTxn(id)
	}
	if start == "" {
		return nil, fmt.Errorf("audit: trace %q: %w", id, ErrNotFound)
	}
	// Climb to the topmost ancestor, guarding against cycles.
	seen := map[string]bool{start: true}
	root := start
	for p := parentOf(groups[root]); p != "" && !seen[p]; p = parentOf(groups[root]) {
		seen[p] = true
		root = p
	}
	children := make(map[string][]string)
	for _, g := range order {
		if node(g.key) != g.key {
			continue // merged into its transaction's node
		}
		if p := parentOf(g); p != "" {
			children[p] = append(children[p], g.key)
		}
	}
	nodes := map[string]*TraceNode{}
	var build func(key string) *TraceNode
	build = func(key string) *TraceNode {
		g := groups[key]
		n := &TraceNode{Txn: g.txn, Parent: g.parentTxn, Task: g.task}
		if n.Txn == "" {
			n.Txn = "task:" + g.task
		}
		if n.Parent == "" {
			n.Parent = g.parentTask
		}
		nodes[key] = n
		for _, c := range children[key] {
			if _, done := nodes[c]; !done {
				n.Children = append(n.Children, build(c))
			}
		}
		return n
	}
	tree := build(root)
	err = each(ctx, log, func(e Entry) error {
		k := traceKey(&e.Record)
		if k == "" {
			return nil
		}
		n := nodes[node(k)]
		if n == nil {
			return nil
		}
		if n.Agent == "" && e.Record.Task == n.Task {
			n.Agent = e.Record.Agent
		}
		n.Records = append(n.Records, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: trace: %w", err)
	}
	return tree, nil
}

// Format writes the trace as an indented text tree, one line per
// transaction and one per record.
func (n *TraceNode) Format(w io.Writer) error {
	if n == nil {
		return errors.New("audit: format: nil trace")
	}
	bw := bufio.NewWriter(w)
	n.format(bw, "")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: format trace: %w", err)
	}
	return nil
}

func (n *TraceNode) format(w *bufio.Writer, indent string) {
	head := []string{"txn " + n.Txn}
	if n.Agent != "" {
		head = append(head, "agent="+n.Agent)
	}
	if n.Task != "" {
		head = append(head, "task="+n.Task)
	}
	if n.Parent != "" {
		head = append(head, "parent="+n.Parent)
	}
	fmt.Fprintf(w, "%s%s\n", indent, strings.Join(head, " "))
	for _, e := range n.Records {
		fmt.Fprintf(w, "%s  #%d %s\n", indent, e.Index, formatRecord(&e.Record))
	}
	for _, c := range n.Children {
		c.format(w, indent+"    ")
	}
}

// formatRecord is the one-line text form of a record in a trace.
func formatRecord(r *Record) string {
	parts := []string{r.Time.UTC().Format(time.RFC3339Nano)}
	add := func(k, v string) {
		if v == "" {
			return
		}
		if k == "" {
			parts = append(parts, v)
		} else {
			parts = append(parts, k+"="+fmt.Sprintf("%q", v))
		}
	}
	add("", r.Agent)
	add("", r.Action)
	add("", r.Resource)
	add("decision", r.Decision)
	add("outcome", r.Outcome)
	add("policy", r.Policy)
	add("reason", r.Reason)
	add("remedy", r.Remedy)
	add("cause", r.Cause)
	add("error", r.Error)
	return strings.Join(parts, " ")
}
