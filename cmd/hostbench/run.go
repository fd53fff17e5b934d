package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/mcp/mcpbare"
	"github.com/agenthost/agenthost/plugins/sandbox"
)

// serveBareCommand is the hidden first argument that makes this program
// the bare mcp-go server.
const serveBareCommand = "serve-bare"

const (
	clientID      = "hostbench"
	startTimeout  = 60 * time.Second
	pluginRTTs    = 2000
	goTestTimeout = 10 * time.Minute
)

// serveBare serves mcp/mcpbare on a free loopback port, prints its URL on
// stdout, and serves until SIGTERM or SIGINT, or until its stdin closes
// (the parent is gone).
func serveBare() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	fmt.Printf("%shttp://%s/mcp\n", bareLinePrefix, ln.Addr())
	return mcpbare.Serve(ctx, ln)
}

// run performs the whole suite and returns the results document.
func run(ctx context.Context, o options) (string, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return "", fmt.Errorf("no agenthost binary at %s (run make build first, or pass -bin)", o.bin)
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's binary: %w", err)
	}
	tmp, err := os.MkdirTemp(o.dir, "hostbench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	r := &results{Date: time.Now(), Command: o.command, Warmup: o.warmup, Duration: o.duration,
		FsyncN: o.fsyncN, PluginRTT: map[string]time.Duration{}, PluginTask: map[string]time.Duration{}}
	maxWorkers := slices.Max(o.workers)

	// The two servers.
	step("starting the bare mcp-go server")
	bareProc, bareURL, err := startProcess(ctx, "bare mcp-go server", self, []string{serveBareCommand},
		filepath.Join(tmp, "bare.log"), parseBareURL, startTimeout)
	if err != nil {
		return "", err
	}
	defer stopLogged(bareProc)
	step("starting the host (%s up)", o.bin)
	hostProc, issuer, dataDir, secret, err := startHost(ctx, bin, tmp)
	if err != nil {
		return "", err
	}
	defer stopLogged(hostProc)
	endpoint := issuer + "/mcp/clock"
	bare := &server{name: "bare", url: bareURL, proc: bareProc, http: newClient(maxWorkers)}
	host := &server{name: "host", url: endpoint, proc: hostProc, http: newClient(maxWorkers),
		token: func(ctx context.Context) (string, error) {
			return fetchToken(ctx, issuer, clientID, secret, endpoint, "clock:read")
		}}
	r.Machine = describeMachine(dataDir)

	// Floors, while both servers idle.
	step("floors: fsync, ES256, loopback HTTP")
	if r.FsyncP50, err = fsyncP50(tmp, o.fsyncN); err != nil {
		return "", err
	}
	if r.Sign, r.Verify, err = es256(300 * time.Millisecond); err != nil {
		return "", err
	}
	if r.LoopbackP50, err = loopbackP50(ctx, 2000); err != nil {
		return "", err
	}
	step("durable audit appends, 1 and 64 writers")
	if r.Audit1, r.Audit1CPU, err = auditAppends(ctx, tmp, 1, o.duration); err != nil {
		return "", err
	}
	if r.Audit64, r.Audit64CPU, err = auditAppends(ctx, tmp, 64, o.duration); err != nil {
		return "", err
	}

	// The load phases, bare then host at each worker count.
	for _, w := range o.workers {
		for _, srv := range []*server{bare, host} {
			step("%s, %d workers", srv.name, w)
			p, err := runPhase(ctx, srv, w, o.warmup, o.duration)
			if err != nil {
				return "", err
			}
			r.Phases = append(r.Phases, p)
		}
	}
	// The servers are done: stop them before the plugin measurements.
	if err := hostProc.stop(); err != nil {
		return "", err
	}
	if err := bareProc.stop(); err != nil {
		return "", err
	}

	// Plugin round trips.
	toolPlugin := o.toolPlugin
	if toolPlugin == "" {
		toolPlugin = filepath.Join(filepath.Dir(bin), "toolplugins", "textkit")
	}
	for _, level := range []sandbox.Level{sandbox.LevelStrict, sandbox.LevelNone} {
		step("plain go-plugin round trip, sandbox=%s", level)
		d, err := pluginRoundTrip(ctx, toolPlugin, level, pluginRTTs)
		if err != nil {
			return "", err
		}
		r.PluginRTT[string(level)] = d
	}
	if o.pluginBench {
		step("go test -bench RunWithHostCall -benchtime %s ./plugins", o.pluginBenchtime)
		gctx, cancel := context.WithTimeout(ctx, goTestTimeout)
		r.PluginTask, err = runWithHostCall(gctx, o.goBin, o.pluginBenchtime)
		cancel()
		if err != nil {
			return "", err
		}
	} else {
		r.PluginNote = "BenchmarkRunWithHostCall skipped (-plugin-bench=false)"
	}
	if o.profile {
		ws := []int{1, maxWorkers}
		if maxWorkers == 1 {
			ws = ws[:1]
		}
		step("profiles: go test -bench HostToolsCall/host -cpuprofile -blockprofile ./runtime/host, workers %v", ws)
		gctx, cancel := context.WithTimeout(ctx, goTestTimeout)
		r.Profile, err = profileHost(gctx, o.goBin, tmp, o.profileBenchtime, ws)
		cancel()
		if err != nil {
			return "", err
		}
	}
	return markdown(r, evaluate(r)), nil
}

// startHost writes the host's config into tmp and starts the host on a
// data directory in tmp; it returns the process, the issuer URL, the data
// directory and the load generator's client secret.
func startHost(ctx context.Context, bin, tmp string) (p *process, issuer, dataDir, secret string, err error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", "", "", err
	}
	secret = hex.EncodeToString(raw)
	hash, err := userauth.HashPassword(secret)
	if err != nil {
		return nil, "", "", "", fmt.Errorf("hash the client secret: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", "", "", err
	}
	cfg, err := writeHostConfig(tmp, port, clientID, hash)
	if err != nil {
		return nil, "", "", "", fmt.Errorf("write the host's config: %w", err)
	}
	dataDir = filepath.Join(tmp, "data")
	p, issuer, err = startProcess(ctx, "host", bin, []string{"up", "--config", cfg, "--data-dir", dataDir},
		filepath.Join(tmp, "host.log"), hostIssuer, startTimeout)
	if err != nil {
		return nil, "", "", "", err
	}
	if err := waitReady(ctx, p, issuer+"/readyz", startTimeout); err != nil {
		_ = p.stop()
		return nil, "", "", "", err
	}
	return p, issuer, dataDir, secret, nil
}

// stopLogged stops p, reporting a failure to stop on stderr (the run's
// own error, if any, matters more).
func stopLogged(p *process) {
	if err := p.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "hostbench:", err)
	}
}

// step says on stderr what the suite does now.
func step(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "hostbench: "+format+"\n", a...)
}
