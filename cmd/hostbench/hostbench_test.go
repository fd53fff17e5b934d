package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.5, 7 * time.Millisecond},
		{"one p99", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p50 of five is the middle", ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p50 of 100", hundred, 0.50, 50 * time.Millisecond},
		{"p100", hundred, 1, 100 * time.Millisecond},
		{"tiny p", hundred, 0.0001, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
	merged := latencies([][]time.Duration{ms(5, 1), nil, ms(3)})
	if !slices.Equal(merged, ms(1, 3, 5)) {
		t.Errorf("latencies = %v", merged)
	}
}

func TestParseStatCPU(t *testing.T) {
	// utime 150 and stime 50 ticks: 2 s. The command name holds spaces
	// and parentheses, as a process may name itself anything.
	stat := "4242 (evil) name) (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 9 0 12345 1000000 500 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 2*time.Second {
		t.Fatalf("parseStatCPU = %v, %v; want 2s", got, err)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 abc 50 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) did not fail", bad)
		}
	}
	// And the real thing.
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if _, err := processCPU("self"); err != nil {
			t.Fatalf("processCPU(self): %v", err)
		}
	}
}

func TestEvaluate(t *testing.T) {
	r := &results{
		Phases: []phase{
			{Server: "bare", Workers: 1, Calls: 1000, Elapsed: time.Second, P50: 80 * time.Microsecond},
			{Server: "host", Workers: 1, Calls: 500, Elapsed: time.Second, P50: 380 * time.Microsecond},
			{Server: "bare", Workers: 64, Calls: 10000, Elapsed: time.Second},
			{Server: "host", Workers: 64, Calls: 6000, Elapsed: time.Second, ServerCPU: 1200 * time.Millisecond},
		},
		FsyncP50:   250 * time.Microsecond, // added p50 limit 350 µs, 1-writer limit 3,200/s
		Audit1:     3000,
		Audit64:    50000,
		PluginRTT:  map[string]time.Duration{"strict": 100 * time.Microsecond},
		PluginTask: map[string]time.Duration{"sandbox=strict": 150 * time.Microsecond, "sandbox=none": 90 * time.Microsecond},
	}
	ts := evaluate(r)
	want := []struct {
		measured float64
		verdict  string
	}{
		{300, "PASS (14% margin)"},      // 380 − 80 ≤ 350
		{0.6, "MISS by 0.10 (-14%)"},    // 6000/10000 ≥ 0.7
		{200, "MISS by 50.0 µs (+33%)"}, // 1.2 s / 6000 ≤ 150
		{3000, "MISS by 200/s (-6%)"},   // ≥ 0.8/250 µs = 3,200/s
		{50000, "PASS (25% margin)"},    // ≥ 40,000/s
		{1.5, "PASS (25% margin)"},      // 150 ÷ 100 ≤ 2
		{0, "not measured"},             // no sandbox=none round trip
	}
	if len(ts) != len(want) {
		t.Fatalf("%d targets, want %d", len(ts), len(want))
	}
	for i, w := range want {
		if d := ts[i].Measured - w.measured; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: measured %v, want %v", ts[i].Name, ts[i].Measured, w.measured)
		}
		if got := ts[i].Verdict(); got != w.verdict {
			t.Errorf("%s: verdict %q, want %q", ts[i].Name, got, w.verdict)
		}
	}
	if got := ts[0].LimitText(); got != "≤ 350 µs (fsync p50 + 100 µs)" {
		t.Errorf("limit text %q", got)
	}
	if got := ts[0].MeasuredText(); got != "300 µs (380 µs − 80.0 µs)" {
		t.Errorf("measured text %q", got)
	}

	// Without the phases a target says why instead of judging.
	none := evaluate(&results{FsyncP50: time.Millisecond})
	if none[0].Missing == "" || none[0].Verdict() != "not measured" || none[1].Missing == "" || none[2].Missing == "" {
		t.Errorf("targets without phases: %+v", none[:3])
	}
	doc := markdown(r, ts)
	for _, s := range []string{"## Machine", "## tools/call phases", "## Targets", "| host | 64 |", "MISS by 50.0 µs"} {
		if !strings.Contains(doc, s) {
			t.Errorf("the document lacks %q", s)
		}
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/agenthost/agenthost/plugins
cpu: Intel(R) Xeon(R) Processor
BenchmarkRunWithHostCall/sandbox=strict-2         	    2000	    198123 ns/op	   23456 B/op	     345 allocs/op
BenchmarkRunWithHostCall/sandbox=none-2           	    2000	    177000.5 ns/op
BenchmarkLaunch/sandbox=none-2                    	      10	  99999999 ns/op
BenchmarkRunWithHostCall                          	      10	       100 ns/op
PASS
ok  	github.com/agenthost/agenthost/plugins	3.1s
`
	got := parseBench([]byte(out), "BenchmarkRunWithHostCall")
	want := map[string]time.Duration{"sandbox=strict": 198123, "sandbox=none": 177000, "": 100}
	if len(got) != len(want) {
		t.Fatalf("parseBench = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseBench[%q] = %v, want %v", k, got[k], v)
		}
	}
}

func TestParseWorkers(t *testing.T) {
	got, err := parseWorkers("1, 16,64,16")
	if err != nil || !slices.Equal(got, []int{1, 16, 64}) {
		t.Fatalf("parseWorkers = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "2000", "-1"} {
		if _, err := parseWorkers(bad); err == nil {
			t.Errorf("parseWorkers(%q) did not fail", bad)
		}
	}
}

func TestCheckAnswer(t *testing.T) {
	ok := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"Sun, 06 Dec 2026 09:12:25 UTC"}]}}`
	if err := checkAnswer(200, []byte(ok)); err != nil {
		t.Errorf("a good answer: %v", err)
	}
	for _, tc := range []struct {
		status int
		body   string
	}{
		{401, `{"error":"invalid_token"}`},
		{200, `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"denied"}],"isError":true}}`},
		{200, `{"jsonrpc":"2.0","id":7,"error":{"code":-32001,"message":"denied"}}`},
	} {
		if err := checkAnswer(tc.status, []byte(tc.body)); err == nil {
			t.Errorf("checkAnswer(%d, %s) accepted it", tc.status, tc.body)
		}
	}
}

