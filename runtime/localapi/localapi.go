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
	"strconv"
	"strings"
	"time"
)

// SocketName is the admin socket's file name inside the data directory.
const SocketName = "admin.sock"

// Agent states, as [AgentInfo] reports them.
const (
	StateStarting    = "starting"
	StateRunning     = "running"
	StateBackoff     = "backoff"
	StateQuarantined = "quarantined"
	StateFailed      = "failed"
	StateStopped     = "stopped"
)

// AgentSettled reports whether an agent in state is done starting: it is
// running, or it failed to start for good, or it is quarantined. An agent
// in any other state (starting, backoff between restarts, or stopped
// before its first start or while the host stops) is one the host may
// still bring up.
func AgentSettled(state string) bool {
	switch state {
	case StateRunning, StateFailed, StateQuarantined:
		return true
	}
	return false
}

// AgentInfo describes one agent, as GET /v1/agents returns it.
type AgentInfo struct {
	Name          string     `json:"name"`
	Identity      string     `json:"identity"`
	State         string     `json:"state"` // one of the State constants
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
	// Type is thought, tool_call, partial, final, error or approval (a
	// call waits for the user's approval: Text is the binding message, URL
	// the approval page).
	Type      string `json:"type"`
	Text      string `json:"text,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Arguments string `json:"arguments,omitempty"`
	TaskID    string `json:"task_id,omitempty"`
	// Txn is the transaction the task belongs to (the txn of its
	// Transaction Token), shared by the tasks it delegates: what `agenthost
	// audit trace` takes to show them all.
	Txn string `json:"txn,omitempty"`
	// URL is an approval event's approval page.
	URL string `json:"url,omitempty"`
}

// TaskRequest is the body of POST /v1/tasks.
type TaskRequest struct {
	Agent string `json:"agent"`
	Input string `json:"input"`
	// Subject is the user the task acts for, if any, as the operator
	// names them (`agenthost run --for`): it is recorded with every
	// decision, given to policy, and a revocation of the user stops the
	// task.
	Subject string `json:"subject,omitempty"`
	// AccessToken is the signed-in user's own access token, if any (what
	// `agenthost login` stored): the host verifies it (signature, typ
	// at+jwt, issuer, audience = its task resource, expiry, revocation,
	// scope) and the task acts for the token's sub. The token stays in the
	// host: it is never recorded (the audit log keeps its SHA-256 and jti)
	// and never reaches a plugin. A request names its user by Subject or
	// by AccessToken, not both.
	AccessToken string `json:"access_token,omitempty"`
}

// Backend is what the API needs from the host.
type Backend interface {
	Agents(ctx context.Context) []AgentInfo
	// RunTask runs input on agent, calling emit for each event. An error
	// before the task starts (unknown agent, agent not running) is returned
	// with no event emitted; one wrapping ErrTokenRefused (the request's
	// AccessToken is not one the host takes) is answered with 401.
	RunTask(ctx context.Context, req TaskRequest, emit func(TaskEvent) error) error
	// Quarantine stops an agent, refuses its restart and tasks, and stops
	// serving its credentials. ErrUnknownAgent-wrapping errors mean 404.
	Quarantine(ctx context.Context, agent, reason string) error
	// Release lifts an agent's quarantine and starts it again. An agent
	// that is not quarantined is an error wrapping ErrNotQuarantined (409).
	Release(ctx context.Context, agent, reason string) error
}

// ErrUnknownAgent is returned (wrapped) by a Backend for an agent it does
// not have.
var ErrUnknownAgent = errors.New("unknown agent")

// ErrNotQuarantined is returned (wrapped) by a Backend asked to release an
// agent that is not quarantined.
var ErrNotQuarantined = errors.New("agent is not quarantined")

// Errors a [Client] returns (wrapped) when the host refuses a task.
var (
	// ErrAgentStarting: the task's agent is not running yet, and the host
	// is still starting it (503); the same task may be sent again.
	ErrAgentStarting = errors.New("localapi: agent is starting")
	// ErrAgentUnavailable: the task's agent failed to start for good or is
	// quarantined (409); it runs no task.
	ErrAgentUnavailable = errors.New("localapi: agent is unavailable")
	// ErrTaskTooLarge: the task is larger than the host accepts (413).
	ErrTaskTooLarge = errors.New("localapi: task too large")
	// ErrTokenRefused: the host does not take the task's AccessToken (401):
	// expired, revoked, for another audience or issuer, without the
	// scope, or not a user's. A Backend wraps it with the reason.
	ErrTokenRefused = errors.New("the host refused the sign-in")
)

// MaxTaskInput caps a task's input, in bytes. The input travels to the
// agent's plugin, and back in the plugin's model calls, as gRPC messages of
// at most 4 MiB, so it stays well below that.
const MaxTaskInput = 1 << 20

// maxTaskBody caps the body of a task request: an input of MaxTaskInput
// bytes fits even when JSON escapes every byte (six bytes for one), with
// room for the other fields.
const maxTaskBody = 6*MaxTaskInput + 64<<10

