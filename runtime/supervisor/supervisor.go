package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/agenthost/agenthost/plugins"
	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
)

// State is an agent's lifecycle state.
type State string

// States.
const (
	StateStarting    State = "starting"
	StateRunning     State = "running"
	StateBackoff     State = "backoff"
	StateQuarantined State = "quarantined"
	StateFailed      State = "failed"
	StateStopped     State = "stopped"
)

// Sentinel errors.
var (
	ErrUnknownAgent = errors.New("supervisor: unknown agent")
	ErrNotRunning   = errors.New("supervisor: agent is not running")
	ErrQuarantined  = errors.New("supervisor: agent is quarantined")
	// ErrNotQuarantined: Release of an agent that is not quarantined.
	ErrNotQuarantined = errors.New("supervisor: agent is not quarantined")
	// ErrHung: the task outlived its deadline; the plugin was killed and
	// will be restarted.
	ErrHung = errors.New("supervisor: task deadline exceeded; plugin killed")
)

// Backoff computes restart delays: Initial·Factor^n, capped at Max.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
}

// DefaultBackoff is used when Config.Backoff is zero.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Factor: 2}

// Delay returns the wait before restart number n (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(b.Initial) * math.Pow(b.Factor, float64(n-1))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// restartCount returns the restart count to use after a plugin that ran
// since up exits at now: a plugin that stayed up for stableAfter starts
// counting from zero again.
func restartCount(prev int, up, now time.Time, stableAfter time.Duration) int {
	if !up.IsZero() && now.Sub(up) >= stableAfter {
		return 1
	}
	return prev + 1
}

// AgentSpec describes one agent plugin to supervise.
type AgentSpec struct {
	Name   string
	Path   string // absolute
	SHA256 string // hex
	Env    []string
	// Host serves this agent's calls to the host.
	Host pluginpb.HostServer
	// TaskDeadline overrides Config.TaskDeadline for this agent.
	TaskDeadline time.Duration
	// Sandbox contains the plugin process (zero: strict, default limits).
	Sandbox sandbox.Policy
	// Sockets are the unix sockets the plugin may connect to besides its
	// go-plugin channel (its Workload API socket).
	Sockets []sandbox.Bind
	// Owner tags the plugin's sandbox for sandbox.Sweep.
	Owner string
	// Quarantined, when not empty, is why the agent is quarantined from
	// the start (a quarantine kept from an earlier run): it is never
	// launched and its tasks are refused until [Supervisor.Release].
	Quarantined string
}

// Config configures [New].
type Config struct {
	// Backoff between restarts; zero means DefaultBackoff.
	Backoff Backoff
	// StableAfter: a plugin up this long has its restart count reset.
	// Zero means 1 minute.
	StableAfter time.Duration
	// TaskDeadline bounds one task; a plugin still running a task past it
	// is killed and restarted. Zero means 10 minutes.
	TaskDeadline time.Duration
	// PollInterval is how often plugin processes are checked for exit.
	// Zero means 250 ms.
	PollInterval time.Duration
	// OnDescribe, if set, is called with each plugin's description after
	// every start.
	OnDescribe func(agent string, d *pluginpb.DescribeResponse)
	// OnStart, if set, is called after every start of a plugin process
	// with its pid and the protections that contain it.
	OnStart func(agent string, pid int, prot sandbox.Protections)
	// OnRestart, if set, is called each time an agent's plugin is to be
	// started again (it exited, failed to start or to describe itself),
	// before the backoff delay. It must not block.
	OnRestart func(agent string)
	// Launch starts a plugin; nil means plugins.Launch.
	Launch func(context.Context, plugins.Config) (*plugins.Plugin, error)
	Now    func() time.Time
	Logger *slog.Logger
}

// AgentStatus is a snapshot of one agent.
type AgentStatus struct {
	Name      string
	State     State
	PID       int
	Restarts  int
	LastError string
	Since     time.Time
	// Description is what the plugin's Describe returned at its last start.
	Description *pluginpb.DescribeResponse
	// Sandbox is what contains the running plugin process (zero when none
	// runs).
	Sandbox sandbox.Protections
}

