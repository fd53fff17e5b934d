package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the host running on --data-dir and check its health",
		Args:  maxArgs(0),
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
				fmt.Fprintf(out, "health        unreachable: %v\n", err)
				return silentExit{exitFailure}
			}
			fmt.Fprintf(out, "health        %s\n", health)
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

func trimNL(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b)
}
