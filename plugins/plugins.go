package plugins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginpb "github.com/agenthost/agenthost/plugins/proto"
	"github.com/agenthost/agenthost/plugins/sandbox"
)

// Handshake is the go-plugin handshake agent plugins must answer; the SDK
// uses the same values.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginpb.ProtocolVersion,
	MagicCookieKey:   pluginpb.MagicCookieKey,
	MagicCookieValue: pluginpb.MagicCookieValue,
}

// DefaultStartTimeout bounds how long a plugin may take to complete the
// handshake.
const DefaultStartTimeout = 30 * time.Second

// Sentinel errors.
var (
	// ErrChecksum: the binary's SHA-256 differs from the attested digest.
	ErrChecksum = errors.New("plugins: binary checksum does not match")
	// ErrConfig: the launch configuration is unusable.
	ErrConfig = errors.New("plugins: invalid configuration")
)

// Config configures [Launch].
type Config struct {
	// Name names the plugin in logs and errors. Required.
	Name string
	// Path is the absolute path of the plugin binary. Required; no PATH
	// lookup is done.
	Path string
	// SHA256 is the hex SHA-256 the binary must have. Required.
	SHA256 string
	// Host serves this plugin's calls to the host. Required. It is served
	// on this plugin's broker only, so every call it receives comes from
	// this plugin.
	Host pluginpb.HostServer
	// Env is the plugin's whole environment (e.g. SPIFFE_ENDPOINT_SOCKET);
	// the host's own environment is not passed on, so no credential in it
	// reaches the plugin.
	Env []string
	// Args are extra command-line arguments.
	Args []string
	// Sandbox is how the plugin process is contained; the zero value is
	// sandbox.LevelStrict with the default limits.
	Sandbox sandbox.Policy
	// Sockets are unix sockets of the host the plugin may connect to
	// besides its go-plugin channel (its Workload API socket), and where a
	// contained plugin finds each (Env must name that path).
	Sockets []sandbox.Bind
	// Owner tags the plugin's sandbox so that sandbox.Sweep can end it if
	// the host crashes (the host uses a digest of its data directory).
	Owner string
	// StartTimeout bounds the handshake; zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// Logger receives the plugin's stderr and go-plugin's own log; nil is
	// silent.
	Logger *slog.Logger
	// TxnKeys, for a tool plugin, returns what the plugin checks the
	// Transaction Tokens of its calls with (see [TxnKeys]); it is asked at
	// every call, and a change is sent to the plugin before the call. Nil,
	// or a zero TxnKeys, sends none: the plugin then refuses every call.
	TxnKeys func() TxnKeys
}

// Plugin is a launched agent plugin.
type Plugin struct {
	name   string
	client *plugin.Client
	proc   *sandbox.Process
	// connected says the plugin took the Host service for its whole life
	// (see Describe); stopHost ends that service.
	mu        sync.Mutex
	stopHost  func()
	connected atomic.Bool
	agent     pluginpb.AgentClient
	broker    *plugin.GRPCBroker
	host      pluginpb.HostServer
}

// Launch starts the plugin and completes the handshake; ctx bounds the
// start only (the process then lives until [Plugin.Kill]). On any error the
// process is killed before Launch returns.
func Launch(ctx context.Context, cfg Config) (*Plugin, error) {
	if cfg.Host == nil {
		return nil, fmt.Errorf("%w: name and host service are required", ErrConfig)
	}
	bp := &hostPlugin{host: cfg.Host}
	st, err := start(ctx, cfg, pluginpb.PluginName, bp)
	if err != nil {
		return nil, err
	}
	d := st.raw.(*dispensed)
	return &Plugin{name: cfg.Name, client: st.client, proc: st.proc, agent: d.agent, broker: d.broker, host: cfg.Host}, nil
}

// started is a plugin process after the handshake.
type started struct {
	client *plugin.Client
	proc   *sandbox.Process
	raw    any // what go-plugin dispensed
}

