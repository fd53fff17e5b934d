package signals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Remedies a [Remediator] records about a user. A risk-level-change
// records "risk " followed by the new level in lower case.
const (
	// RemedyRevoke: every credential the host's authorization server
	// issued to the user is revoked, the tokens and sessions the host
	// holds for the user are dropped and the user's tasks are stopped.
	RemedyRevoke = "revoke"
	// RemedyRefresh: the tokens and sessions are dropped and the tasks
	// stopped, so that the user signs in again and fresh claims apply.
	RemedyRefresh = "refresh"
	// RemedyNone: nothing was done.
	RemedyNone = "none"
)

// User is a user the host's authorization server knows.
type User struct {
	// Name is the login name, the subject of the user's tokens and tasks.
	Name string
	// Email is the user's address; empty when none is known.
	Email string
}

// UserRemedy is what a [Remediator] did about a user, in the form other
// hosts of the same deployment repeat it. A revocation at the
// authorization server is not in it: it is shared through the store.
type UserRemedy struct {
	// User is the user's name.
	User string
	// Stop is set when the user's tasks were stopped, Drop when the tokens
	// and sessions held for the user were dropped.
	Stop, Drop bool
	// Risk is the risk level set for the user, "" when unchanged.
	Risk string
	// Cause is the cause of the remediation (see [Remediation.Cause]).
	Cause string
}

// Remediation records what a [Remediator] did about one event. The host
// writes it to its audit log as a remediation decided by the policy
// "signals".
type Remediation struct {
	// User is the host user the event was about; empty when it was not
	// about a user.
	User string
	// Agent and AgentID (its SPIFFE ID) name the hosted agent the event
	// was about; empty when it was not about an agent.
	Agent, AgentID string
	// Resource is what the remedy applied to: the agent's SPIFFE ID for an
	// agent, else the source (the receiver the event came through).
	Resource string
	// Remedy is [RemedyRevoke], [RemedyRefresh], [RemedyNone] or
	// "risk <level>".
	Remedy string
	// Cause is "<source>: <event>", the event being the last segment of
	// its type URI, followed by " (<reason>)" when the event gave a reason
	// (reason_admin before reason_user, English when present).
	Cause string
	// Reason says what was done: "N tasks stopped, M sessions dropped",
	// "unknown subject", or "<event> needs no action for an agent".
	Reason string
	// Risk is the user's risk level after the event.
	Risk string
	// Err is the failure of an action; nil when every action succeeded.
	Err error
}

// RemediatorConfig configures a [Remediator]: how it recognizes the
// host's agents and users, and the actions it may take. An action left
// nil is one the host cannot take; it is skipped.
type RemediatorConfig struct {
	// AgentByID returns the name of the hosted agent whose SPIFFE ID is
	// exactly id. Nil: the host has no agents.
	AgentByID func(id string) (name string, ok bool)
	// Users returns the users of the host's authorization server. Nil:
	// none.
	Users func() []User
	// UserIssuers are the issuers whose subject identifiers are the
	// names of the host's users: the host's own authorization server, and
	// the directories its users come from. An iss_sub subject names a
	// user only with one of these as iss, and an account URI
	// (acct:local@domain) by its local part only when domain is the host
	// name of one of them (otherwise by its whole address, as an email).
	UserIssuers []string

	// Quarantine quarantines a hosted agent with cause as the reason and
	// audits it. It must be idempotent. Required when AgentByID is set.
	Quarantine func(ctx context.Context, agent, cause string) error
	// RevokeUser ends every credential the host's authorization server
	// issued to user; reason is the event's name. Nil: the host has no
	// authorization server.
	RevokeUser func(ctx context.Context, user, reason string) error
	// ForgetUser drops every token and session the host holds for user
	// and returns how many sessions it ended.
	ForgetUser func(ctx context.Context, user string) int
	// StopTasks stops every running task acting for user, with cause as
	// the reason, and returns how many it stopped.
	StopTasks func(ctx context.Context, user, cause string) int
	// SetRisk sets the risk level (low, medium or high) policy sees for
	// user from the next decision on; Risk returns it.
	SetRisk func(ctx context.Context, user, level string)
	Risk    func(user string) string
	// Publish tells the other hosts of the deployment what was done about
	// a user, so that they do the same. Nil: the host is alone.
	Publish func(ctx context.Context, r UserRemedy)
	// Record audits a remediation. Required: every event is recorded,
	// whether or not it was acted on.
	Record func(ctx context.Context, r Remediation) error

	// Logger receives what was done; nil is silent.
	Logger *slog.Logger
}

