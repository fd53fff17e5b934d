package cli

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListenFlag(t *testing.T) {
	file := writeFile(t, "agenthost.yaml", "version: 1\nlisten:\n  address: 127.0.0.1:8420\n")
	withIssuer := writeFile(t, "agenthost.yaml", "version: 1\nlisten:\n  address: 127.0.0.1:8420\n  issuer: http://localhost:8420\n")
	refused := writeFile(t, "agenthost.yaml", "version: 1\nlisten:\n  address: 192.0.2.1:8420\n")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "up help describes the flag",
			args:       []string{"up", "--help"},
			wantStdout: "--listen ADDR         ADDR (host:port) to listen on instead of the config's listen.address",
		},
		{
			name:       "validate help describes the flag",
			args:       []string{"validate", "--help"},
			wantStdout: "--listen ADDR     ADDR (host:port) to listen on instead of the config's listen.address",
		},
		{
			name:       "the derived issuer follows the address",
			args:       []string{"validate", file, "--listen", "127.0.0.1:8422"},
			wantStdout: file + ": ok (version 1, trust domain agenthost.local, listening on 127.0.0.1:8422, issuer http://127.0.0.1:8422)\n",
		},
		{
			name:       "an issuer the file sets is kept",
			args:       []string{"validate", withIssuer, "--listen", "127.0.0.1:8422"},
			wantStdout: "listening on 127.0.0.1:8422, issuer http://localhost:8420)\n",
		},
		{
			name:       "replaces an address the file would have refused",
			args:       []string{"validate", "--config", refused, "--listen", "localhost:8422"},
			wantStdout: "listening on localhost:8422, issuer http://localhost:8422)\n",
		},
		{
			name:     "up refuses a non-loopback address without TLS",
			args:     []string{"up", "--config", file, "--listen", "0.0.0.0:8422", "--data-dir", filepath.Join(t.TempDir(), "data")},
			wantCode: exitUsage,
			wantStderr: file + ": listen.address: listening on 0.0.0.0:8422 without TLS is refused; configure listen.tls or bind a loopback address" +
				" (the address is from --listen)\nagenthost: config has 1 problem\n",
		},
		{
			name:     "validate refuses it too",
			args:     []string{"validate", file, "--listen", "192.0.2.1:8422"},
			wantCode: exitUsage,
			wantStderr: file + ": listen.address: listening on 192.0.2.1:8422 without TLS is refused; configure listen.tls or bind a loopback address" +
				" (the address is from --listen)\n",
		},
		{
			name:       "up: not host:port",
			args:       []string{"up", "--config", file, "--listen", "8422"},
			wantCode:   exitUsage,
			wantStderr: `agenthost: agenthost up: --listen: address "8422" is not host:port (for example 127.0.0.1:8420)`,
		},
		{
			name:       "validate: a bad port",
			args:       []string{"validate", file, "--listen", "127.0.0.1:http"},
			wantCode:   exitUsage,
			wantStderr: `agenthost: agenthost validate: --listen: address "127.0.0.1:http" has port "http"`,
		},
		{
			name:       "empty",
			args:       []string{"up", "--config", file, "--listen", ""},
			wantCode:   exitUsage,
			wantStderr: "agenthost: agenthost up: --listen: address is empty",
		},
		{
			name:       "checked before the config file is read",
			args:       []string{"up", "--config", "/nonexistent/agenthost.yaml", "--listen", "nonsense"},
			wantCode:   exitUsage,
			wantStderr: `--listen: address "nonsense" is not host:port`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want it to contain %q)\nstderr %q (want it to contain %q)",
					code, tt.wantCode, stdout, tt.wantStdout, stderr, tt.wantStderr)
			}
		})
	}
}

// TestUpListen starts a host from a config file whose listen.address is
// taken, on another address given by --listen, and waits for it with
// status --wait.
func TestUpListen(t *testing.T) {
	// The file's address is held by another program: a host listening
	// there would fail to start.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	file := writeFile(t, "agenthost.yaml", "version: 1\ntrust_domain: test.local\nlisten:\n  address: "+held.Addr().String()+"\n")
	addr := freeAddr(t)
	dataDir := filepath.Join(t.TempDir(), "data")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	type result struct {
		stdout, stderr string
		err            error
	}
	done := make(chan result, 1)
	go func() {
		stdout, stderr, err := runContext(ctx, "up", "--config", file, "--listen", addr, "--data-dir", dataDir)
		done <- result{stdout, stderr, err}
	}()
	code, stdout, stderr := runCLI(t, nil, nil, "status", "--wait", "20s", "--data-dir", dataDir)
	stop()
	var up result
	select {
	case up = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("up did not stop 10s after its context ended")
	}
	if code != exitOK || !strings.Contains(stdout, "listening on  "+addr+"\n") || !strings.Contains(stdout, "issuer        http://"+addr+"\n") ||
		!strings.Contains(stdout, "ready         yes") {
		t.Fatalf("status: exit %d, stderr %q, stdout:\n%s\nup: %v, stderr:\n%s", code, stderr, stdout, up.err, up.stderr)
	}
	if up.err != nil && !errors.Is(up.err, context.Canceled) {
		t.Fatalf("up: %v\n%s", up.err, up.stderr)
	}
}
