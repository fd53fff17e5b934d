package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// DefaultManagementTimeout bounds one stream management request.
const DefaultManagementTimeout = 10 * time.Second

// maxManagementResponse caps a stream management response body.
const maxManagementResponse = 1 << 20

// StreamClientConfig configures a [StreamClient].
type StreamClientConfig struct {
	// Issuer is the transmitter's issuer. Required.
	Issuer string
	// Fetcher fetches the transmitter metadata. Required.
	Fetcher *fetch.Fetcher
	// Client sends the management requests; nil means http.DefaultClient.
	Client *http.Client
	// Token returns the bearer token for the management endpoints.
	// Required.
	Token func(ctx context.Context) (string, error)
	// Timeout bounds one request; zero means DefaultManagementTimeout.
	Timeout time.Duration
	// AllowHTTP permits http management endpoints (tests, loopback).
	AllowHTTP bool
}

// StreamClient manages the receiver's streams at one SSF transmitter
// (SSF 1.0 §8). It is safe for concurrent use.
type StreamClient struct {
	cfg StreamClientConfig

	mu sync.Mutex
	md *TransmitterMetadata
}

// NewStreamClient returns a StreamClient for cfg. The metadata is fetched
// on first use.
func NewStreamClient(cfg StreamClientConfig) (*StreamClient, error) {
	if cfg.Issuer == "" || cfg.Fetcher == nil || cfg.Token == nil {
		return nil, fmt.Errorf("%w: stream client needs issuer, fetcher and token", ErrInvalidConfig)
	}
	if cfg.Client == nil {
		cfg.Client = http.DefaultClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultManagementTimeout
	}
	return &StreamClient{cfg: cfg}, nil
}

