package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials/oauth/login"
)

func newWhoamiCommand(g *globalFlags) *cobra.Command {
	var (
		issuer string
		output *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are signed in as at the host's authorization server",
		Long: `whoami shows the user signed in (agenthost login) at the authorization server
of the host running on --data-dir (or the one --issuer names): the subject,
the issuer, the client, and when the access token expires. An expired access
token is renewed first with the refresh token, as run does.

Who you are is read from the ID token (or the access token) without
verifying it: it is for display only; the host verifies the token itself
when run presents it. Exit status 1 when nobody is signed in or the sign-in
expired.

-o json prints one JSON object instead (see the README, Commands).`,
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
			sess, err := store.Load(iss)
			if errors.Is(err, login.ErrNotSignedIn) {
				return fmt.Errorf("not signed in to %s: run %s login", iss, g.commandPrefix())
			}
			if err != nil {
				return err
			}
			c, err := login.New(login.Config{Issuer: iss, ClientID: sess.ClientID})
			if err != nil {
				return err
			}
			ts := c.TokenSource(cmd.Context(), sess, store)
			if _, err := ts.Token(); errors.Is(err, login.ErrExpired) {
				return errSignInExpired(g)
			} else if err != nil {
				return err
			}
			sess = ts.Session()
			cl, err := sess.ClaimsInsecure()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output.isJSON() {
				who := whoamiJSON{User: describeUser(cl), Subject: cl.Subject, Name: cl.Name, Email: cl.Email, Issuer: sess.Issuer,
					Client: sess.ClientID, Resource: sess.Resource, Scope: sess.Scope, Renewable: sess.RefreshToken != "", ReadFrom: cl.From}
				if !sess.Expiry.IsZero() {
					exp := sess.Expiry.UTC()
					who.Expires = &exp
				}
				return writeJSON(w, who)
			}
			// What the server put in the token is untrusted text.
			fmt.Fprintf(w, "%s\n", escapeControls(describeUser(cl)))
			row := func(k, v string) {
				if v != "" {
					fmt.Fprintf(w, "  %-9s %s\n", k, escapeControls(v))
				}
			}
			row("subject", cl.Subject)
			row("issuer", sess.Issuer)
			row("email", cl.Email)
			row("client", sess.ClientID)
			row("resource", sess.Resource)
			row("scope", sess.Scope)
			if !sess.Expiry.IsZero() {
				renew := ""
				if sess.RefreshToken != "" {
					renew = " (renewed with the refresh token)"
				}
				row("expires", sess.Expiry.Local().Format(time.RFC3339)+renew)
			}
			fmt.Fprintf(w, "  (read from the %s without verifying it: for display only)\n", cl.From)
			return nil
		},
	}
	cmd.Flags().StringVar(&issuer, "issuer", "", "the authorization server's issuer (default: the running host's)")
	output = addOutputFlag(cmd)
	return cmd
}

// whoamiJSON is what whoami -o json prints. Like the text, it is read
// from a token without verifying it: for display only.
type whoamiJSON struct {
	// User is "alice" or "alice (Alice Example)", as the text shows it.
	User     string `json:"user"`
	Subject  string `json:"subject"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Issuer   string `json:"issuer"`
	Client   string `json:"client"`
	Resource string `json:"resource"`
	Scope    string `json:"scope"`
	// Expires is when the access token expires, null when not known;
	// Renewable says whether a refresh token renews it.
	Expires   *time.Time `json:"expires"`
	Renewable bool       `json:"renewable"`
	// ReadFrom is the token the user was read from: "ID token" or
	// "access token".
	ReadFrom string `json:"read_from"`
}
