package host

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
)

// TestSandboxConfigRefusals: a plugin at level none needs the unsafe flag,
// and no plugin may reach the host's own listener through a loopback port.
func TestSandboxConfigRefusals(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	tests := []struct {
		name   string
		agent  config.SandboxConfig
		unsafe bool
		listen string
		want   string
	}{
		{name: "level none without the flag", agent: config.SandboxConfig{Level: config.SandboxNone},
			want: "agent whoami has sandbox level none, which runs it uncontained; start the host with --unsafe-no-sandbox"},
		{name: "the host's own port", agent: config.SandboxConfig{LoopbackPorts: []int{addr.Port}}, listen: addr.String(),
			want: "agent whoami may not reach port " + strconv.Itoa(addr.Port) + " on loopback: it is the host's own listener"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			if tt.listen != "" {
				cfg.Listen.Address = config.Address(tt.listen)
			}
			cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"}, Sandbox: tt.agent}}
			h, err := New(context.Background(), Options{Config: cfg, DataDir: filepath.Join(t.TempDir(), "data"),
				Stderr: io.Discard, UnsafeNoSandbox: tt.unsafe})
			if err == nil {
				h.close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestUnsafeNoSandboxIsAudited: with the flag, a plugin at level none runs
// uncontained, and its start is audited as such.
func TestUnsafeNoSandboxIsAudited(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "whoami", Path: exe, Env: map[string]string{testAgentEnv: "1"},
		Sandbox: config.SandboxConfig{Level: config.SandboxNone}}}
	dir := filepath.Join(t.TempDir(), "data")
	h := runHostWith(t, Options{Config: cfg, DataDir: dir, UnsafeNoSandbox: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agents := waitAllRunning(ctx, t, dir, 1)
	if got := agents[0].Sandbox; got != "none: not contained" {
		t.Errorf("sandbox = %q", got)
	}
	for {
		entries, err := h.AuditRead(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if r := e.Record; r.Action == audit.ActionPluginStart {
				if r.Agent != "whoami" || r.Policy != "sandbox none (--unsafe-no-sandbox)" || r.Resource != exe ||
					!strings.Contains(r.Reason, "not contained") {
					t.Fatalf("plugin.start record = %+v", r)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no plugin.start record")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
