package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// SocketName is the admin socket's file name inside the data directory.
const SocketName = "admin.sock"

// AgentInfo describes one agent, as GET /v1/agents returns it.
type AgentInfo struct {
	Name          string     `json:"name"`
	Identity      string     `json:"identity"`
	State         string     `json:"state"`
	PID           int        `json:"pid,omitempty"`
	Restarts      int        `json:"restarts"`
	LastError     string     `json:"last_error,omitempty"`
	Since         time.Time  `json:"since"`
	SVIDExpiresAt *time.Time `json:"svid_expires_at,omitempty"`
	// Sandbox says which protections contain the running plugin process,
	// and SandboxMissing which ones this host cannot give, with why.
	Sandbox        string   `json:"sandbox,omitempty"`
	SandboxMissing []string `json:"sandbox_missing,omitempty"`
	// From the plugin's Describe.
	Description string   `json:"description,omitempty"`
	Version     string   `json:"version,omitempty"`
	Skills      []string `json:"skills,omitempty"`
}

// TaskEvent is one event of a running task, as POST /v1/tasks streams them
// (one JSON object per line).
type TaskEvent struct {
	// Type is thought, tool_call, partial, final or error.
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	TaskID    string `json:"task_id,omitempty"`
}

// TaskRequest is the body of POST /v1/tasks.
type TaskRequest struct {
	Agent string `json:"agent"`
	Input string `json:"input"`
	// Subject is the user the task acts for, if any: it is recorded with
	// every decision, given to policy, and a revocation of the user stops
	// the task.
	Subject string `json:"subject,omitempty"`
}

// Backend is what the API needs from the host.
type Backend interface {
	Agents(ctx context.Context) []AgentInfo
	// RunTask runs input on agent, calling emit for each event. An error
	// before the task starts (unknown agent, agent not running) is returned
	// with no event emitted.
	RunTask(ctx context.Context, req TaskRequest, emit func(TaskEvent) error) error
	// Quarantine stops an agent, refuses its restart and tasks, and stops
	// serving its credentials. ErrUnknownAgent-wrapping errors mean 404.
	Quarantine(ctx context.Context, agent, reason string) error
}

// ErrUnknownAgent is returned (wrapped) by a Backend for an agent it does
// not have.
var ErrUnknownAgent = errors.New("unknown agent")

// maxTaskBody caps the size of a task request.
const maxTaskBody = 1 << 20

// Config configures [ListenConfig].
type Config struct {
	// Path is where the admin socket is created. Required.
	Path string
	// Backend is the host the API serves. Required.
	Backend Backend
	// Logger receives the server's logs; nil means silent.
	Logger *slog.Logger
	// PeerCheck, if set, is called with the credentials of each connecting
	// process that runs as the host's effective uid; an error refuses the
	// connection, and its text is the reason given. The host refuses its
	// plugin processes and their descendants here.
	PeerCheck func(Peer) error
	// OnRefuse, if set, is called once for each refused connection, on
	// the connection's goroutine when its first request arrives; it may
	// be called concurrently, and a slow hook delays only the refused
	// caller.
	OnRefuse func(context.Context, RefuseEvent)
}

// Server serves the admin API.
type Server struct {
	path     string
	ln       net.Listener
	srv      *http.Server
	log      *slog.Logger
	policy   peerPolicy
	onRefuse func(context.Context, RefuseEvent)
}

// Listen is [ListenConfig] with only Path, Backend and Logger set: the
// socket admits every process of the host's effective uid that is visible
// in the host's pid namespace, with no further check.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	return ListenConfig(Config{Path: path, Backend: b, Logger: log})
}

// ListenConfig creates the admin socket at cfg.Path (replacing a stale
// socket, never another kind of file) with mode 0600.
//
// Every connection's peer is read with SO_PEERCRED when it is accepted and
// judged on its first request: it is admitted only if it runs as this
// process's effective uid, is visible in this pid namespace (pid not 0),
// and cfg.PeerCheck accepts it. Every request on a refused connection gets
// 403 with {"error": reason}, and cfg.OnRefuse is told once. Peer
// credentials are read on Linux only; elsewhere every connection is
// refused.
func ListenConfig(cfg Config) (*Server, error) {
	path, b, log := cfg.Path, cfg.Backend, cfg.Logger
	if path == "" {
		return nil, errors.New("localapi: config has no socket path")
	}
	if b == nil {
		return nil, errors.New("localapi: config has no backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("localapi: %s exists and is not a socket; refusing to replace it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("localapi: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("localapi: listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("localapi: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Agents(r.Context()))
	})
	mux.HandleFunc("POST /v1/tasks", func(w http.ResponseWriter, r *http.Request) { runTask(w, r, b) })
	mux.HandleFunc("POST /v1/agents/{name}/quarantine", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Reason string `json:"reason"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Reason) == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a JSON body with a non-empty reason is required"})
			return
		}
		if err := b.Quarantine(r.Context(), r.PathValue("name"), req.Reason); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, ErrUnknownAgent) {
				code = http.StatusNotFound
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "quarantined"})
	})
	registerAudit(mux, b)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such admin endpoint: " + r.Method + " " + r.URL.Path})
	})
	s := &Server{path: path, ln: ln, log: log, onRefuse: cfg.OnRefuse,
		policy: peerPolicy{uid: os.Geteuid(), check: cfg.PeerCheck}}
	s.srv = &http.Server{
		Handler:           s.guard(mux),
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

func runTask(w http.ResponseWriter, r *http.Request, b Backend) {
	var req TaskRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxTaskBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid task request: " + err.Error()})
		return
	}
	if req.Agent == "" || req.Input == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "agent and input are required"})
		return
	}
	started := false
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	emit := func(ev TaskEvent) error {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(ev); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	err := b.RunTask(r.Context(), req, emit)
	switch {
	case err == nil:
	case !started:
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		_ = emit(TaskEvent{Type: "error", Text: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Run serves until ctx is done, then closes the socket and removes it.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	defer os.Remove(s.path)
	select {
	case err := <-errc:
		return fmt.Errorf("localapi: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("localapi: %w", err)
	}
	return nil
}

// Close stops listening without serving (for a host that failed to start).
func (s *Server) Close() {
	_ = s.ln.Close()
	_ = os.Remove(s.path)
}

// Client calls a running host's admin API.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the admin socket at path.
func NewClient(path string) *Client {
	return &Client{http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// RunTask starts a task and calls onEvent for each event until the task
// ends. It returns the error the host reports before the task starts.
func (c *Client) RunTask(ctx context.Context, task TaskRequest, onEvent func(TaskEvent)) error {
	body, _ := json.Marshal(task)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agenthost/v1/tasks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// A task may run long: no client timeout, only ctx.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, nil)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev TaskEvent
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("localapi: task stream: %w", err)
		}
		onEvent(ev)
	}
}

// Quarantine quarantines an agent of the running host.
func (c *Client) Quarantine(ctx context.Context, agent, reason string) error {
	body, _ := json.Marshal(map[string]string{"reason": reason})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agenthost/v1/agents/"+url.PathEscape(agent)+"/quarantine", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, ErrUnknownAgent)
	}
	return nil
}

// Agents lists the host's agents.
func (c *Client) Agents(ctx context.Context) ([]AgentInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agenthost/v1/agents", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp, nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("localapi: %w", err)
	}
	var out []AgentInfo
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("localapi: decode agents: %w", err)
	}
	return out, nil
}