// start checks the binary cfg names, starts it in its sandbox, completes
// the handshake and dispenses kind. cfg.Host is not used.
func start(ctx context.Context, cfg Config, kind string, bp plugin.Plugin) (*started, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: name and host service are required", ErrConfig)
	}
	if !filepath.IsAbs(cfg.Path) {
		return nil, fmt.Errorf("%w: plugin %s: path %q is not absolute", ErrConfig, cfg.Name, cfg.Path)
	}
	sum, err := hex.DecodeString(cfg.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: plugin %s: SHA256 must be 64 hex digits", ErrConfig, cfg.Name)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("plugin", cfg.Name)
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	// The file is hashed through the descriptor the plugin is then
	// started from, so what runs is what was checked.
	bin, err := openChecked(cfg.Path, sum)
	if err != nil {
		return nil, fmt.Errorf("plugins: %s: %w", cfg.Name, err)
	}
	defer bin.Close()

	// The process lives until Kill, not until ctx ends.
	var run atomic.Pointer[sandboxRunner]
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          plugin.PluginSet{kind: bp},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     timeout,
		Logger:           newHCLogger(log),
		Stderr:           &lineLogger{log: log, fromPlugin: true},
		SkipHostEnv:      true,
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, socketDir string) (runner.Runner, error) {
			r := newSandboxRunner(cfg, cmd, socketDir, bin)
			run.Store(r)
			return r, nil
		},
	})
	type result struct {
		rpc plugin.ClientProtocol
		err error
	}
	ch := make(chan result, 1)
	go func() {
		rpc, err := client.Client()
		ch <- result{rpc, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-ctx.Done():
		// go-plugin holds its client's lock for the whole handshake, so
		// its Kill would wait for the handshake to time out: end the
		// process first, which ends the handshake at once.
		for ended := false; !ended; {
			if r := run.Load(); r != nil {
				r.abort()
			}
			select {
			case <-ch:
				ended = true
			case <-time.After(50 * time.Millisecond): // the process may not exist yet
			}
		}
		client.Kill()
		return nil, fmt.Errorf("plugins: start %s: %w", cfg.Name, ctx.Err())
	}
	if res.err != nil {
		client.Kill()
		if r := run.Load(); r != nil && r.err() != nil {
			return nil, fmt.Errorf("plugins: start %s: %w", cfg.Name, r.err())
		}
		return nil, fmt.Errorf("plugins: start %s: %w", cfg.Name, res.err)
	}
	raw, err := res.rpc.Dispense(kind)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: dispense %s as %s plugin: %w", cfg.Name, kind, err)
	}
	return &started{client: client, proc: run.Load().process(), raw: raw}, nil
}

// openChecked opens the binary at path and checks that its content has
// the SHA-256 sum.
func openChecked(path string, sum []byte) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	if !bytes.Equal(h.Sum(nil), sum) {
		f.Close()
		return nil, fmt.Errorf("%w (%s)", ErrChecksum, path)
	}
	return f, nil
}

// Name is the plugin's name.
func (p *Plugin) Name() string { return p.name }

// PID is the id of the process the host started for the plugin: its
// sandbox's init, whose only child is the plugin (or the plugin itself
// when it is not contained). It is 0 once the process has exited.
func (p *Plugin) PID() int { return livePID(p.proc) }

// Sandbox says which protections contain the plugin process.
func (p *Plugin) Sandbox() sandbox.Protections { return p.proc.Protections() }

func livePID(proc *sandbox.Process) int {
	if proc == nil {
		return 0
	}
	select {
	case <-proc.Done():
		return 0
	default:
		return proc.PID()
	}
}

// Exited reports whether the plugin process has exited.
func (p *Plugin) Exited() bool { return p.client.Exited() }

// Kill ends the plugin process (gracefully first, then by force), then
// the Host service it took at Describe. The process goes first: a
// Describe still waiting for the plugin holds p.mu until its call fails.
func (p *Plugin) Kill() {
	p.client.Kill()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopHost != nil {
		p.stopHost()
	}
}

// Describe asks the plugin what it is. The first Describe offers the
// plugin the Host service for its whole life; a plugin that takes it
// (every plugin built with this SDK) then needs no connection per task.
func (p *Plugin) Describe(ctx context.Context) (*pluginpb.DescribeResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req := &pluginpb.DescribeRequest{ProtocolVersion: pluginpb.ProtocolVersion}
	var stop func()
	if !p.connected.Load() {
		// Offered now, as go-plugin forgets an offered id the plugin has
		// not dialled within 5 seconds.
		req.HostBrokerId = p.broker.NextId()
		stop = p.serveHost(req.HostBrokerId)
	}
	d, err := p.agent.Describe(ctx, req)
	switch {
	case stop == nil:
	case err == nil && d.GetHostConnected():
		p.stopHost = stop
		p.connected.Store(true)
	default:
		stop() // not taken: tasks get the service one by one
	}
	if err != nil {
		return nil, fmt.Errorf("plugins: %s: describe: %w", p.name, err)
	}
	return d, nil
}

