package host

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/store"
)

// Paths of the signals endpoints.
const (
	// PathSSFPush + receiver name is where a transmitter pushes SETs.
	PathSSFPush = "/ssf/push/"
	// ScopeSSFManage is the scope a client needs to manage its streams at
	// the host's transmitter.
	ScopeSSFManage = "ssf:manage"
)

// ssfReplayNamespace holds the jti of every SET the host accepted.
const ssfReplayNamespace = "ssf.jti"

// storeSETReplay makes SETs single-use across every host sharing the store.
type storeSETReplay struct{ kv store.KV }

// Seen implements signals.Replay.
func (r storeSETReplay) Seen(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error) {
	seen, err := rememberOnce(ctx, r.kv, ssfReplayNamespace, issuer+"\x00"+jti, ttl)
	if err != nil {
		return false, fmt.Errorf("host: SET replay cache: %w", err)
	}
	return seen, nil
}

// Forget implements signals.Forgetter: a SET whose handling failed may be
// delivered again.
func (r storeSETReplay) Forget(ctx context.Context, issuer, jti string) error {
	err := r.kv.Delete(ctx, ssfReplayNamespace, hashedKey(issuer+"\x00"+jti), store.Condition{})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// lazyKeys discovers a transmitter's metadata and keys on first use, so
// the host starts even when the transmitter is down.
type lazyKeys struct {
	fetcher *fetch.Fetcher
	issuer  string

	mu   sync.Mutex
	keys *signals.KeySet
}

func (k *lazyKeys) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	ks := k.keys
	k.mu.Unlock()
	if ks == nil {
		_, found, err := signals.DiscoverKeys(ctx, k.fetcher, k.issuer)
		if err != nil {
			return nil, err
		}
		k.mu.Lock()
		if k.keys == nil {
			k.keys = found
		}
		ks = k.keys
		k.mu.Unlock()
	}
	return ks.Key(ctx, kid)
}

// newSignals builds a receiver for every configured transmitter and, when
// asked, the host's own transmitter. Pollers are returned as tasks.
func (h *Host) newSignals(mux *http.ServeMux) ([]Task, error) {
	var tasks []Task
	rem, err := h.remediator()
	if err != nil {
		return nil, err
	}
	for _, rc := range h.cfg.Signals.Receivers {
		recv, task, err := h.newReceiver(rc, rem)
		if err != nil {
			return nil, err
		}
		if task != nil {
			tasks = append(tasks, *task)
		}
		if rc.Delivery != config.DeliveryPoll {
			mux.Handle(PathSSFPush+rc.Name, recv)
		}
	}
	if h.cfg.Signals.Transmitter {
		if err := h.newTransmitter(mux); err != nil {
			return nil, err
		}
	}
	return tasks, nil
}

func (h *Host) newReceiver(rc config.SignalReceiverConfig, rem *signals.Remediator) (*signals.Receiver, *Task, error) {
	token := ""
	if rc.TokenEnv != "" {
		token = os.Getenv(rc.TokenEnv)
		if token == "" {
			return nil, nil, fmt.Errorf("host: signals receiver %s: environment variable %s is empty", rc.Name, rc.TokenEnv)
		}
	}
	audience := rc.Audience
	if audience == "" {
		audience = h.Issuer()
	}
	f := fetch.New(fetch.Config{AllowHTTP: rc.AllowPrivate, AllowPrivate: rc.AllowPrivate})
	log := h.log.With("component", "signals", "receiver", rc.Name)
	cfg := signals.ReceiverConfig{
		Issuer: rc.Issuer, Audience: audience, Keys: (&lazyKeys{fetcher: f, issuer: rc.Issuer}).Key,
		Replay: storeSETReplay{kv: h.store}, Now: h.now, Logger: log,
		Handler: rem.Handler(rc.Name),
	}
	// What a push must carry: with a managed stream a fresh secret the
	// host hands the transmitter, else the configured token.
	pushSecret := ""
	if rc.Delivery != config.DeliveryPoll {
		if rc.Manage {
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, nil, fmt.Errorf("host: signals receiver %s: %w", rc.Name, err)
			}
			pushSecret = base64.RawURLEncoding.EncodeToString(b[:])
		} else {
			pushSecret = token
		}
		if pushSecret != "" {
			cfg.Authorize = signals.BearerAuthorizer(pushSecret)
		}
	}
	recv, err := signals.NewReceiver(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("host: signals receiver %s: %w", rc.Name, err)
	}
	newPoller := func(endpoint string) (*signals.Poller, error) {
		pc := signals.PollerConfig{Endpoint: endpoint, Receiver: recv, AllowHTTP: rc.AllowPrivate, Logger: log}
		if token != "" {
			pc.Token = func(context.Context) (string, error) { return token, nil }
		}
		p, err := signals.NewPoller(pc)
		if err != nil {
			return nil, fmt.Errorf("host: signals receiver %s: %w", rc.Name, err)
		}
		return p, nil
	}
	if rc.Manage {
		sc, err := signals.NewStreamClient(signals.StreamClientConfig{Issuer: rc.Issuer, Fetcher: f, AllowHTTP: rc.AllowPrivate,
			Token: func(context.Context) (string, error) { return token, nil }})
		if err != nil {
			return nil, nil, fmt.Errorf("host: signals receiver %s: %w", rc.Name, err)
		}
		m := &managedStream{h: h, rc: rc, client: sc, pushSecret: pushSecret, newPoller: newPoller, log: log}
		return recv, &Task{Name: "signals/" + rc.Name, Run: m.run}, nil
	}
	if rc.Delivery != config.DeliveryPoll {
		return recv, nil, nil
	}
	p, err := newPoller(rc.PollURL)
	if err != nil {
		return nil, nil, err
	}
	return recv, &Task{Name: "signals/" + rc.Name, Run: p.Run}, nil
}

