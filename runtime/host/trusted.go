package host

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/agenthost/agenthost/credentials/oauth/resource"
	"github.com/agenthost/agenthost/credentials/workloadapi"
	"github.com/agenthost/agenthost/runtime/config"
)

// trustedIssuer is an authorization server of auth.trusted_issuers,
// discovered when its keys are first needed (it need not be up when the
// host starts) and again after a failure, at most once per
// trustedRetry.
type trustedIssuer struct {
	h   *Host
	cfg config.TrustedIssuerConfig

	mu      sync.Mutex
	found   *oauth.DiscoveredIssuer
	lastErr error
	lastTry time.Time
}

// trustedRetry bounds how often an issuer that could not be discovered
// is tried again: a stream of tokens naming it cannot make the host
// hammer it.
const trustedRetry = 30 * time.Second

// discover returns the issuer's discovered metadata and keys.
func (t *trustedIssuer) discover(ctx context.Context) (*oauth.DiscoveredIssuer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.found != nil {
		return t.found, nil
	}
	now := t.h.now()
	if t.lastErr != nil && now.Sub(t.lastTry) < trustedRetry {
		return nil, t.lastErr
	}
	t.lastTry = now
	// allow_private_fetch lets the discovery reach loopback and private
	// addresses (an issuer inside the organisation's network), and plain
	// http on loopback only (development), as for federated bundles.
	u, _ := url.Parse(t.cfg.Issuer)
	private := t.h.cfg.Auth.AllowPrivateFetch
	local := u != nil && isLoopbackHost(u.Hostname()) && private
	fc := fetch.Config{AllowHTTP: local, AllowPrivate: private, Logger: t.h.log.With("component", "fetch")}
	// An issuer on a federated domain's peer is reached with the host's
	// own SVID (svidtls.go).
	if rt, err := t.h.peerTransport(t.h.hostID, http.DefaultTransport); err != nil {
		return nil, err
	} else if rt != http.DefaultTransport {
		fc.Client = &http.Client{Transport: rt}
		fc.AllowPrivate = private || u != nil && isLoopbackHost(u.Hostname())
	}
	f := fetch.New(fc)
	d, err := oauth.DiscoverIssuer(ctx, oauth.IssuerConfig{
		Issuer:    t.cfg.Issuer,
		Fetcher:   f,
		ClientID:  t.h.hostID.String(),
		Assertion: t.h.hostAssertion,
		Now:       t.h.now,
		Logger:    t.h.log.With("component", "oauth", "issuer", t.cfg.Issuer),
	})
	if err != nil {
		// Keys unavailable, not a bad token: the resource answers 503
		// and the client tries again later.
		t.lastErr = fmt.Errorf("host: trusted issuer %s: %w: %w", t.cfg.Issuer, oauth.ErrKeysUnavailable, err)
		t.h.log.Warn("trusted issuer not discovered", "issuer", t.cfg.Issuer, "error", err)
		return nil, t.lastErr
	}
	t.found, t.lastErr = d, nil
	return d, nil
}

// Key finds one of the issuer's signing keys.
func (t *trustedIssuer) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	d, err := t.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.Keys == nil {
		return nil, fmt.Errorf("host: trusted issuer %s publishes no jwks_uri", t.cfg.Issuer)
	}
	return d.Keys.Key(ctx, kid)
}

// Introspect asks the issuer about an opaque token (RFC 7662), when it
// has an introspection endpoint that takes the host's JWT-SVID.
func (t *trustedIssuer) Introspect(ctx context.Context, token string) (*oauth.IntrospectionResponse, error) {
	d, err := t.discover(ctx)
	if err != nil {
		return nil, err
	}
	if d.Introspect == nil {
		// The issuer cannot vouch for an opaque token here: it is not
		// one of its tokens as far as the host can tell.
		return &oauth.IntrospectionResponse{Active: false}, nil
	}
	return d.Introspect(ctx, token)
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

// newTrustedIssuers prepares auth.trusted_issuers.
func (h *Host) newTrustedIssuers() {
	for _, c := range h.cfg.Auth.TrustedIssuers {
		h.trusted = append(h.trusted, &trustedIssuer{h: h, cfg: c})
	}
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
