package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/config"
)

const defaultConfigFile = "agenthost.yaml"

func newValidateCommand(_ *globalFlags) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a config file without starting anything",
		Long: `validate decodes the config strictly and checks every value. It prints every
problem it finds, one per line as FILE:LINE:COL: key: message, and exits with
status 2 if there is any.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				configPath = args[0]
			}
			cfg, err := config.Load(configPath)
			if err != nil {
				return reportConfigError(cmd.ErrOrStderr(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (version %d, trust domain %s, listening on %s, issuer %s)\n",
				configPath, cfg.Version, cfg.TrustDomain, cfg.Listen.Address, cfg.IssuerURL())
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file to check")
	return cmd
}

// reportConfigError prints every problem of a config error and returns an
// error that makes the command exit with status 2.
func reportConfigError(w io.Writer, err error) error {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return usageError{err}
	}
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	noun := "problems"
	if len(errs) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "agenthost: config has %d %s\n", len(errs), noun)
	return silentExit{exitUsage}
}
