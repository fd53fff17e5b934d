package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// callBody is the tools/call every worker sends, as in runtime/host's
// BenchmarkHostToolsCall.
var callBody = []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"now","arguments":{}}}`)

// maxBody bounds a response read; a tools/call answer of "now" is a few
// hundred bytes.
const maxBody = 1 << 20

// server is what a phase drives: the URL of an MCP endpoint and the
// process that serves it.
type server struct {
	name  string // "host" or "bare"
	url   string
	proc  *process
	token func(context.Context) (string, error) // nil: no authentication
	http  *http.Client
}

// newClient returns an HTTP client that keeps one idle connection per
// worker, so every worker reuses its own keep-alive connection.
func newClient(workers int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0, // no limit
			MaxIdleConnsPerHost: workers + 8,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
}

// phase is one server driven by a number of workers for a duration.
type phase struct {
	Server    string
	Workers   int
	Calls     int64
	Elapsed   time.Duration
	P50, P99  time.Duration
	ServerCPU time.Duration // utime+stime of the server process over the phase
	LoadCPU   time.Duration // the same for this program (the load generator)
}

// Rate is calls per second.
func (p phase) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Calls) / p.Elapsed.Seconds()
}

// ServerCPUPerCall is the server's CPU time per call.
func (p phase) ServerCPUPerCall() time.Duration {
	if p.Calls == 0 {
		return 0
	}
	return p.ServerCPU / time.Duration(p.Calls)
}

// LoadCPUPerCall is the load generator's CPU time per call.
func (p phase) LoadCPUPerCall() time.Duration {
	if p.Calls == 0 {
		return 0
	}
	return p.LoadCPU / time.Duration(p.Calls)
}

// runPhase warms srv up with workers for warmup, then measures workers
// calling it for duration. Any failed call aborts the phase.
func runPhase(ctx context.Context, srv *server, workers int, warmup, duration time.Duration) (phase, error) {
	token := ""
	if srv.token != nil {
		t, err := srv.token(ctx)
		if err != nil {
			return phase{}, srv.explain(err)
		}
		token = t
	}
	if warmup > 0 {
		if _, _, err := drive(ctx, srv, token, workers, warmup, false); err != nil {
			return phase{}, srv.explain(err)
		}
	}
	srvCPU0, err := processCPU(srv.proc.pid())
	if err != nil {
		return phase{}, srv.explain(err)
	}
	selfCPU0, err := processCPU("self")
	if err != nil {
		return phase{}, err
	}
	start := time.Now()
	lat, calls, err := drive(ctx, srv, token, workers, duration, true)
	elapsed := time.Since(start)
	if err != nil {
		return phase{}, srv.explain(err)
	}
	srvCPU1, err := processCPU(srv.proc.pid())
	if err != nil {
		return phase{}, srv.explain(err)
	}
	selfCPU1, err := processCPU("self")
	if err != nil {
		return phase{}, err
	}
	all := latencies(lat)
	return phase{
		Server: srv.name, Workers: workers, Calls: calls, Elapsed: elapsed,
		P50: percentile(all, 0.50), P99: percentile(all, 0.99),
		ServerCPU: srvCPU1 - srvCPU0, LoadCPU: selfCPU1 - selfCPU0,
	}, nil
}

// explain adds to err that the server exited, and the end of its log.
func (s *server) explain(err error) error {
	if s.proc != nil && !s.proc.alive() {
		return fmt.Errorf("%s: %w (the %s process exited: %v)%s", s.name, err, s.name, s.proc.waitErr, s.proc.logTail(20))
	}
	return fmt.Errorf("%s: %w", s.name, err)
}

// drive runs workers loops of tools/call against srv until duration has
// passed, and returns each worker's latencies (when record is set) and the
// number of calls. The first failure stops every worker.
func drive(parent context.Context, srv *server, token string, workers int, duration time.Duration, record bool) ([][]time.Duration, int64, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		calls    atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	lat := make([][]time.Duration, workers)
	deadline := time.Now().Add(duration)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			var mine []time.Duration
			if record {
				mine = make([]time.Duration, 0, 4096)
			}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := callOnce(ctx, srv.http, srv.url, token, &buf); err != nil {
					if ctx.Err() == nil { // else another worker failed first, or the run was interrupted
						fail(err)
					}
					break
				}
				if record {
					mine = append(mine, time.Since(t0))
				}
				calls.Add(1)
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, 0, err
	}
	return lat, calls.Load(), nil
}

// callOnce sends one tools/call and checks its answer.
func callOnce(ctx context.Context, c *http.Client, url, token string, buf *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(callBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read the answer to tools/call: %w", err)
	}
	return checkAnswer(resp.StatusCode, buf.Bytes())
}

// checkAnswer accepts a tools/call answer that is 200, holds a text
// content and is not a tool error.
func checkAnswer(status int, body []byte) error {
	switch {
	case status != http.StatusOK:
		return fmt.Errorf("tools/call answered %d: %s", status, truncate(strings.TrimSpace(string(body)), 300))
	case bytes.Contains(body, []byte(`"isError":true`)):
		return fmt.Errorf("tools/call answered a tool error: %s", truncate(string(body), 300))
	case !bytes.Contains(body, []byte(`"text":"`)):
		return fmt.Errorf("tools/call answered no text content: %s", truncate(string(body), 300))
	}
	return nil
}

// fetchToken gets an access token for resource with the client
// credentials grant at issuer's token endpoint.
func fetchToken(ctx context.Context, issuer, clientID, secret, resource, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "resource": {resource}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &body) != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token for %s: %s: %s", resource, resp.Status, truncate(strings.TrimSpace(string(b)), 300))
	}
	return body.AccessToken, nil
}
