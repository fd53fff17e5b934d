package console

import (
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/runtime/audit"
)

// A transaction's graph is drawn left to right as server-rendered SVG:
// the user the transaction acts for, the agent of each task (a delegated
// task to the right of the agent that delegated it), and each tool an
// agent called or was refused. Every edge carries the decision of its
// records: allow, deny, or approval (the call needed the user's approval;
// the label says whether and by whom it was given).

// Kinds of graph nodes and marks of edges; each is a CSS class.
const (
	nodeUser  = "user"
	nodeAgent = "agent"
	nodeTool  = "tool"

	markAllow    = "allow"
	markDeny     = "deny"
	markApproval = "approval"
)

// Geometry of the graph, in pixels.
const (
	nodeWidth  = 180
	nodeHeight = 46
	colWidth   = 320
	rowHeight  = 66
	margin     = 16
	// maxGraphNodes bounds what is drawn; a larger transaction is cut,
	// and the page says so.
	maxGraphNodes = 300
	// labelChars cuts a node's label and its second line.
	labelChars = 22
)

// graphView is the drawn graph.
type graphView struct {
	Width  int
	Height int
	Nodes  []graphNode
	Edges  []graphEdge
	// Cut says the transaction has more than the nodes drawn.
	Cut bool
}

// graphNode is one box: Label and Sub are its two lines, Title the full
// text shown on hover.
type graphNode struct {
	Kind       string
	X, Y, W, H int
	TX, TY, SY int
	Label, Sub string
	Title      string
}

// graphEdge is one arrow from a node to the one it reached.
type graphEdge struct {
	Mark   string
	Path   string
	LX, LY int
	Label  string
	Title  string
}

// tnode is a node of the tree before layout.
type tnode struct {
	kind, label, sub, title string
	// mark and edge are the decision and label of the edge to this node
	// from its parent.
	mark, edge string
	children   []*tnode
	depth      int
	row        float64
}

// newGraph lays out the transaction rooted at root.
func newGraph(root *audit.TraceNode) graphView {
	user := &tnode{kind: nodeUser, label: "no user", sub: "user", title: "The transaction acts for no user"}
	if sub := firstSubject(root); sub != "" {
		user.label, user.title = sub, "user "+sub
	}
	count := 1
	var g graphView
	var addTask func(parent *tnode, n *audit.TraceNode, mark, edge string)
	addTask = func(parent *tnode, n *audit.TraceNode, mark, edge string) {
		if n.Agent == "" {
			// Records of the transaction that name no task: their
			// tasks hang from the parent.
			for _, ch := range n.Children {
				m, e := taskEdge(nil, ch)
				addTask(parent, ch, m, e)
			}
			return
		}
		if count >= maxGraphNodes {
			g.Cut = true
			return
		}
		count++
		a := &tnode{kind: nodeAgent, label: n.Agent, sub: n.Task, title: "agent " + n.Agent + ", task " + n.Task, mark: mark, edge: edge}
		parent.children = append(parent.children, a)
		for _, t := range toolCalls(n) {
			if count >= maxGraphNodes {
				g.Cut = true
				break
			}
			count++
			a.children = append(a.children, t)
		}
		for _, ch := range n.Children {
			m, e := taskEdge(n, ch)
			addTask(a, ch, m, e)
		}
	}
	m, e := taskEdge(nil, root)
	addTask(user, root, m, e)

	// Leaves take the rows in order; a parent sits level with the middle
	// of its children.
	rows, depth := 0, 0
	var place func(t *tnode, d int)
	place = func(t *tnode, d int) {
		t.depth = d
		depth = max(depth, d)
		if len(t.children) == 0 {
			t.row = float64(rows)
			rows++
			return
		}
		for _, ch := range t.children {
			place(ch, d+1)
		}
		t.row = (t.children[0].row + t.children[len(t.children)-1].row) / 2
	}
	place(user, 0)
	g.Width = 2*margin + depth*colWidth + nodeWidth
	g.Height = 2*margin + (rows-1)*rowHeight + nodeHeight
	var draw func(t *tnode)
	draw = func(t *tnode) {
		x, y := margin+t.depth*colWidth, margin+int(t.row*rowHeight)
		g.Nodes = append(g.Nodes, graphNode{Kind: t.kind, X: x, Y: y, W: nodeWidth, H: nodeHeight,
			TX: x + 10, TY: y + 19, SY: y + 37,
			Label: consent.Visible(short(labelChars, t.label)), Sub: consent.Visible(short(labelChars, t.sub)),
			Title: consent.Visible(t.title)})
		for _, ch := range t.children {
			cx, cy := margin+ch.depth*colWidth, margin+int(ch.row*rowHeight)
			x1, y1, x2, y2 := x+nodeWidth, y+nodeHeight/2, cx, cy+nodeHeight/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, graphEdge{Mark: ch.mark,
				Path: fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2-6, y2),
				LX:   mid, LY: (y1+y2)/2 - 5,
				Label: consent.Visible(short(32, ch.edge)), Title: consent.Visible(t.label + " → " + ch.label + ": " + ch.edge)})
			draw(ch)
		}
	}
	draw(user)
	return g
}

