package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Date     time.Time
	Command  string // how this run was started
	Machine  machine
	Warmup   time.Duration
	Duration time.Duration
	Phases   []phase

	FsyncN      int
	FsyncP50    time.Duration
	Sign        time.Duration
	Verify      time.Duration
	LoopbackP50 time.Duration
	Audit1      float64       // durable appends/s, 1 writer
	Audit64     float64       // and 64 writers
	Audit1CPU   time.Duration // CPU time per append, 1 writer
	Audit64CPU  time.Duration // and 64 writers

	// PluginRTT is a plain go-plugin gRPC round trip and PluginTask a task
	// with one Host call (BenchmarkRunWithHostCall), by sandbox level;
	// PluginNote says why either is missing.
	PluginRTT  map[string]time.Duration
	PluginTask map[string]time.Duration
	PluginNote string

	// Profile is where the host's time goes, from profiled in-process
	// runs; nil when not profiled.
	Profile *hostProfile
}

// phase returns the phase of server at workers, if measured.
func (r *results) phase(server string, workers int) (phase, bool) {
	for _, p := range r.Phases {
		if p.Server == server && p.Workers == workers {
			return p, true
		}
	}
	return phase{}, false
}

// machine describes where the run happened.
type machine struct {
	CPU        string
	CPUs       int
	GOMAXPROCS int
	Kernel     string
	Go         string
	Memory     string
	DataFS     string // file system of the data directory
}

func describeMachine(dataDir string) machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		CPU: "unknown", Kernel: runtime.GOOS + "/" + runtime.GOARCH, Memory: "unknown", DataFS: "unknown"}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			m.Memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	ostype, _ := os.ReadFile("/proc/sys/kernel/ostype")
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if len(release) > 0 {
		m.Kernel = strings.TrimSpace(string(ostype)) + " " + strings.TrimSpace(string(release)) + " " + runtime.GOARCH
	}
	if fs := mountOf(dataDir); fs != "" {
		m.DataFS = fs
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// mountOf names the file system type and mount point holding path, from
// /proc/self/mounts: "ext4 on /".
func mountOf(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	path, err = filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	best, fstype := "", ""
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, fstype = mp, f[2]
		}
	}
	if best == "" {
		return ""
	}
	return fstype + " on " + best
}

// target is one of the targets: a measured value against a limit.
type target struct {
	Name     string
	Measured float64
	Limit    float64
	Unit     string // "µs", "/s" or "×"
	AtMost   bool   // measured ≤ limit passes; otherwise measured ≥ limit
	LimitIs  string // how the limit is derived, e.g. "fsync p50 + 100 µs"
	Detail   string // what the measured value is made of, e.g. "772 µs − 76.8 µs"
	Missing  string // why it was not measured; then no verdict
}

// Pass reports whether the target is met.
func (t target) Pass() bool {
	if t.AtMost {
		return t.Measured <= t.Limit
	}
	return t.Measured >= t.Limit
}

// Verdict is "PASS (by 38%)" or "MISS by 1,234 µs (+420%)": by how much,
// absolutely and relative to the limit.
func (t target) Verdict() string {
	if t.Missing != "" {
		return "not measured"
	}
	rel := ""
	if t.Limit != 0 {
		rel = fmt.Sprintf("%+.0f%%", (t.Measured-t.Limit)/math.Abs(t.Limit)*100)
	}
	if t.Pass() {
		if rel == "" {
			return "PASS"
		}
		return "PASS (" + strings.TrimPrefix(strings.TrimPrefix(rel, "-"), "+") + " margin)"
	}
	by := formatValue(math.Abs(t.Measured-t.Limit), t.Unit)
	if t.Unit == "×" { // a difference of ratios is not itself a ratio
		by = strings.TrimSuffix(by, "×")
	}
	if rel == "" {
		return "MISS by " + by
	}
	return "MISS by " + by + " (" + rel + ")"
}

// MeasuredText is the measured value, or why there is none.
func (t target) MeasuredText() string {
	if t.Missing != "" {
		return t.Missing
	}
	if t.Detail != "" {
		return formatValue(t.Measured, t.Unit) + " (" + t.Detail + ")"
	}
	return formatValue(t.Measured, t.Unit)
}

// LimitText is the limit with its comparison and derivation.
func (t target) LimitText() string {
	op := "≥ "
	if t.AtMost {
		op = "≤ "
	}
	s := op + formatValue(t.Limit, t.Unit)
	if t.LimitIs != "" && t.Missing == "" {
		s += " (" + t.LimitIs + ")"
	} else if t.LimitIs != "" {
		s = op + t.LimitIs
	}
	return s
}

