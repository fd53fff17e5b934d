package authzen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/agenthost/agenthost/runtime/policy"
)

// DefaultTimeout bounds one evaluation when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// maxResponse caps a PDP's response body.
const maxResponse = 64 << 10

// Config configures [NewClient].
type Config struct {
	// Endpoint is the full URL of the PDP's Access Evaluation endpoint,
	// e.g. "https://pdp.example/access/v1/evaluation". Required.
	Endpoint string
	// HTTPClient sends the requests; it carries the PEP's credentials
	// (for example a transport adding a bearer token). nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
	// Timeout bounds one evaluation; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Client is a [policy.Decider] that asks an external AuthZEN PDP. It fails
// closed: on any error the decision is a Deny and the error is returned.
type Client struct {
	endpoint string
	hc       *http.Client
	log      *slog.Logger
	timeout  time.Duration
}

var _ policy.Decider = (*Client)(nil)

// NewClient returns a client for cfg.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return nil, fmt.Errorf("authzen: endpoint %q must be an absolute http(s) URL", cfg.Endpoint)
	}
	c := &Client{endpoint: cfg.Endpoint, hc: cfg.HTTPClient, log: cfg.Logger, timeout: cfg.Timeout}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// Decide implements [policy.Decider]: it maps r with [FromPolicy], posts
// it and maps the answer with [DecisionFrom].
func (c *Client) Decide(ctx context.Context, r policy.Request) (policy.Decision, error) {
	d, err := c.decide(ctx, r)
	if err != nil {
		c.log.WarnContext(ctx, "external policy decision failed; denying", slog.String("endpoint", c.endpoint), slog.Any("error", err))
		return policy.Decision{Effect: policy.Deny, Reason: "external policy decision point failed"}, err
	}
	return d, nil
}

func (c *Client) decide(ctx context.Context, r policy.Request) (policy.Decision, error) {
	var zero policy.Decision
	if !policy.ValidAction(r.Action) {
		return zero, fmt.Errorf("authzen: %w: unknown action %q", policy.ErrInvalidRequest, r.Action)
	}
	body, err := json.Marshal(FromPolicy(r))
	if err != nil {
		return zero, fmt.Errorf("authzen: encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return zero, fmt.Errorf("authzen: %w", err)
	}
	reqID := newRequestID()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Request-ID", reqID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return zero, fmt.Errorf("authzen: evaluation request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return zero, fmt.Errorf("authzen: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return zero, fmt.Errorf("authzen: PDP answered %s", resp.Status)
	}
	if len(data) > maxResponse {
		return zero, fmt.Errorf("authzen: response larger than %d bytes", maxResponse)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return zero, fmt.Errorf("authzen: response content type %q is not application/json", resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("X-Request-ID"); got != "" && got != reqID {
		return zero, errors.New("authzen: response X-Request-ID does not match the request")
	}
	var out struct {
		Decision *bool          `json:"decision"`
		Context  map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return zero, fmt.Errorf("authzen: decode response: %w", err)
	}
	if out.Decision == nil {
		return zero, errors.New("authzen: response has no decision")
	}
	return DecisionFrom(EvaluationResponse{Decision: *out.Decision, Context: out.Context}), nil
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