// Metadata returns the transmitter metadata, fetching and checking it
// (issuer must match exactly) on first use.
func (c *StreamClient) Metadata(ctx context.Context) (*TransmitterMetadata, error) {
	c.mu.Lock()
	md := c.md
	c.mu.Unlock()
	if md != nil {
		return md, nil
	}
	md, err := DiscoverTransmitter(ctx, c.cfg.Fetcher, c.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.md = md
	c.mu.Unlock()
	return md, nil
}

func (c *StreamClient) endpoint(ctx context.Context, pick func(*TransmitterMetadata) string, name string) (string, error) {
	md, err := c.Metadata(ctx)
	if err != nil {
		return "", err
	}
	ep := pick(md)
	if ep == "" {
		return "", fmt.Errorf("%w: transmitter has no %s", ErrInvalidConfig, name)
	}
	if err := checkEndpoint(ep, c.cfg.AllowHTTP); err != nil {
		return "", err
	}
	return ep, nil
}

func configEndpoint(md *TransmitterMetadata) string { return md.ConfigurationEndpoint }

// CreateStream creates a stream with the receiver-supplied fields of sc
// (events_requested, delivery, description; aud when the transmitter lets
// receivers choose it). A nil delivery asks for poll delivery.
func (c *StreamClient) CreateStream(ctx context.Context, sc StreamConfig) (*StreamConfig, error) {
	ep, err := c.endpoint(ctx, configEndpoint, "configuration_endpoint")
	if err != nil {
		return nil, err
	}
	var out StreamConfig
	if err := c.do(ctx, http.MethodPost, ep, sc, &out, http.StatusCreated, http.StatusOK); err != nil {
		return nil, fmt.Errorf("signals: create stream: %w", err)
	}
	return c.checkIss(&out)
}

// Stream reads the stream with the given id.
func (c *StreamClient) Stream(ctx context.Context, id string) (*StreamConfig, error) {
	ep, err := c.endpoint(ctx, configEndpoint, "configuration_endpoint")
	if err != nil {
		return nil, err
	}
	var out StreamConfig
	if err := c.do(ctx, http.MethodGet, withQuery(ep, "stream_id", id), nil, &out, http.StatusOK); err != nil {
		return nil, fmt.Errorf("signals: read stream: %w", err)
	}
	return c.checkIss(&out)
}

// Streams lists the receiver's streams.
func (c *StreamClient) Streams(ctx context.Context) ([]StreamConfig, error) {
	ep, err := c.endpoint(ctx, configEndpoint, "configuration_endpoint")
	if err != nil {
		return nil, err
	}
	var out []StreamConfig
	if err := c.do(ctx, http.MethodGet, ep, nil, &out, http.StatusOK); err != nil {
		return nil, fmt.Errorf("signals: list streams: %w", err)
	}
	for i := range out {
		if _, err := c.checkIss(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UpdateStream changes the receiver-supplied fields set in sc (PATCH);
// sc.StreamID names the stream.
func (c *StreamClient) UpdateStream(ctx context.Context, sc StreamConfig) (*StreamConfig, error) {
	return c.update(ctx, http.MethodPatch, sc)
}

// ReplaceStream replaces the receiver-supplied fields with those of sc
// (PUT); sc.StreamID names the stream.
func (c *StreamClient) ReplaceStream(ctx context.Context, sc StreamConfig) (*StreamConfig, error) {
	return c.update(ctx, http.MethodPut, sc)
}

func (c *StreamClient) update(ctx context.Context, method string, sc StreamConfig) (*StreamConfig, error) {
	ep, err := c.endpoint(ctx, configEndpoint, "configuration_endpoint")
	if err != nil {
		return nil, err
	}
	var out StreamConfig
	if err := c.do(ctx, method, ep, sc, &out, http.StatusOK, http.StatusAccepted); err != nil {
		return nil, fmt.Errorf("signals: update stream: %w", err)
	}
	if out.StreamID == "" { // 202: accepted, not yet processed
		out = sc
		return &out, nil
	}
	return c.checkIss(&out)
}

// DeleteStream deletes the stream with the given id.
func (c *StreamClient) DeleteStream(ctx context.Context, id string) error {
	ep, err := c.endpoint(ctx, configEndpoint, "configuration_endpoint")
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, withQuery(ep, "stream_id", id), nil, nil, http.StatusNoContent, http.StatusOK); err != nil {
		return fmt.Errorf("signals: delete stream: %w", err)
	}
	return nil
}

// Status reads a stream's status.
func (c *StreamClient) Status(ctx context.Context, id string) (*StreamStatus, error) {
	ep, err := c.endpoint(ctx, func(md *TransmitterMetadata) string { return md.StatusEndpoint }, "status_endpoint")
	if err != nil {
		return nil, err
	}
	var out StreamStatus
	if err := c.do(ctx, http.MethodGet, withQuery(ep, "stream_id", id), nil, &out, http.StatusOK); err != nil {
		return nil, fmt.Errorf("signals: stream status: %w", err)
	}
	return &out, nil
}

// SetStatus asks for a stream status change (enabled, paused, disabled).
func (c *StreamClient) SetStatus(ctx context.Context, st StreamStatus) (*StreamStatus, error) {
	ep, err := c.endpoint(ctx, func(md *TransmitterMetadata) string { return md.StatusEndpoint }, "status_endpoint")
	if err != nil {
		return nil, err
	}
	var out StreamStatus
	if err := c.do(ctx, http.MethodPost, ep, st, &out, http.StatusOK, http.StatusAccepted); err != nil {
		return nil, fmt.Errorf("signals: update stream status: %w", err)
	}
	if out.StreamID == "" {
		out = st
	}
	return &out, nil
}

// AddSubject adds a subject to a stream; verified, when not nil, says
// whether the receiver has verified the subject.
func (c *StreamClient) AddSubject(ctx context.Context, id string, sub Subject, verified *bool) error {
	ep, err := c.endpoint(ctx, func(md *TransmitterMetadata) string { return md.AddSubjectEndpoint }, "add_subject_endpoint")
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, ep, SubjectRequest{StreamID: id, Subject: sub, Verified: verified}, nil, http.StatusOK, http.StatusNoContent); err != nil {
		return fmt.Errorf("signals: add subject: %w", err)
	}
	return nil
}

// RemoveSubject removes a subject from a stream.
func (c *StreamClient) RemoveSubject(ctx context.Context, id string, sub Subject) error {
	ep, err := c.endpoint(ctx, func(md *TransmitterMetadata) string { return md.RemoveSubjectEndpoint }, "remove_subject_endpoint")
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, ep, SubjectRequest{StreamID: id, Subject: sub}, nil, http.StatusNoContent, http.StatusOK); err != nil {
		return fmt.Errorf("signals: remove subject: %w", err)
	}
	return nil
}

// RequestVerification asks the transmitter to send a verification event
// echoing state on the stream. Register state with
// [Receiver.ExpectVerification] first.
func (c *StreamClient) RequestVerification(ctx context.Context, id, state string) error {
	ep, err := c.endpoint(ctx, func(md *TransmitterMetadata) string { return md.VerificationEndpoint }, "verification_endpoint")
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, ep, VerificationRequest{StreamID: id, State: state}, nil, http.StatusNoContent, http.StatusOK); err != nil {
		return fmt.Errorf("signals: request verification: %w", err)
	}
	return nil
}

// checkIss requires a returned stream configuration to carry the
// transmitter's issuer (SSF 1.0 §8.1.1.1).
func (c *StreamClient) checkIss(sc *StreamConfig) (*StreamConfig, error) {
	if sc.Iss != c.cfg.Issuer {
		return nil, fmt.Errorf("%w: stream iss %q, want %q", ErrIssuerMismatch, truncate(sc.Iss, 128), c.cfg.Issuer)
	}
	return sc, nil
}

// do sends one authenticated JSON request and decodes the response into
// out (when not nil) if its status is one of ok.
func (c *StreamClient) do(ctx context.Context, method, endpoint string, in, out any, ok ...int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, endpoint, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	tok, err := c.cfg.Token(ctx)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManagementResponse+1))
	if err != nil {
		return err
	}
	if len(data) > maxManagementResponse {
		return fmt.Errorf("response larger than %d bytes", maxManagementResponse)
	}
	good := false
	for _, s := range ok {
		good = good || resp.StatusCode == s
	}
	if !good {
		return httpError(resp.StatusCode, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("response is not valid JSON: %w", err)
		}
	}
	return nil
}

// withQuery returns endpoint with name=value added to its query.
func withQuery(endpoint, name, value string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}