// Remediator decides what the host does about each verified CAEP event
// and does it through the actions of its [RemediatorConfig].
//
// An event about one of the host's agents (its SPIFFE ID as a uri
// subject, or as the uri member of an aliases subject or the application
// member of a complex subject) quarantines the agent on session-revoked,
// credential-change and a risk-level-change to high; any other event about
// an agent is recorded as needing no action. An agent is matched by its
// exact SPIFFE ID, so a subject naming an agent of another trust domain is
// not one of the host's.
//
// Any other event must be about a user of the host's authorization
// server, found by email (compared case-insensitively), by the sub of an
// iss_sub subject whose iss is one of [RemediatorConfig.UserIssuers], by
// the id of an opaque subject, by an account URI (acct:name@domain: the
// user named name when domain is the host of one of UserIssuers, else the
// user whose email is name@domain), or through the user member of a
// complex subject or any identifier of an aliases subject. A subject
// another issuer assigned names nobody here, even from a trusted
// transmitter: another directory's "alice" is not the host's. About a
// user:
//
//   - session-revoked and credential-change revoke ([RemedyRevoke]);
//   - token-claims-change, an assurance-level-change with direction
//     decrease and a device-compliance-change to not-compliant refresh
//     ([RemedyRefresh]);
//   - risk-level-change sets the user's risk level, and refreshes as well
//     when the level is high;
//   - anything else needs no action ([RemedyNone]).
//
// A remedy for a user is published to the other hosts when it dropped,
// stopped or set anything. Every event is recorded, an event about an
// unknown subject (a subject format the host does not know, a user it does
// not have) as such, with no other action.
//
// When an action fails the others still run, the remediation is recorded
// with the error, and [Remediator.Remediate] returns it: a [Receiver] then
// does not acknowledge the SET, so it is delivered again and acted on
// again (every action is idempotent).
type Remediator struct {
	cfg RemediatorConfig
	log *slog.Logger
}