// micros is d in microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// evaluate computes the targets from r.
func evaluate(r *results) []target {
	var ts []target

	added := target{Name: "Whole-host mediated tools/call: added p50 at 1 worker (host p50 − bare p50)",
		Unit: "µs", AtMost: true, Limit: micros(r.FsyncP50) + 100, LimitIs: "fsync p50 + 100 µs"}
	h1, okH := r.phase("host", 1)
	b1, okB := r.phase("bare", 1)
	if okH && okB {
		added.Measured = micros(h1.P50 - b1.P50)
		added.Detail = dur(h1.P50) + " − " + dur(b1.P50)
	} else {
		added.Missing = "no 1-worker phases (-workers)"
	}
	ts = append(ts, added)

	thr := target{Name: "Throughput at 64 workers, host ÷ bare mcp-go server", Unit: "×", Limit: 0.7}
	h64, okH := r.phase("host", 64)
	b64, okB := r.phase("bare", 64)
	switch {
	case !okH || !okB:
		thr.Missing = "no 64-worker phases (-workers)"
	case b64.Rate() == 0:
		thr.Missing = "the bare server made no calls"
	default:
		thr.Measured = h64.Rate() / b64.Rate()
		thr.Detail = formatValue(h64.Rate(), "/s") + " ÷ " + formatValue(b64.Rate(), "/s")
	}
	ts = append(ts, thr)

	cpu := target{Name: "Host CPU per call at 64 workers", Unit: "µs", AtMost: true, Limit: 150}
	if okH {
		cpu.Measured = micros(h64.ServerCPUPerCall())
	} else {
		cpu.Missing = "no 64-worker phase (-workers)"
	}
	ts = append(ts, cpu)

	a1 := target{Name: "Durable audit appends, 1 writer", Unit: "/s", Measured: r.Audit1, LimitIs: "0.8 ÷ fsync p50"}
	if r.FsyncP50 > 0 {
		a1.Limit = 0.8 / r.FsyncP50.Seconds()
	}
	ts = append(ts, a1)
	ts = append(ts, target{Name: "Durable audit appends, 64 writers", Unit: "/s", Measured: r.Audit64, Limit: 40000})

	for _, level := range []string{"strict", "none"} {
		t := target{Name: "Task on a running plugin with one Host call ÷ plain go-plugin gRPC round trip (sandbox=" + level + ")",
			Unit: "×", AtMost: true, Limit: 2}
		task, okT := r.PluginTask["sandbox="+level]
		rtt, okR := r.PluginRTT[level]
		switch {
		case okT && okR && rtt > 0:
			t.Measured = float64(task) / float64(rtt)
			t.Detail = dur(task) + " ÷ " + dur(rtt)
		case r.PluginNote != "":
			t.Missing = r.PluginNote
		default:
			t.Missing = "not measured"
		}
		ts = append(ts, t)
	}
	return ts
}

