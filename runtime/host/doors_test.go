package host

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/plugins/sandbox/sandboxtest"
	"github.com/agenthost/agenthost/plugins/sdk"
	"github.com/agenthost/agenthost/runtime/audit"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// The probe agent (testAgentEnv "probe") tries the host's doors from its
// plugin process and from a child of it (testAgentEnv "probe-client"),
// and answers each task with what it saw as a probeResult in JSON.
const (
	// probeAdminEnv holds the admin socket's path.
	probeAdminEnv = "AGENTHOST_HOST_TEST_ADMIN_SOCKET"
	// probeModeEnv tells a probe client what to try: probeAdmin or
	// probeSVID.
	probeModeEnv = "AGENTHOST_HOST_TEST_PROBE"

	probeAdmin = "admin" // GET /v1/agents on the admin socket
	probeSVID  = "svid"  // fetch the X.509-SVID from SPIFFE_ENDPOINT_SOCKET
)

// probeResult is what a probe saw.
type probeResult struct {
	PID    int    `json:"pid"`
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	ID     string `json:"id,omitempty"`
	// X509 is the X.509-SVID chain in PEM, JWT a JWT-SVID.
	X509  string `json:"x509,omitempty"`
	JWT   string `json:"jwt,omitempty"`
	Error string `json:"error,omitempty"`
}

// probeAgent runs one probe per task. Its input is:
//
//	admin          call the admin API from the plugin process
//	admin-child    the same from a child of the plugin process
//	svid-child     fetch the agent's X.509-SVID from a child of the plugin process
//	svids AUDIENCE fetch the X.509-SVID and a JWT-SVID for AUDIENCE
type probeAgent struct{}

func (probeAgent) Describe() sdk.Description { return sdk.Description{Name: "probe"} }

func (probeAgent) Run(ctx context.Context, t *sdk.Task) (string, error) {
	var res probeResult
	switch cmd, arg, _ := strings.Cut(t.Input, " "); cmd {
	case "admin":
		res = probeAdminAPI(ctx)
	case "admin-child":
		res = probeChild(ctx, probeAdmin)
	case "svid-child":
		res = probeChild(ctx, probeSVID)
	case "svids":
		res = probeSVIDs(ctx, arg)
	default:
		return "", fmt.Errorf("unknown probe %q", t.Input)
	}
	b, err := json.Marshal(res)
	return string(b), err
}

// runProbeClient is the process a probe starts (testAgentEnv
// "probe-client"): it tries what probeModeEnv says and prints the result.
func runProbeClient() int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var res probeResult
	switch mode := os.Getenv(probeModeEnv); mode {
	case probeAdmin:
		res = probeAdminAPI(ctx)
	case probeSVID:
		res = probeResult{PID: os.Getpid()}
		svid, err := spiffewl.FetchX509SVID(ctx, spiffewl.WithAddr(os.Getenv("SPIFFE_ENDPOINT_SOCKET")))
		if err != nil {
			res.Error = err.Error()
		} else {
			res.ID = svid.ID.String()
		}
	default:
		res = probeResult{PID: os.Getpid(), Error: "unknown probe mode " + mode}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// probeAdminAPI calls GET /v1/agents on the admin socket.
func probeAdminAPI(ctx context.Context) probeResult {
	res := probeResult{PID: os.Getpid()}
	path := os.Getenv(probeAdminEnv)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agenthost/v1/agents", nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp, err := hc.Do(req)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	res.Status, res.Body = resp.StatusCode, string(b)
	return res
}

// probeChild runs a copy of this binary as a probe client in mode and
// returns what it saw.
func probeChild(ctx context.Context, mode string) probeResult {
	exe, err := os.Executable()
	if err != nil {
		return probeResult{PID: os.Getpid(), Error: err.Error()}
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), testAgentEnv+"=probe-client", probeModeEnv+"="+mode)
	out, err := cmd.Output()
	if err != nil {
		return probeResult{PID: os.Getpid(), Error: fmt.Sprintf("probe child: %v (output %q)", err, out)}
	}
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		return probeResult{PID: os.Getpid(), Error: fmt.Sprintf("probe child printed %q", out)}
	}
	return res
}

