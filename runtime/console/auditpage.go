package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
)

// Limits of the audit search.
const (
	// maxResults is the most records a search shows, newest first.
	maxResults = 200
	// maxScanned is the most records a search reads, from the newest
	// back; an older match needs a narrower search (by transaction).
	maxScanned = 100000
	// scanPage is how many records one read returns.
	scanPage = 1000
	// maxQueryLen caps each search field.
	maxQueryLen = 256
	// verifyEvery: the page verifies the log again when the last
	// verification is older.
	verifyEvery = 5 * time.Minute
)

// Decisions the search can filter on.
var decisions = []string{audit.DecisionAllow, audit.DecisionDeny, audit.DecisionApprovalRequired}

// auditQuery is a search of the audit log: every field set must match.
type auditQuery struct {
	Agent    string // the agent's name or SPIFFE ID
	User     string // the user acted for
	Action   string
	Txn      string // a transaction or task, its own or as parent
	Decision string
}

func (q auditQuery) empty() bool { return q == auditQuery{} }

func (q auditQuery) matches(r *audit.Record) bool {
	return (q.Agent == "" || r.Agent == q.Agent || r.AgentID == q.Agent) &&
		(q.User == "" || r.Subject == q.User) &&
		(q.Action == "" || r.Action == q.Action) &&
		(q.Txn == "" || r.Txn == q.Txn || r.Task == q.Txn || r.ParentTxn == q.Txn || r.ParentTask == q.Txn) &&
		(q.Decision == "" || r.Decision == q.Decision)
}

// auditView is the audit page.
type auditView struct {
	Query     auditQuery
	Decisions []string
	// Entries are the records found, newest first; Scanned is how many
	// were read, and More says the search stopped before the log's
	// first record.
	Entries []audit.Entry
	Scanned int
	More    bool
	Error   string
	// The latest checkpoint and the last verification of the log;
	// VerifyError says why the log could not be verified.
	Checkpoint   *Checkpoint
	Verification *Verification
	VerifyError  string
}

// audit searches the log and shows its latest checkpoint and whether it
// verifies (verifying it first when that was not done recently).
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	form := r.URL.Query()
	q := auditQuery{
		Agent:    strings.TrimSpace(form.Get("agent")),
		User:     strings.TrimSpace(form.Get("user")),
		Action:   strings.TrimSpace(form.Get("action")),
		Txn:      strings.TrimSpace(form.Get("txn")),
		Decision: form.Get("decision"),
	}
	v := auditView{Query: q, Decisions: decisions}
	for _, f := range []string{q.Agent, q.User, q.Action, q.Txn} {
		if len(f) > maxQueryLen {
			c.message(w, r, s, http.StatusBadRequest, "Search too long", "Each search field holds at most 256 characters.", c.prefix+"/audit")
			return
		}
	}
	if q.Decision != "" && !slices.Contains(decisions, q.Decision) {
		q.Decision, v.Query.Decision = "", ""
	}
	var err error
	v.Entries, v.Scanned, v.More, err = c.search(ctx, q)
	if err != nil {
		c.log.ErrorContext(ctx, "audit search failed", slog.Any("error", err))
		v.Error = "The audit log could not be read."
	}
	if cp, err := c.b.AuditCheckpoint(ctx); err == nil {
		v.Checkpoint = &cp
	} else {
		c.log.ErrorContext(ctx, "audit checkpoint unreadable", slog.Any("error", err))
	}
	if v.Verification, err = c.lastVerification(ctx, false); err != nil {
		v.VerifyError = "The log could not be verified: " + err.Error()
	}
	c.render(w, r, s, http.StatusOK, auditPage, "Audit", "audit", v)
}