// AgentStateError is the answer to a task refused because of its agent's
// state, and the error a [Client] returns for it: 503 (wrapping
// [ErrAgentStarting]) while the host is still starting the agent, 409
// (wrapping [ErrAgentUnavailable]) when the agent failed for good or is
// quarantined.
type AgentStateError struct {
	// Message says what is wrong, for people.
	Message string `json:"error"`
	Agent   string `json:"agent"`
	// State is the agent's state (one of the State constants).
	State string `json:"state"`
	// LastError is why the agent last stopped or failed to start.
	LastError string `json:"last_error,omitempty"`
}

func (e *AgentStateError) Error() string { return e.Message }

// Unwrap returns ErrAgentUnavailable for an agent that is done starting,
// and ErrAgentStarting for one the host is still starting.
func (e *AgentStateError) Unwrap() error {
	if AgentSettled(e.State) {
		return ErrAgentUnavailable
	}
	return ErrAgentStarting
}

// agentStateError describes why agent a cannot take a task now.
func agentStateError(a AgentInfo) *AgentStateError {
	e := &AgentStateError{Agent: a.Name, State: a.State, LastError: a.LastError}
	why := ""
	if a.LastError != "" {
		why = ": " + a.LastError
	}
	switch a.State {
	case StateStarting:
		e.Message = fmt.Sprintf("agent %s is starting", a.Name)
	case StateBackoff:
		e.Message = fmt.Sprintf("agent %s is restarting%s", a.Name, why)
	case StateStopped:
		e.Message = fmt.Sprintf("agent %s is not started (the host is starting or stopping)", a.Name)
	case StateFailed:
		e.Message = fmt.Sprintf("agent %s failed to start and will not be restarted%s", a.Name, why)
	case StateQuarantined:
		e.Message = fmt.Sprintf("agent %s is quarantined", a.Name)
		if reason := strings.TrimPrefix(a.LastError, "quarantined: "); reason != "" {
			e.Message += ": " + reason
		}
	default:
		e.Message = fmt.Sprintf("agent %s is %s%s", a.Name, a.State, why)
	}
	return e
}

// status is the HTTP status that answers e.
func (e *AgentStateError) status() int {
	if AgentSettled(e.State) {
		return http.StatusConflict
	}
	return http.StatusServiceUnavailable
}

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
	remedy := func(done string, apply func(ctx context.Context, agent, reason string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Reason string `json:"reason"`
			}
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Reason) == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a JSON body with a non-empty reason is required"})
				return
			}
			if err := apply(r.Context(), r.PathValue("name"), req.Reason); err != nil {
				code := http.StatusInternalServerError
				switch {
				case errors.Is(err, ErrUnknownAgent):
					code = http.StatusNotFound
				case errors.Is(err, ErrNotQuarantined):
					code = http.StatusConflict
				}
				writeJSON(w, code, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": done})
		}
	}
	mux.HandleFunc("POST /v1/agents/{name}/quarantine", remedy("quarantined", b.Quarantine))
	mux.HandleFunc("POST /v1/agents/{name}/release", remedy("released", b.Release))
	registerAudit(mux, b)
	registerApprovals(mux, b)
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

// runTask serves POST /v1/tasks. A task whose agent is not running yet is
// refused with 503 and the agent's state, before anything of the task
// starts, so that the client may send it again; one whose agent failed or
// is quarantined gets 409 and the state.
func runTask(w http.ResponseWriter, r *http.Request, b Backend) {
	if r.ContentLength > maxTaskBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": bodyTooLarge()})
		return
	}
	var req TaskRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxTaskBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": bodyTooLarge()})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid task request: " + err.Error()})
		return
	}
	if req.Agent == "" || req.Input == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "agent and input are required"})
		return
	}
	if req.Subject != "" && req.AccessToken != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a task names its user by subject or by access token, not both"})
		return
	}
	if len(req.Input) > MaxTaskInput {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf(
			"the task is %s (%d bytes); a task may hold at most %s (%d bytes)", sizeText(len(req.Input)), len(req.Input), sizeText(MaxTaskInput), MaxTaskInput)})
		return
	}
	if a, ok := agentInfo(r.Context(), b, req.Agent); ok && !AgentSettled(a.State) {
		w.Header().Set("Retry-After", "1")
		e := agentStateError(a)
		writeJSON(w, e.status(), e)
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
		// An agent that failed or was quarantined meanwhile is named with
		// its state. Nothing else is retried: the task may have reached
		// the agent.
		if errors.Is(err, ErrTokenRefused) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
			return
		}
		if a, ok := agentInfo(r.Context(), b, req.Agent); ok && (a.State == StateFailed || a.State == StateQuarantined) {
			e := agentStateError(a)
			writeJSON(w, e.status(), e)
			return
		}
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		_ = emit(TaskEvent{Type: "error", Text: err.Error()})
	}
}

func bodyTooLarge() string {
	return fmt.Sprintf("the task request is larger than %s; a task may hold at most %s (%d bytes)", sizeText(maxTaskBody), sizeText(MaxTaskInput), MaxTaskInput)
}

