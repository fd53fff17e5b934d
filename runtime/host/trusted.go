package host

import (
	"context"
	"net/http"
	"net/url"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/config"
)

// trustedIssuer is an authorization server of auth.trusted_issuers,
// discovered when first needed (oauth.LazyIssuer).
type trustedIssuer struct {
	cfg config.TrustedIssuerConfig
	*oauth.LazyIssuer
}

// hostAssertion is a JWT-SVID of the host for audience.
func (h *Host) hostAssertion(ctx context.Context, audience string) (string, error) {
	sid, err := workloadapi.IDFromIdentity(h.hostID)
	if err != nil {
		return "", err
	}
	tok, _, err := h.ident.NewJWTSVID(ctx, sid, []string{audience})
	return tok, err
}

// newTrustedIssuers prepares auth.trusted_issuers. allow_private_fetch
// lets their discovery reach loopback and private addresses (an issuer
// inside the organisation's network), and plain http on loopback only
// (development), as for federated bundles; an issuer on a federated
// domain's peer is reached with the host's own SVID (svidtls.go).
func (h *Host) newTrustedIssuers() error {
	private := h.cfg.Auth.AllowPrivateFetch
	for _, c := range h.cfg.Auth.TrustedIssuers {
		u, _ := url.Parse(c.Issuer)
		loopback := u != nil && isLoopbackHost(u.Hostname())
		fc := fetch.Config{AllowHTTP: loopback && private, AllowPrivate: private, Logger: h.log.With("component", "fetch")}
		rt, err := h.peerTransport(h.hostID)
		if err != nil {
			return err
		}
		if rt != http.DefaultTransport {
			fc.Client = &http.Client{Transport: rt}
			fc.AllowPrivate = private || loopback
		}
		h.trusted = append(h.trusted, &trustedIssuer{cfg: c, LazyIssuer: oauth.NewLazyIssuer(oauth.IssuerConfig{
			Issuer:    c.Issuer,
			Fetcher:   fetch.New(fc),
			ClientID:  h.hostID.String(),
			Assertion: h.hostAssertion,
			Now:       h.now,
			Logger:    h.log.With("component", "oauth", "issuer", c.Issuer),
		}, 0)})
	}
	return nil
}

// trustedIssuers are the trusted issuers whose subject tokens or ID-JAGs
// the embedded authorization server takes.
func (h *Host) trustedIssuers() []authserver.TrustedIssuer {
	var out []authserver.TrustedIssuer
	for _, t := range h.trusted {
		if !t.cfg.SubjectTokens && !t.cfg.IDJAG {
			continue
		}
		out = append(out, authserver.TrustedIssuer{Issuer: t.cfg.Issuer, Keys: t.Key, IDJAG: t.cfg.IDJAG,
			NoSubjectTokens: !t.cfg.SubjectTokens})
	}
	return out
}

// resourceIssuers are the trusted issuers whose access tokens the host's
// protected resources accept, besides the embedded server's.
func (h *Host) resourceIssuers() []resource.Issuer {
	var out []resource.Issuer
	for _, t := range h.trusted {
		if !t.cfg.AccessTokens {
			continue
		}
		out = append(out, resource.Issuer{Issuer: t.cfg.Issuer, Keys: t.Key, Introspect: t.Introspect,
			Audiences: t.cfg.Audiences, AcceptJWTTyp: t.cfg.AcceptJWTTyp, ScopeClaim: t.cfg.ScopeClaim})
	}
	return out
}

// authorizationServers are the issuers the host's protected resources
// name in their RFC 9728 metadata: the embedded server, then the trusted
// issuers whose access tokens they accept.
func (h *Host) authorizationServers() []string {
	out := []string{h.as.Issuer()}
	for _, t := range h.trusted {
		if t.cfg.AccessTokens {
			out = append(out, t.cfg.Issuer)
		}
	}
	return out
}