type agent struct {
	spec     AgentSpec
	state    State
	plugin   *plugins.Plugin
	restarts int
	lastErr  string
	since    time.Time
	up       time.Time
	desc     *pluginpb.DescribeResponse
	// quarantine is closed to stop the agent's monitor loop at once; a
	// release replaces it, so a monitor loop ends with the quarantine
	// channel it started with.
	quarantine chan struct{}
	changed    chan struct{} // closed and replaced on every state change
}

// status snapshots a; the caller holds the supervisor's lock.
func (a *agent) status() AgentStatus {
	st := AgentStatus{Name: a.spec.Name, State: a.state, Restarts: a.restarts, LastError: a.lastErr, Since: a.since, Description: a.desc}
	if a.plugin != nil {
		st.PID = a.plugin.PID()
		st.Sandbox = a.plugin.Sandbox()
	}
	return st
}

// Supervisor runs agent plugins.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	agents map[string]*agent
	// While Run runs, runCtx is its context and monitors counts the
	// agents' monitor loops (a release starts one anew); stopping is set,
	// under mu, once Run waits for them to end.
	runCtx   context.Context
	monitors sync.WaitGroup
	stopping bool
}

// New returns a supervisor for specs. Names must be unique and non-empty.
func New(cfg Config, specs ...AgentSpec) (*Supervisor, error) {
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Backoff.Initial <= 0 || cfg.Backoff.Max < cfg.Backoff.Initial || cfg.Backoff.Factor < 1 {
		return nil, fmt.Errorf("supervisor: invalid backoff %+v", cfg.Backoff)
	}
	if cfg.StableAfter == 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.TaskDeadline == 0 {
		cfg.TaskDeadline = 10 * time.Minute
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	if cfg.Launch == nil {
		cfg.Launch = plugins.Launch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger, agents: map[string]*agent{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, sp := range specs {
		if sp.Name == "" {
			return nil, errors.New("supervisor: agent with an empty name")
		}
		if _, dup := s.agents[sp.Name]; dup {
			return nil, fmt.Errorf("supervisor: agent %q configured twice", sp.Name)
		}
		a := &agent{spec: sp, state: StateStopped, quarantine: make(chan struct{}), changed: make(chan struct{})}
		if sp.Quarantined != "" {
			a.state, a.lastErr, a.since = StateQuarantined, "quarantined: "+sp.Quarantined, cfg.Now()
			close(a.quarantine)
		}
		s.agents[sp.Name] = a
	}
	return s, nil
}

// setState must be called with s.mu held.
func (s *Supervisor) setState(a *agent, st State, errText string) {
	a.state = st
	a.since = s.cfg.Now()
	if errText != "" {
		a.lastErr = errText
	}
	close(a.changed)
	a.changed = make(chan struct{})
}

// Run launches every agent and keeps it running until ctx is done, then
// kills every plugin. It returns nil on cancellation, and keeps running
// (serving status) when there are no agents or all have failed. An agent
// quarantined from the start is not launched.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("supervisor: already run")
	}
	s.runCtx = ctx
	for _, a := range s.agents {
		s.startMonitor(ctx, a)
	}
	s.mu.Unlock()
	// The supervisor runs until the context ends, also when every agent
	// failed or is quarantined; then it waits for every monitor (each
	// kills its plugin).
	<-ctx.Done()
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.monitors.Wait()
	return nil
}

// startMonitor starts a's monitor loop; the caller holds s.mu and has
// checked that Run is not stopping.
func (s *Supervisor) startMonitor(ctx context.Context, a *agent) {
	q := a.quarantine
	s.monitors.Add(1)
	go func() {
		defer s.monitors.Done()
		s.monitor(ctx, a, q)
	}()
}

// closed reports whether the quarantine channel q is closed.
func closed(q <-chan struct{}) bool {
	select {
	case <-q:
		return true
	default:
		return false
	}
}

// monitor is one agent's loop: launch, watch, restart with backoff. It
// ends when q (the agent's quarantine channel when it started) is closed.
func (s *Supervisor) monitor(ctx context.Context, a *agent, q <-chan struct{}) {
	log := s.log.With("agent", a.spec.Name)
	for {
		s.mu.Lock()
		if closed(q) {
			s.mu.Unlock()
			return
		}
		s.setState(a, StateStarting, "")
		s.mu.Unlock()

		p, err := s.cfg.Launch(ctx, plugins.Config{
			Name: a.spec.Name, Path: a.spec.Path, SHA256: a.spec.SHA256, Env: a.spec.Env,
			Host: a.spec.Host, Logger: s.log, Sandbox: a.spec.Sandbox, Sockets: a.spec.Sockets, Owner: a.spec.Owner,
		})
		if err != nil {
			if ctx.Err() != nil {
				s.stop(a)
				return
			}
			// A binary, configuration or kernel that cannot work will not
			// work on a retry either.
			if errors.Is(err, plugins.ErrChecksum) || errors.Is(err, plugins.ErrConfig) ||
				errors.Is(err, sandbox.ErrConfig) || errors.Is(err, sandbox.ErrUnsupported) {
				log.ErrorContext(ctx, "agent cannot start", slog.Any("error", err))
				s.mu.Lock()
				if !closed(q) {
					s.setState(a, StateFailed, err.Error())
				}
				s.mu.Unlock()
				return
			}
			log.WarnContext(ctx, "agent failed to start", slog.Any("error", err))
			if !s.backoff(ctx, a, q, time.Time{}, err.Error()) {
				return
			}
			continue
		}

		if s.cfg.OnStart != nil {
			s.cfg.OnStart(a.spec.Name, p.PID(), p.Sandbox())
		}
		// A plugin that cannot describe itself is not ready: restart it.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		desc, derr := p.Describe(dctx)
		cancel()
		if derr != nil {
			p.Kill()
			if ctx.Err() != nil {
				s.stop(a)
				return
			}
			log.WarnContext(ctx, "agent plugin did not describe itself", slog.Any("error", derr))
			if !s.backoff(ctx, a, q, time.Time{}, derr.Error()) {
				return
			}
			continue
		}
		if s.cfg.OnDescribe != nil {
			s.cfg.OnDescribe(a.spec.Name, desc)
		}

		s.mu.Lock()
		if closed(q) { // quarantined while starting
			s.mu.Unlock()
			p.Kill()
			return
		}
		a.desc = desc
		a.plugin = p
		a.up = s.cfg.Now()
		s.setState(a, StateRunning, "")
		s.mu.Unlock()
		log.InfoContext(ctx, "agent running", slog.Int("pid", p.PID()))

		if !s.watch(ctx, a, q, p) {
			return
		}
		log.WarnContext(ctx, "agent plugin exited; restarting")
		s.mu.Lock()
		up := a.up
		// After a quarantine and a release, a.plugin may already be the
		// plugin of the next monitor loop.
		if a.plugin == p {
			a.plugin = nil
		}
		s.mu.Unlock()
		if !s.backoff(ctx, a, q, up, "plugin exited") {
			return
		}
	}
}

// watch waits until the plugin exits (true) or the agent must stop
// (false, plugin killed).
func (s *Supervisor) watch(ctx context.Context, a *agent, q <-chan struct{}, p *plugins.Plugin) bool {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Kill()
			s.stop(a)
			return false
		case <-q:
			p.Kill()
			return false
		case <-t.C:
			if p.Exited() {
				return true
			}
		}
	}
}