// agentInfo finds agent among the backend's agents.
func agentInfo(ctx context.Context, b Backend, agent string) (AgentInfo, bool) {
	for _, a := range b.Agents(ctx) {
		if a.Name == agent {
			return a, true
		}
	}
	return AgentInfo{}, false
}

// sizeText writes n bytes for people: "1 MiB", "1.5 MiB", "512 KiB", "10 bytes".
func sizeText(n int) string {
	unit, div := "", 0.0
	switch {
	case n >= 1<<20:
		unit, div = "MiB", 1<<20
	case n >= 1<<10:
		unit, div = "KiB", 1<<10
	default:
		return strconv.Itoa(n) + " bytes"
	}
	return strings.TrimSuffix(strconv.FormatFloat(float64(n)/div, 'f', 1, 64), ".0") + " " + unit
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
	// retryEvery is how often RunTaskWait sends a task again while its
	// agent is starting.
	retryEvery time.Duration
}

// NewClient returns a client for the admin socket at path.
func NewClient(path string) *Client {
	return &Client{retryEvery: 200 * time.Millisecond, http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// TaskWait says how [Client.RunTaskWait] waits for an agent that the host
// is still starting.
type TaskWait struct {
	// Timeout bounds the wait; zero fails at once.
	Timeout time.Duration
	// OnWait, if set, is called once, when the wait begins, with the
	// agent's state.
	OnWait func(*AgentStateError)
}

// RunTask starts a task and calls onEvent for each event until the task
// ends. It returns the error the host reports before the task starts: an
// [*AgentStateError] when the agent is not running, an error wrapping
// [ErrTaskTooLarge] for a task larger than [MaxTaskInput].
func (c *Client) RunTask(ctx context.Context, task TaskRequest, onEvent func(TaskEvent)) error {
	return c.RunTaskWait(ctx, task, TaskWait{}, onEvent)
}

// RunTaskWait is [Client.RunTask], except that while the host answers that
// the task's agent is still starting ([ErrAgentStarting]) it sends the task
// again, for up to w.Timeout. The host gives that answer before anything of
// the task starts, so the task runs at most once. An agent that failed or
// is quarantined ([ErrAgentUnavailable]) is not waited for.
func (c *Client) RunTaskWait(ctx context.Context, task TaskRequest, w TaskWait, onEvent func(TaskEvent)) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // keeps the body close to the input's size
	if err := enc.Encode(task); err != nil {
		return fmt.Errorf("localapi: encode task: %w", err)
	}
	var deadline time.Time
	for {
		err := c.runTask(ctx, body.Bytes(), onEvent)
		var se *AgentStateError
		if w.Timeout <= 0 || !errors.As(err, &se) || !errors.Is(err, ErrAgentStarting) {
			return err
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(w.Timeout)
			if w.OnWait != nil {
				w.OnWait(se)
			}
		}
		left := deadline.Sub(now)
		if left <= 0 {
			return fmt.Errorf("localapi: agent %s did not start within %s: %w", task.Agent, w.Timeout, err)
		}
		t := time.NewTimer(min(left, c.retryEvery))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("localapi: waiting for agent %s: %w", task.Agent, ctx.Err())
		case <-t.C:
		}
	}
}

// runTask sends one task request and streams its events.
func (c *Client) runTask(ctx context.Context, body []byte, onEvent func(TaskEvent)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agenthost/v1/tasks", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
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
		return taskResponseError(resp)
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

// taskResponseError turns a refusal of POST /v1/tasks into an error.
func taskResponseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var se AgentStateError
	known := json.Unmarshal(b, &se) == nil && se.Message != ""
	switch {
	case known && se.Agent != "" && se.State != "" &&
		(resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusConflict):
		return &se
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		if !known {
			se.Message = fmt.Sprintf("localapi: %s: %s", resp.Status, bytes.TrimSpace(b))
		}
		return &remoteError{msg: se.Message, is: ErrTaskTooLarge}
	case resp.StatusCode == http.StatusUnauthorized:
		if !known {
			se.Message = fmt.Sprintf("%s: %s", ErrTokenRefused, bytes.TrimSpace(b))
		}
		return &remoteError{msg: se.Message, is: ErrTokenRefused}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return responseError(resp, nil)
}

// Quarantine quarantines an agent of the running host.
func (c *Client) Quarantine(ctx context.Context, agent, reason string) error {
	return c.remedy(ctx, agent, "quarantine", reason)
}

// Release lifts agent's quarantine, giving reason; it is audited.
func (c *Client) Release(ctx context.Context, agent, reason string) error {
	return c.remedy(ctx, agent, "release", reason)
}

func (c *Client) remedy(ctx context.Context, agent, action, reason string) error {
	body, _ := json.Marshal(map[string]string{"reason": reason})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agenthost/v1/agents/"+url.PathEscape(agent)+"/"+action, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("localapi: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusConflict:
		return fmt.Errorf("localapi: %w: %s", ErrNotQuarantined, agent)
	}
	return responseError(resp, ErrUnknownAgent)
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
