package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/a2a/a2aserver"
	"github.com/agenthost/agenthost/consent"
	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/agenthost/agenthost/credentials/wimse"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/console"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/localapi"
	"github.com/agenthost/agenthost/runtime/mcphost"
	"github.com/agenthost/agenthost/runtime/mediator"
	"github.com/agenthost/agenthost/runtime/policy"
	"github.com/agenthost/agenthost/runtime/remotetools"
	"github.com/agenthost/agenthost/runtime/signals"
	"github.com/agenthost/agenthost/runtime/store"
	"github.com/agenthost/agenthost/runtime/store/pgstore"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
	"github.com/agenthost/agenthost/runtime/supervisor"
	"github.com/agenthost/agenthost/runtime/telemetry"
)

// Options configure [New].
type Options struct {
	// Config is the loaded, validated configuration. Required.
	Config *config.Config
	// DataDir holds all state. Required.
	DataDir string
	// Version is reported in the run file and at start.
	Version string
	// Stdout receives the start banner; nil discards it.
	Stdout io.Writer
	// Stderr receives logs when Logger is nil; nil means os.Stderr.
	Stderr io.Writer
	// Logger overrides the logger built from Config.Log.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// UnsafeNoSandbox allows plugins whose effective sandbox level is
	// none (config.SandboxNone) to start uncontained; without it such a
	// plugin is refused. It is for debugging only, and every plugin
	// started uncontained is audited.
	UnsafeNoSandbox bool
}

// Host is a prepared agenthost, ready to [Host.Run].
type Host struct {
	opts    Options
	cfg     *config.Config
	dataDir string
	log     *slog.Logger
	now     func() time.Time
	lock    *dirLock
	store   store.Store
	ca      *ca.CA
	// ident is the identity source: ca, or an upstream Workload API.
	ident identitySource
	// federation holds the own and the federated trust domains' bundles.
	federation *federation.Set
	// trusted are the authorization servers of auth.trusted_issuers.
	trusted []*trustedIssuer
	// peers are the agents' transports to federated peers (svidtls.go).
	peers  *svidtls.Transports
	as     *authserver.Server
	tools  map[string]mediator.Tool
	taskMu sync.Mutex
	// approvalSinks are the streams approval requests are surfaced on,
	// by transaction; consent serves the approval pages.
	approvalSinks approvalSinks
	consent       *consent.Pages
	// a2a serves the agents over A2A, behind wimse (a2a.go); a2aInfo is
	// what the agents said of themselves, for their cards.
	a2a     *a2aserver.Server
	wimse   *wimse.Verifier
	a2aInfo a2aAgents
	hops    *a2aHops
	// fanout tells the other hosts on the same store what this one did
	// (nil with an embedded store: fanout.go).
	fanout   *fanout.Bus
	requests *consent.Requests
	running  map[string]runningTask // by task id
	// remedyMu serializes the state changes of Quarantine and Release.
	remedyMu sync.Mutex
	// readOnly are the host tools that change nothing (they need a
	// server's read scope only).
	readOnly map[string]bool
	mcp      []mcphost.Server
	remotes  *remotetools.Set
	wl       *workloadapi.Server
	http     *httpServer
	hostID   credentials.Identity
	evidence *evidenceCache
	doors    *doorLimiter // rate-limits the audit records of refused connections
	// a2aRemotes are the remote A2A agents (a2a.remotes), by name.
	a2aRemotes map[string]*remoteAgent
	// sandboxOwner tags this host's plugin sandboxes; sandboxProt is what
	// a strict sandbox gives on this host (zero when no plugin is strict).
	sandboxOwner string
	sandboxProt  sandbox.Protections
	sup          *supervisor.Supervisor
	med          *mediator.Mediator
	audit        *auditor
	// pdp is the policy decision point beyond the grants (nil: none);
	// engine is set when it is the local Cedar engine.
	pdp     policy.Decider
	engine  *policy.Engine
	signals signalState
	// transmitter is the host's SSF transmitter, when configured.
	transmitter *signals.Transmitter
	// taskTokens verifies the tokens users start tasks with (the task
	// resource, TaskResource).
	taskTokens *resource.Verifier
	// delegation holds the users' tokens of running tasks and what the
	// host derives from them for remote calls (delegation.go).
	delegation *delegation
	// agentClients are the agents as clients of authorization servers
	// that do not trust the trust domain (cimd.go).
	agentClients *agentClients
	// tasks are extra long-running parts (signal pollers) Run starts.
	tasks    []Task
	agentIDs map[string]credentials.Identity
	// agentDigests are the agents' measured binary digests at launch,
	// what their running processes are attested against; pluginPIDs
	// hold, by agent, a sandbox init's pid and its plugin's
	// (attestation.go).
	agentDigests map[string]string
	// storePing checks a database store's connection (/healthz); nil
	// for an embedded store.
	storePing  func(context.Context) error
	pluginPIDs sync.Map
	admin      *localapi.Server
	closers    []func()
	// consoleTasks are the running and recent tasks the console shows.
	consoleTasks *console.TaskLog
	// telemetry holds the metrics and the tracer (telemetry.go).
	telemetry *telemetry.Telemetry
}

