package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/host"
)

func newUpCommand(g *globalFlags) *cobra.Command {
	var (
		configPath      string
		unsafeNoSandbox bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the host",
		Long: `up loads the config, creates or loads the trust domain and every store in the
data directory, and serves until SIGINT or SIGTERM, then shuts down cleanly.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configPath)
			if err != nil {
				return reportConfigError(cmd.ErrOrStderr(), err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			h, err := host.New(ctx, host.Options{
				Config:          cfg,
				DataDir:         g.dataDir,
				Version:         version,
				Stdout:          cmd.OutOrStdout(),
				Stderr:          cmd.ErrOrStderr(),
				UnsafeNoSandbox: unsafeNoSandbox,
			})
			if err != nil {
				return err
			}
			if err := h.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file")
	cmd.Flags().BoolVar(&unsafeNoSandbox, "unsafe-no-sandbox", false,
		"allow plugins whose sandbox level is none to start uncontained (debugging only; audited)")
	return cmd
}