// backoff records a restart and waits its delay; false means stop.
func (s *Supervisor) backoff(ctx context.Context, a *agent, q <-chan struct{}, up time.Time, reason string) bool {
	s.mu.Lock()
	if closed(q) {
		s.mu.Unlock()
		return false
	}
	a.restarts = restartCount(a.restarts, up, s.cfg.Now(), s.cfg.StableAfter)
	delay := s.cfg.Backoff.Delay(a.restarts)
	s.setState(a, StateBackoff, reason)
	s.mu.Unlock()
	if s.cfg.OnRestart != nil {
		s.cfg.OnRestart(a.spec.Name)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		s.stop(a)
		return false
	case <-q:
		return false
	case <-timer.C:
		return true
	}
}

func (s *Supervisor) stop(a *agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.state != StateQuarantined && a.state != StateFailed {
		s.setState(a, StateStopped, "")
	}
	a.plugin = nil
}

// RunTask runs a task on the agent's current plugin, calling onEvent for
// each event. A task that outlives the task deadline kills the plugin
// (which is then restarted) and returns ErrHung.
func (s *Supervisor) RunTask(ctx context.Context, name, taskID, input string, onEvent func(*pluginpb.RunEvent) error) error {
	s.mu.Lock()
	a, ok := s.agents[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAgent, name)
	}
	if a.state == StateQuarantined {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrQuarantined, name)
	}
	p := a.plugin
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNotRunning, name)
	}
	deadline := s.cfg.TaskDeadline
	if a.spec.TaskDeadline > 0 {
		deadline = a.spec.TaskDeadline
	}
	tctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	err := p.Run(tctx, taskID, input, nil, onEvent)
	// The RPC layer may report the deadline a moment before the context's
	// own timer marks it, so the deadline time itself is checked too.
	dl, _ := tctx.Deadline()
	timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded) || !time.Now().Before(dl)
	if err != nil && timedOut && ctx.Err() == nil {
		s.log.WarnContext(ctx, "task deadline exceeded; killing the plugin", slog.String("agent", name), slog.String("task", taskID))
		p.Kill() // the monitor sees the exit and restarts it
		return fmt.Errorf("%w: agent %s, task %s", ErrHung, name, taskID)
	}
	return err
}

