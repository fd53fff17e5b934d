package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// hostPackage holds BenchmarkHostToolsCall, the whole host in one process.
const hostPackage = "github.com/agenthost/agenthost/runtime/host"

// profileShare is a part of the host and the share of the CPU samples of
// a profiled run spent in it (cumulative).
type profileShare struct {
	Part  string
	Share map[int]float64 // by workers; -1 when the part was not seen
}

// hostProfile is what the profiled runs of BenchmarkHostToolsCall show:
// where CPU goes, and how much of the handlers' blocked time is the wait
// for the audit commit.
type hostProfile struct {
	Workers    []int
	CPU        []profileShare
	AuditWait  map[int]float64 // share of the handlers' blocked time
	Calls      map[int]string  // the benchmark's own result line
	Note       string
	Benchtime  string
	Reproduced string // the command, for the report
}

// profileParts are the functions whose cumulative CPU share the report
// names, in the order it names them; each regexp matches a pprof -top
// symbol.
var profileParts = []struct {
	part string
	re   *regexp.Regexp
}{
	{"HTTP serving of tools/call, whole (net/http conn.serve)", regexp.MustCompile(`^net/http\.\(\*conn\)\.serve$`)},
	{"  mcp-go's Streamable HTTP handling (with the tool handler it calls: audit records, the tool)", regexp.MustCompile(`^github\.com/mark3labs/mcp-go/server\.\(\*StreamableHTTPServer\)\.ServeHTTP$`)},
	{"  token verification (cached)", regexp.MustCompile(`credentials/oauth/resource\.\(\*Verifier\)\.Authenticate$`)},
	{"  Cedar policy decision", regexp.MustCompile(`runtime/policy\.\(\*Engine\)\.Decide$`)},
	{"audit committer, whole (audit Log.run)", regexp.MustCompile(`runtime/audit\.\(\*Log\)\.run$`)},
	{"  SQLite transactions (records, seals, hashes)", regexp.MustCompile(`runtime/store/sqlitestore\.\(\*Store\)\.tx$`)},
	{"  the seal's Ed25519 signature", regexp.MustCompile(`runtime/audit\.\(\*Log\)\.signTree$`)},
	{"garbage collector (background marking)", regexp.MustCompile(`^runtime\.gcBgMarkWorker$`)},
	{"the in-process load generator (HTTP client)", regexp.MustCompile(`^net/http\.\(\*persistConn\)\.(readLoop|writeLoop)$`)},
}

// profileHost runs BenchmarkHostToolsCall's host case at each worker
// count with CPU and block profiles, and reads them with go tool pprof.
func profileHost(ctx context.Context, goBin, dir, benchtime string, workers []int) (*hostProfile, error) {
	hp := &hostProfile{Workers: workers, AuditWait: map[int]float64{}, Calls: map[int]string{}, Benchtime: benchtime}
	testBin := filepath.Join(dir, "host.test")
	shares := map[string]map[int]float64{}
	for _, w := range workers {
		cpu, block := filepath.Join(dir, fmt.Sprintf("cpu-%d.out", w)), filepath.Join(dir, fmt.Sprintf("block-%d.out", w))
		cmd := exec.CommandContext(ctx, goBin, "test", "-run", "^$",
			"-bench", fmt.Sprintf("^BenchmarkHostToolsCall$/^host$/^workers=%d$", w),
			"-benchtime", benchtime, "-count", "1", "-cpuprofile", cpu, "-blockprofile", block, "-o", testBin, hostPackage)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, truncate(string(out), 4000))
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "BenchmarkHostToolsCall/host/") {
				hp.Calls[w] = strings.Join(strings.Fields(line)[1:], " ")
			}
		}
		top, err := pprofTop(ctx, goBin, testBin, cpu)
		if err != nil {
			return nil, err
		}
		for _, p := range profileParts {
			if shares[p.part] == nil {
				shares[p.part] = map[int]float64{}
			}
			shares[p.part][w] = top.share(p.re)
		}
		btop, err := pprofTop(ctx, goBin, testBin, block)
		if err != nil {
			return nil, err
		}
		served := btop.value(regexp.MustCompile(`^net/http\.\(\*conn\)\.serve$`))
		waited := btop.value(regexp.MustCompile(`runtime/audit\.\(\*Log\)\.Append$`))
		hp.AuditWait[w] = -1
		if served > 0 {
			hp.AuditWait[w] = waited / served
		}
	}
	for _, p := range profileParts {
		hp.CPU = append(hp.CPU, profileShare{Part: p.part, Share: shares[p.part]})
	}
	hp.Reproduced = fmt.Sprintf("go test -run '^$' -bench 'HostToolsCall/host/workers=N' -benchtime %s -cpuprofile cpu.out -blockprofile block.out ./runtime/host", benchtime)
	return hp, nil
}

// pprofRow is one line of go tool pprof -top -cum: the cumulative value
// and its share of the total.
type pprofRow struct {
	cum   float64 // in the profile's unit (seconds for CPU and delay)
	share float64 // 0..1
}

type pprofTable map[string]pprofRow

// share is the largest cumulative share among the symbols re matches,
// or -1 if none matched.
func (t pprofTable) share(re *regexp.Regexp) float64 {
	best := -1.0
	for name, row := range t {
		if re.MatchString(name) && row.share > best {
			best = row.share
		}
	}
	return best
}

// value is the largest cumulative value among the symbols re matches.
func (t pprofTable) value(re *regexp.Regexp) float64 {
	best := 0.0
	for name, row := range t {
		if re.MatchString(name) && row.cum > best {
			best = row.cum
		}
	}
	return best
}

func pprofTop(ctx context.Context, goBin, bin, profile string) (pprofTable, error) {
	cmd := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-cum", "-nodecount=2000", "-unit=s", bin, profile)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return parsePprofTop(out), nil
}

// parsePprofTop reads the rows of go tool pprof -top output:
// "flat flat% sum% cum cum% name".
func parsePprofTop(out []byte) pprofTable {
	t := pprofTable{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") || !strings.HasSuffix(f[1], "%") {
			continue
		}
		cum, err1 := strconv.ParseFloat(strings.TrimSuffix(f[3], "s"), 64)
		pct, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		if row, ok := t[name]; !ok || row.share < pct/100 {
			t[name] = pprofRow{cum: cum, share: pct / 100}
		}
	}
	return t
}
