package host

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"slices"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/runtime/fanout"
	"github.com/agenthost/agenthost/runtime/store/asstore"
)

// newAuthServer builds the embedded authorization server from the auth
// section: every agent is a client identified by its SPIFFE ID and
// authenticated by its SVIDs; users, static clients and resources come
// from the config; all state is in the host's store.
func (h *Host) newAuthServer(ctx context.Context) error {
	ac := h.cfg.Auth
	var err error
	var agents []authserver.AgentClient
	for _, a := range h.cfg.Agents {
		id, err := credentials.AgentIdentity(h.cfg.TrustDomain, a.Name)
		if err != nil {
			return fmt.Errorf("host: agent %s: %w", a.Name, err)
		}
		agents = append(agents, authserver.AgentClient{ID: id, Scopes: a.Scopes})
	}
	var clients []authserver.StaticClient
	for _, c := range ac.Clients {
		sc := authserver.StaticClient{ID: c.ID, Name: c.Name, AuthMethod: string(c.AuthMethod), SecretHash: c.SecretHash,
			RedirectURIs: c.RedirectURIs, Scopes: c.Scopes}
		for _, g := range c.GrantTypes {
			sc.GrantTypes = append(sc.GrantTypes, string(g))
		}
		switch {
		case c.GenerateKey:
			if sc.JWKS, err = generatedClientJWKS(h.dataDir, c.ID); err != nil {
				return err
			}
		case c.JWKSFile != "":
			if sc.JWKS, err = os.ReadFile(c.JWKSFile); err != nil {
				return fmt.Errorf("host: client %s: %w", c.ID, err)
			}
		}
		clients = append(clients, sc)
	}
	// The built-in client of `agenthost login`.
	if slices.ContainsFunc(clients, func(c authserver.StaticClient) bool { return c.ID == CLIClientID }) {
		return fmt.Errorf("host: auth.clients lists %s, the client the host registers for agenthost login", CLIClientID)
	}
	clients = append(clients, CLIClient())
	if clients, err = h.addConsoleClient(clients); err != nil {
		return err
	}
	var users *userauth.Directory
	if len(ac.Users) > 0 {
		list := make([]userauth.User, 0, len(ac.Users))
		for _, u := range ac.Users {
			list = append(list, userauth.User{Name: u.Name, DisplayName: u.DisplayName, Email: u.Email, PasswordHash: u.PasswordHash})
		}
		if users, err = userauth.NewDirectory(list); err != nil {
			return fmt.Errorf("host: users: %w", err)
		}
	}
	var resources []authserver.Resource
	for _, r := range ac.Resources {
		resources = append(resources, authserver.Resource{URI: r.URI, Scopes: r.Scopes})
	}
	// Hosted MCP servers are resources of this server.
	if h.mcp, err = h.mcpResources(h.Issuer(), h.tools); err != nil {
		return err
	}
	var gateway authserver.AgentClient
	for _, s := range h.mcp {
		if slices.ContainsFunc(resources, func(r authserver.Resource) bool { return r.URI == s.Resource }) {
			return fmt.Errorf("host: auth.resources lists %s, which is a hosted MCP server's resource", s.Resource)
		}
		resources = append(resources, authserver.Resource{URI: s.Resource, Scopes: s.Scopes})
		if s.Upstream != nil {
			// The host itself is the client of a gateway's token
			// exchanges: it may exchange tokens for the gateway's
			// resource, within the gateway's scopes.
			gateway.ID = h.hostID
			gateway.Serves = append(gateway.Serves, s.Resource)
			for _, sc := range s.Scopes {
				if !slices.Contains(gateway.Scopes, sc) {
					gateway.Scopes = append(gateway.Scopes, sc)
				}
			}
		}
	}
	// The host's own protected APIs: the task resource users start tasks
	// with their tokens for, always; the others when configured.
	if slices.ContainsFunc(resources, func(r authserver.Resource) bool { return r.URI == h.taskResource() }) {
		return fmt.Errorf("host: auth.resources lists %s, the host's task resource", h.taskResource())
	}
	resources = append(resources, authserver.Resource{URI: h.taskResource(), Scopes: []string{ScopeTasksRun}})
	// The hosted agents, each a resource at its A2A URL.
	for _, r := range h.a2aResources() {
		if slices.ContainsFunc(resources, func(x authserver.Resource) bool { return x.URI == r.URI }) {
			return fmt.Errorf("host: auth.resources lists %s, a hosted agent's A2A URL", r.URI)
		}
		resources = append(resources, r)
	}
	if h.cfg.Policy.ServeAuthZEN {
		resources = append(resources, authserver.Resource{URI: h.pdpResource(), Scopes: []string{ScopeAuthZEN}})
	}
	if h.cfg.Signals.Transmitter {
		resources = append(resources, authserver.Resource{URI: h.ssfResource(), Scopes: []string{ScopeSSFManage}})
	}
	ciba := h.cibaConfig()
	if ciba != nil {
		// The host is the CIBA client that asks users to approve calls
		// (approvals.go).
		gateway.ID = h.hostID
	}
	if !gateway.ID.IsZero() {
		agents = append(agents, gateway)
	}
	as, err := authserver.New(ctx, authserver.Config{
		Issuer:                    h.Issuer(),
		Store:                     asstore.New(h.store),
		TrustDomain:               h.cfg.TrustDomain,
		SVIDs:                     h.ident,
		Agents:                    agents,
		Clients:                   clients,
		Users:                     users,
		Resources:                 resources,
		AccessTokenTTL:            ac.AccessTokenTTL,
		RefreshTokenTTL:           ac.RefreshTokenTTL,
		CodeTTL:                   ac.CodeTTL,
		KeyPeriod:                 ac.SigningKeyPeriod,
		RequireDPoPNonce:          ac.RequireDPoPNonce,
		AllowDynamicRegistration:  ac.DynamicRegistration,
		RegistrationTokenHash:     ac.RegistrationTokenHash,
		RegistrationBurst:         ac.RegistrationBurst,
		RegistrationInterval:      ac.RegistrationInterval,
		MaxDynamicClients:         ac.MaxDynamicClients,
		UnusedClientTTL:           ac.UnusedClientTTL,
		TrustedProxies:            ac.TrustedProxyPrefixes(),
		ClientIDMetadataDocuments: ac.ClientIDMetadataDocuments,
		AllowPrivateFetch:         ac.AllowPrivateFetch,
		ClientCertificateAuthorities: func() []*x509.Certificate {
			return h.ident.Bundle().X509Authorities()
		},
		CIBA:             ciba,
		IDJAGAudiences:   h.idjagAudiences(),
		FederatedSVIDs:   h.federation,
		FederatedClients: h.federatedClients(),
		TrustedIssuers:   h.trustedIssuers(),
		OnRevocation: func() {
			h.publish(context.Background(), fanout.Event{Kind: fanout.KindRevocations})
		},
		OnIssue:          h.auditIssued,
		OnIssueTxnToken:  h.auditIssuedTxn,
		OnRefuseTxnToken: h.auditRefusedTxn,
		OnRefuseChaining: h.auditRefusedChaining,
		OnTokenRequest:   h.telemetry.TokenRequest,
		Now:              h.now,
		Logger:           h.log.With("component", "authserver"),
	})
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	h.as = as
	return nil
}

// mountAuthServer routes the authorization server's paths on mux.
func (h *Host) mountAuthServer(mux *http.ServeMux) {
	handler := h.as.Handler()
	mux.Handle("/oauth2/", handler)
	for _, p := range []string{authserver.PathOAuthMetadata, authserver.PathOIDCMetadata, authserver.PathJWKS,
		authserver.PathToken, authserver.PathRegister, authserver.PathRevoke} {
		mux.Handle(p, allowCORS(handler))
	}
}

// clientCertConfig asks TLS clients for a certificate without requiring
// one, so agents can authenticate to the token endpoint with their
// X.509-SVIDs (RFC 8705 tls_client_auth); the authorization server
// verifies the chain against the trust bundle. Other clients connect
// without a certificate.
func clientCertConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.ClientAuth = tls.RequestClientCert
	return cfg
}
