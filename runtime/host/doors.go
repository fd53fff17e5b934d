package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/attest"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// The host's doors are the sockets it serves in the data directory: the
// admin API and one Workload API socket per agent. Plugin processes run as
// the host's user, so file modes do not keep them out; each door checks
// the peer process of every connection (SO_PEERCRED) and walks its parent
// chain:
//
//   - an agent's Workload API socket admits only that agent's plugin
//     process and its descendants (checkAgentPeer);
//   - the admin API refuses every plugin process, agent or tool, every
//     descendant of one, and every other process the host started
//     (checkAdminPeer).
//
// Every refusal is audited, at most once per door and peer pid per
// doorAuditInterval, so that a plugin looping on connect cannot flood the
// log; the records that follow count what was left out.
//
// The parent chain breaks when a process's parent exits (the orphan is
// given to a subreaper or to the first process of its pid namespace), so
// the admin API's check cannot tell a plugin's orphaned grandchild from
// an unrelated process of the same user. A plugin sandbox with its own pid
// namespace, whose init is the supervised process, keeps every orphan below
// that init.

const (
	// doorAuditInterval is the shortest time between two audit records of
	// refusals at one door of one peer pid.
	doorAuditInterval = time.Minute
	// doorMaxTracked bounds how many (door, pid) pairs the limiter keeps.
	doorMaxTracked = 4096
	// doorAdmin names the admin API socket in limiter keys and logs.
	doorAdmin = "admin"
)

// checkAdminPeer is the admin API's PeerCheck: the host's own process is
// admitted; a plugin process (agent or tool), a descendant of one, or any
// other process the host started is refused. A process whose lineage
// cannot be read is refused too.
func (h *Host) checkAdminPeer(p localapi.Peer) error {
	self := os.Getpid()
	if p.PID == self {
		return nil
	}
	plugins := h.pluginProcesses()
	roots := make([]int, 0, len(plugins)+1)
	for pid := range plugins {
		roots = append(roots, pid)
	}
	roots = append(roots, self)
	root, ok, err := attest.DescendsFrom(p.PID, roots...)
	switch {
	case err != nil:
		return fmt.Errorf("the parent chain of pid %d cannot be followed: %w", p.PID, err)
	case !ok:
		return nil
	case root == p.PID:
		return fmt.Errorf("pid %d is the plugin process of %s", p.PID, plugins[root])
	case root == self:
		return fmt.Errorf("pid %d descends from the host (pid %d), and processes the host starts may not use the admin API", p.PID, self)
	default:
		return fmt.Errorf("pid %d descends from pid %d, the plugin process of %s", p.PID, root, plugins[root])
	}
}

// pluginProcesses returns the pid of every running plugin process, agent
// or tool, with a name for it ("agent research", "tool plugin kit").
func (h *Host) pluginProcesses() map[int]string {
	out := map[int]string{}
	if h.sup != nil {
		for _, st := range h.sup.Status() {
			if st.PID > 0 {
				out[st.PID] = "agent " + st.Name
			}
		}
	}
	// The tool map is complete when New returns and only read afterwards.
	seen := map[*toolPlugin]bool{}
	for _, t := range h.tools {
		pt, ok := t.(pluginTool)
		if !ok || seen[pt.plugin] {
			continue
		}
		seen[pt.plugin] = true
		if pid := pt.plugin.pid(); pid > 0 {
			out[pid] = "tool plugin " + pt.plugin.cfg.Name
		}
	}
	return out
}

// adminRefused is the admin API's OnRefuse hook.
func (h *Host) adminRefused(ctx context.Context, ev localapi.RefuseEvent) {
	h.recordRefusal(ctx, refusal{
		door:     doorAdmin,
		action:   audit.ActionAdminAPI,
		resource: filepath.Join(h.dataDir, localapi.SocketName),
		pid:      ev.Peer.PID,
		uid:      ev.Peer.UID,
		reason:   ev.Reason,
	})
}

// workloadRefused is the Workload API's OnRefuse hook.
func (h *Host) workloadRefused(ctx context.Context, ev workloadapi.RefuseEvent) {
	h.recordRefusal(ctx, refusal{
		door:     "workload " + ev.Workload.String(),
		action:   audit.ActionWorkloadAPI,
		resource: ev.Workload.String(),
		pid:      ev.Peer.PID,
		uid:      ev.Peer.UID,
		reason:   ev.Reason,
	})
}

