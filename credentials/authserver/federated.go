package authserver

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// FederatedClient admits workloads of a federated trust domain as
// clients: an agent of another host, which reaches a resource of this
// server with an ID-JAG its own host's authorization server issued (see
// grant_idjag.go), or on its own authority.
//
// Such a client authenticates with a JWT-SVID of its trust domain whose
// sole audience is this server's issuer, as a jwt-spiffe client
// assertion (OAuth SPIFFE client authentication, SPECS.md §10.8) or a
// jwt-bearer one (RFC 7523 §2.2, iss and sub its SPIFFE ID), validated by
// Config.FederatedSVIDs over that domain's bundle and used once. A valid
// SVID of a workload no entry matches is invalid_client, as is one of a
// trust domain FederatedSVIDs does not know. The client_id is the SPIFFE
// ID itself; nothing is registered.
type FederatedClient struct {
	// SPIFFEID is the workload's SPIFFE ID, in a trust domain other than
	// this server's: exact, or ending in "/*" for every ID under that
	// path, matched by whole path segments (spiffe://b.test/agent/*
	// matches spiffe://b.test/agent/x, not spiffe://b.test/agentx).
	// Where several entries match, the exact one wins, then the longest
	// prefix.
	SPIFFEID string
	// Scopes the clients may be issued; none means none. They become
	// scopes this server knows, as an agent's do.
	Scopes []string
	// Grants the clients may use: oauth.GrantJWTBearer (with an ID-JAG
	// only) and oauth.GrantClientCredentials. Empty means both.
	Grants []string
}

// federatedGrants are the grants a federated client may be allowed.
var federatedGrants = []string{oauth.GrantJWTBearer, oauth.GrantClientCredentials}

// federatedEntry is a checked FederatedClient.
type federatedEntry struct {
	// id is the exact SPIFFE ID, or the prefix ending in "/" of an entry
	// written with "/*".
	id     string
	prefix bool
	scopes []string
	grants []string
}

// initFederatedClients checks Config.FederatedClients into s.federated,
// and adds their scopes to the known ones.
func (s *Server) initFederatedClients() error {
	if len(s.cfg.FederatedClients) > 0 && s.cfg.FederatedSVIDs == nil {
		return errors.New("authserver: federated clients need FederatedSVIDs")
	}
	for _, fc := range s.cfg.FederatedClients {
		base, prefix := strings.CutSuffix(fc.SPIFFEID, "/*")
		id, err := spiffeid.FromString(base)
		if err != nil {
			return fmt.Errorf("authserver: federated client %q is not a SPIFFE ID or a SPIFFE ID followed by /*: %w", fc.SPIFFEID, err)
		}
		if id.TrustDomain().Name() == s.cfg.TrustDomain {
			return fmt.Errorf("authserver: federated client %q is in this server's trust domain", fc.SPIFFEID)
		}
		if !prefix && id.Path() == "" {
			return fmt.Errorf("authserver: federated client %q names a trust domain, not a workload (add /* for all of them)", fc.SPIFFEID)
		}
		e := federatedEntry{id: id.String(), prefix: prefix, scopes: nonNil(slices.Clone(fc.Scopes)),
			grants: slices.Clone(fc.Grants)}
		if prefix {
			e.id += "/"
		}
		if slices.ContainsFunc(s.federated, func(o federatedEntry) bool { return o.id == e.id && o.prefix == e.prefix }) {
			return fmt.Errorf("authserver: federated client %q is listed twice", fc.SPIFFEID)
		}
		if len(e.grants) == 0 {
			e.grants = slices.Clone(federatedGrants)
		}
		for _, g := range e.grants {
			if !slices.Contains(federatedGrants, g) {
				return fmt.Errorf("authserver: federated client %q: grant type %q is not for federated clients (only jwt-bearer and client_credentials)", fc.SPIFFEID, g)
			}
		}
		for _, sc := range e.scopes {
			if !oauth.ValidScopeToken(sc) {
				return fmt.Errorf("authserver: federated client %q: scope %q is not a valid scope token", fc.SPIFFEID, sc)
			}
			s.scopes[sc] = true
		}
		s.federated = append(s.federated, e)
	}
	return nil
}

// federatedID reports whether id is a SPIFFE ID of a trust domain other
// than this server's, for which FederatedSVIDs is configured.
func (s *Server) federatedID(id string) bool {
	if s.cfg.FederatedSVIDs == nil || !strings.HasPrefix(id, "spiffe://") {
		return false
	}
	sid, err := spiffeid.FromString(id)
	return err == nil && sid.TrustDomain().Name() != s.cfg.TrustDomain
}

// federatedClient returns the client a verified SPIFFE ID of a federated
// trust domain is admitted as, or nil.
func (s *Server) federatedClient(id spiffeid.ID) *client {
	if id.TrustDomain().Name() == s.cfg.TrustDomain {
		return nil
	}
	sid := id.String()
	var match *federatedEntry
	for i := range s.federated {
		e := &s.federated[i]
		switch {
		case !e.prefix && e.id == sid:
			match = e
		case e.prefix && strings.HasPrefix(sid, e.id) && (match == nil || match.prefix && len(e.id) > len(match.id)):
			match = e
		}
		if match != nil && !match.prefix {
			break
		}
	}
	if match == nil {
		return nil
	}
	return &client{ID: sid, Name: sid, Kind: kindFederated, AuthMethod: oauth.AuthSPIFFEJWT,
		GrantTypes: match.grants, Scopes: match.scopes}
}
