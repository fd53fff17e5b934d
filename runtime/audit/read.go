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

// TraceNode is one transaction of a trace: its records and the
// transactions it caused.
type TraceNode struct {
	// Txn is the transaction id; for records without one, "task:" and the
	// task id.
	Txn string
	// Parent is the transaction or task id this one named as its parent
	// ("" for the root, or when the parent is not in the log).
	Parent string
	// Agent and Task are those of the transaction's first record.
	Agent string
	Task  string
	// Records of the transaction, in log order.
	Records []Entry
	// Children are the transactions caused by this one, in the order of
	// their first record.
	Children []*TraceNode
}

// traceGroup is what the first pass learns about one transaction.
type traceGroup struct {
	key        string
	first      int64
	parentTxn  string
	parentTask string
}

func traceKey(r *Record) string {
	switch {
	case r.Txn != "":
		return r.Txn
	case r.Task != "":
		return "task:" + r.Task
	}
	return ""
}

// Trace rebuilds the execution chain of the transaction or task id across
// agents, tools and approvals. Records are grouped by transaction (by task
// for records without one); a transaction whose records name a parent_txn
// or parent_task is a child of that transaction. The tree returned is
// rooted at the topmost ancestor of id found in the log, so the whole chain
// is shown. It returns an error wrapping [ErrNotFound] if no record has
// that transaction or task.
func Trace(ctx context.Context, log store.Log, id string) (*TraceNode, error) {
	if log == nil {
		return nil, errors.New("audit: trace: nil log")
	}
	if id == "" {
		return nil, errors.New("audit: trace: empty transaction id")
	}
	groups := make(map[string]*traceGroup)
	var order []*traceGroup
	taskOwner := make(map[string]string) // task id -> key of its first group
	err := each(ctx, log, func(e Entry) error {
		r := &e.Record
		k := traceKey(r)
		if k == "" {
			return nil
		}
		g := groups[k]
		if g == nil {
			g = &traceGroup{key: k, first: e.Index}
			groups[k] = g
			order = append(order, g)
		}
		if g.parentTxn == "" && g.parentTask == "" {
			g.parentTxn, g.parentTask = r.ParentTxn, r.ParentTask
		}
		if r.Task != "" {
			if _, ok := taskOwner[r.Task]; !ok {
				taskOwner[r.Task] = k
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: trace: %w", err)
	}
	parentOf := func(g *traceGroup) string {
		if g.parentTxn != "" {
			if _, ok := groups[g.parentTxn]; ok && g.parentTxn != g.key {
				return g.parentTxn
			}
		}
		if g.parentTask != "" {
			if k, ok := taskOwner[g.parentTask]; ok && k != g.key {
				return k
			}
		}
		return ""
	}
	start, ok := groups[id]
	if !ok {
		if k, found := taskOwner[id]; found {
			start, ok = groups[k], true
		}
	}
	if !ok {
		return nil, fmt.Errorf("audit: trace %q: %w", id, ErrNotFound)
	}
	// Climb to the topmost ancestor, guarding against cycles.
	seen := map[string]bool{start.key: true}
	root := start
	for p := parentOf(root); p != "" && !seen[p]; p = parentOf(root) {
		seen[p] = true
		root = groups[p]
	}
	children := make(map[string][]string)
	for _, g := range order {
		if p := parentOf(g); p != "" {
			children[p] = append(children[p], g.key)
		}
	}
	nodes := map[string]*TraceNode{}
	var build func(key string) *TraceNode
	build = func(key string) *TraceNode {
		g := groups[key]
		n := &TraceNode{Txn: key, Parent: g.parentTxn}
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
	tree := build(root.key)
	err = each(ctx, log, func(e Entry) error {
		n := nodes[traceKey(&e.Record)]
		if n == nil {
			return nil
		}
		if len(n.Records) == 0 {
			n.Agent, n.Task = e.Record.Agent, e.Record.Task
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
