package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/runtime/host"
)

func TestStatusReadiness(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		body      string
		wantReady string
	}{
		{
			name: "ready", code: http.StatusOK,
			body:      `{"status":"ready","agents":2,"running":2,"down":0}`,
			wantReady: "ready         yes (2 of 2 agents running)",
		},
		{
			name: "ready, an agent down", code: http.StatusOK,
			body:      `{"status":"ready","agents":3,"running":2,"down":1}`,
			wantReady: "ready         yes (2 of 3 agents running, 1 failed or quarantined (see agenthost agents))",
		},
		{
			name: "starting", code: http.StatusServiceUnavailable,
			body:      `{"status":"starting","agents":3,"running":1,"down":0,"starting":[{"agent":"research","state":"backoff"},{"agent":"pay\u001b[2J","state":"starting"}]}`,
			wantReady: `ready         no, still starting research (backoff), pay\x1b[2J (starting) (1 of 3 agents running)`,
		},
		{
			name: "a host without /readyz", code: http.StatusNotFound, body: "404 page not found\n",
			wantReady: "ready         unknown: 404 Not Found: 404 page not found",
		},
		{
			name: "not a readiness answer", code: http.StatusServiceUnavailable, body: "overloaded",
			wantReady: "ready         unknown: 503 Service Unavailable: not a readiness answer: overloaded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc(host.PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
			if tt.code != http.StatusNotFound {
				mux.HandleFunc(host.PathReady, func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(tt.code)
					_, _ = w.Write([]byte(tt.body))
				})
			}
			srv := httptest.NewServer(mux)
			defer srv.Close()
			dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: srv.URL, Address: srv.Listener.Addr().String()})
			code, stdout, stderr := runCLI(t, nil, nil, "status", "--data-dir", dir)
			if code != 0 || !strings.Contains(stdout, "health        200 OK {\"status\":\"ok\"}\n") || !strings.HasSuffix(stdout, tt.wantReady+"\n") {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant it to end with %q", code, stderr, stdout, tt.wantReady)
			}
		})
	}
}

func TestStatusUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dir := fakeHostDir(t, host.RunInfo{TrustDomain: "test.local", Issuer: url})
	code, stdout, _ := runCLI(t, nil, nil, "status", "--data-dir", dir)
	if code != 1 || !strings.Contains(stdout, "health        unreachable: ") || strings.Contains(stdout, "ready ") {
		t.Fatalf("exit %d, stdout:\n%s", code, stdout)
	}
}
