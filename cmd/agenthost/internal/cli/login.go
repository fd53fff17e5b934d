package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials/oauth/login"
	"github.com/agenthost/agenthost/runtime/host"
)

// openBrowser opens the authorization URL; tests replace it with a
// browser that signs in.
var openBrowser = login.OpenBrowser

// signInStore is where sign-ins are kept; tests point $XDG_CONFIG_HOME
// elsewhere.
func signInStore() (*login.Store, error) { return login.DefaultStore() }

// signInIssuer is the authorization server a sign-in command works with:
// --issuer, or else the issuer of the host running on --data-dir.
func signInIssuer(g *globalFlags, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	info, err := host.ReadRunInfo(g.dataDir)
	if err != nil {
		return "", fmt.Errorf("%w; or name the authorization server with --issuer", err)
	}
	return info.Issuer, nil
}

func newLoginCommand(g *globalFlags) *cobra.Command {
	var (
		issuer, clientID, resource, scope string
		timeout                           time.Duration
		noBrowser                         bool
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in at the host's authorization server, so that run starts tasks as you",
		Long: fmt.Sprintf(`login signs you in at the authorization server of the host running on
--data-dir, with the OAuth 2.0 authorization code flow and PKCE: it opens
the sign-in page in your browser (the program $BROWSER names, else xdg-open
or open) and prints its URL too, listens for the redirect on a free port of
127.0.0.1, and waits up to --timeout for you to sign in and consent.

The client is the host's built-in public client %s; the access token is for
the host's task resource (<issuer>/tasks, scope %s) and is renewed with the
refresh token. After it, agenthost run presents your token with each task:
the host verifies it and the task acts for you (its audit records say
subject_source "token"). --for USER still overrides it.

The sign-in is kept owner-only (directory 0700, file 0600) in the agenthost
directory of your configuration directory ($XDG_CONFIG_HOME or ~/.config on
Linux), one file per authorization server; signing in again replaces it (and
revokes the one before). agenthost logout removes it.

--issuer names another authorization server; it needs --client-id (a public
client that may redirect to http://127.0.0.1/callback on any port), and
--resource and --scope say what to ask for.`, host.CLIClientID, host.ScopeTasksRun),
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			iss, err := signInIssuer(g, issuer)
			if err != nil {
				return err
			}
			cfg := login.Config{Issuer: iss, ClientID: clientID, Resource: resource, Out: cmd.ErrOrStderr(),
				Timeout: timeout, OpenBrowser: openBrowser}
			if scope != "" {
				cfg.Scopes = strings.Fields(scope)
			}
			if info, err := host.ReadRunInfo(g.dataDir); err == nil && info.Issuer == iss {
				// The host's own authorization server: its built-in
				// client, for its task resource.
				if cfg.ClientID == "" {
					cfg.ClientID = host.CLIClientID
				}
				if cfg.Resource == "" {
					cfg.Resource = host.TaskResource(iss)
				}
				if cfg.Scopes == nil {
					cfg.Scopes = host.CLIScopes
				}
			}
			switch {
			case cfg.ClientID == "":
				return usageError{fmt.Errorf("--issuer %s is not the running host's: name its client with --client-id", iss)}
			case cfg.Scopes == nil:
				cfg.Scopes = []string{"openid", "offline_access"}
			}
			if noBrowser {
				cfg.OpenBrowser = func(string) error { return errors.New("--no-browser") }
			}
			c, err := login.New(cfg)
			if err != nil {
				return usageError{err}
			}
			store, err := signInStore()
			if err != nil {
				return err
			}
			sess, err := c.Login(cmd.Context())
			if err != nil {
				return err
			}
			old, _ := store.Load(iss)
			if err := store.Save(sess); err != nil {
				return err
			}
			if old != nil && old.RefreshToken != "" && old.RefreshToken != sess.RefreshToken {
				// The sign-in it replaces is revoked, best effort: it
				// would otherwise stay valid until it expires.
				if oc, err := login.New(login.Config{Issuer: iss, ClientID: old.ClientID}); err == nil {
					_ = oc.Revoke(cmd.Context(), old)
				}
			}
			who := "you"
			if cl, err := sess.ClaimsInsecure(); err == nil && cl.Subject != "" {
				who = describeUser(cl)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed in to %s as %s\n", escapeControls(iss), escapeControls(who))
			return nil
		},
	}
	cmd.Flags().StringVar(&issuer, "issuer", "", "the authorization server's issuer (default: the running host's)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "the client to sign in with (default for the host's issuer: "+host.CLIClientID+")")
	cmd.Flags().StringVar(&resource, "resource", "", "the RFC 8707 resource the access token is for (default for the host's issuer: its task resource)")
	cmd.Flags().StringVar(&scope, "scope", "", "space-separated scopes to ask for (default for the host's issuer: "+strings.Join(host.CLIScopes, " ")+")")
	cmd.Flags().DurationVar(&timeout, "timeout", login.DefaultTimeout, "how long to wait for the sign-in in the browser")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "do not open a browser; only print the URL to open")
	return cmd
}

// describeUser is "alice" or "alice (Alice Example)".
func describeUser(c login.Claims) string {
	if c.Name != "" && c.Name != c.Subject {
		return c.Subject + " (" + c.Name + ")"
	}
	return c.Subject
}

// errSignInExpired is what run and whoami say when the sign-in cannot be
// renewed.
func errSignInExpired(g *globalFlags) error {
	return fmt.Errorf("your sign-in has expired: run %s login", g.commandPrefix())
}

// signedInToken returns the access token of the user signed in to issuer,
// renewed when it expired (the rotated refresh token is saved), or "" when
// nobody is signed in there.
func signedInToken(ctx context.Context, g *globalFlags, issuer string) (string, error) {
	if issuer == "" {
		return "", nil
	}
	store, err := signInStore()
	if err != nil {
		return "", nil // no configuration directory: nobody signed in
	}
	sess, err := store.Load(issuer)
	if errors.Is(err, login.ErrNotSignedIn) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	c, err := login.New(login.Config{Issuer: issuer, ClientID: sess.ClientID})
	if err != nil {
		return "", err
	}
	tok, err := c.TokenSource(ctx, sess, store).Token()
	if errors.Is(err, login.ErrExpired) {
		return "", errSignInExpired(g)
	}
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}
