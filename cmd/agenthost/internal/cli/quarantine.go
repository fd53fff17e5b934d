package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

func newQuarantineCommand(g *globalFlags) *cobra.Command {
	return newRemedyCommand(g, "quarantine", "Stop an agent until it is released: no restart, no tasks, no new credentials",
		"why the agent is quarantined (recorded in the audit log)", "quarantined", (*localapi.Client).Quarantine)
}

func newReleaseCommand(g *globalFlags) *cobra.Command {
	return newRemedyCommand(g, "release", "Lift an agent's quarantine and start it again",
		"why the quarantine ends (recorded in the audit log)", "released from quarantine", (*localapi.Client).Release)
}

// newRemedyCommand builds "NAME AGENT --reason TEXT", which applies a
// remedy to an agent through the admin API and prints "agent AGENT DONE".
func newRemedyCommand(g *globalFlags, name, short, reasonHelp, done string,
	apply func(*localapi.Client, context.Context, string, string) error) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   name + " AGENT --reason TEXT",
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one AGENT, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			if reason == "" {
				return usageError{fmt.Errorf("%s needs --reason", cmd.CommandPath())}
			}
			return nil
		},
		ValidArgsFunction: completeAgent(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			if err := apply(localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)), cmd.Context(), args[0], reason); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s %s\n", args[0], done)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", reasonHelp)
	return cmd
}