// formatValue formats v in unit: microseconds with one decimal below 100,
// rates with thousands separators, ratios with two decimals.
func formatValue(v float64, unit string) string {
	switch unit {
	case "µs":
		if math.Abs(v) < 100 {
			return strconv.FormatFloat(v, 'f', 1, 64) + " µs"
		}
		return thousands(v) + " µs"
	case "/s":
		return thousands(v) + "/s"
	case "×":
		return strconv.FormatFloat(v, 'f', 2, 64) + "×"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}

// thousands rounds v and groups its digits by three: 12345.6 → "12,346".
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// dur formats a latency or CPU time as microseconds.
func dur(d time.Duration) string { return formatValue(micros(d), "µs") }

// markdown renders r as the results document.
func markdown(r *results, ts []target) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	w("# agenthost host vs. a bare mcp-go server\n\n")
	w("Measured %s by `cmd/hostbench`. Reproduce with `make bench` (it builds, then runs `go run ./cmd/hostbench -out bench/results.md`); this run was `%s`.\n\n",
		r.Date.UTC().Format("2006-01-02 15:04 UTC"), r.Command)

	w("## Machine\n\n| | |\n|---|---|\n")
	w("| CPU | %s |\n", r.Machine.CPU)
	w("| CPUs | %d (GOMAXPROCS %d) |\n", r.Machine.CPUs, r.Machine.GOMAXPROCS)
	w("| Memory | %s |\n", r.Machine.Memory)
	w("| Kernel | %s |\n", r.Machine.Kernel)
	w("| Go | %s |\n", r.Machine.Go)
	w("| Data directory file system | %s |\n\n", r.Machine.DataFS)

	w("## tools/call phases\n\n")
	w("The host is `agenthost up` (a separate process) serving the clock tool at `/mcp/clock`: bearer token check, scope, Cedar policy, a durable decision record (one commit: records and their signed seal, one fsync), the tool, the outcome record queued for the next commit. ")
	w("The bare server is mcp-go's stateless Streamable HTTP server with the same tool and no authentication (`mcp/mcpbare`, also a separate process). ")
	w("One load generator (this program, on the same CPUs) runs each phase: N workers, each a loop of tools/call on its own keep-alive connection, %s of warm-up then %s measured; every answer is checked. ", r.Warmup, r.Duration)
	w("CPU is utime+stime from /proc/<pid>/stat (10 ms ticks) over the measured window, divided by the calls.\n\n")
	w("| server | workers | calls | calls/s | p50 | p99 | server CPU/call | load generator CPU/call |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		w("| %s | %d | %s | %s | %s | %s | %s | %s |\n", p.Server, p.Workers, thousands(float64(p.Calls)), thousands(p.Rate()),
			dur(p.P50), dur(p.P99), dur(p.ServerCPUPerCall()), dur(p.LoadCPUPerCall()))
	}
	w("\n### Host ÷ bare\n\n| workers | calls/s | p50 | p99 | server CPU/call |\n|---:|---:|---:|---:|---:|\n")
	for _, p := range r.Phases {
		if p.Server != "host" {
			continue
		}
		bp, ok := r.phase("bare", p.Workers)
		if !ok {
			continue
		}
		w("| %d | %s | %s | %s | %s |\n", p.Workers, ratio(p.Rate(), bp.Rate()), ratio(float64(p.P50), float64(bp.P50)),
			ratio(float64(p.P99), float64(bp.P99)), ratio(float64(p.ServerCPU)/float64(max(p.Calls, 1)), float64(bp.ServerCPU)/float64(max(bp.Calls, 1))))
	}

	w("\n## Floors and other measurements (same run)\n\n| what | value |\n|---|---:|\n")
	w("| fsync p50: 4 KiB write + fsync, %d×, on the data directory's file system | %s |\n", r.FsyncN, dur(r.FsyncP50))
	w("| ES256 sign (ECDSA P-256, SHA-256 digest) | %s ns/op |\n", thousands(float64(r.Sign)))
	w("| ES256 verify | %s ns/op |\n", thousands(float64(r.Verify)))
	w("| Loopback HTTP round trip p50 (net/http, in-process, keep-alive) | %s |\n", dur(r.LoopbackP50))
	w("| Durable audit appends, 1 writer (runtime/audit on SQLite, in this process) | %s/s (CPU %s per append) |\n", thousands(r.Audit1), dur(r.Audit1CPU))
	w("| Durable audit appends, 64 writers | %s/s (CPU %s per append) |\n", thousands(r.Audit64), dur(r.Audit64CPU))
	for _, level := range []string{"strict", "none"} {
		if d, ok := r.PluginRTT[level]; ok {
			w("| Plain go-plugin gRPC round trip (ListTools on the running textkit plugin), sandbox=%s | %s |\n", level, dur(d))
		}
		if d, ok := r.PluginTask["sandbox="+level]; ok {
			w("| Task with one Host call (plugins' BenchmarkRunWithHostCall), sandbox=%s | %s |\n", level, dur(d))
		}
	}
	if r.PluginNote != "" {
		w("\nPlugin round trips: %s\n", r.PluginNote)
	}

	w("\n## Targets\n\n| target | measured | target | result |\n|---|---:|---|---|\n")
	for _, t := range ts {
		w("| %s | %s | %s | %s |\n", t.Name, t.MeasuredText(), t.LimitText(), t.Verdict())
	}
	if hp := r.Profile; hp != nil {
		writeProfile(&b, hp)
	}
	return b.String()
}

// writeProfile adds the profiles' section: the share of CPU samples in
// each part of the host, and the handlers' wait for the audit commit.
func writeProfile(b *strings.Builder, hp *hostProfile) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("\n## Where the host's time goes\n\n")
	w("From the host in one process with its load generator, profiled: `%s`. ", hp.Reproduced)
	w("Shares are of all CPU samples of the run (cumulative: a part includes what it calls; indented parts are inside the part above them).\n\n")
	w("| part |")
	for _, n := range hp.Workers {
		w(" %d worker(s) |", n)
	}
	w("\n|---|")
	for range hp.Workers {
		w("---:|")
	}
	w("\n")
	for _, ps := range hp.CPU {
		w("| %s |", strings.Replace(ps.Part, "  ", "↳ ", 1))
		for _, n := range hp.Workers {
			if v := ps.Share[n]; v >= 0 {
				w(" %.0f%% |", v*100)
			} else {
				w(" – |")
			}
		}
		w("\n")
	}
	w("| handlers' blocked time spent waiting for the audit commit (block profile) |")
	for _, n := range hp.Workers {
		if v := hp.AuditWait[n]; v >= 0 {
			w(" %.0f%% |", v*100)
		} else {
			w(" – |")
		}
	}
	w("\n| the benchmark's result |")
	for _, n := range hp.Workers {
		w(" %s |", hp.Calls[n])
	}
	w("\n")
}

// ratio is a ÷ b with two decimals, or "–" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}
