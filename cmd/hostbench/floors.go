package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/plugins"
	"github.com/agenthost/agenthost/plugins/sandbox"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/store/sqlitestore"
)

// fsyncP50 writes 4 KiB to a new file in dir and fsyncs it, n times, and
// returns the median time of one write and fsync: the cost of one
// durable commit on dir's file system.
func fsyncP50(dir string, n int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return 0, fmt.Errorf("fsync floor: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 4096)
	_, _ = rand.Read(block)
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := f.Write(block); err != nil {
			return 0, fmt.Errorf("fsync floor: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("fsync floor: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return percentile(latencies([][]time.Duration{lat}), 0.5), nil
}

// es256 returns the mean time of an ES256 signature (ECDSA P-256 over a
// SHA-256 digest) and of its verification, each measured for about d.
func es256(d time.Duration) (sign, verify time.Duration, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, 0, fmt.Errorf("ES256 floor: %w", err)
	}
	digest := sha256.Sum256([]byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJob3N0YmVuY2gifQ"))
	var sig []byte
	sign, err = timeOp(d, func() error {
		sig, err = ecdsa.SignASN1(rand.Reader, key, digest[:])
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ES256 floor: %w", err)
	}
	verify, err = timeOp(d, func() error {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			return errors.New("signature does not verify")
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ES256 floor: %w", err)
	}
	return sign, verify, nil
}

// timeOp runs op in batches until about d has passed and returns its
// mean time.
func timeOp(d time.Duration, op func() error) (time.Duration, error) {
	var n int
	start := time.Now()
	for time.Since(start) < d {
		for range 64 {
			if err := op(); err != nil {
				return 0, err
			}
		}
		n += 64
	}
	return time.Since(start) / time.Duration(n), nil
}

// loopbackP50 serves a trivial handler in this process on loopback and
// returns the median of n keep-alive HTTP round trips to it: the floor
// of any HTTP call, before MCP, JSON-RPC or a second process.
func loopbackP50(ctx context.Context, n int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loopback floor: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c := newClient(1)
	defer c.CloseIdleConnections()
	u := "http://" + ln.Addr().String() + "/"
	lat := make([]time.Duration, 0, n)
	for i := range n + n/10 { // the first tenth warms up
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(callBody))
		if err != nil {
			return 0, err
		}
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, fmt.Errorf("loopback floor: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i >= n/10 {
			lat = append(lat, time.Since(t0))
		}
	}
	return percentile(latencies([][]time.Duration{lat}), 0.5), nil
}

// auditAppends opens a tamper-evident audit log on SQLite in a new
// directory under dir, as the host does (runtime/audit's BenchmarkAppend),
// and returns the durable appends per second writers goroutines achieve
// appending for d, and this process's CPU time per append meanwhile.
func auditAppends(ctx context.Context, dir string, writers int, d time.Duration) (rate float64, cpu time.Duration, err error) {
	adir, err := os.MkdirTemp(dir, "audit-")
	if err != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	defer os.RemoveAll(adir)
	st, err := sqlitestore.Open(ctx, sqlitestore.Config{Path: filepath.Join(adir, "audit.db")})
	if err != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	defer st.Close()
	skey, _, err := audit.GenerateKey(rand.Reader, "hostbench.local")
	if err != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	signer, verifier, err := audit.ParseKey(skey)
	if err != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	l, err := audit.Open(ctx, audit.Config{Log: st, Signer: signer, Verifier: verifier, CheckpointInterval: -1})
	if err != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	rec := audit.Record{
		Agent: "planner", AgentID: "spiffe://hostbench.local/agent/planner", Subject: "alice",
		Action: audit.ActionToolCall, Resource: "clock/now", Decision: audit.DecisionAllow,
		Policy: "baseline", Reason: "permitted", Outcome: audit.OutcomeOK, Task: "task-1", Txn: "txn-1",
		Chain:       []string{"spiffe://hostbench.local/agent/root", "spiffe://hostbench.local/agent/planner"},
		ArgsSHA256:  audit.TokenRef("{}"),
		TokenSHA256: audit.TokenRef("token"),
	}
	for range 10 { // warm up: the first appends create tables and pages
		if _, err := l.Append(ctx, rec); err != nil {
			_ = l.Close(ctx)
			return 0, 0, fmt.Errorf("audit appends: %w", err)
		}
	}
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	cpu0, err := processCPU("self")
	if err != nil {
		_ = l.Close(ctx)
		return 0, 0, fmt.Errorf("audit appends: %w", err)
	}
	deadline := time.Now().Add(d)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := l.Append(ctx, rec); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr := processCPU("self")
	if err := l.Close(ctx); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", firstErr)
	}
	if cpuErr != nil {
		return 0, 0, fmt.Errorf("audit appends: %w", cpuErr)
	}
	appends := n.Load()
	if appends == 0 {
		return 0, 0, errors.New("audit appends: no append completed")
	}
	return float64(appends) / elapsed.Seconds(), (cpu1 - cpu0) / time.Duration(appends), nil
}

// pluginRoundTrip launches the tool plugin at path in the given sandbox
// and returns the mean time of n ListTools calls to it: a plain go-plugin
// gRPC round trip (AutoMTLS over a unix socket) to a running plugin.
func pluginRoundTrip(ctx context.Context, path string, level sandbox.Level, n int) (time.Duration, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	sum, err := fileSHA256(abs)
	if err != nil {
		return 0, fmt.Errorf("plugin round trip: %w", err)
	}
	p, err := plugins.LaunchTools(ctx, plugins.Config{Name: "textkit", Path: abs, SHA256: sum,
		Sandbox: sandbox.Policy{Level: level}})
	if err != nil {
		return 0, fmt.Errorf("plugin round trip (sandbox=%s): %w", level, err)
	}
	defer p.Kill()
	for range n / 10 { // warm up
		if _, err := p.ListTools(ctx); err != nil {
			return 0, fmt.Errorf("plugin round trip (sandbox=%s): %w", level, err)
		}
	}
	start := time.Now()
	for range n {
		if _, err := p.ListTools(ctx); err != nil {
			return 0, fmt.Errorf("plugin round trip (sandbox=%s): %w", level, err)
		}
	}
	return time.Since(start) / time.Duration(n), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pluginsPackage holds BenchmarkRunWithHostCall.
const pluginsPackage = "github.com/agenthost/agenthost/plugins"

// runWithHostCall runs plugins' BenchmarkRunWithHostCall with go test and
// returns its ns/op by sub-benchmark ("sandbox=strict", "sandbox=none").
func runWithHostCall(ctx context.Context, goBin, benchtime string) (map[string]time.Duration, error) {
	cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$", "-bench", "^BenchmarkRunWithHostCall$",
		"-benchtime", benchtime, "-count", "1", pluginsPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, truncate(string(out), 4000))
	}
	res := parseBench(out, "BenchmarkRunWithHostCall")
	if len(res) == 0 {
		return nil, fmt.Errorf("%s printed no BenchmarkRunWithHostCall result:\n%s", strings.Join(cmd.Args, " "), truncate(string(out), 4000))
	}
	return res, nil
}

// benchLine is a line of go test -bench output: name, GOMAXPROCS suffix,
// iterations and ns/op.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([0-9.]+) ns/op`)

// parseBench returns the ns/op of each sub-benchmark of bench in go test
// output, keyed by the sub-benchmark's name ("" for bench itself).
func parseBench(out []byte, bench string) map[string]time.Duration {
	res := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name, sub, _ := strings.Cut(m[1], "/")
		if name != bench {
			continue
		}
		ns, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		res[sub] = time.Duration(ns)
	}
	return res
}
