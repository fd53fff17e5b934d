package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the host running on --data-dir, check its health and whether its agents have started",
		Long: `status shows the host running on --data-dir, checks its health (/healthz) and
says whether it is ready (/readyz): ready once every agent is running or has
failed or been quarantined, not ready while the host is still starting or
restarting an agent, which it names. It exits 1 when no host runs or it
does not answer, 0 otherwise (also while not ready).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := host.ReadRunInfo(g.dataDir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "pid           %d\n", info.PID)
			fmt.Fprintf(out, "version       %s\n", info.Version)
			fmt.Fprintf(out, "trust domain  %s\n", info.TrustDomain)
			fmt.Fprintf(out, "listening on  %s\n", info.Address)
			fmt.Fprintf(out, "issuer        %s\n", info.Issuer)
			fmt.Fprintf(out, "up since      %s\n", info.Started.Format(time.RFC3339))
			health, err := checkHealth(cmd.Context(), info.Issuer+host.PathHealth)
			if err != nil {
				fmt.Fprintf(out, "health        unreachable: %s\n", escapeControls(err.Error()))
				return silentExit{exitFailure}
			}
			fmt.Fprintf(out, "health        %s\n", escapeControls(health))
			rd, err := checkReady(cmd.Context(), info.Issuer+host.PathReady)
			if err != nil {
				fmt.Fprintf(out, "ready         unknown: %s\n", escapeControls(err.Error()))
				return nil
			}
			fmt.Fprintf(out, "ready         %s\n", escapeControls(readyText(rd)))
			return nil
		},
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
	counts := fmt.Sprintf("%d of %d agents running", rd.Running, rd.Agents)
	if rd.Down > 0 {
		counts += fmt.Sprintf(", %d failed or quarantined (see agenthost agents)", rd.Down)
	}
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