// New prepares a host: everything that can fail because of the config, the
// data directory or the environment fails here, before anything serves.
// On error nothing is left running or locked, and nothing stored is changed
// beyond what a successful start would have created.
func New(ctx context.Context, opts Options) (_ *Host, err error) {
	if opts.Config == nil {
		return nil, errors.New("host: no config")
	}
	if opts.DataDir == "" {
		return nil, errors.New("host: no data directory")
	}
	h := &Host{opts: opts, cfg: opts.Config, now: opts.Now, agentIDs: map[string]credentials.Identity{}, agentDigests: map[string]string{},
		running: map[string]runningTask{}}
	h.delegation = newDelegation(h)
	if h.now == nil {
		h.now = time.Now
	}
	h.doors = newDoorLimiter(h.now)
	h.log = opts.Logger
	if h.log == nil {
		stderr := opts.Stderr
		if stderr == nil {
			stderr = os.Stderr
		}
		h.log = newLogger(stderr, h.cfg.Log)
	}
	defer func() {
		if err != nil {
			h.close()
		}
	}()

	if h.dataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return nil, fmt.Errorf("host: data directory: %w", err)
	}
	if err := EnsurePrivateDir(h.dataDir); err != nil {
		return nil, err
	}
	if h.lock, err = lockDataDir(h.dataDir); err != nil {
		return nil, err
	}
	h.closers = append(h.closers, h.lock.release)

	if h.hostID, err = credentials.HostIdentity(h.cfg.TrustDomain); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	if err := h.newTelemetry(ctx); err != nil {
		return nil, err
	}
	if err := h.newStore(ctx); err != nil {
		return nil, err
	}
	if err := h.newFanout(); err != nil {
		return nil, err
	}
	if err := h.newCA(ctx); err != nil {
		return nil, err
	}
	if err := h.newWorkloadAPI(); err != nil {
		return nil, err
	}
	if err := h.newFederation(ctx); err != nil {
		return nil, err
	}
	if err := h.newPeerTransports(); err != nil {
		return nil, err
	}
	if err := h.newTrustedIssuers(); err != nil {
		return nil, err
	}
	if err := h.newAudit(ctx); err != nil {
		return nil, err
	}
	if err := h.newPolicy(); err != nil {
		return nil, err
	}
	if err := h.prepareSandboxes(); err != nil {
		return nil, err
	}
	if err := h.newAgents(ctx); err != nil {
		return nil, err
	}
	h.a2aRemotes = h.newA2ARemotes()
	if err := h.newHTTP(ctx); err != nil {
		return nil, err
	}
	admin, err := localapi.ListenConfig(localapi.Config{
		Path:      filepath.Join(h.dataDir, localapi.SocketName),
		Backend:   h,
		Logger:    h.log.With("component", "localapi"),
		PeerCheck: h.checkAdminPeer,
		OnRefuse:  h.adminRefused,
	})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	h.admin = admin
	h.closers = append(h.closers, admin.Close)
	return h, nil
}

// storeOpenTimeout bounds opening a database store: connecting, and
// waiting for another host that migrates the schema.
const storeOpenTimeout = 30 * time.Second

func (h *Host) newStore(ctx context.Context) error {
	switch h.cfg.Storage.Driver {
	case config.DriverSQLite:
	case config.DriverPostgres:
		dsn, err := h.cfg.Storage.DSN()
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		octx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		defer cancel()
		st, err := pgstore.Open(octx, pgstore.Config{DSN: dsn, Now: h.now, Logger: h.log.With("component", "store")})
		if err != nil {
			return fmt.Errorf("host: %w", err)
		}
		h.store = st
		h.storePing = st.Ping
		h.closers = append(h.closers, func() { _ = st.Close() })
		return nil
	default:
		return fmt.Errorf("host: storage driver %q is not supported", h.cfg.Storage.Driver)
	}
	path := h.cfg.Storage.Path
	if path == "" {
		path = filepath.Join(h.dataDir, dbFileName)
	}
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: path, Now: h.now, Logger: h.log.With("component", "store")})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.store = st
	h.closers = append(h.closers, func() { _ = st.Close() })
	return nil
}

