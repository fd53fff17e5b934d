package host

import (
	"context"
	"crypto"
	"fmt"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// Identity chaining across domains (SPECS.md §12). A remote whose
// chaining is id_jag sits behind another domain's authorization server,
// which trusts this host's issuer for ID-JAGs but not its access tokens.
// For each token the calling agent needs there:
//
//  1. The agent asks the host's authorization server, in process, for an
//     ID-JAG by token exchange: subject_token = the user's token along the
//     delegation chain (delegation.go, steps 1 and 2), audience = the
//     remote's authorization server (discovered by RFC 9728 and listed
//     under auth.id_jag), resource = the remote, scope = what auth.id_jag
//     allows there. The grant names the user as sub and the agent (over
//     the agents that delegated the task) in act.
//  2. The agent presents it at the remote's authorization server by the
//     JWT bearer grant, authenticated there as itself (its JWT-SVID, which
//     that server verifies with this trust domain's federated bundle).
//
// The grant is single-use and never cached; the remote's token is
// cached by mcpclient like any other, by the user's token hash and the
// chain, never by a token.

// idjagGrant is the grant source of agents' calls to the remote at
// resource, for the user of transaction txn.
func (d *delegation) idjagGrant(resource, txn string, agents []string) oauth.GrantAssertionSource {
	agent := agents[len(agents)-1]
	return func(ctx context.Context, audience string, dpopKey crypto.Signer) (string, error) {
		var scopes []string
		found := false
		for _, a := range d.h.cfg.Auth.IDJAG {
			if a.Issuer == audience {
				scopes, found = a.Scopes, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("host: the authorization server %s of %s is not listed under auth.id_jag", audience, resource)
		}
		c, err := d.client(agent)
		if err != nil {
			return "", err
		}
		md := d.h.as.Metadata()
		g, err := c.IDJAG(ctx, oauth.IDJAGRequest{Server: &md, Audience: audience, Resource: resource, Scopes: scopes,
			SubjectTokenSource: func(ctx context.Context) (string, error) { return d.subjectToken(ctx, txn, agents) }}, dpopKey)
		if err != nil {
			return "", fmt.Errorf("host: an ID-JAG for %s at %s: %w", audience, md.Issuer, err)
		}
		return g.Assertion, nil
	}
}
