package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/runtime/host"
)

func newTokenCommand(g *globalFlags) *cobra.Command {
	var (
		audience, clientID, keyFile, issuer string
		scopes                              []string
		asJSON                              bool
	)
	cmd := &cobra.Command{
		Use:   "token --audience URL [--client ID]",
		Short: "Get an access token for a resource the way a calling system does (client credentials)",
		Long: `token gets an access token for the resource --audience names (a hosted agent's
A2A URL, a hosted MCP server's URL, …) from the authorization server of the
host running on --data-dir (or the one --issuer names), the way a calling
system would: the client_credentials grant, the client authenticated by
private_key_jwt with its own key. It prints the token on stdout, and its
type, scopes and expiry on stderr (--json: the whole answer on stdout).

The key is --key (a PKCS #8 PEM private key file); without it, the key the
host generated for the client (auth.clients[].generate_key), which it keeps
in its data directory. Without --client, the one client whose key the host
generated, if there is exactly one (the quickstart's "a2a-caller").

A token is a credential: it is printed for you to pass to a client, not to
be kept in files or logs.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if audience == "" {
				return usageError{errors.New("--audience is required: the URL of the resource the token is for")}
			}
			iss, err := signInIssuer(g, issuer)
			if err != nil {
				return err
			}
			if clientID == "" {
				if clientID, err = onlyGeneratedClient(g.dataDir); err != nil {
					return err
				}
			}
			if keyFile == "" {
				keyFile = host.ClientKeyPath(g.dataDir, clientID)
			}
			key, kid, err := host.ReadClientKey(keyFile)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no key for client %s at %s: name its key with --key, or give the client generate_key in the host's config", clientID, keyFile)
			}
			if err != nil {
				return err
			}
			assertion, err := oauth.PrivateKeyJWT(clientID, key, kid, nil)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// The host's own server on this machine is fetched over
			// loopback, and may be plain http there; any other is https.
			local := isLoopbackURL(iss)
			md, err := oauth.DiscoverServer(ctx, fetch.New(fetch.Config{AllowHTTP: local, AllowPrivate: local}), iss)
			if err != nil {
				return err
			}
			c, err := oauth.NewClient(oauth.ClientConfig{ClientID: clientID, Assertion: assertion,
				AssertionType: oauth.AssertionJWTBearer})
			if err != nil {
				return err
			}
			tok, err := c.Token(ctx, oauth.TokenRequest{Server: md, Resource: audience, Scopes: scopes, Bearer: true})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(map[string]any{"access_token": tok.AccessToken, "token_type": tok.TokenType,
					"expires_at": tok.ExpiresAt.UTC().Format(time.RFC3339), "scope": strings.Join(tok.Scopes, " "),
					"client_id": clientID, "audience": audience})
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
			fmt.Fprintf(cmd.ErrOrStderr(), "%s token for %s as client %s, scope %q, expires %s\n", tok.TokenType, audience,
				clientID, strings.Join(tok.Scopes, " "), tok.ExpiresAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&audience, "audience", "", "the resource the token is for (RFC 8707 resource indicator)")
	f.StringVar(&clientID, "client", "", "the client to act as (default: the one client whose key the host generated)")
	f.StringVar(&keyFile, "key", "", "the client's private key, a PKCS #8 PEM file (default: the key the host generated)")
	f.StringSliceVar(&scopes, "scope", nil, "scopes to ask for (default: those the server gives the client for the resource)")
	f.StringVar(&issuer, "issuer", "", "the authorization server (default: the running host's)")
	f.BoolVar(&asJSON, "json", false, "print the whole answer as JSON")
	return cmd
}

// onlyGeneratedClient is the client whose key the host on dataDir
// generated, when there is exactly one.
func onlyGeneratedClient(dataDir string) (string, error) {
	keys, _ := filepath.Glob(filepath.Join(filepath.Dir(host.ClientKeyPath(dataDir, "x")), "*.key"))
	switch len(keys) {
	case 1:
		id := strings.TrimSuffix(filepath.Base(keys[0]), ".key")
		if host.ClientKeyPath(dataDir, id) == keys[0] {
			return id, nil
		}
	case 0:
		return "", usageError{fmt.Errorf("name the client with --client (and its key with --key): the host on %s generated no client key", dataDir)}
	}
	return "", usageError{errors.New("name the client with --client: the host generated keys for several clients")}
}

// isLoopbackURL reports whether u's host is a loopback address or
// localhost.
func isLoopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