// managedStream sets up the host's stream at a transmitter and, for poll
// delivery, then polls it.
type managedStream struct {
	h          *Host
	rc         config.SignalReceiverConfig
	client     *signals.StreamClient
	pushSecret string
	newPoller  func(endpoint string) (*signals.Poller, error)
	log        *slog.Logger
}

// run sets the stream up, retrying with backoff while the transmitter
// cannot be reached, then polls it (poll) or waits (push).
func (m *managedStream) run(ctx context.Context) error {
	wait := time.Second
	for {
		sc, err := m.ensure(ctx)
		if err == nil {
			m.log.InfoContext(ctx, "signals stream ready", slog.String("stream", sc.StreamID))
			if m.rc.Delivery != config.DeliveryPoll {
				<-ctx.Done()
				return nil
			}
			p, err := m.newPoller(sc.Delivery.EndpointURL)
			if err != nil {
				return err
			}
			return p.Run(ctx)
		}
		m.log.WarnContext(ctx, "could not set up the signals stream; retrying", slog.Any("error", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
}

// ensure finds the host's stream of the configured delivery method at the
// transmitter, or creates it; a push stream gets this run's secret.
func (m *managedStream) ensure(ctx context.Context) (*signals.StreamConfig, error) {
	want := signals.Delivery{Method: signals.DeliveryPoll}
	if m.rc.Delivery != config.DeliveryPoll {
		want = signals.Delivery{Method: signals.DeliveryPush, EndpointURL: m.h.Issuer() + PathSSFPush + m.rc.Name,
			AuthorizationHeader: "Bearer " + m.pushSecret}
	}
	streams, err := m.client.Streams(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		if s.Delivery == nil || s.Delivery.Method != want.Method {
			continue
		}
		if want.Method == signals.DeliveryPoll {
			return &s, nil
		}
		if s.Delivery.EndpointURL == want.EndpointURL {
			return m.client.UpdateStream(ctx, signals.StreamConfig{StreamID: s.StreamID, Delivery: &want})
		}
	}
	return m.client.CreateStream(ctx, signals.StreamConfig{Delivery: &want, EventsRequested: signals.CAEPEvents,
		Description: "agenthost " + m.h.Issuer()})
}

// remediator returns the handler of the host's receivers: a
// signals.Remediator, which decides what each verified CAEP event means,
// wired to the host's agents, users, authorization server, tasks, held
// tokens and sessions, risk state, other hosts and audit log.
func (h *Host) remediator() (*signals.Remediator, error) {
	users := make([]signals.User, 0, len(h.cfg.Auth.Users))
	for _, u := range h.cfg.Auth.Users {
		users = append(users, signals.User{Name: u.Name, Email: u.Email})
	}
	// The host's users are named by its own authorization server, and by
	// the directories that transmit events about them.
	userIssuers := []string{h.Issuer()}
	for _, rc := range h.cfg.Signals.Receivers {
		userIssuers = append(userIssuers, rc.Issuer)
	}
	r, err := signals.NewRemediator(signals.RemediatorConfig{
		AgentByID: func(id string) (string, bool) {
			for name, aid := range h.agentIDs {
				if aid.String() == id {
					return name, true
				}
			}
			return "", false
		},
		Users:       func() []signals.User { return users },
		UserIssuers: userIssuers,
		Quarantine:  h.Quarantine,
		RevokeUser: func(ctx context.Context, user, reason string) error {
			if h.as == nil {
				return nil
			}
			return h.as.RevokeSubject(ctx, user, reason)
		},
		ForgetUser: func(_ context.Context, user string) int { return h.forgetSubject(user) },
		StopTasks:  func(_ context.Context, user, cause string) int { return h.StopTasks(user, cause) },
		SetRisk:    func(_ context.Context, user, level string) { h.signals.setRisk(user, level) },
		Risk:       h.signals.riskOf,
		Publish: func(ctx context.Context, r signals.UserRemedy) {
			h.publish(ctx, fanout.Event{Kind: fanout.KindUser, Subject: r.User, Stop: r.Stop, Drop: r.Drop, Risk: r.Risk, Reason: r.Cause})
		},
		Record: func(ctx context.Context, r signals.Remediation) error {
			rec := audit.Record{Action: audit.ActionRemediation, Subject: r.User, Agent: r.Agent, AgentID: r.AgentID,
				Resource: r.Resource, Remedy: r.Remedy, Cause: r.Cause, Outcome: audit.OutcomeOK, Policy: "signals",
				Reason: r.Reason, Risk: r.Risk}
			if r.Err != nil {
				rec.Outcome, rec.Error = audit.OutcomeError, r.Err.Error()
			}
			return h.audit.Append(ctx, rec)
		},
		Logger: h.log,
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return r, nil
}

// HandleSignal acts on one verified CAEP event as if the receiver named
// source had received it (see signals.Remediator).
func (h *Host) HandleSignal(ctx context.Context, source string, ev signals.Event) error {
	r, err := h.remediator()
	if err != nil {
		return err
	}
	return r.Remediate(ctx, source, ev)
}

// forgetSubject drops every token and MCP session the host holds for
// user, and returns how many sessions it ended.
func (h *Host) forgetSubject(user string) int {
	n := h.remotes.ForgetSubject(user)
	h.delegation.forget(user)
	for _, ra := range h.a2aRemotes {
		ra.forgetSubject(user)
	}
	return n
}

// ssfSigningKey is the host transmitter's SET signing key, kept in the
// store so a restart keeps it.
const keySSFSigner = "ssf-signing-key"

func (h *Host) ssfKey(ctx context.Context) (*ecdsa.PrivateKey, error) {
	der, err := storedKey(ctx, h.store, keySSFSigner, "SSF signing key", func() ([]byte, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	})
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if ec, ok := k.(*ecdsa.PrivateKey); err == nil && ok {
		return ec, nil
	}
	return nil, errors.New("host: the stored SSF signing key is malformed")
}

// newTransmitter serves the host's SSF transmitter. Clients manage their
// streams with an access token from the host's authorization server
// carrying the scope ssf:manage; a stream's audience is its client.
func (h *Host) newTransmitter(mux *http.ServeMux) error {
	ctx := context.Background()
	key, err := h.ssfKey(ctx)
	if err != nil {
		return err
	}
	kid, err := jose.Thumbprint(key.Public())
	if err != nil {
		return err
	}
	v, err := h.protectedAPI(mux, h.ssfResource(), "agenthost SSF stream management", ScopeSSFManage)
	if err != nil {
		return err
	}
	t, err := signals.NewTransmitter(signals.TransmitterConfig{
		Issuer: h.Issuer(), Signer: key, KeyID: kid, Now: h.now, Logger: h.log.With("component", "ssf-transmitter"),
		Store: storeStreams{kv: h.store}, Queues: storeQueues{kv: h.store},
		// requireScope has authenticated the caller already.
		Authorize: func(r *http.Request) (string, error) {
			c, err := callerOf(r)
			if err != nil {
				return "", err
			}
			return c.ClientID, nil
		},
		// A subscriber hears about every agent of the host unless it
		// removes some.
		DefaultSubjects: signals.DefaultSubjectsAll,
		AllowHTTPPush:   h.cfg.Listen.TLS == nil, AllowPrivatePush: isLoopbackAddr(string(h.cfg.Listen.Address)),
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.closers = append(h.closers, t.Close)
	h.transmitter = t
	// The metadata and keys are public; everything else needs a token
	// with the scope ssf:manage.
	mux.Handle("/ssf/", requireScope(v, ScopeSSFManage, t.Handler()))
	mux.Handle("/ssf/jwks.json", t.Handler())
	mux.Handle(t.MetadataPath(), t.Handler())
	return nil
}

// ssfResource is the resource identifier of the transmitter's management
// API, for which clients get tokens with the scope ssf:manage.
func (h *Host) ssfResource() string { return h.Issuer() + "/ssf" }

// transmitAgentRevoked tells subscribed receivers that an agent was
// quarantined: its sessions are revoked (session-revoked) and its X.509
// and JWT credentials are no longer issued (credential-change, revoke).
func (h *Host) transmitAgentRevoked(ctx context.Context, agent, reason string) {
	if h.transmitter == nil {
		return
	}
	id := h.agentIDs[agent]
	sub := signals.Subject{Format: signals.FormatURI, URI: id.String()}
	for _, ev := range []signals.Event{
		{Type: signals.EventSessionRevoked},
		{Type: signals.EventCredentialChange, CredentialType: "x509", ChangeType: "revoke"},
	} {
		ev.Subject, ev.EventTimestamp, ev.InitiatingEntity = sub, h.now(), "policy"
		ev.ReasonAdmin = map[string]string{"en": reason}
		if err := h.transmitter.Transmit(ctx, ev); err != nil {
			h.log.WarnContext(ctx, "could not transmit the agent's revocation", slog.String("agent", agent),
				slog.String("event", ev.Type), slog.Any("error", err))
		}
	}
}