// NewRemediator returns a Remediator for cfg.
func NewRemediator(cfg RemediatorConfig) (*Remediator, error) {
	if cfg.Record == nil {
		return nil, fmt.Errorf("%w: remediator needs Record", ErrInvalidConfig)
	}
	if cfg.AgentByID != nil && cfg.Quarantine == nil {
		return nil, fmt.Errorf("%w: remediator recognizing agents needs Quarantine", ErrInvalidConfig)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Remediator{cfg: cfg, log: log}, nil
}

// Handler returns the [Handler] of the receiver named source.
func (r *Remediator) Handler(source string) Handler {
	return HandlerFunc(func(ctx context.Context, ev Event) error { return r.Remediate(ctx, source, ev) })
}

// Remediate acts on one verified CAEP event from the receiver named
// source, as the [Remediator] doc says, and records what it did. An error
// means an action or the record failed.
func (r *Remediator) Remediate(ctx context.Context, source string, ev Event) error {
	short := ev.Type[strings.LastIndex(ev.Type, "/")+1:]
	cause := source + ": " + short
	if t := reasonText(ev); t != "" {
		cause += " (" + t + ")"
	}
	if agent, id, ok := r.agentSubject(ev.Subject); ok {
		return r.agentEvent(ctx, agent, id, short, cause, ev)
	}
	user, ok := r.userSubject(ev.Subject)
	if !ok {
		r.log.WarnContext(ctx, "signal about an unknown subject ignored", slog.String("source", source), slog.String("event", short),
			slog.String("format", ev.Subject.Format))
		return r.record(ctx, Remediation{Resource: source, Cause: cause, Remedy: RemedyNone, Reason: "unknown subject"})
	}
	remedy := RemedyNone
	revoke, drop, stop, risk := false, false, false, ""
	switch ev.Type {
	case EventSessionRevoked, EventCredentialChange:
		remedy, revoke, drop, stop = RemedyRevoke, true, true, true
	case EventTokenClaimsChange:
		remedy, drop, stop = RemedyRefresh, true, true
	case EventAssuranceLevelChange:
		if strings.EqualFold(ev.ChangeDirection, "decrease") {
			remedy, drop, stop = RemedyRefresh, true, true
		}
	case EventDeviceComplianceChange:
		if strings.EqualFold(ev.CurrentStatus, "not-compliant") {
			remedy, drop, stop = RemedyRefresh, true, true
		}
	case EventRiskLevelChange:
		risk = strings.ToLower(ev.CurrentLevel)
		if r.cfg.SetRisk != nil {
			r.cfg.SetRisk(ctx, user, risk)
		}
		remedy = "risk " + risk
		if risk == "high" {
			drop, stop = true, true
		}
	}
	var errs []error
	if revoke && r.cfg.RevokeUser != nil {
		if err := r.cfg.RevokeUser(ctx, user, short); err != nil {
			errs = append(errs, err)
		}
	}
	forgotten, stopped := 0, 0
	if drop && r.cfg.ForgetUser != nil {
		forgotten = r.cfg.ForgetUser(ctx, user)
	}
	if stop && r.cfg.StopTasks != nil {
		stopped = r.cfg.StopTasks(ctx, user, cause)
	}
	r.log.WarnContext(ctx, "security signal acted on", slog.String("subject", user), slog.String("cause", cause),
		slog.String("remedy", remedy), slog.Int("sessions_dropped", forgotten), slog.Int("tasks_stopped", stopped))
	if (drop || stop || ev.Type == EventRiskLevelChange) && r.cfg.Publish != nil {
		r.cfg.Publish(ctx, UserRemedy{User: user, Stop: stop, Drop: drop, Risk: risk, Cause: cause})
	}
	rec := Remediation{User: user, Resource: source, Remedy: remedy, Cause: cause,
		Reason: fmt.Sprintf("%d tasks stopped, %d sessions dropped", stopped, forgotten), Err: errors.Join(errs...)}
	if r.cfg.Risk != nil {
		rec.Risk = r.cfg.Risk(user)
	}
	if rec.Err != nil {
		errs = []error{fmt.Errorf("signals: remediate %s for %s: %w", short, user, rec.Err)}
	}
	if err := r.record(ctx, rec); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// agentEvent acts on an event about the hosted agent named agent, whose
// SPIFFE ID is id.
func (r *Remediator) agentEvent(ctx context.Context, agent, id, short, cause string, ev Event) error {
	switch {
	case ev.Type == EventSessionRevoked, ev.Type == EventCredentialChange,
		ev.Type == EventRiskLevelChange && strings.EqualFold(ev.CurrentLevel, "high"):
		// Quarantine audits itself.
		if err := r.cfg.Quarantine(ctx, agent, cause); err != nil {
			return fmt.Errorf("signals: quarantine agent %s: %w", agent, err)
		}
		return nil
	}
	return r.record(ctx, Remediation{Agent: agent, AgentID: id, Resource: id, Cause: cause, Remedy: RemedyNone,
		Reason: short + " needs no action for an agent"})
}

func (r *Remediator) record(ctx context.Context, rec Remediation) error {
	if err := r.cfg.Record(ctx, rec); err != nil {
		return fmt.Errorf("signals: record remediation: %w", err)
	}
	return nil
}

// agentSubject recognizes one of the host's agents by its SPIFFE ID: a
// uri subject, the application member of a complex subject, or any
// identifier of an aliases subject. It returns the agent's name and ID.
func (r *Remediator) agentSubject(s Subject) (name, id string, ok bool) {
	if r.cfg.AgentByID == nil {
		return "", "", false
	}
	switch s.Format {
	case FormatURI:
		if name, ok := r.cfg.AgentByID(s.URI); ok {
			return name, s.URI, true
		}
	case FormatComplex:
		if s.Application != nil {
			return r.agentSubject(*s.Application)
		}
	case FormatAliases:
		for _, a := range s.Identifiers {
			if name, id, ok := r.agentSubject(a); ok {
				return name, id, true
			}
		}
	}
	return "", "", false
}

// userSubject maps a subject to a user of the host's authorization
// server, as the [Remediator] doc says.
func (r *Remediator) userSubject(s Subject) (string, bool) {
	var users []User
	if r.cfg.Users != nil {
		users = r.cfg.Users()
	}
	return userSubject(users, r.cfg.UserIssuers, s)
}

func userSubject(users []User, issuers []string, s Subject) (string, bool) {
	known := func(name string) (string, bool) {
		for _, u := range users {
			if u.Name == name {
				return name, true
			}
		}
		return "", false
	}
	byEmail := func(addr string) (string, bool) {
		for _, u := range users {
			if u.Email != "" && strings.EqualFold(u.Email, addr) {
				return u.Name, true
			}
		}
		return "", false
	}
	switch s.Format {
	case FormatEmail:
		return byEmail(s.Email)
	case FormatIssSub:
		if slices.Contains(issuers, s.Iss) {
			return known(s.Sub)
		}
	case FormatOpaque:
		return known(s.ID)
	case FormatAccount:
		addr := strings.TrimPrefix(s.URI, "acct:")
		local, domain, _ := strings.Cut(addr, "@")
		if issuerHost(issuers, domain) {
			return known(local)
		}
		return byEmail(addr)
	case FormatComplex:
		if s.User != nil {
			return userSubject(users, issuers, *s.User)
		}
	case FormatAliases:
		for _, a := range s.Identifiers {
			if name, ok := userSubject(users, issuers, a); ok {
				return name, true
			}
		}
	}
	return "", false
}

// issuerHost reports whether domain is the host name of one of issuers
// (compared case-insensitively, without the port).
func issuerHost(issuers []string, domain string) bool {
	if domain == "" {
		return false
	}
	for _, iss := range issuers {
		if u, err := url.Parse(iss); err == nil && strings.EqualFold(u.Hostname(), domain) {
			return true
		}
	}
	return false
}

// reasonText returns the event's reason: reason_admin before reason_user,
// the English text when there is one, else the text of the first language
// tag in sorted order, so that the same event always gives the same text.
func reasonText(ev Event) string {
	for _, m := range []map[string]string{ev.ReasonAdmin, ev.ReasonUser} {
		if t := m["en"]; t != "" {
			return t
		}
		for _, lang := range slices.Sorted(maps.Keys(m)) {
			if t := m[lang]; t != "" {
				return t
			}
		}
	}
	return ""
}
