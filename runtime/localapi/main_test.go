package localapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// The test binary doubles as a client process: started with clientEnv set
// to a socket path, it calls GET /v1/agents on that socket once and prints
// a clientResult as JSON instead of running the tests.
const clientEnv = "LOCALAPI_TEST_CLIENT_SOCKET"

// clientResult is what a client process saw.
type clientResult struct {
	PID    int    `json:"pid"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error,omitempty"`
}

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		res := runClient(path)
		_ = json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runClient(path string) clientResult {
	res := clientResult{PID: os.Getpid()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agenthost/v1/agents", nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp, err := hc.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		res.Error = fmt.Sprintf("read body: %v", err)
	}
	res.Status, res.Body = resp.StatusCode, string(b)
	return res
}