// refusal is one refused connection at one of the host's doors.
type refusal struct {
	door     string // limiter key and log value
	action   string // audit action
	resource string // audit resource
	pid, uid int
	reason   error
}

// recordRefusal logs and audits a refused connection, unless the limiter
// says the same door refused the same pid too recently; then it is only
// counted, and the next record says how many were left out.
func (h *Host) recordRefusal(ctx context.Context, r refusal) {
	n := h.doors.note(r.door, r.pid)
	if !n.record {
		return
	}
	reason := fmt.Sprintf("pid %d uid %d: %v", r.pid, r.uid, r.reason)
	if n.suppressed > 0 {
		reason += fmt.Sprintf("; %d later refusals of pid %d at this socket within %s of the previous record were not recorded",
			n.suppressed, r.pid, doorAuditInterval)
	}
	if n.untracked > 0 {
		reason += fmt.Sprintf("; %d refusals of other processes were not recorded", n.untracked)
	}
	h.log.WarnContext(ctx, "connection refused", slog.String("door", r.door), slog.Int("peer_pid", r.pid),
		slog.Int("peer_uid", r.uid), slog.String("reason", r.reason.Error()),
		slog.Int("suppressed", n.suppressed), slog.Int("untracked", n.untracked))
	if h.audit == nil {
		return
	}
	rec := audit.Record{
		Time: h.now().UTC(), Action: r.action, Resource: r.resource,
		Decision: audit.DecisionDeny, Policy: "peer check", Reason: reason, Outcome: audit.OutcomeDenied,
	}
	// The connection may be gone; the record is still written.
	if err := h.audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		h.log.ErrorContext(ctx, "could not record a refused connection", slog.String("door", r.door),
			slog.Int("peer_pid", r.pid), slog.Any("error", err))
	}
}

// doorLimiter decides which refusals are audited: at most one per door and
// peer pid per interval. It is safe for concurrent use.
type doorLimiter struct {
	now   func() time.Time
	every time.Duration
	max   int

	mu   sync.Mutex
	seen map[doorKey]*doorEntry
	// untracked counts refusals that no later record of their own key
	// will count: those pending on entries dropped from a full table, and
	// those refused while the table was full.
	untracked int
}

type doorKey struct {
	door string
	pid  int
}

type doorEntry struct {
	last       time.Time // when the last record of this key was written
	suppressed int       // refusals since then that were not recorded
}

// doorNote is the limiter's verdict on one refusal.
type doorNote struct {
	// record says whether to write a record for it.
	record bool
	// suppressed counts the refusals of the same door and pid left out
	// since that key's last record.
	suppressed int
	// untracked counts refusals of other keys left out that no record of
	// their own will count.
	untracked int
}

func newDoorLimiter(now func() time.Time) *doorLimiter {
	return &doorLimiter{now: now, every: doorAuditInterval, max: doorMaxTracked, seen: map[doorKey]*doorEntry{}}
}

// note counts one refusal at door of pid and says whether to record it.
func (l *doorLimiter) note(door string, pid int) doorNote {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := doorKey{door, pid}
	e, ok := l.seen[k]
	if ok && l.fresh(e, now) {
		e.suppressed++
		return doorNote{}
	}
	if !ok {
		if len(l.seen) >= l.max {
			l.sweep(now)
		}
		if len(l.seen) >= l.max {
			l.untracked++
			return doorNote{}
		}
		e = &doorEntry{}
		l.seen[k] = e
	}
	n := doorNote{record: true, suppressed: e.suppressed, untracked: l.untracked}
	e.last, e.suppressed = now, 0
	l.untracked = 0
	return n
}

// fresh reports whether e's last record is less than an interval old. A
// clock that went backwards makes it stale.
func (l *doorLimiter) fresh(e *doorEntry, now time.Time) bool {
	age := now.Sub(e.last)
	return age >= 0 && age < l.every
}

// sweep drops the entries that are no longer fresh; l.mu must be held.
func (l *doorLimiter) sweep(now time.Time) {
	for k, e := range l.seen {
		if !l.fresh(e, now) {
			l.untracked += e.suppressed
			delete(l.seen, k)
		}
	}
}
