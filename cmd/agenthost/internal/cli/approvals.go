package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/runtime/host"
	"github.com/agenthost/agenthost/runtime/localapi"
)

func newApprovalsCommand(g *globalFlags) *cobra.Command {
	var (
		subject string
		output  *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List the approval requests waiting for your decision",
		Long: `approvals lists the requests waiting for a decision of the user signed in
(agenthost login) at the running host's authorization server, or of the user
--for names (as the operator): calls an agent made that policy says need the
user's approval. Each line has the binding message, when the request expires
and the approval page's URL: open it, sign in, and approve or deny. Only the
authorization server's grant counts; the host runs an approved call once.

-o json prints one JSON object instead, {"approvals": [...]} (see the README,
Commands).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := host.ReadRunInfo(g.dataDir)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var token string
			if subject == "" {
				if token, err = signedInToken(ctx, g, info.Issuer); err != nil {
					return err
				}
				if token == "" {
					return usageError{fmt.Errorf("whose approvals? sign in with %s login, or name a user with --for", g.commandPrefix())}
				}
			}
			list, err := localapi.NewClient(filepath.Join(g.dataDir, localapi.SocketName)).PendingApprovals(ctx, subject, token)
			if errors.Is(err, localapi.ErrTokenRefused) {
				return fmt.Errorf("%w; sign in again with %s login", err, g.commandPrefix())
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output.isJSON() {
				return writeJSON(w, approvalsJSON{Approvals: toApprovalsJSON(list)})
			}
			if len(list) == 0 {
				fmt.Fprintln(w, "no approvals pending")
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tREQUEST\tEXPIRES IN\tAPPROVE AT")
			for _, a := range list {
				left := time.Until(a.Expires).Round(time.Second)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", escapeControls(a.User), escapeControls(a.BindingMessage), left,
					escapeControls(a.URL))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&subject, "for", "", "list the requests of this user (as the operator) instead of yours")
	output = addOutputFlag(cmd)
	return cmd
}

// approvalsJSON is what approvals -o json prints.
type approvalsJSON struct {
	Approvals []approvalJSON `json:"approvals"`
}

// approvalJSON is one pending approval request in approvals -o json.
type approvalJSON struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Client string `json:"client"`
	// BindingMessage is what the request says, as the approval page
	// shows it; URL is the approval page.
	BindingMessage string    `json:"binding_message"`
	URL            string    `json:"url"`
	Created        time.Time `json:"created"`
	Expires        time.Time `json:"expires"`
}

func toApprovalsJSON(list []localapi.PendingApproval) []approvalJSON {
	out := make([]approvalJSON, 0, len(list))
	for _, a := range list {
		out = append(out, approvalJSON{ID: a.ID, User: a.User, Client: a.Client, BindingMessage: a.BindingMessage,
			URL: a.URL, Created: a.Created, Expires: a.Expires})
	}
	return out
}
