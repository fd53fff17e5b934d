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
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the running host's agents: identity, state, pid, restarts, SVID expiry, sandbox",
		Long: `agents lists the agents of the host running on --data-dir: identity, state,
pid, restarts, when the SVID expires, sandbox level and the last error; then,
for each running agent, exactly which protections contain it and which this
host cannot give.

-o json prints one JSON object instead, {"agents": [...]} (see the README,
Commands).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := host.ReadRunInfo(g.dataDir); err != nil {
				return err
			}
			agents, err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).Agents(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.isJSON() {
				return writeJSON(out, agentsJSON{Agents: toAgentsJSON(agents)})
			}
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
	output = addOutputFlag(cmd)
	return cmd
}

// agentsJSON is what agents -o json prints.
type agentsJSON struct {
	Agents []agentJSON `json:"agents"`
}

// agentJSON is one agent in agents -o json. Every key is always present.
type agentJSON struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
	// State is starting, running, backoff, failed, quarantined or stopped.
	State string `json:"state"`
	// PID is the plugin's process id, 0 when it does not run.
	PID      int       `json:"pid"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since"`
	// SVIDExpiresAt is null when the agent holds no SVID.
	SVIDExpiresAt *time.Time `json:"svid_expires_at"`
	// SandboxLevel is strict or none, "" when the agent does not run;
	// Sandbox says which protections contain it, SandboxMissing which
	// ones this host cannot give.
	SandboxLevel   string   `json:"sandbox_level"`
	Sandbox        string   `json:"sandbox"`
	SandboxMissing []string `json:"sandbox_missing"`
	LastError      string   `json:"last_error"`
	Description    string   `json:"description"`
	Version        string   `json:"version"`
	Skills         []string `json:"skills"`
}

func toAgentsJSON(agents []localapi.AgentInfo) []agentJSON {
	out := make([]agentJSON, 0, len(agents))
	for _, a := range agents {
		level, _, _ := strings.Cut(a.Sandbox, ":")
		j := agentJSON{Name: a.Name, Identity: a.Identity, State: a.State, PID: a.PID, Restarts: a.Restarts, Since: a.Since,
			SVIDExpiresAt: a.SVIDExpiresAt, SandboxLevel: level, Sandbox: a.Sandbox, SandboxMissing: a.SandboxMissing,
			LastError: a.LastError, Description: a.Description, Version: a.Version, Skills: a.Skills}
		if j.SandboxMissing == nil {
			j.SandboxMissing = []string{}
		}
		if j.Skills == nil {
			j.Skills = []string{}
		}
		out = append(out, j)
	}
	return out
}
