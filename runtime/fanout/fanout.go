package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenthost/agenthost/runtime/store"
)

// Channel is the notification channel of the events.
const Channel = "agenthost_events"

// Kinds of events.
const (
	// KindRevocations: the authorization server wrote a revocation.
	KindRevocations = "revocations"
	// KindUser: a security signal about a user was acted on (Subject;
	// Stop, Drop, Risk say what the other hosts do).
	KindUser = "user"
	// KindQuarantine and KindRelease: an agent was quarantined or
	// released (Agent, Reason).
	KindQuarantine = "quarantine"
	KindRelease    = "release"
	// KindResync is not sent: a listener that was cut off hands it to
	// the host when it is back.
	KindResync = "resync"
)

// Event is one thing a host did that the others act on.
type Event struct {
	Kind string `json:"kind"`
	// Origin is the host that did it.
	Origin  string `json:"origin"`
	Subject string `json:"subject,omitempty"`
	Agent   string `json:"agent,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Stop: stop the user's running tasks; Drop: drop the tokens and
	// sessions held for the user; Risk: the user's new risk level.
	Stop bool   `json:"stop,omitempty"`
	Drop bool   `json:"drop,omitempty"`
	Risk string `json:"risk,omitempty"`
	// At is when the origin did it, to measure the fan-out.
	At time.Time `json:"at"`
}

// Config configures [New].
type Config struct {
	// Store carries the events; a store that is no store.Notifier makes
	// New return nil.
	Store store.Store
	// Host names this host (unique in the deployment); its own events
	// are not handed back to it.
	Host string
	// OnEvent acts on another host's event. Required.
	OnEvent func(ctx context.Context, ev Event)
	// Logger receives a record of each event sent and heard; nil means
	// silent.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bus sends and hears the events of one host.
type Bus struct {
	n   store.Notifier
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New returns the host's bus, or nil when cfg.Store cannot notify.
func New(cfg Config) (*Bus, error) {
	n, ok := cfg.Store.(store.Notifier)
	if !ok {
		return nil, nil
	}
	if cfg.Host == "" || cfg.OnEvent == nil {
		return nil, errors.New("fanout: Host and OnEvent are required")
	}
	b := &Bus{n: n, cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// Publish tells the other hosts of ev (Origin and At are filled in). A nil
// Bus publishes nothing.
func (b *Bus) Publish(ctx context.Context, ev Event) error {
	if b == nil {
		return nil
	}
	ev.Origin, ev.At = b.cfg.Host, b.now().UTC()
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	if len(data) > store.MaxNotification {
		// A reason too long for a notification is cut; what to do is
		// in the other fields.
		ev.Reason = ""
		if data, err = json.Marshal(ev); err != nil {
			return fmt.Errorf("fanout: %w", err)
		}
	}
	if err := b.n.Notify(context.WithoutCancel(ctx), Channel, string(data)); err != nil {
		return fmt.Errorf("fanout: publish %s: %w", ev.Kind, err)
	}
	b.log.DebugContext(ctx, "event published", slog.String("kind", ev.Kind), slog.String("subject", ev.Subject),
		slog.String("agent", ev.Agent))
	return nil
}

// Run hears the other hosts' events until ctx is done. A nil Bus returns
// at once.
func (b *Bus) Run(ctx context.Context) error {
	if b == nil {
		return nil
	}
	err := b.n.Listen(ctx, Channel, func(payload string) {
		if payload == "" {
			b.cfg.OnEvent(ctx, Event{Kind: KindResync})
			return
		}
		var ev Event
		if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.Kind == "" {
			b.log.WarnContext(ctx, "unreadable event ignored", slog.Int("bytes", len(payload)))
			return
		}
		if ev.Origin == b.cfg.Host {
			return
		}
		b.log.InfoContext(ctx, "event from another host", slog.String("kind", ev.Kind), slog.String("origin", ev.Origin),
			slog.String("subject", ev.Subject), slog.String("agent", ev.Agent),
			slog.Duration("latency", b.now().Sub(ev.At)))
		b.cfg.OnEvent(ctx, ev)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}
