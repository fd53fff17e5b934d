package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
)

// statusPollEvery is how often status --wait asks the host again.
const statusPollEvery = 200 * time.Millisecond

func newStatusCommand(g *globalFlags) *cobra.Command {
	var (
		output *outputFormat
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the host running on --data-dir, check its health and whether its agents have started",
		Long: `status shows the host running on --data-dir, checks its health (/healthz) and
says whether it is ready (/readyz): ready once every agent is running or has
failed or been quarantined, not ready while the host is still starting or
restarting an agent, which it names. It exits 1 when no host runs or it
does not answer, 0 otherwise (also while not ready).

--wait DURATION (for example --wait 60s) first waits, asking every 200ms,
until a host runs on --data-dir, answers /healthz and says it is ready, then
shows it and exits 0: a script can start "agenthost up" in the background
and go on once the host is ready. If DURATION passes first, status shows
what it found last (the host, or that none runs), says on stderr that it
waited DURATION and why the host is not ready, and exits 1. The default, 0,
does not wait.

-o json prints one JSON object instead (see the README, Commands): the run
information, "health" and "ready" (null when the host did not answer).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait < 0 {
				return usageError{fmt.Errorf("%s: --wait must not be negative, got %s", cmd.CommandPath(), wait)}
			}
			st, err := waitStatus(cmd.Context(), g.dataDir, wait)
			if err != nil {
				if wait > 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("waited %s for a host to be ready on %s: %w", wait, g.dataDir, err)
				}
				return err
			}
			out := cmd.OutOrStdout()
			if output.isJSON() {
				if err := writeJSON(out, st); err != nil {
					return err
				}
			} else {
				writeStatusText(out, st)
			}
			if wait > 0 && !st.ready() {
				return fmt.Errorf("waited %s for the host on %s to be ready: %s", wait, g.dataDir, st.notReadyReason())
			}
			if !st.Health.OK {
				return silentExit{exitFailure}
			}
			return nil
		},
	}
	output = addOutputFlag(cmd)
	cmd.Flags().DurationVar(&wait, "wait", 0, "how long to wait for a host on --data-dir to run and be ready (0: do not wait)")
	return cmd
}

// waitStatus returns the status of the host on dataDir once it is ready, or
// the last status (or why there is none) when wait has passed; with wait 0
// it returns the first. It returns ctx's error if ctx ends first.
func waitStatus(ctx context.Context, dataDir string, wait time.Duration) (statusJSON, error) {
	if wait == 0 {
		return readStatus(ctx, dataDir, host.ReadRunInfo)
	}
	deadline := time.Now().Add(wait)
	// A host that stops answering holds each request up to its timeout:
	// none goes on more than a second past the wait.
	rctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Second))
	defer cancel()
	for {
		st, err := readStatus(rctx, dataDir, readRunInfoWaiting)
		if err == nil && st.ready() {
			return st, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return st, err
		}
		t := time.NewTimer(min(statusPollEvery, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return st, fmt.Errorf("status: waiting for the host on %s: %w", dataDir, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// readRunInfoWaiting is host.ReadRunInfo for a host that may be starting.
// Until the host has written its run information it says no host runs
// without testing the data directory's lock: a host starting at the very
// moment the lock is tested would find it taken and fail.
func readRunInfoWaiting(dataDir string) (host.RunInfo, error) {
	if _, err := os.Stat(host.RunInfoPath(dataDir)); errors.Is(err, fs.ErrNotExist) {
		return host.RunInfo{}, fmt.Errorf("%w (%s)", host.ErrNotRunning, dataDir)
	}
	return host.ReadRunInfo(dataDir)
}

// readStatus reads the run information of the host on dataDir with
// readInfo, then asks the host's /healthz and /readyz. It returns an error
// only when there is no run information: no host runs.
func readStatus(ctx context.Context, dataDir string, readInfo func(string) (host.RunInfo, error)) (statusJSON, error) {
	info, err := readInfo(dataDir)
	if err != nil {
		return statusJSON{}, err
	}
	st := statusJSON{PID: info.PID, Version: info.Version, TrustDomain: info.TrustDomain, Address: info.Address,
		Issuer: info.Issuer, Started: info.Started}
	health, herr := checkHealth(ctx, info.Issuer+host.PathHealth)
	if herr == nil {
		st.Health = healthJSON{OK: true, Detail: health}
		rd, rerr := checkReady(ctx, info.Issuer+host.PathReady)
		st.Ready = newReadyJSON(rd, rerr)
	} else {
		st.Health.Detail = herr.Error()
	}
	return st, nil
}

// statusJSON is what status -o json prints: the run information of the
// host, the answer of its /healthz, and of its /readyz.
type statusJSON struct {
	PID         int        `json:"pid"`
	Version     string     `json:"version"`
	TrustDomain string     `json:"trust_domain"`
	Address     string     `json:"address"`
	Issuer      string     `json:"issuer"`
	Started     time.Time  `json:"started"`
	Health      healthJSON `json:"health"`
	// Ready is null when the host did not answer /healthz (it is not
	// asked then).
	Ready *readyJSON `json:"ready"`
}

// healthJSON is the answer of /healthz.
type healthJSON struct {
	// OK: /healthz answered 200.
	OK bool `json:"ok"`
	// Detail is the status and body it answered, or why there was no
	// answer.
	Detail string `json:"detail"`
}

// readyJSON is the answer of /readyz.
type readyJSON struct {
	// Known: /readyz gave a readiness answer; Error says why not
	// otherwise, and the other fields are zero.
	Known   bool `json:"known"`
	Ready   bool `json:"ready"`
	Agents  int  `json:"agents"`
	Running int  `json:"running"`
	Down    int  `json:"down"`
	// Starting are the agents still starting, with their state.
	Starting []host.AgentStarting `json:"starting"`
	Error    string               `json:"error"`
}

// ready reports whether the host answered /healthz and /readyz said
// ready.
func (st statusJSON) ready() bool {
	return st.Health.OK && st.Ready != nil && st.Ready.Known && st.Ready.Ready
}

// notReadyReason says on one line why st is not ready.
func (st statusJSON) notReadyReason() string {
	switch r := st.Ready; {
	case !st.Health.OK:
		return "no answer from /healthz: " + st.Health.Detail
	case r == nil:
		return "not asked /readyz"
	case !r.Known:
		return "no readiness answer from /readyz: " + r.Error
	}
	rd := host.Readiness{Status: host.ReadyStatusStarting, Agents: st.Ready.Agents, Running: st.Ready.Running,
		Down: st.Ready.Down, Starting: st.Ready.Starting}
	if len(rd.Starting) == 0 {
		return "not ready (" + agentCounts(rd) + ")"
	}
	return "not ready: " + strings.TrimPrefix(readyText(rd), "no, ")
}

func newReadyJSON(rd host.Readiness, err error) *readyJSON {
	if err != nil {
		return &readyJSON{Error: err.Error(), Starting: []host.AgentStarting{}}
	}
	r := &readyJSON{Known: true, Ready: rd.Ready(), Agents: rd.Agents, Running: rd.Running, Down: rd.Down, Starting: rd.Starting}
	if r.Starting == nil {
		r.Starting = []host.AgentStarting{}
	}
	return r
}

// writeStatusText prints st for people, one field a line.
func writeStatusText(out io.Writer, st statusJSON) {
	fmt.Fprintf(out, "pid           %d\n", st.PID)
	fmt.Fprintf(out, "version       %s\n", st.Version)
	fmt.Fprintf(out, "trust domain  %s\n", st.TrustDomain)
	fmt.Fprintf(out, "listening on  %s\n", st.Address)
	fmt.Fprintf(out, "issuer        %s\n", st.Issuer)
	fmt.Fprintf(out, "up since      %s\n", st.Started.Format(time.RFC3339))
	if !st.Health.OK {
		fmt.Fprintf(out, "health        unreachable: %s\n", escapeControls(st.Health.Detail))
		return
	}
	fmt.Fprintf(out, "health        %s\n", escapeControls(st.Health.Detail))
	switch r := st.Ready; {
	case r == nil:
	case !r.Known:
		fmt.Fprintf(out, "ready         unknown: %s\n", escapeControls(r.Error))
	default:
		rd := host.Readiness{Status: host.ReadyStatusStarting, Agents: r.Agents, Running: r.Running, Down: r.Down, Starting: r.Starting}
		if r.Ready {
			rd.Status = host.ReadyStatusReady
		}
		fmt.Fprintf(out, "ready         %s\n", escapeControls(readyText(rd)))
	}
}

func checkHealth(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return fmt.Sprintf("%s %s", resp.Status, trimNL(body)), nil
}

// checkReady asks the host's /readyz; both its answers (200 ready, 503
// not ready) carry a host.Readiness.
func checkReady(ctx context.Context, url string) (host.Readiness, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var rd host.Readiness
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return rd, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rd, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return rd, fmt.Errorf("%s: %s", resp.Status, trimNL(body))
	}
	if err := json.Unmarshal(body, &rd); err != nil || (rd.Status != host.ReadyStatusReady && rd.Status != host.ReadyStatusStarting) {
		return rd, fmt.Errorf("%s: not a readiness answer: %s", resp.Status, trimNL(body))
	}
	return rd, nil
}

// readyText says what rd says, on one line.
func readyText(rd host.Readiness) string {
	counts := agentCounts(rd)
	if rd.Ready() {
		return "yes (" + counts + ")"
	}
	starting := make([]string, 0, len(rd.Starting))
	for _, a := range rd.Starting {
		starting = append(starting, a.Agent+" ("+a.State+")")
	}
	return "no, still starting " + strings.Join(starting, ", ") + " (" + counts + ")"
}

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}
