package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is one unit of utime and stime in /proc/<pid>/stat: 1/CLK_TCK
// seconds, and CLK_TCK is 100 on every Linux platform Go supports.
const clockTick = 10 * time.Millisecond

// percentile returns the p-th quantile (0 < p ≤ 1) of sorted by the
// nearest-rank method, or 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencies merges per-worker samples and sorts them.
func latencies(perWorker [][]time.Duration) []time.Duration {
	var n int
	for _, s := range perWorker {
		n += len(s)
	}
	all := make([]time.Duration, 0, n)
	for _, s := range perWorker {
		all = append(all, s...)
	}
	slices.Sort(all)
	return all
}

// parseStatCPU returns utime+stime, the CPU time a process used in user
// and kernel mode, from the content of /proc/<pid>/stat (proc(5)). The
// command name, field 2, is in parentheses and may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", truncate(string(stat), 80))
	}
	// Fields after the name start at field 3 (state); utime is field 14
	// and stime field 15.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("only %d fields after the command name", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// processCPU is the CPU time process pid ("self" for this one) has used.
func processCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	d, err := parseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return d, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