// search reads the log from its newest record back, a page at a time,
// until it has maxResults matches, has read maxScanned records, or
// reaches the first record.
func (c *Console) search(ctx context.Context, q auditQuery) (found []audit.Entry, scanned int, more bool, err error) {
	limit := maxResults
	if q.empty() {
		limit = 100
	}
	page, err := c.b.AuditRead(ctx, -scanPage, 0)
	for {
		if err != nil {
			return found, scanned, false, err
		}
		if len(page) == 0 {
			return found, scanned, false, nil
		}
		for i := len(page) - 1; i >= 0; i-- {
			scanned++
			if q.matches(&page[i].Record) {
				if found = append(found, page[i]); len(found) == limit {
					return found, scanned, page[i].Index > 0, nil
				}
			}
		}
		first := page[0].Index
		if first == 0 {
			return found, scanned, false, nil
		}
		if scanned >= maxScanned {
			return found, scanned, true, nil
		}
		from := max(0, first-scanPage)
		page, err = c.b.AuditRead(ctx, from, int(first-from))
	}
}

// verify verifies the whole log now, as an admin asked.
func (c *Console) verify(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := c.lastVerification(r.Context(), true); err != nil {
		c.message(w, r, s, http.StatusInternalServerError, "Not verified", "The log could not be verified: "+err.Error(), c.prefix+"/audit")
		return
	}
	http.Redirect(w, r, c.prefix+"/audit", http.StatusSeeOther)
}

// verifyTimeout bounds one verification of the whole log.
const verifyTimeout = 2 * time.Minute

// lastVerification returns the last verification of the log, verifying it
// first when force is set, when it never was, or when it is older than
// verifyEvery. A page that finds another verification running shows the
// last one (nil when there is none yet) rather than wait. A verification
// runs to its end even when the browser that asked for it leaves.
func (c *Console) lastVerification(ctx context.Context, force bool) (*Verification, error) {
	fresh := func() bool {
		last := c.verified.Load()
		return last != nil && c.now().Sub(last.Time) <= verifyEvery
	}
	if !force && fresh() {
		return c.verified.Load(), nil
	}
	if !force {
		if !c.verifyMu.TryLock() {
			return c.verified.Load(), nil
		}
	} else {
		c.verifyMu.Lock()
	}
	defer c.verifyMu.Unlock()
	if !force && fresh() {
		return c.verified.Load(), nil
	}
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
	defer cancel()
	v, err := c.b.AuditVerify(vctx)
	if err != nil {
		c.log.ErrorContext(ctx, "audit verification failed", slog.Any("error", err))
		return c.verified.Load(), err
	}
	v.Time = c.now()
	c.verified.Store(&v)
	return &v, nil
}

// traceView is the page of one transaction.
type traceView struct {
	ID    string
	Graph graphView
	Nodes []traceNodeView
}

// traceNodeView is one task of the transaction with its records.
type traceNodeView struct {
	Agent   string
	Task    string
	Txn     string
	Parent  string
	Depth   int
	Records []audit.Entry
}

// trace draws one transaction's chain, user → agents → tools, and lists
// its records by task.
func (c *Console) trace(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if len(id) > maxQueryLen {
		c.message(w, r, s, http.StatusBadRequest, "Not a transaction", "A transaction ID is at most 256 characters.", c.prefix+"/audit")
		return
	}
	root, err := c.b.AuditTrace(r.Context(), id)
	switch {
	case errors.Is(err, audit.ErrNotFound):
		c.message(w, r, s, http.StatusNotFound, "No such transaction", "No audit record names the transaction or task "+id+".", c.prefix+"/audit")
		return
	case err != nil:
		c.log.ErrorContext(r.Context(), "audit trace failed", slog.String("id", id), slog.Any("error", err))
		c.message(w, r, s, http.StatusInternalServerError, "Not traced", "The transaction could not be traced.", c.prefix+"/audit")
		return
	}
	v := traceView{ID: id, Graph: newGraph(root)}
	var walk func(n *audit.TraceNode, depth int)
	walk = func(n *audit.TraceNode, depth int) {
		v.Nodes = append(v.Nodes, traceNodeView{Agent: n.Agent, Task: n.Task, Txn: n.Txn, Parent: n.Parent, Depth: depth, Records: n.Records})
		for _, ch := range n.Children {
			walk(ch, depth+1)
		}
	}
	walk(root, 0)
	c.render(w, r, s, http.StatusOK, tracePage, "Transaction "+id, "audit", v)
}