// Quarantine stops the agent and refuses restarts and tasks until
// [Supervisor.Release]. It is idempotent. The quarantine lasts as long as
// the supervisor: keeping it across restarts is the caller's (see
// [AgentSpec.Quarantined]).
func (s *Supervisor) Quarantine(name, reason string) error {
	s.mu.Lock()
	a, ok := s.agents[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAgent, name)
	}
	if a.state == StateQuarantined {
		s.mu.Unlock()
		return nil
	}
	p := a.plugin
	a.plugin = nil
	s.setState(a, StateQuarantined, "quarantined: "+reason)
	close(a.quarantine)
	s.mu.Unlock()
	// Killed outside s.mu: a kill waits for the process to end, and the
	// mediator asks Quarantined on every Host call.
	if p != nil {
		p.Kill()
	}
	s.log.Warn("agent quarantined", slog.String("agent", name), slog.String("reason", reason))
	return nil
}

// Release lifts an agent's quarantine: the agent is launched again (at
// once while Run runs, else when it starts) and takes tasks once running.
// Releasing an agent that is not quarantined returns ErrNotQuarantined.
func (s *Supervisor) Release(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAgent, name)
	}
	if a.state != StateQuarantined {
		return fmt.Errorf("%w: %s is %s", ErrNotQuarantined, name, a.state)
	}
	a.quarantine = make(chan struct{})
	a.restarts = 0
	s.setState(a, StateStopped, "")
	a.lastErr = ""
	if s.runCtx != nil && !s.stopping {
		s.startMonitor(s.runCtx, a)
	}
	s.log.Warn("agent released from quarantine", slog.String("agent", name))
	return nil
}

// Quarantined reports whether the named agent is quarantined (false for an
// unknown agent).
func (s *Supervisor) Quarantined(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[name]
	return ok && a.state == StateQuarantined
}

// Status returns a snapshot of every agent, sorted by name.
func (s *Supervisor) Status() []AgentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AgentStatus, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, a.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WaitFor blocks until the named agent's state satisfies ok or ctx ends,
// and returns the last status seen.
func (s *Supervisor) WaitFor(ctx context.Context, name string, ok func(AgentStatus) bool) (AgentStatus, error) {
	for {
		s.mu.Lock()
		a, found := s.agents[name]
		if !found {
			s.mu.Unlock()
			return AgentStatus{}, fmt.Errorf("%w: %q", ErrUnknownAgent, name)
		}
		st := a.status()
		changed := a.changed
		s.mu.Unlock()
		if ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-changed:
		}
	}
}
