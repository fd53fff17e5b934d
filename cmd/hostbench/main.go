// Command hostbench is the `make bench` ratio suite: it measures a real
// agenthost host against a bare mcp-go server on the same machine, in the
// same run, and judges the result against the performance targets.
//
// It starts the host (`agenthost up`, the -bin binary) and a bare mcp-go
// server (this program re-executed as "hostbench serve-bare", serving
// mcp/mcpbare) as two separate processes on loopback, and drives both
// with one load generator, itself: for each -workers count, a loop of
// tools/call per worker on keep-alive connections, a warm-up, then
// -duration measured, reading calls/s, p50, p99 and each server's CPU per
// call from /proc/<pid>/stat. In the same run it measures the floors the
// targets are stated in (fsync on the data directory's file system,
// ES256 sign and verify, a loopback HTTP round trip), durable audit
// appends with 1 and 64 writers, a plain go-plugin gRPC round trip to the
// textkit tool plugin, and plugins' BenchmarkRunWithHostCall (through
// go test). Last it profiles the host in process (runtime/host's
// BenchmarkHostToolsCall with CPU and block profiles, read with go tool
// pprof) to say where the host's time goes, which is what bounds a missed
// target. It prints one Markdown document, machine, phases, floors, the
// targets with PASS or MISS and the profiles, and writes it to -out:
//
//	make build && go run ./cmd/hostbench -duration 3s
//
// Every answer is checked; a failed call, a server that will not start
// or exits, or an interrupt ends the run with a message and exit status
// 1. The host's config and data directory live in a temporary directory
// removed at the end, and both servers are stopped (SIGTERM, then SIGKILL
// after 10 s) whatever happens. A MISS is a result, not a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == serveBareCommand {
		if err := serveBare(); err != nil {
			fmt.Fprintln(os.Stderr, "hostbench serve-bare:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin/agenthost", "the agenthost binary (make build)")
	flag.StringVar(&o.toolPlugin, "toolplugin", "", "a tool plugin for the plain go-plugin round trip (default: toolplugins/textkit beside -bin's directory)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each load phase")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each load phase")
	workers := flag.String("workers", "1,16,64", "comma-separated concurrent worker counts")
	flag.StringVar(&o.out, "out", "bench/results.md", "file the results are written to (\"\": none)")
	flag.StringVar(&o.dir, "dir", "", "parent of the temporary directory holding the host's data (default: the system's)")
	flag.IntVar(&o.fsyncN, "fsyncs", 200, "write+fsync samples for the fsync floor")
	flag.BoolVar(&o.pluginBench, "plugin-bench", true, "run plugins' BenchmarkRunWithHostCall with go test")
	flag.StringVar(&o.pluginBenchtime, "plugin-benchtime", "2000x", "go test -benchtime for BenchmarkRunWithHostCall")
	flag.StringVar(&o.goBin, "go", "go", "the go command, for go test")
	flag.BoolVar(&o.profile, "profile", true, "profile the host in process (BenchmarkHostToolsCall with CPU and block profiles)")
	flag.StringVar(&o.profileBenchtime, "profile-benchtime", "3s", "go test -benchtime for each profiled run")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hostbench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	var err error
	if o.workers, err = parseWorkers(*workers); err != nil {
		fmt.Fprintln(os.Stderr, "hostbench: -workers:", err)
		os.Exit(2)
	}
	if o.duration < 100*time.Millisecond || o.warmup < 0 || o.fsyncN < 1 {
		fmt.Fprintln(os.Stderr, "hostbench: -duration must be at least 100ms, -warmup not negative, -fsyncs at least 1")
		os.Exit(2)
	}
	o.command = "go run ./cmd/hostbench " + strings.Join(os.Args[1:], " ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	doc, err := run(ctx, o)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintln(os.Stderr, "hostbench:", err)
		stop()
		os.Exit(1)
	}
	fmt.Print(doc)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err == nil {
			err = os.WriteFile(o.out, []byte(doc), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostbench: write results:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "hostbench: wrote %s\n", o.out)
	}
}

// options are the command's flags.
type options struct {
	bin, toolPlugin  string
	duration, warmup time.Duration
	workers          []int
	out, dir         string
	fsyncN           int
	pluginBench      bool
	pluginBenchtime  string
	goBin            string
	profile          bool
	profileBenchtime string
	command          string
}

// parseWorkers parses "1,16,64": distinct counts from 1 to 1024, in the
// order given.
func parseWorkers(s string) ([]int, error) {
	var ws []int
	seen := map[int]bool{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 1024 {
			return nil, fmt.Errorf("%q is not a worker count from 1 to 1024", f)
		}
		if !seen[n] {
			seen[n] = true
			ws = append(ws, n)
		}
	}
	if len(ws) == 0 {
		return nil, errors.New("no worker counts")
	}
	return ws, nil
}
