package mcpbare_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/mcp/mcpbare"
)

const callNow = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"now","arguments":{}}}`

func postCall(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(callNow))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHandlerAnswersToolsCall: a tools/call of "now" without initialize
// (the server is stateless) answers 200 with one text content.
func TestHandlerAnswersToolsCall(t *testing.T) {
	srv := httptest.NewServer(mcpbare.Handler())
	defer srv.Close()
	st, body := postCall(t, srv.URL+"/mcp")
	if st != http.StatusOK || !strings.Contains(body, `"text":"`) || strings.Contains(body, `"isError":true`) {
		t.Fatalf("tools/call: %d %s", st, body)
	}
	if !strings.Contains(body, " UTC\"") {
		t.Fatalf("tools/call did not return an RFC 1123 time: %s", body)
	}
}

// TestServeStopsWithContext: Serve answers on its listener and returns
// nil once its context ends.
func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mcpbare.Serve(ctx, ln) }()
	if st, body := postCall(t, "http://"+ln.Addr().String()); st != http.StatusOK {
		t.Fatalf("tools/call: %d %s", st, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}