func (h *Host) newCA(ctx context.Context) error {
	if h.cfg.Identity.WorkloadAPI != "" {
		return h.newUpstreamIdentity(ctx)
	}
	dir := filepath.Join(h.dataDir, caDirName)
	if err := EnsurePrivateDir(dir); err != nil {
		return err
	}
	journal, err := ca.NewFileJournal(filepath.Join(dir, caJournalName))
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	authority, err := ca.New(ctx, ca.Config{
		TrustDomain: h.cfg.TrustDomain,
		Journal:     journal,
		SVIDTTL:     h.cfg.Identity.SVIDTTL,
		CATTL:       h.cfg.Identity.CATTL,
		Now:         h.now,
		Logger:      h.log.With("component", "ca"),
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.ca = authority
	h.ident = authority
	return nil
}

// newWorkloadAPI prepares the Workload API server that serves each agent
// its identity on a socket of its own. The host's own identity is held in
// process (h.ca) and served on no socket: any socket serving it would be
// reachable by the plugin processes, which run as the same user.
func (h *Host) newWorkloadAPI() error {
	dir := filepath.Join(h.dataDir, workloadDirName)
	if err := EnsurePrivateDir(dir); err != nil {
		return err
	}
	srv, err := workloadapi.New(workloadapi.Config{
		Authority: h.ident,
		Now:       h.now,
		Logger:    h.log.With("component", "workloadapi"),
		OnIssue:   h.recordIssue,
		OnRefuse:  h.workloadRefused,
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.wl = srv
	h.evidence = newEvidenceCache(h.cfg.Digest(), h.now, h.log.With("component", "attest"))
	return nil
}

func (h *Host) newHTTP(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc(PathHealth, h.handleHealth)
	mux.HandleFunc(PathReady, h.handleReady)
	mux.Handle(PathSPIFFEBundle, h.bundleHandler())
	h.mountMetrics(mux)
	var certFile, keyFile string
	if tls := h.cfg.Listen.TLS; tls != nil {
		certFile, keyFile = tls.CertFile, tls.KeyFile
	}
	srv, err := listenHTTP(string(h.cfg.Listen.Address), withRecover(h.log, mux), h.cfg.Listen.TLS != nil, certFile, keyFile,
		h.log.With("component", "http"))
	if err != nil {
		return err
	}
	switch {
	case h.cfg.Listen.TLS != nil && h.cfg.Listen.TLS.SVID:
		if srv.srv.TLSConfig, err = h.svidServerTLS(ctx); err != nil {
			_ = srv.ln.Close()
			return err
		}
	case srv.srv.TLSConfig != nil:
		srv.srv.TLSConfig = clientCertConfig(srv.srv.TLSConfig)
	}
	h.http = srv
	h.closers = append(h.closers, func() { _ = srv.ln.Close() })
	// The authorization server's issuer may depend on the bound port.
	if err := h.newAuthServer(ctx); err != nil {
		return err
	}
	h.mountAuthServer(mux)
	if err := h.mountAgentClients(mux); err != nil {
		return err
	}
	if err := h.mountConsent(mux); err != nil {
		return err
	}
	if err := h.mountConsole(mux); err != nil {
		return err
	}
	if err := h.mountTasks(mux); err != nil {
		return err
	}
	if err := h.mountMCP(mux, h.mcp, h.tools); err != nil {
		return err
	}
	if err := h.mountA2A(mux); err != nil {
		return err
	}
	if err := h.mountAuthZEN(mux); err != nil {
		return err
	}
	tasks, err := h.newSignals(mux)
	if err != nil {
		return err
	}
	h.tasks = append(h.tasks, tasks...)
	return nil
}

// Issuer is the host's public base URL and OAuth issuer: listen.issuer
// as written, or else derived from the address actually bound.
func (h *Host) Issuer() string {
	iss := h.cfg.IssuerURL()
	if h.http != nil && h.cfg.IssuerDefaulted() {
		if h.cfg.Listen.TLS != nil {
			return "https://" + h.Addr()
		}
		return "http://" + h.Addr()
	}
	return iss
}

// Addr is the address the HTTP listener is bound to.
func (h *Host) Addr() string { return h.http.Addr() }

// DataDir is the absolute path of the data directory.
func (h *Host) DataDir() string { return h.dataDir }

// CA is the trust-domain CA.
func (h *Host) CA() *ca.CA { return h.ca }

// Store is the host's store.
func (h *Host) Store() store.Store { return h.store }

// Run serves until ctx is done or a part fails, then stops every part and
// releases the data directory. It returns nil after a clean shutdown.
func (h *Host) Run(ctx context.Context) error {
	defer h.close()
	info := RunInfo{
		PID:         os.Getpid(),
		Address:     h.Addr(),
		Issuer:      h.Issuer(),
		TrustDomain: h.cfg.TrustDomain,
		Started:     h.now().UTC(),
		Version:     h.opts.Version,
	}
	if err := writeRunInfo(h.dataDir, info); err != nil {
		return err
	}
	defer removeRunInfo(h.dataDir)
	h.banner(info)
	h.log.InfoContext(ctx, "host started",
		slog.String("trust_domain", info.TrustDomain), slog.String("address", info.Address),
		slog.String("data_dir", h.dataDir))

	err := RunTasks(ctx, append([]Task{
		{Name: "identity", Run: h.ident.Run},
		{Name: "authserver", Run: h.as.Run},
		{Name: "purge", Run: h.runPurge},
		{Name: "workloadapi", Run: h.wl.Run},
		{Name: "http", Run: h.http.Run},
		{Name: "supervisor", Run: h.sup.Run},
		{Name: "localapi", Run: h.admin.Run},
	}, h.tasks...)...)
	if err != nil {
		h.log.ErrorContext(ctx, "host stopped with an error", slog.Any("error", err))
		return err
	}
	h.log.InfoContext(ctx, "host stopped")
	return nil
}

func (h *Host) banner(info RunInfo) {
	w := h.opts.Stdout
	if w == nil {
		return
	}
	fmt.Fprintf(w, "agenthost %s\n", info.Version)
	fmt.Fprintf(w, "  trust domain   %s\n", info.TrustDomain)
	fmt.Fprintf(w, "  host identity  %s\n", h.hostID)
	fmt.Fprintf(w, "  audit verifier %s\n", h.audit.vkey)
	fmt.Fprintf(w, "  listening on   %s (issuer %s)\n", info.Address, info.Issuer)
	fmt.Fprintf(w, "  health         %s%s\n", info.Issuer, PathHealth)
	fmt.Fprintf(w, "  SPIFFE bundle  %s%s\n", info.Issuer, PathSPIFFEBundle)
	md := h.as.Metadata()
	fmt.Fprintf(w, "  OAuth AS       %s%s\n", info.Issuer, authserver.PathOAuthMetadata)
	if md.AuthorizationEndpoint != "" {
		fmt.Fprintf(w, "  sign in        %s (users: %d)\n", md.AuthorizationEndpoint, len(h.cfg.Auth.Users))
	}
	if h.consoleOn() {
		fmt.Fprintf(w, "  console        %s%s\n", info.Issuer, console.Path)
	}
	if h.cfg.MetricsServed() {
		fmt.Fprintf(w, "  metrics        %s%s\n", info.Issuer, PathMetrics)
	}
	fmt.Fprintf(w, "  admin API      unix://%s\n", filepath.Join(h.dataDir, localapi.SocketName))
	for _, s := range h.mcp {
		fmt.Fprintf(w, "  MCP server     %s (scopes %s)\n", s.Resource, strings.Join(s.Scopes, " "))
	}
	if h.sandboxProt.Level != "" {
		fmt.Fprintf(w, "  sandbox        %s\n", h.sandboxProt)
		for _, m := range h.sandboxProt.Missing {
			fmt.Fprintf(w, "  sandbox lacks  %s\n", m)
		}
	}
	for _, p := range h.cfg.MCP.Plugins {
		sc, _ := h.cfg.PluginSandbox(p.Name)
		fmt.Fprintf(w, "  tool plugin    %s (%s) %s\n", p.Name, p.Path, sandboxExtras(sandboxPolicy(sc)))
	}
	for _, a := range h.cfg.Agents {
		sc, _ := h.cfg.AgentSandbox(a.Name)
		fmt.Fprintf(w, "  agent          %s (%s) %s\n", a.Name, h.agentIDs[a.Name], sandboxExtras(sandboxPolicy(sc)))
		fmt.Fprintf(w, "    over A2A     %s (card %s%s)\n", h.agentA2AURL(a.Name), h.agentA2AURL(a.Name), a2aserver.CardPath)
	}
	fmt.Fprintf(w, "  data dir       %s\n", h.dataDir)
}

// close releases everything New acquired, in reverse order. It is safe to
// call more than once.
func (h *Host) close() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
	h.closers = nil
}

func newLogger(w io.Writer, c config.LogConfig) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case config.LevelDebug:
		level = slog.LevelDebug
	case config.LevelWarn:
		level = slog.LevelWarn
	case config.LevelError:
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == config.FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
