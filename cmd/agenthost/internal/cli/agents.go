package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

func newAgentsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "agents",
		Short: "List the running host's agents: identity, state, pid, restarts, SVID expiry, sandbox",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			agents, err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).Agents(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(agents) == 0 {
				fmt.Fprintln(out, "no agents configured")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIDENTITY\tSTATE\tPID\tRESTARTS\tSVID EXPIRES\tSANDBOX\tLAST ERROR")
			for _, a := range agents {
				exp := "-"
				if a.SVIDExpiresAt != nil {
					exp = a.SVIDExpiresAt.Local().Format(time.RFC3339)
				}
				pid := "-"
				if a.PID != 0 {
					pid = fmt.Sprint(a.PID)
				}
				level := "-"
				if a.Sandbox != "" {
					level, _, _ = strings.Cut(a.Sandbox, ":")
				}
				// The last error may quote what the plugin printed (a
				// handshake line it got wrong): one line, escaped.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.Name, a.Identity, a.State, pid, a.Restarts, exp, level, clean(a.LastError))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// What contains each running plugin, exactly.
			first := true
			for _, a := range agents {
				if a.Sandbox == "" {
					continue
				}
				if first {
					fmt.Fprintln(out)
					first = false
				}
				fmt.Fprintf(out, "%s: %s\n", a.Name, a.Sandbox)
				for _, m := range a.SandboxMissing {
					fmt.Fprintf(out, "  missing: %s\n", m)
				}
			}
			return nil
		},
	}
}
