package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

func newQuarantineCommand(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "quarantine AGENT --reason TEXT",
		Short: "Stop an agent until it is released: no restart, no tasks, no new credentials",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one AGENT, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			if reason == "" {
				return usageError{fmt.Errorf("%s needs --reason", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			if err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).Quarantine(cmd.Context(), args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s quarantined\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the agent is quarantined (recorded in the audit log)")
	return cmd
}

func newReleaseCommand(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "release AGENT --reason TEXT",
		Short: "Lift an agent's quarantine and start it again",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one AGENT, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			if reason == "" {
				return usageError{fmt.Errorf("%s needs --reason", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			if err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).Release(cmd.Context(), args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s released from quarantine\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the quarantine ends (recorded in the audit log)")
	return cmd
}
