package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxReasonLen caps the reason an admin gives for a quarantine or release.
const maxReasonLen = 500

// agentsView is the agents page.
type agentsView struct {
	Agents []Agent
	Error  string
}

// agents lists the agents with their identity, attestation, SVID and
// state, and a quarantine or release form for each.
func (c *Console) agents(w http.ResponseWriter, r *http.Request, s *session) {
	list, err := c.b.Agents(r.Context())
	v := agentsView{Agents: list}
	if err != nil {
		c.log.ErrorContext(r.Context(), "agents unreadable", slog.Any("error", err))
		v.Error = "The agents could not be listed."
	}
	c.render(w, r, s, http.StatusOK, agentsPage, "Agents", "agents", v)
}

func (c *Console) quarantine(w http.ResponseWriter, r *http.Request, s *session) {
	c.remedy(w, r, s, "quarantine", c.b.Quarantine)
}

func (c *Console) release(w http.ResponseWriter, r *http.Request, s *session) {
	c.remedy(w, r, s, "release", c.b.Release)
}

// remedy applies a quarantine or a release an admin posted, with the
// reason given, which the audit record keeps together with who gave it.
func (c *Console) remedy(w http.ResponseWriter, r *http.Request, s *session, what string, apply func(ctx context.Context, agent, reason string) error) {
	agent := r.PathValue("name")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	switch {
	case reason == "":
		c.message(w, r, s, http.StatusBadRequest, "Reason needed", "Say why: the reason is recorded in the audit log.", c.prefix+"/agents")
		return
	case utf8.RuneCountInString(reason) > maxReasonLen || !utf8.ValidString(reason):
		c.message(w, r, s, http.StatusBadRequest, "Reason refused", "A reason is text of at most 500 characters.", c.prefix+"/agents")
		return
	}
	err := apply(r.Context(), agent, reason+" (console: "+s.user+")")
	switch {
	case errors.Is(err, ErrUnknownAgent):
		c.message(w, r, s, http.StatusNotFound, "No such agent", "The host has no agent "+agent+".", c.prefix+"/agents")
		return
	case errors.Is(err, ErrNotQuarantined):
		c.message(w, r, s, http.StatusConflict, "Not quarantined", "Agent "+agent+" is not quarantined.", c.prefix+"/agents")
		return
	case err != nil:
		c.log.ErrorContext(r.Context(), "remedy failed", slog.String("remedy", what), slog.String("agent", agent), slog.String("user", s.user), slog.Any("error", err))
		c.message(w, r, s, http.StatusInternalServerError, "Not done", "The "+what+" of "+agent+" failed: "+err.Error(), c.prefix+"/agents")
		return
	}
	c.log.InfoContext(r.Context(), "remedy applied", slog.String("remedy", what), slog.String("agent", agent), slog.String("user", s.user), slog.String("reason", reason))
	http.Redirect(w, r, c.prefix+"/agents", http.StatusSeeOther)
}

// canSee reports whether s may see t: an admin sees every task, a user
// the tasks that act for them.
func canSee(s *session, t Task) bool { return s.admin || (t.User != "" && t.User == s.user) }

// tasksView is the tasks page.
type tasksView struct {
	Tasks []Task
	// All is set when the list is every task (an admin's).
	All bool
}

// tasks lists the running and recent tasks the viewer may see.
func (c *Console) tasks(w http.ResponseWriter, r *http.Request, s *session) {
	var list []Task
	for _, t := range c.b.Tasks(r.Context()) {
		if canSee(s, t) {
			list = append(list, t)
		}
	}
	c.render(w, r, s, http.StatusOK, tasksPage, "Tasks", "tasks", tasksView{Tasks: list, All: s.admin})
}

// taskView is the task page.
type taskView struct {
	Task Task
	// Stream is the URL of the task's event stream, and Last the last
	// event the page shows, which the stream continues from.
	Stream string
	Last   int
}

// task shows one task with its events; while it runs the page follows
// its event stream. A task the viewer may not see does not exist for
// them.
func (c *Console) task(w http.ResponseWriter, r *http.Request, s *session) {
	t, _, ok := c.b.WatchTask(r.Context(), r.PathValue("id"))
	if !ok || !canSee(s, t) {
		c.message(w, r, s, http.StatusNotFound, "No such task", "The console knows no such task of yours (it keeps the latest tasks only).", c.prefix+"/tasks")
		return
	}
	v := taskView{Task: t}
	if n := len(t.Events); n > 0 {
		v.Last = t.Events[n-1].Seq
	}
	if t.State == TaskRunning {
		v.Stream = c.prefix + "/tasks/" + url.PathEscape(t.ID) + "/events"
	}
	c.render(w, r, s, http.StatusOK, taskPage, "Task "+t.ID, "tasks", v)
}

// approvalsView is the approvals page.
type approvalsView struct {
	Approvals []Approval
	All       bool
	Error     string
}

// approvals lists the requests waiting for the viewer's decision (every
// user's for an admin), each with its approval page.
func (c *Console) approvals(w http.ResponseWriter, r *http.Request, s *session) {
	user := s.user
	if s.admin {
		user = ""
	}
	list, err := c.b.Approvals(r.Context(), user)
	v := approvalsView{All: s.admin}
	for _, a := range list {
		if s.admin || a.User == s.user {
			v.Approvals = append(v.Approvals, a)
		}
	}
	if err != nil {
		c.log.ErrorContext(r.Context(), "approvals unreadable", slog.Any("error", err))
		v.Error = "The approval requests could not be listed."
	}
	c.render(w, r, s, http.StatusOK, approvalsPage, "Approvals", "approvals", v)
}

// trustView is the trust page.
type trustView struct {
	Trust Trust
	Error string
}

// trust shows the trust domain's authorities, the authorization server's
// signing keys and the federated trust domains.
func (c *Console) trust(w http.ResponseWriter, r *http.Request, s *session) {
	t, err := c.b.Trust(r.Context())
	v := trustView{Trust: t}
	if err != nil {
		c.log.ErrorContext(r.Context(), "trust unreadable", slog.Any("error", err))
		v.Error = "The trust domain could not be read."
	}
	c.render(w, r, s, http.StatusOK, trustPage, "Trust", "trust", v)
}