// Run runs a task and calls onEvent for every event the plugin streams, in
// order, until the plugin sends its final result or error or the stream
// ends. The returned error is a transport or onEvent error; a task the
// agent failed ends with a RunError event and a nil error.
func (p *Plugin) Run(ctx context.Context, taskID, input string, metadata map[string]string, onEvent func(*pluginpb.RunEvent) error) error {
	// A plugin that took the Host service at Describe uses that one
	// connection. Otherwise the task gets the service on a broker id of
	// its own, offered just before it starts (go-plugin forgets an offered
	// id the plugin has not dialled within 5 seconds), and stopped when
	// the task ends.
	var id uint32
	if !p.connected.Load() {
		id = p.broker.NextId()
		stop := p.serveHost(id)
		defer stop()
	}
	stream, err := p.agent.Run(ctx, &pluginpb.RunRequest{TaskId: taskID, Input: input, Metadata: metadata, HostBrokerId: id})
	if err != nil {
		return fmt.Errorf("plugins: %s: run: %w", p.name, err)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("plugins: %s: run: %w", p.name, err)
		}
		if err := onEvent(ev); err != nil {
			return err
		}
	}
}

// hostPlugin is the host half of the go-plugin binding.
type hostPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	host pluginpb.HostServer
}

type dispensed struct {
	agent  pluginpb.AgentClient
	broker *plugin.GRPCBroker
}

func (p *hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("plugins: the host does not serve the agent service")
}

// GRPCClient returns the Agent client and the plugin's own broker, on
// which [Plugin.Run] serves the Host service.
func (p *hostPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &dispensed{agent: pluginpb.NewAgentClient(conn), broker: broker}, nil
}

// serveHost serves the Host service on broker id until the returned
// function is called.
func (p *Plugin) serveHost(id uint32) (stop func()) {
	var mu sync.Mutex
	var srv *grpc.Server
	stopped := false
	go p.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(hostErrors))...)
		pluginpb.RegisterHostServer(s, p.host)
		mu.Lock()
		defer mu.Unlock()
		srv = s
		if stopped {
			s.Stop() // Serve then returns at once
		}
		return s
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if srv != nil {
			srv.Stop()
		}
	}
}

// lineLogger writes each complete line written to it to the host log. A
// line in hclog's JSON format (what go-plugin and the SDK write) keeps its
// level and fields: go-plugin's chatter is debug, not info. A plugin's
// stderr (fromPlugin) reaches the host twice, raw here and parsed by
// go-plugin through the hclog logger of newHCLogger, which keeps warnings
// and errors; so here such lines are left to that path.
type lineLogger struct {
	log        *slog.Logger
	fromPlugin bool
	mu         sync.Mutex
	part       []byte
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, b...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimRight(string(l.part[:i]), "\r"); line != "" {
			l.logLine(line)
		}
		l.part = l.part[i+1:]
	}
	if len(l.part) > 64<<10 { // a runaway line without newline
		l.log.Info("plugin output", slog.String("line", string(l.part)))
		l.part = l.part[:0]
	}
	return len(b), nil
}

func (l *lineLogger) logLine(line string) {
	var entry map[string]any
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &entry) != nil {
		l.log.Info("plugin output", slog.String("line", line))
		return
	}
	levelName, _ := entry["@level"].(string)
	msg, _ := entry["@message"].(string)
	if levelName == "" || msg == "" {
		l.log.Info("plugin output", slog.String("line", line))
		return
	}
	var level slog.Level
	switch levelName {
	case "trace", "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	if l.fromPlugin && level >= slog.LevelWarn {
		return
	}
	attrs := make([]slog.Attr, 0, len(entry))
	keys := make([]string, 0, len(entry))
	for k := range entry {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, entry[k]))
	}
	l.log.LogAttrs(context.Background(), level, "go-plugin: "+msg, attrs...)
}

// newHCLogger adapts slog for go-plugin, which logs through hclog, in JSON
// so that lineLogger keeps each entry's level.
func newHCLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        "go-plugin",
		Level:       hclog.Warn,
		Output:      &lineLogger{log: log},
		JSONFormat:  true,
		DisableTime: true,
	})
}

// hostErrors maps the errors a Host implementation returns to gRPC status
// codes. A status error passes through; an unknown error becomes a bare
// Internal so that no internal detail reaches the plugin.
func hostErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err == nil {
		return resp, nil
	}
	if _, ok := status.FromError(err); ok {
		return nil, err
	}
	for _, m := range []struct {
		target error
		code   codes.Code
	}{
		{pluginpb.ErrPermissionDenied, codes.PermissionDenied},
		{pluginpb.ErrNotFound, codes.NotFound},
		{pluginpb.ErrInvalidArgument, codes.InvalidArgument},
		{pluginpb.ErrUnavailable, codes.Unavailable},
		{pluginpb.ErrUnimplemented, codes.Unimplemented},
	} {
		if errors.Is(err, m.target) {
			return nil, status.Error(m.code, err.Error())
		}
	}
	return nil, status.Error(codes.Internal, "internal error")
}