func TestBannerLines(t *testing.T) {
	if iss, ok := hostIssuer("  listening on   127.0.0.1:8420 (issuer http://127.0.0.1:8420)"); !ok || iss != "http://127.0.0.1:8420" {
		t.Errorf("hostIssuer = %q, %v", iss, ok)
	}
	if _, ok := hostIssuer("  health         http://127.0.0.1:8420/healthz"); ok {
		t.Error("hostIssuer accepted another banner line")
	}
	if u, ok := parseBareURL(bareLinePrefix + "http://127.0.0.1:1234/mcp"); !ok || u != "http://127.0.0.1:1234/mcp" {
		t.Errorf("parseBareURL = %q, %v", u, ok)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 1234567.8: "1,234,568", -40000: "-40,000"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestParsePprofTop(t *testing.T) {
	out := []byte(`File: host.test
Type: cpu
Showing nodes accounting for 0, 0% of 0.31s total
      flat  flat%   sum%        cum   cum%
         0     0%     0%      0.11s 35.48%  github.com/agenthost/agenthost/runtime/audit.(*Log).run
     0.01s  3.23%  3.23%      0.09s 29.03%  github.com/agenthost/agenthost/runtime/store/sqlitestore.(*Store).tx
         0     0%  3.23%      0.05s 16.13%  net/http.(*conn).serve
`)
	top := parsePprofTop(out)
	if got := top.share(regexp.MustCompile(`runtime/audit\.\(\*Log\)\.run$`)); got < 0.3547 || got > 0.3549 {
		t.Errorf("share of Log.run = %v, want 0.3548", got)
	}
	if got := top.value(regexp.MustCompile(`^net/http\.\(\*conn\)\.serve$`)); got != 0.05 {
		t.Errorf("value of conn.serve = %v, want 0.05", got)
	}
	if got := top.share(regexp.MustCompile(`nothing`)); got != -1 {
		t.Errorf("share of an absent symbol = %v, want -1", got)
	}
}
