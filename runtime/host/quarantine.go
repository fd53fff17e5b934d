package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/store"
)

// nsQuarantine holds one record per quarantined agent, keyed by the agent's
// name.
//
// This record, not the audit log, is what the host acts on at start. The
// audit log is the evidence (each quarantine and release is a remediation
// record in it) but not a state to read back: finding the quarantined agents
// there means replaying a log that only grows, at every start, and trusting
// a projection of records that many parts of the host write. The record is
// written before the quarantine is audited, so a host that fails between the
// two keeps the agent quarantined (it fails closed); a release deletes it
// before the release is audited.
const nsQuarantine = "host.quarantine"

// quarantineEntry is the stored quarantine of one agent.
type quarantineEntry struct {
	Agent    string    `json:"agent"`
	Identity string    `json:"identity"`
	Reason   string    `json:"reason"`
	Cause    string    `json:"cause"`
	Since    time.Time `json:"since"`
}

// loadQuarantines returns the stored quarantines by agent name. A record
// that cannot be read still quarantines its agent.
func (h *Host) loadQuarantines(ctx context.Context) (map[string]quarantineEntry, error) {
	out := map[string]quarantineEntry{}
	after := ""
	for {
		recs, err := h.store.List(ctx, nsQuarantine, "", after, store.MaxLimit)
		if err != nil {
			return nil, fmt.Errorf("host: read the quarantined agents: %w", err)
		}
		for _, r := range recs {
			var e quarantineEntry
			if err := json.Unmarshal(r.Value, &e); err != nil || e.Reason == "" {
				e = quarantineEntry{Reason: "the stored quarantine record is unreadable", Since: r.UpdatedAt}
			}
			e.Agent = r.Key
			out[r.Key] = e
		}
		if len(recs) < store.MaxLimit {
			return out, nil
		}
		after = recs[len(recs)-1].Key
	}
}

// keepQuarantine stores e, so the agent stays quarantined when the host
// starts again. A quarantine already stored is kept as it is (its first
// reason and time).
func (h *Host) keepQuarantine(ctx context.Context, e quarantineEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("host: encode the quarantine of %s: %w", e.Agent, err)
	}
	_, err = h.store.Put(ctx, nsQuarantine, e.Agent, data, store.PutOptions{Condition: store.IfAbsent})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("host: the quarantine of %s is not kept across restarts: %w", e.Agent, err)
	}
	return nil
}

// logQuarantines says at start which agents stay quarantined (never
// launched), and which stored quarantines name agents the config no longer
// has (kept, should the agent come back).
func (h *Host) logQuarantines(ctx context.Context, q map[string]quarantineEntry) {
	for name, e := range q {
		if _, ok := h.agentIDs[name]; !ok {
			h.log.InfoContext(ctx, "quarantine kept for an agent the config does not list", slog.String("agent", name),
				slog.String("reason", e.Reason), slog.Time("since", e.Since))
			continue
		}
		h.log.WarnContext(ctx, "agent quarantined: not started", slog.String("agent", name),
			slog.String("reason", e.Reason), slog.Time("since", e.Since))
	}
}

// Release lifts an agent's quarantine: the agent's Workload API socket is
// served again, the stored quarantine is deleted, its plugin is launched,
// and the release is audited (remedy release). A step that fails undoes
// the ones before it, so the agent stays quarantined, also for a host
// started later. Releasing an agent that is not quarantined is an error.
func (h *Host) Release(ctx context.Context, agent, reason string) error {
	id, ok := h.agentIDs[agent]
	if !ok {
		return fmt.Errorf("%w: %q", localapi.ErrUnknownAgent, agent)
	}
	if reason == "" {
		return errors.New("host: a release needs a reason")
	}
	w, err := h.agentWorkload(agent, id)
	if err != nil {
		return err
	}
	h.remedyMu.Lock()
	err = h.release(ctx, agent, w)
	h.remedyMu.Unlock()
	if err != nil {
		return err
	}
	h.log.WarnContext(ctx, "agent released from quarantine", slog.String("agent", agent), slog.String("reason", reason))
	h.publish(ctx, fanout.Event{Kind: fanout.KindRelease, Agent: agent, Reason: reason})
	return h.audit.Append(ctx, audit.Record{
		Time: h.now().UTC(), Agent: agent, AgentID: id.String(), Action: audit.ActionRemediation, Resource: id.String(),
		Remedy: audit.RemedyRelease, Cause: "operator", Policy: "operator", Reason: reason, Outcome: audit.OutcomeOK,
	})
}

// release makes the state changes of Release; h.remedyMu is held, so the
// agent stays quarantined in the supervisor until its last step.
func (h *Host) release(ctx context.Context, agent string, w workloadapi.Workload) error {
	if !h.sup.Quarantined(agent) {
		return fmt.Errorf("host: %w: %s", localapi.ErrNotQuarantined, agent)
	}
	// The socket first: while the agent is quarantined none of its plugin
	// processes runs, and the socket's peer check refuses every caller.
	if err := h.wl.AddWorkload(ctx, w); err != nil {
		return fmt.Errorf("host: release %s: serve its Workload API socket: %w", agent, err)
	}
	if err := h.store.Delete(ctx, nsQuarantine, agent, store.Always); err != nil && !errors.Is(err, store.ErrNotFound) {
		if rerr := h.wl.RemoveWorkload(context.WithoutCancel(ctx), w.ID); rerr != nil {
			h.log.ErrorContext(ctx, "could not remove the Workload API socket of an agent still quarantined",
				slog.String("agent", agent), slog.Any("error", rerr))
		}
		return fmt.Errorf("host: release %s: %w", agent, err)
	}
	if err := h.sup.Release(agent); err != nil {
		return fmt.Errorf("host: release %s: %w", agent, err)
	}
	return nil
}

// revokeWorkload ends, at once, every credential of the quarantined agent
// with identity id: the authorization server revokes its identity, so
// every token it issued to the agent, or that delegates to it (the agent
// in client_id or act), fails verification and introspection, and the
// JWT-SVIDs issued to it before now are refused as client assertions
// until they expire; and the host drops the tokens and MCP sessions it
// holds for the agent.
func (h *Host) revokeWorkload(ctx context.Context, agent string, id credentials.Identity, reason string) error {
	h.forgetWorkload(agent, id)
	if h.as == nil {
		return nil
	}
	if err := h.as.RevokeSubject(context.WithoutCancel(ctx), id.String(), "quarantine: "+reason); err != nil {
		return fmt.Errorf("host: revoke the tokens of %s: %w", agent, err)
	}
	return nil
}

// forgetWorkload drops what the host holds for agent (identity id): its
// clients of remote MCP servers (their tokens and sessions) and its
// delegation tokens.
func (h *Host) forgetWorkload(agent string, id credentials.Identity) {
	h.remotes.ForgetWorkload(id)
	if h.delegation != nil {
		h.delegation.forgetAgent(agent)
	}
	h.hops.forgetWIT(agent)
	for _, ra := range h.a2aRemotes {
		ra.forgetAgent(agent)
	}
}
