package authzen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/agenthost/agenthost/runtime/policy"
)

// Paths of the APIs, relative to the PDP identifier's path.
const (
	EvaluationPath  = "/access/v1/evaluation"
	EvaluationsPath = "/access/v1/evaluations"
	MetadataPath    = "/.well-known/authzen-configuration"
)

// Defaults of [ServerConfig].
const (
	DefaultMaxBody        = 64 << 10
	DefaultMaxEvaluations = 256
)

// ErrUnauthenticated is returned (wrapped or not) by an Authorize hook when
// the caller is not authenticated: the server answers 401. Any other
// Authorize error is a 403.
var ErrUnauthenticated = errors.New("authzen: unauthenticated")

// ServerConfig configures [NewServer].
type ServerConfig struct {
	// Decider decides each evaluation. Required.
	Decider policy.Decider
	// Identifier is the PDP identifier, an https URL without query or
	// fragment, e.g. "https://host.example/pdp". Its path prefixes the
	// evaluation endpoints and is appended to the metadata path. When
	// empty, the endpoints are served at the root and the metadata
	// document is not served (it must name the identifier).
	Identifier string
	// Authorize vets every evaluation request; nil allows all. The
	// metadata document is public.
	Authorize func(r *http.Request) error
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
	// MaxBody caps a request body; 0 means DefaultMaxBody.
	MaxBody int64
	// MaxEvaluations caps the items of a batch; 0 means
	// DefaultMaxEvaluations.
	MaxEvaluations int
}

// Server is an http.Handler serving the Access Evaluation and Access
// Evaluations APIs and the PDP metadata document.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	base     string // path of the identifier, no trailing slash
	metadata []byte // nil when not served
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a server for cfg.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Decider == nil {
		return nil, errors.New("authzen: a decider is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxEvaluations <= 0 {
		cfg.MaxEvaluations = DefaultMaxEvaluations
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Identifier != "" {
		u, err := url.Parse(cfg.Identifier)
		if err != nil {
			return nil, fmt.Errorf("authzen: identifier: %w", err)
		}
		if u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("authzen: identifier %q must be an https URL without user, query or fragment", cfg.Identifier)
		}
		id := strings.TrimSuffix(cfg.Identifier, "/")
		s.base = strings.TrimSuffix(u.Path, "/")
		md, err := json.Marshal(Metadata{
			PolicyDecisionPoint:       id,
			AccessEvaluationEndpoint:  id + EvaluationPath,
			AccessEvaluationsEndpoint: id + EvaluationsPath,
		})
		if err != nil {
			return nil, fmt.Errorf("authzen: metadata: %w", err)
		}
		s.metadata = md
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-ID"); id != "" {
		w.Header().Set("X-Request-ID", id)
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "authzen handler panicked", slog.Any("panic", v))
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	switch r.URL.Path {
	case MetadataPath + s.base:
		if s.metadata == nil {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(s.metadata)
		}
	case s.base + EvaluationPath:
		s.serveAPI(w, r, s.evaluation)
	case s.base + EvaluationsPath:
		s.serveAPI(w, r, s.evaluations)
	default:
		writeError(w, http.StatusNotFound, "not found")
	}
}

// httpError is an error answered with its status and message.
type httpError struct {
	status int
	msg    string
}

// Error implements error.
func (e *httpError) Error() string { return e.msg }

// serveAPI runs the checks common to the evaluation APIs and writes what
// handle returns.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, handle func(ctx context.Context, body []byte) (any, error)) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(r); err != nil {
			if errors.Is(err, ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", "Bearer")
				writeError(w, http.StatusUnauthorized, "unauthenticated")
			} else {
				writeError(w, http.StatusForbidden, "forbidden")
			}
			return
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBody))
		} else {
			writeError(w, http.StatusBadRequest, "cannot read body")
		}
		return
	}
	resp, err := handle(r.Context(), body)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			writeError(w, he.status, he.msg)
			return
		}
		s.log.ErrorContext(r.Context(), "authzen evaluation failed", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) evaluation(ctx context.Context, body []byte) (any, error) {
	var req EvaluationRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	return s.single(ctx, req)
}

// single answers one evaluation; a request the mapping or the decider
// rejects as invalid is a 400.
func (s *Server) single(ctx context.Context, req EvaluationRequest) (any, error) {
	resp, status, msg := s.decide(ctx, req)
	if status == http.StatusBadRequest {
		return nil, &httpError{status: status, msg: msg}
	}
	return resp, nil
}

func (s *Server) evaluations(ctx context.Context, body []byte) (any, error) {
	var req EvaluationsRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	semantic := SemanticExecuteAll
	if req.Options != nil && req.Options.EvaluationsSemantic != "" {
		semantic = req.Options.EvaluationsSemantic
	}
	switch semantic {
	case SemanticExecuteAll, SemanticDenyOnFirstDeny, SemanticPermitOnFirstPermit:
	default:
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("unknown evaluations_semantic %q", semantic)}
	}
	defaults := EvaluationRequest{Subject: req.Subject, Action: req.Action, Resource: req.Resource, Context: req.Context}
	if len(req.Evaluations) == 0 {
		return s.single(ctx, defaults)
	}
	if len(req.Evaluations) > s.cfg.MaxEvaluations {
		return nil, &httpError{http.StatusBadRequest, fmt.Sprintf("more than %d evaluations", s.cfg.MaxEvaluations)}
	}
	out := EvaluationsResponse{Evaluations: make([]EvaluationResponse, 0, len(req.Evaluations))}
	for _, item := range req.Evaluations {
		if item.Subject == nil {
			item.Subject = defaults.Subject
		}
		if item.Action == nil {
			item.Action = defaults.Action
		}
		if item.Resource == nil {
			item.Resource = defaults.Resource
		}
		if item.Context == nil {
			item.Context = defaults.Context
		}
		resp, _, _ := s.decide(ctx, item)
		out.Evaluations = append(out.Evaluations, resp)
		if (semantic == SemanticDenyOnFirstDeny && !resp.Decision) ||
			(semantic == SemanticPermitOnFirstPermit && resp.Decision) {
			break
		}
	}
	return out, nil
}

// decide maps and decides one evaluation. A failure is a false decision
// whose context carries error {status, message}; status and msg repeat it.
func (s *Server) decide(ctx context.Context, req EvaluationRequest) (EvaluationResponse, int, string) {
	fail := func(status int, msg string) (EvaluationResponse, int, string) {
		return EvaluationResponse{Decision: false, Context: map[string]any{
			ContextError: map[string]any{"status": status, "message": msg},
		}}, status, msg
	}
	pr, err := ToPolicy(req)
	if err != nil {
		return fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadRequest.Error()+": "))
	}
	d, err := s.cfg.Decider.Decide(ctx, pr)
	if err != nil {
		if errors.Is(err, policy.ErrInvalidRequest) {
			return fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), policy.ErrInvalidRequest.Error()+": "))
		}
		s.log.ErrorContext(ctx, "policy evaluation failed", slog.Any("error", err))
		resp, _, _ := fail(http.StatusInternalServerError, "policy evaluation failed")
		return resp, http.StatusOK, ""
	}
	return ResponseFor(d), http.StatusOK, ""
}

// decodeStrict decodes one JSON value, refusing unknown fields (outside
// the free-form properties and context) and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &httpError{http.StatusBadRequest, "malformed request: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &httpError{http.StatusBadRequest, "malformed request: trailing data"}
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s has the wrong type", typ.Field)
		}
		return "wrong JSON type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "invalid JSON"
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}