// probeSVIDs fetches the agent's X.509-SVID and a JWT-SVID for audience
// with a stock go-spiffe client.
func probeSVIDs(ctx context.Context, audience string) probeResult {
	res := probeResult{PID: os.Getpid()}
	addr := spiffewl.WithAddr(os.Getenv("SPIFFE_ENDPOINT_SOCKET"))
	x, err := spiffewl.FetchX509SVID(ctx, addr)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.ID = x.ID.String()
	var chain strings.Builder
	for _, c := range x.Certificates {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	res.X509 = chain.String()
	j, err := spiffewl.FetchJWTSVID(ctx, jwtsvid.Params{Audience: audience}, addr)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.JWT = j.Marshal()
	return res
}

// probeConfig is a config with the probe agent, which knows where the
// admin socket of dataDir is.
func probeConfig(t *testing.T, dataDir string) *config.Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Agents = []config.AgentConfig{{Name: "probe", Path: exe, Env: map[string]string{
		testAgentEnv:  "probe",
		probeAdminEnv: filepath.Join(dataDir, localapi.SocketName),
	}}}
	return cfg
}

// sandboxedPID returns, for the process the host started for a plugin
// (its sandbox's init), the plugin process's pid as the host sees it and
// as the plugin sees it in its own PID namespace.
func sandboxedPID(t *testing.T, supervised int) (host, inner int) {
	t.Helper()
	if kids := sandboxtest.Children(supervised); len(kids) > 0 {
		host = kids[0]
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", host))
	if host == 0 || err != nil {
		t.Fatalf("pid %d has no plugin child: %v", supervised, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			inner, _ = strconv.Atoi(f[len(f)-1])
		}
	}
	return host, inner
}

// waitPluginPID waits until agent runs and returns its plugin process's pid.
func waitPluginPID(ctx context.Context, t *testing.T, dataDir, agent string) int {
	t.Helper()
	client := localapi.NewClient(filepath.Join(dataDir, localapi.SocketName))
	for {
		agents, err := client.Agents(ctx)
		for _, a := range agents {
			if a.Name == agent && a.State == "running" && a.PID != 0 {
				return a.PID
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("agent %s never running: %+v, %v", agent, agents, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runProbe runs input as a task of the probe agent and decodes its answer.
func runProbe(ctx context.Context, t *testing.T, h *Host, input string) probeResult {
	t.Helper()
	var final string
	err := h.RunTask(ctx, localapi.TaskRequest{Agent: "probe", Input: input}, func(ev localapi.TaskEvent) error {
		switch ev.Type {
		case "final":
			final = ev.Text
		case "error":
			t.Errorf("probe %q: agent error: %s", input, ev.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("probe %q: %v", input, err)
	}
	var res probeResult
	if err := json.Unmarshal([]byte(final), &res); err != nil {
		t.Fatalf("probe %q answered %q: %v", input, final, err)
	}
	return res
}

// wantForbidden checks that a probe of the admin API got 403 with an error
// containing want.
func wantForbidden(t *testing.T, who string, res probeResult, want string) {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if res.Error != "" || res.Status != http.StatusForbidden || json.Unmarshal([]byte(res.Body), &body) != nil ||
		!strings.Contains(body.Error, want) {
		t.Errorf("%s (pid %d) on the admin API: %d %s %s; want 403 with an error containing %q",
			who, res.PID, res.Status, res.Body, res.Error, want)
	}
}

// dataDirSockets lists the sockets in dir, relative to it.
func dataDirSockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSocket != 0 {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// refusalRecords returns the audit records with action.
func refusalRecords(ctx context.Context, t *testing.T, h *Host, action string) []audit.Record {
	t.Helper()
	entries, err := h.AuditRead(ctx, 0, localapi.MaxRecordsLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, e := range entries {
		if e.Record.Action == action {
			out = append(out, e.Record)
		}
	}
	return out
}

// countReasons counts the records whose reason starts with prefix.
func countReasons(recs []audit.Record, prefix string) int {
	n := 0
	for _, r := range recs {
		if strings.HasPrefix(r.Reason, prefix) {
			n++
		}
	}
	return n
}

// TestDoors: the host serves no socket for its own identity; the admin API
// refuses the agent's plugin process, its child and a process the host
// started, and still serves the host's own client; the agent's Workload API
// socket admits the plugin's child and refuses the host; each refusal is
// audited once per process and door.
func TestDoors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	// The doors must hold on their own, so the plugin runs uncontained
	// here, where it can reach them; in its sandbox it sees neither the
	// admin socket nor the host (TestSandboxedAgentCannotEscape).
	cfg := probeConfig(t, dir)
	cfg.Agents[0].Sandbox.Level = config.SandboxNone
	h := runHostWith(t, Options{Config: cfg, DataDir: dir, UnsafeNoSandbox: true})
	pluginPID := waitPluginPID(ctx, t, dir, "probe")
	euid := os.Geteuid()
	adminSock := filepath.Join(dir, localapi.SocketName)

	// The only sockets are the admin API and the agent's own.
	if got, want := dataDirSockets(t, dir), []string{localapi.SocketName, filepath.Join(workloadDirName, "probe.sock")}; !slices.Equal(got, want) {
		t.Errorf("sockets in the data directory = %q, want %q", got, want)
	}

	// The plugin process itself, three times in a row.
	for range 3 {
		res := runProbe(ctx, t, h, "admin")
		if res.PID != pluginPID {
			t.Fatalf("probe ran in pid %d, want the plugin process %d", res.PID, pluginPID)
		}
		wantForbidden(t, "the plugin process", res, fmt.Sprintf("pid %d is the plugin process of agent probe", pluginPID))
	}

	// A child of the plugin process.
	child := runProbe(ctx, t, h, "admin-child")
	if child.PID == pluginPID || child.PID == 0 {
		t.Fatalf("the child probe ran in pid %d", child.PID)
	}
	wantForbidden(t, "the plugin's child", child,
		fmt.Sprintf("pid %d descends from pid %d, the plugin process of agent probe", child.PID, pluginPID))

	// A process the host started that is no plugin.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), testAgentEnv+"=probe-client", probeModeEnv+"="+probeAdmin, probeAdminEnv+"="+adminSock)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("host's child: %v (%q)", err, out)
	}
	var hostChild probeResult
	if err := json.Unmarshal(out, &hostChild); err != nil {
		t.Fatalf("host's child printed %q", out)
	}
	wantForbidden(t, "the host's child", hostChild,
		fmt.Sprintf("pid %d descends from the host (pid %d)", hostChild.PID, os.Getpid()))

	// The host's own client is served.
	if agents, err := localapi.NewClient(adminSock).Agents(ctx); err != nil || len(agents) != 1 {
		t.Fatalf("the host's own admin client: %+v, %v", agents, err)
	}

	// The agent's socket admits the plugin's child and refuses the host.
	svid := runProbe(ctx, t, h, "svid-child")
	if svid.Error != "" || svid.ID != "spiffe://test.local/agent/probe" || svid.PID == pluginPID {
		t.Errorf("the plugin's child on the agent's socket: %+v", svid)
	}
	_, err = spiffewl.FetchX509SVID(ctx, spiffewl.WithAddr("unix://"+filepath.Join(dir, workloadDirName, "probe.sock")))
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("the host on the agent's socket: %v, want PermissionDenied", err)
	}

	// A peer whose parent chain cannot be followed (no such process, or
	// not visible in the host's pid namespace) is refused, never admitted.
	for _, p := range []workloadapi.Peer{{PID: 1 << 30, UID: euid}, {PID: 0, UID: euid}} {
		if err := h.checkAgentPeer("probe", p); err == nil || !strings.Contains(err.Error(), "is not known to descend") {
			t.Errorf("checkAgentPeer(probe, pid %d) = %v, want a refusal", p.PID, err)
		}
	}
	if err := h.checkAgentPeer("probe", workloadapi.Peer{PID: pluginPID, UID: euid}); err != nil {
		t.Errorf("checkAgentPeer(probe, the plugin process) = %v", err)
	}

	// Audit: one record per refused process and door.
	admin := refusalRecords(ctx, t, h, audit.ActionAdminAPI)
	for _, tt := range []struct {
		who string
		pid int
	}{{"plugin process", pluginPID}, {"plugin's child", child.PID}, {"host's child", hostChild.PID}} {
		if n := countReasons(admin, fmt.Sprintf("pid %d uid %d: ", tt.pid, euid)); n != 1 {
			t.Errorf("%d admin.connect records of the %s (pid %d), want 1: %+v", n, tt.who, tt.pid, admin)
		}
	}
	if len(admin) != 3 {
		t.Errorf("%d admin.connect records, want 3: %+v", len(admin), admin)
	}
	for _, r := range admin {
		if r.Resource != adminSock || r.Decision != audit.DecisionDeny || r.Outcome != audit.OutcomeDenied {
			t.Errorf("admin.connect record %+v, want resource %s, decision deny, outcome denied", r, adminSock)
		}
	}
	wl := refusalRecords(ctx, t, h, audit.ActionWorkloadAPI)
	if len(wl) != 1 || wl[0].Resource != "spiffe://test.local/agent/probe" || wl[0].Decision != audit.DecisionDeny ||
		wl[0].Outcome != audit.OutcomeDenied ||
		!strings.HasPrefix(wl[0].Reason, fmt.Sprintf("pid %d uid %d: ", os.Getpid(), euid)) ||
		!strings.Contains(wl[0].Reason, "nor a descendant of it") {
		t.Errorf("workloadapi.connect records = %+v, want one refusal of pid %d", wl, os.Getpid())
	}
}

// TestAdminRefusesToolPlugins: a tool plugin's process is refused by the
// admin API's peer check like an agent's; the host itself and processes
// it did not start are admitted.
func TestAdminRefusesToolPlugins(t *testing.T) {
	h := runHost(t, toolPluginConfig(t), filepath.Join(t.TempDir(), "data"))
	var toolPID int
	for pid, name := range h.pluginProcesses() {
		if name == "tool plugin kit" {
			toolPID = pid
		}
	}
	if toolPID == 0 {
		t.Fatalf("no running tool plugin among %v", h.pluginProcesses())
	}
	euid := os.Geteuid()
	tests := []struct {
		name    string
		pid     int
		wantMsg string // empty: admitted
	}{
		{name: "the host", pid: os.Getpid()},
		{name: "the host's parent", pid: os.Getppid()},
		{name: "tool plugin", pid: toolPID, wantMsg: fmt.Sprintf("pid %d is the plugin process of tool plugin kit", toolPID)},
		{name: "no such process", pid: 1 << 30, wantMsg: "cannot be followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.checkAdminPeer(localapi.Peer{PID: tt.pid, UID: euid})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("checkAdminPeer(%d): %v", tt.pid, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("checkAdminPeer(%d) = %v, want an error containing %q", tt.pid, err, tt.wantMsg)
			}
		})
	}
}

func TestDoorLimiter(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the refusal (may be negative)
		door  string
		pid   int
		want  doorNote
	}
	rec := func(suppressed, untracked int) doorNote {
		return doorNote{record: true, suppressed: suppressed, untracked: untracked}
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{
			name: "repeats within the interval are counted in the next record",
			steps: []step{
				{door: "admin", pid: 7, want: rec(0, 0)},
				{after: time.Second, door: "admin", pid: 7},
				{after: 58 * time.Second, door: "admin", pid: 7},
				{after: time.Second - time.Nanosecond, door: "admin", pid: 7},
				{after: time.Nanosecond, door: "admin", pid: 7, want: rec(3, 0)},
				{after: time.Minute, door: "admin", pid: 7, want: rec(0, 0)},
			},
		},
		{
			name: "doors and pids are limited apart",
			steps: []step{
				{door: "admin", pid: 7, want: rec(0, 0)},
				{door: "admin", pid: 8, want: rec(0, 0)},
				{door: "workload a", pid: 7, want: rec(0, 0)},
				{door: "admin", pid: 8},
				{door: "workload a", pid: 7},
			},
		},
		{
			name: "a clock that goes back ends the interval",
			steps: []step{
				{door: "admin", pid: 7, want: rec(0, 0)},
				{door: "admin", pid: 7},
				{after: -time.Second, door: "admin", pid: 7, want: rec(1, 0)},
			},
		},
		{
			name: "a full table counts what it cannot track",
			max:  2,
			steps: []step{
				{door: "admin", pid: 1, want: rec(0, 0)},
				{door: "admin", pid: 2, want: rec(0, 0)},
				{door: "admin", pid: 1},
				{door: "admin", pid: 3},
				{door: "admin", pid: 4},
				// Both entries have expired: pid 1's pending count
				// moves to the untracked ones when it is swept.
				{after: time.Minute, door: "admin", pid: 5, want: rec(0, 3)},
				{door: "admin", pid: 6, want: rec(0, 0)},
				{door: "admin", pid: 7},
				{after: time.Minute, door: "admin", pid: 5, want: rec(0, 1)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			l := newDoorLimiter(func() time.Time { return now })
			if tt.max != 0 {
				l.max = tt.max
			}
			for i, s := range tt.steps {
				now = now.Add(s.after)
				if got := l.note(s.door, s.pid); got != s.want {
					t.Errorf("step %d (%s, pid %d): %+v, want %+v", i, s.door, s.pid, got, s.want)
				}
			}
			if len(l.seen) > l.max {
				t.Errorf("the limiter tracks %d keys, more than %d", len(l.seen), l.max)
			}
		})
	}
}

// TestRefusalAuditText: a refusal record says who was refused and why, and
// how many refusals before it were left out.
func TestRefusalAuditText(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, Options{Config: testConfig(t), DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	// The limiter's own clock; the host's stays real for the audit log.
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.doors = newDoorLimiter(func() time.Time { return now })
	refuse := func(pid int) {
		h.recordRefusal(ctx, refusal{door: doorAdmin, action: audit.ActionAdminAPI, resource: "admin.sock",
			pid: pid, uid: 1000, reason: fmt.Errorf("pid %d is the plugin process of agent a", pid)})
	}
	for range 4 {
		refuse(42)
	}
	now = now.Add(time.Minute)
	refuse(42)
	recs := refusalRecords(ctx, t, h, audit.ActionAdminAPI)
	want := []string{
		"pid 42 uid 1000: pid 42 is the plugin process of agent a",
		"pid 42 uid 1000: pid 42 is the plugin process of agent a; 3 later refusals of pid 42 at this socket within 1m0s of the previous record were not recorded",
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Reason)
		if r.Resource != "admin.sock" || r.Decision != audit.DecisionDeny || r.Outcome != audit.OutcomeDenied || r.Policy != "peer check" {
			t.Errorf("record %+v", r)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("reasons = %q, want %q", got, want)
	}
}

// TestNoHostIdentitySocket: the host serves its own identity on no
// socket; without agents, the admin API is the only socket in the data
// directory.
func TestNoHostIdentitySocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	runHost(t, testConfig(t), dir)
	if got := dataDirSockets(t, dir); !slices.Equal(got, []string{localapi.SocketName}) {
		t.Errorf("sockets in the data directory = %q, want only %s", got, localapi.SocketName)
	}
	if _, err := os.Lstat(filepath.Join(dir, workloadDirName, "host.sock")); !os.IsNotExist(err) {
		t.Errorf("workload/host.sock: %v, want it not to exist", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, workloadDirName))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Errorf("the workload directory holds %q without agents", names)
	}
}