// firstSubject is the user the transaction's records name first.
func firstSubject(n *audit.TraceNode) string {
	for _, e := range n.Records {
		if e.Record.Subject != "" {
			return e.Record.Subject
		}
	}
	for _, ch := range n.Children {
		if s := firstSubject(ch); s != "" {
			return s
		}
	}
	return ""
}

// taskEdge is the decision of the edge to task n: the agent.call record
// of the delegating task parent that named n's agent, else n's own
// task.run record.
func taskEdge(parent, n *audit.TraceNode) (mark, label string) {
	if parent != nil {
		for _, e := range parent.Records {
			r := e.Record
			if r.Action == audit.ActionAgentCall && (r.Resource == n.Agent || strings.HasSuffix(r.Resource, "/agent/"+n.Agent)) {
				return decisionMark(r.Decision), "delegates"
			}
		}
	}
	for _, e := range n.Records {
		if r := e.Record; r.Action == "task.run" {
			if r.Decision == audit.DecisionDeny {
				return markDeny, "refused: " + r.Reason
			}
			if parent != nil {
				return markAllow, "delegates"
			}
			return markAllow, "task"
		}
	}
	if parent != nil {
		return markAllow, "delegates"
	}
	return markAllow, "task"
}

// decisionMark is the mark of a decision.
func decisionMark(d string) string {
	switch d {
	case audit.DecisionDeny:
		return markDeny
	case audit.DecisionApprovalRequired:
		return markApproval
	}
	return markAllow
}

// toolCalls are the tools task n called, or was refused, in the order of
// their first record, each with the decisions of its records.
func toolCalls(n *audit.TraceNode) []*tnode {
	type calls struct {
		tool                     string
		allow, deny, asked, list int
		failed                   int
		approver, reason         string
	}
	var order []*calls
	byTool := map[string]*calls{}
	for _, e := range n.Records {
		r := e.Record
		listDeny := r.Action == audit.ActionToolList && r.Decision == audit.DecisionDeny
		if r.Action != audit.ActionToolCall && !listDeny {
			continue
		}
		c := byTool[r.Resource]
		if c == nil {
			c = &calls{tool: r.Resource}
			byTool[r.Resource] = c
			order = append(order, c)
		}
		switch {
		case listDeny:
			c.list++
			c.reason = r.Reason
		case r.Decision == audit.DecisionApprovalRequired:
			c.asked++
		case r.Decision == audit.DecisionDeny:
			c.deny++
			c.reason = r.Reason
		case r.Decision == audit.DecisionAllow && r.Outcome == "":
			// The allow decision; its outcome is a record of its own.
			c.allow++
			if r.Approver != "" {
				c.approver = r.Approver
			}
		case r.Decision == audit.DecisionAllow && r.Outcome == audit.OutcomeError:
			c.failed++
		}
	}
	out := make([]*tnode, 0, len(order))
	for _, c := range order {
		t := &tnode{kind: nodeTool, label: c.tool, sub: "tool", title: "tool " + c.tool}
		var parts []string
		switch {
		case c.asked > 0 && c.approver != "":
			t.mark = markApproval
			parts = append(parts, "approved by "+c.approver)
		case c.asked > 0 && c.deny > 0 && c.allow == 0:
			t.mark = markDeny
			parts = append(parts, "approval, then deny")
		case c.asked > 0 && c.allow == 0:
			t.mark = markApproval
			parts = append(parts, "waiting for approval")
		case c.deny > 0 && c.allow == 0:
			t.mark = markDeny
			parts = append(parts, "deny")
		case c.list > 0 && c.allow == 0:
			t.mark = markDeny
			parts = append(parts, "hidden from the tool list")
		default:
			t.mark = markAllow
			parts = append(parts, "allow")
		}
		if c.allow > 1 {
			parts = append(parts, fmt.Sprintf("×%d", c.allow))
		}
		if c.failed > 0 {
			parts = append(parts, "(failed)")
		}
		if c.reason != "" {
			t.title += ": " + c.reason
		}
		t.edge = strings.Join(parts, " ")
		out = append(out, t)
	}
	return out
}
