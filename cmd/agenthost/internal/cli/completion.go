package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

// completionShells are the shells completion writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

// completionTimeout bounds how long completing an agent name waits for the
// running host: a shell waits for it at every tab.
const completionTimeout = 2 * time.Second

func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion {bash|zsh|fish}",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `completion prints a script that makes your shell complete agenthost's
commands and flags, and the names of the running host's agents where a
command takes one (run, quarantine, release): asked at each completion from
the host running on --data-dir, nothing when none runs. Load it with:

  bash  source <(agenthost completion bash)      (in ~/.bashrc; needs the
        bash-completion package)
  zsh   agenthost completion zsh > "${fpath[1]}/_agenthost"   (then start a
        new shell; compinit must be enabled)
  fish  agenthost completion fish > ~/.config/fish/completions/agenthost.fish`,
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(completionShells, args[0]) {
				return usageError{fmt.Errorf("%s takes one shell: %s", cmd.CommandPath(), strings.Join(completionShells, ", "))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			default:
				return root.GenFishCompletion(out, true)
			}
		},
	}
}

// completeAgent completes a command's first argument with the names of
// the agents of the host running on --data-dir, each with its state as
// the description. When no host runs or it does not answer in time it
// offers nothing, silently; it never offers file names.
func completeAgent(g *globalFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		return agentCompletions(ctx, g.dataDir, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// agentCompletions lists "name\tstate" for the running host's agents whose
// names start with prefix; nil when there is no host or no answer.
func agentCompletions(ctx context.Context, dataDir, prefix string) []cobra.Completion {
	if _, err := host.ReadRunInfo(dataDir); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	agents, err := localapi.NewClient(filepath.Join(dataDir, localapi.SocketName)).Agents(ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, a := range agents {
		if strings.HasPrefix(a.Name, prefix) {
			// A name is one path segment; the state is one of the
			// supervisor's words. Neither holds a tab or a newline.
			out = append(out, cobra.CompletionWithDesc(a.Name, a.State))
		}
	}
	return out
}
