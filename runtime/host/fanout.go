package host

// Several hosts on one store act as one deployment: what one of them does
// that the others must act on at once (a revocation, a security signal
// about a user, a quarantine) reaches them over runtime/fanout. This file
// only wires it: what to publish where, and what to do on hearing it.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// fanoutTimeout bounds publishing one event: a store that cannot be
// reached does not hold up the revocation that caused it.
const fanoutTimeout = 2 * time.Second

// newFanout starts the host's bus when its store is shared (nil with an
// embedded one), and hears the other hosts' events while the host runs.
func (h *Host) newFanout() error {
	instance, err := newID("host-")
	if err != nil {
		return err
	}
	bus, err := fanout.New(fanout.Config{Store: h.store, Host: instance, OnEvent: h.onPeerEvent, Now: h.now,
		Logger: h.log.With("component", "fanout")})
	if err != nil {
		return err
	}
	h.fanout = bus
	if bus != nil {
		h.tasks = append(h.tasks, Task{Name: "fanout", Run: bus.Run})
	}
	return nil
}

// publish tells the other hosts of ev, logging a failure: the act it
// reports is done here and recorded in the store either way.
func (h *Host) publish(ctx context.Context, ev fanout.Event) {
	if h.fanout == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fanoutTimeout)
	defer cancel()
	if err := h.fanout.Publish(ctx, ev); err != nil {
		h.log.WarnContext(ctx, "other hosts not told", slog.String("kind", ev.Kind), slog.Any("error", err))
	}
}

// onPeerEvent acts on another host's event.
func (h *Host) onPeerEvent(ctx context.Context, ev fanout.Event) {
	if h.as != nil {
		// Whatever the event, answers from before it may be stale.
		h.as.InvalidateRevocations()
	}
	switch ev.Kind {
	case fanout.KindUser:
		if ev.Risk != "" {
			h.signals.setRisk(ev.Subject, ev.Risk)
		}
		forgotten, stopped := 0, 0
		if ev.Drop {
			forgotten = h.forgetSubject(ev.Subject)
		}
		if ev.Stop {
			stopped = h.StopTasks(ev.Subject, "signal acted on by another host: "+ev.Reason)
		}
		h.log.WarnContext(ctx, "security signal from another host acted on", slog.String("subject", ev.Subject),
			slog.String("origin", ev.Origin), slog.Int("sessions_dropped", forgotten), slog.Int("tasks_stopped", stopped),
			slog.Duration("latency", h.now().Sub(ev.At)))
	case fanout.KindQuarantine:
		h.quarantineHere(ctx, ev.Agent, ev.Reason)
	case fanout.KindRelease:
		h.releaseHere(ctx, ev.Agent)
	}
}

// quarantineHere applies a quarantine another host made (its record is in
// the store, its revocation written, its audit record made there): the
// agent's plugin stops here too, its Workload API socket goes, and the
// host drops what it holds for it.
func (h *Host) quarantineHere(ctx context.Context, agent, reason string) {
	id, ok := h.agentIDs[agent]
	if !ok {
		return
	}
	h.remedyMu.Lock()
	defer h.remedyMu.Unlock()
	if err := h.sup.Quarantine(agent, reason); err != nil {
		h.log.ErrorContext(ctx, "quarantine from another host not applied", slog.String("agent", agent), slog.Any("error", err))
		return
	}
	if sid, err := workloadapi.IDFromIdentity(id); err == nil {
		if err := h.wl.RemoveWorkload(ctx, sid); err != nil && !errors.Is(err, workloadapi.ErrUnknownWorkload) {
			h.log.ErrorContext(ctx, "quarantine from another host: the Workload API socket stays", slog.String("agent", agent),
				slog.Any("error", err))
		}
	}
	h.forgetWorkload(agent, id)
	h.log.WarnContext(ctx, "agent quarantined by another host", slog.String("agent", agent), slog.String("reason", reason))
}

// releaseHere applies a release another host made.
func (h *Host) releaseHere(ctx context.Context, agent string) {
	id, ok := h.agentIDs[agent]
	if !ok {
		return
	}
	w, err := h.agentWorkload(agent, id)
	if err != nil {
		return
	}
	h.remedyMu.Lock()
	defer h.remedyMu.Unlock()
	if err := h.release(ctx, agent, w); err != nil && !errors.Is(err, localapi.ErrNotQuarantined) {
		h.log.ErrorContext(ctx, "release from another host not applied", slog.String("agent", agent), slog.Any("error", err))
		return
	}
	h.log.WarnContext(ctx, "agent released by another host", slog.String("agent", agent))
}
