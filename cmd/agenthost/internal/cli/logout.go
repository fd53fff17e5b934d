package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials/oauth/login"
)

func newLogoutCommand(g *globalFlags) *cobra.Command {
	var issuer string
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Sign out: revoke the refresh token and forget the sign-in",
		Long: `logout signs you out of the authorization server of the host running on
--data-dir (or the one --issuer names): it revokes the refresh token at the
server's revocation endpoint (RFC 7009; at the host's own server this revokes
the access tokens issued with it too) and deletes the kept sign-in. The
revocation is best effort: when it fails, logout says so and deletes the
sign-in anyway. Without a sign-in it says so and exits 0.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			iss, err := signInIssuer(g, issuer)
			if err != nil {
				return err
			}
			store, err := signInStore()
			if err != nil {
				return err
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			sess, err := store.Load(iss)
			switch {
			case errors.Is(err, login.ErrNotSignedIn):
				fmt.Fprintf(out, "not signed in to %s\n", escapeControls(iss))
				return nil
			case err != nil:
				// Unreadable, or readable by others: forgotten unrevoked.
				fmt.Fprintf(errw, "could not read the sign-in, so its refresh token is not revoked: %s\n", escapeControls(err.Error()))
			default:
				c, cerr := login.New(login.Config{Issuer: iss, ClientID: sess.ClientID})
				if cerr == nil {
					cerr = c.Revoke(cmd.Context(), sess)
				}
				switch {
				case errors.Is(cerr, login.ErrNoRevocation):
					fmt.Fprintln(errw, "the authorization server has no revocation endpoint: the refresh token stays valid until it expires")
				case cerr != nil:
					fmt.Fprintf(errw, "the refresh token could not be revoked (it stays valid until it expires): %s\n", escapeControls(cerr.Error()))
				}
			}
			if _, err := store.Delete(iss); err != nil {
				return err
			}
			fmt.Fprintf(out, "signed out of %s\n", escapeControls(iss))
			return nil
		},
	}
	cmd.Flags().StringVar(&issuer, "issuer", "", "the authorization server's issuer (default: the running host's)")
	return cmd
}
