package plugins

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/sandbox"
)

// pluginBuildFlags are the Makefile's flags for the example plugins
// (PLUGIN_BUILD): a static binary without gRPC's request tracing.
var pluginBuildFlags = []string{"-tags", "grpcnotrace"}

// BenchmarkIdleAgentMemory measures what an idle example agent costs: it
// builds examples/agents/research as the Makefile does (and, for
// comparison, with a plain go build), starts it in its sandbox, waits for
// Describe and a moment of quiet, and reports the plugin process's
// resident set (RSS), its anonymous memory (heap, stacks: what no other
// process shares) and its proportional set (PSS), and the sandbox init's
// anonymous memory, in MiB:
//
//	go test -run '^$' -bench IdleAgentMemory -benchtime 3x ./plugins
func BenchmarkIdleAgentMemory(b *testing.B) {
	builds := []struct {
		name  string
		env   []string
		flags []string
	}{
		{"build=make", []string{"CGO_ENABLED=0"}, pluginBuildFlags},
		{"build=plain", nil, nil},
	}
	for _, bd := range builds {
		b.Run(bd.name, func(b *testing.B) {
			bin := filepath.Join(b.TempDir(), "research")
			args := append(append([]string{"build"}, bd.flags...), "-o", bin, "../examples/agents/research")
			cmd := exec.Command("go", args...)
			cmd.Env = append(os.Environ(), bd.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("go build: %v\n%s", err, out)
			}
			sum := fileDigest(b, bin)
			ctx := context.Background()
			var rss, anon, pss, helper float64
			for b.Loop() {
				p, err := Launch(ctx, Config{Name: "research", Path: bin, SHA256: sum, Host: &recordingHost{},
					Sandbox: sandbox.Policy{Level: benchLevels[0]}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Describe(ctx); err != nil {
					p.Kill()
					b.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond)
				pid := p.PID()
				if p.Sandbox().Level != sandbox.LevelNone {
					helper += memoryOf(b, pid)["Anonymous"]
					pid = onlyChild(b, pid)
				}
				m := memoryOf(b, pid)
				rss, anon, pss = rss+m["Rss"], anon+m["Anonymous"], pss+m["Pss"]
				p.Kill()
			}
			n := float64(b.N) * 1024
			b.ReportMetric(rss/n, "RSS-MiB")
			b.ReportMetric(anon/n, "anon-MiB")
			b.ReportMetric(pss/n, "PSS-MiB")
			b.ReportMetric(helper/n, "init-anon-MiB")
		})
	}
}

func fileDigest(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// memoryOf reads a process's /proc/<pid>/smaps_rollup, in KiB by field.
func memoryOf(t testing.TB, pid int) map[string]float64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.ParseFloat(fields[1], 64)
			m[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	return m
}

// onlyChild is the one child of the sandbox init pid: the plugin.
func onlyChild(t testing.TB, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		t.Fatal(err)
	}
	kids := strings.Fields(string(data))
	if len(kids) != 1 {
		t.Fatalf("sandbox init %d has children %v, want one", pid, kids)
	}
	child, _ := strconv.Atoi(kids[0])
	return child
}
