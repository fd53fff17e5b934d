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
	var configPath, listen string
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a config file without starting anything",
		Long: `validate decodes the config strictly and checks every value. It prints every
problem it finds, one per line as FILE:LINE:COL: key: message, and exits with
status 2 if there is any.

--listen ADDR checks the config as "agenthost up --listen ADDR" would run it:
with ADDR in place of listen.address.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				configPath = args[0]
			}
			cfg, err := loadConfig(cmd, configPath, listen)
			if err != nil {
				return reportConfigError(cmd.ErrOrStderr(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (version %d, trust domain %s, listening on %s, issuer %s)\n",
				configPath, cfg.Version, cfg.TrustDomain, cfg.Listen.Address, cfg.IssuerURL())
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file to check")
	addListenFlag(cmd, &listen)
	return cmd
}

// addListenFlag adds the --listen flag of up and validate to cmd.
func addListenFlag(cmd *cobra.Command, listen *string) {
	cmd.Flags().StringVar(listen, "listen", "", "`ADDR` (host:port) to listen on instead of the config's listen.address")
}

// loadConfig loads the config file at path, with listen in place of its
// listen.address when cmd was given --listen. A bad --listen is a usage
// error; a problem with the address it gave says it came from --listen.
func loadConfig(cmd *cobra.Command, path, listen string) (*config.Config, error) {
	var o config.LoadOptions
	if cmd.Flags().Changed("listen") {
		addr, err := config.ParseAddress(listen)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: --listen: %w", cmd.CommandPath(), err)}
		}
		o.ListenAddress = addr
	}
	cfg, err := config.LoadWith(path, o)
	var errs config.Errors
	if o.ListenAddress != "" && errors.As(err, &errs) {
		for _, e := range errs {
			if e.Path == "listen.address" {
				e.Message += " (the address is from --listen)"
			}
		}
	}
	return cfg, err
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
