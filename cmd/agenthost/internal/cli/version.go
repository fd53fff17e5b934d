package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCommand(_ *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agenthost version",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agenthost %s\n", version)
			fmt.Fprintf(out, "go        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						fmt.Fprintf(out, "revision  %s\n", s.Value)
					}
				}
			}
			return nil
		},
	}
}
