package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/policy"
)

func newPolicyCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Reload the running host's Cedar policies, or test policies offline",
		Long: `policy manages the Cedar policies that decide every call an agent makes.
"policy reload" makes the running host re-read its policy directory; "policy
test" checks a policy directory against recorded cases without a running host.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return usageError{fmt.Errorf("%s needs a subcommand (see %s --help)", cmd.CommandPath(), cmd.CommandPath())}
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newPolicyReloadCommand(g), newPolicyTestCommand(g))
	return cmd
}

func newPolicyReloadCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the running host re-read its policy files",
		Long: `reload makes the host running on --data-dir re-read the *.cedar files of its
policy directory and put them in force at once. If a file does not parse (the
error names its file and line) or the set is otherwise invalid, the policies in
force stay and reload exits 1.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := adminClient(g)
			if err != nil {
				return err
			}
			v, err := c.PolicyReload(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy set %s in force\n", v)
			return nil
		},
	}
}

func newPolicyTestCommand(_ *globalFlags) *cobra.Command {
	var dir, configPath string
	cmd := &cobra.Command{
		Use:   "test CASESFILE [--dir POLICYDIR | --config FILE]",
		Short: "Check Cedar policies against recorded decision cases, offline",
		Long: `test loads the *.cedar files of a policy directory the way the host does,
decides the request of every case of CASESFILE and compares the decision with
the case's expectation. No running host is needed. The directory is --dir, or
else the policy.dir of the config file (--config, by default agenthost.yaml in
the current directory).

CASESFILE is a JSON array of cases, or an object {"cases": [...]}:

  [{"name": "reader may read",
    "request": {"principal": {"name": "reader"}, "action": "tool.call",
                "resource": "notes/read", "scopes": ["notes:read"],
                "attestation": "verified", "context": {"amount": 5}},
    "expect": "allow", "policies": ["notes-read"]}]

expect is "allow", "deny" or "approval_required"; policies, when given, must be
exactly the IDs of the policies that determined the decision.

It prints "PASS NAME" or "FAIL NAME: WHY" for each case, then a summary, and
exits 1 if a case failed or a policy file does not parse.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes one CASESFILE, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			if dir != "" && cmd.Flags().Changed("config") {
				return usageError{fmt.Errorf("%s takes --dir or --config, not both", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				cfg, err := config.Load(configPath)
				if err != nil {
					return reportConfigError(cmd.ErrOrStderr(), err)
				}
				if cfg.Policy.Dir == "" {
					return usageError{fmt.Errorf("%s: %s sets no policy.dir; give the policy directory with --dir", cmd.CommandPath(), configPath)}
				}
				dir = cfg.Policy.Dir
			}
			cases, err := policy.LoadCases(args[0])
			if err != nil {
				return usageError{err}
			}
			engine, err := policy.Load(dir)
			if err != nil {
				return fmt.Errorf("policy directory %s: %w", dir, err)
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range policy.RunCases(cmd.Context(), engine, cases) {
				if r.Pass {
					fmt.Fprintf(out, "PASS %s\n", r.Name)
					continue
				}
				failed++
				fmt.Fprintf(out, "FAIL %s: %s\n", r.Name, r.Why)
			}
			fmt.Fprintf(out, "%d cases, %d passed, %d failed\n", len(cases), len(cases)-failed, failed)
			if failed > 0 {
				return silentExit{exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the *.cedar policy files to test (default: policy.dir of the config file)")
	cmd.Flags().StringVarP(&configPath, "config", "c", defaultConfigFile, "config file whose policy.dir to test, when --dir is not given")
	return cmd
}
