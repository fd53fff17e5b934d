package authserver

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/authserver/userauth"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// AgentClient is a hosted agent. Its client_id is its SPIFFE ID; it
// authenticates with a JWT-SVID (as a jwt-spiffe or private_key_jwt
// assertion) or with its X.509-SVID over mutual TLS, never with a secret.
type AgentClient struct {
	// ID is the agent's SPIFFE ID.
	ID credentials.Identity
	// Scopes the agent may be issued on its own authority or by exchange.
	Scopes []string
	// Serves lists resources this workload serves (an MCP gateway): it
	// may exchange tokens whose audience is one of them, to call
	// upstream for their subject.
	Serves []string
}

// StaticClient is a client from config.
type StaticClient struct {
	ID   string
	Name string
	// AuthMethod is one of none, client_secret_basic, client_secret_post,
	// private_key_jwt.
	AuthMethod string
	// SecretHash is an argon2id or bcrypt hash of the client secret, for
	// the client_secret_* methods.
	SecretHash string
	// JWKS is the client's public key set, for private_key_jwt.
	JWKS         []byte
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
}

type clientKind uint8

const (
	kindStatic clientKind = iota + 1
	kindAgent
	kindDynamic
	kindDocument
	// kindFederated is a workload of a federated trust domain
	// (federated.go).
	kindFederated
)

// client is a registered client as the server sees it.
type client struct {
	ID           string
	Name         string
	URI          string
	Kind         clientKind
	AuthMethod   string
	SecretHash   string
	Keys         map[string]crypto.PublicKey
	RedirectURIs []string
	GrantTypes   []string
	// Scopes are the scopes the client may ask for; nil means any scope
	// the server knows. A dynamic client's are what it registered: its
	// default scope, and a cap only where Server.authorizing and
	// client.refreshing say.
	Scopes []string
	// Serves are resources whose tokens the client may exchange.
	Serves []string

	// stored and version are a dynamic client's record as read from the
	// store, for keeping it once it obtains a token (registry.keep).
	stored  []byte
	version int64
}

func (c *client) public() bool { return c.AuthMethod == oauth.AuthNone }

func (c *client) allowsGrant(g string) bool { return slices.Contains(c.GrantTypes, g) }

func (c *client) allowsScope(sc string) bool { return c.Scopes == nil || slices.Contains(c.Scopes, sc) }

// refreshing returns c as a refresh of a grant caps its scope. A dynamic
// client's registered scope was no cap when the user granted (see
// Server.authorizing), so the grant alone caps its refreshes; other
// clients keep their cap as well.
func (c *client) refreshing() *client {
	if c.Kind != kindDynamic || c.Scopes == nil {
		return c
	}
	cc := *c
	cc.Scopes = nil
	return &cc
}

// registry finds clients: agents and static clients from config, dynamic
// clients in the store, and client ID metadata documents by URL.
type registry struct {
	s      *Server
	static map[string]*client

	// kept remembers dynamic clients known to be kept for good, so that
	// only a client's first token rewrites its record.
	keptMu sync.Mutex
	kept   map[string]bool
}

// maxKeptCache bounds registry.kept; when full it starts over, which only
// costs a rewrite of a client's record on its next token.
const maxKeptCache = 4096

var agentGrants = []string{oauth.GrantClientCredentials, oauth.GrantTokenExchange, oauth.GrantJWTBearer}

func newRegistry(s *Server, cfg Config) (*registry, error) {
	r := &registry{s: s, static: make(map[string]*client), kept: make(map[string]bool)}
	for _, a := range cfg.Agents {
		if a.ID.Scheme() != credentials.SchemeSPIFFE || !a.ID.MemberOf(cfg.TrustDomain) {
			return nil, fmt.Errorf("authserver: agent %q is not in trust domain %q", a.ID, cfg.TrustDomain)
		}
		if cfg.SVIDs == nil {
			return nil, errors.New("authserver: agents need an SVID validator")
		}
		id := a.ID.String()
		if _, dup := r.static[id]; dup {
			return nil, fmt.Errorf("authserver: agent %q is listed twice", id)
		}
		r.static[id] = &client{ID: id, Name: id, Kind: kindAgent, AuthMethod: oauth.AuthSPIFFEJWT,
			GrantTypes: agentGrants, Scopes: nonNil(a.Scopes), Serves: a.Serves}
	}
	for _, sc := range cfg.Clients {
		c, err := staticClient(sc)
		if err != nil {
			return nil, err
		}
		if _, dup := r.static[c.ID]; dup {
			return nil, fmt.Errorf("authserver: client %q is listed twice", c.ID)
		}
		r.static[c.ID] = c
	}
	return r, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func staticClient(sc StaticClient) (*client, error) {
	if sc.ID == "" {
		return nil, errors.New("authserver: a static client has no id")
	}
	if strings.HasPrefix(sc.ID, "spiffe://") {
		return nil, fmt.Errorf("authserver: client %q: SPIFFE IDs are agents, not static clients", sc.ID)
	}
	c := &client{ID: sc.ID, Name: sc.Name, Kind: kindStatic, AuthMethod: sc.AuthMethod, SecretHash: sc.SecretHash,
		RedirectURIs: sc.RedirectURIs, GrantTypes: sc.GrantTypes, Scopes: sc.Scopes}
	if c.Name == "" {
		c.Name = c.ID
	}
	switch sc.AuthMethod {
	case oauth.AuthNone:
		if sc.SecretHash != "" || len(sc.JWKS) > 0 {
			return nil, fmt.Errorf("authserver: client %q: a public client has no secret or keys", sc.ID)
		}
	case oauth.AuthClientSecretBasic, oauth.AuthClientSecretPost:
		if err := userauth.CheckHash(sc.SecretHash); err != nil {
			return nil, fmt.Errorf("authserver: client %q: secret_hash: %w", sc.ID, err)
		}
	case oauth.AuthPrivateKeyJWT:
		keys, err := jose.ParseKeySet(sc.JWKS, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("authserver: client %q: jwks: %w", sc.ID, err)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("authserver: client %q: jwks has no keys", sc.ID)
		}
		c.Keys = keys
	default:
		return nil, fmt.Errorf("authserver: client %q: unsupported auth method %q", sc.ID, sc.AuthMethod)
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken}
	}
	for _, g := range c.GrantTypes {
		switch g {
		case oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials,
			oauth.GrantTokenExchange, oauth.GrantJWTBearer:
		default:
			return nil, fmt.Errorf("authserver: client %q: unsupported grant type %q", sc.ID, g)
		}
	}
	if c.public() && c.allowsGrant(oauth.GrantClientCredentials) {
		return nil, fmt.Errorf("authserver: client %q: a public client cannot use client_credentials", sc.ID)
	}
	if c.allowsGrant(oauth.GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return nil, fmt.Errorf("authserver: client %q: authorization_code needs redirect_uris", sc.ID)
	}
	for _, u := range c.RedirectURIs {
		if !redirectPortValid(u) {
			return nil, fmt.Errorf("authserver: client %q: redirect URI %q has a port that is not a number from 1 to 65535", sc.ID, u)
		}
	}
	return c, nil
}

// lookup returns the client with id, or an invalid_client error.
func (r *registry) lookup(ctx context.Context, id string) (*client, error) {
	if c, ok := r.static[id]; ok {
		return c, nil
	}
	if id == "" || len(id) > 1024 {
		return nil, errUnknownClient
	}
	if clientmeta.IsClientIDURL(id) {
		if r.s.cimd == nil {
			return nil, errUnknownClient
		}
		md, err := r.s.cimd.Resolve(ctx, id)
		if err != nil {
			r.s.log.Info("client ID metadata document refused", "client_id", id, "err", err)
			return nil, errDocumentUnusable
		}
		return clientFromMetadata(id, kindDocument, md)
	}
	data, version, err := r.s.store.Get(ctx, nsClients, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errUnknownClient
	}
	if err != nil {
		return nil, fmt.Errorf("authserver: load client: %w", err)
	}
	md, err := clientmeta.Parse(data, 64<<10)
	if err != nil {
		return nil, fmt.Errorf("authserver: stored client %q is corrupt: %w", id, err)
	}
	c, err := clientFromMetadata(id, kindDynamic, md)
	if err != nil {
		return nil, err
	}
	c.stored, c.version = data, version
	return c, nil
}

var (
	errUnknownClient = oauth.Errorf(oauth.CodeInvalidClient, "unknown client")
	// errDocumentUnusable: a client_id is a metadata document URL the
	// server could not fetch or accept; the reason is logged, not shown.
	errDocumentUnusable = oauth.Errorf(oauth.CodeInvalidClient, "the client ID metadata document could not be used")
)

func clientFromMetadata(id string, kind clientKind, md *clientmeta.Metadata) (*client, error) {
	c := &client{ID: id, Name: md.ClientName, URI: md.ClientURI, Kind: kind, AuthMethod: md.TokenEndpointAuthMethod,
		RedirectURIs: md.RedirectURIs, GrantTypes: md.GrantTypes}
	if c.AuthMethod == "" {
		c.AuthMethod = oauth.AuthNone
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{oauth.GrantAuthorizationCode}
	}
	if md.Scope != "" {
		sc, err := oauth.ParseScope(md.Scope)
		if err != nil {
			return nil, oauth.Errorf(oauth.CodeInvalidClient, "the client's scope is malformed")
		}
		c.Scopes = sc
	}
	if c.AuthMethod == oauth.AuthPrivateKeyJWT {
		if len(md.JWKS) == 0 {
			return nil, oauth.Errorf(oauth.CodeInvalidClient, "the client has no inline jwks")
		}
		keys, err := jose.ParseKeySet(md.JWKS, 64<<10)
		if err != nil || len(keys) == 0 {
			return nil, oauth.Errorf(oauth.CodeInvalidClient, "the client's jwks is unusable")
		}
		c.Keys = keys
	}
	if c.Name == "" {
		c.Name = id
	}
	return c, nil
}

// registerClient stores a dynamically registered client. Until it obtains
// a token (see keep) the record expires after Config.UnusedClientTTL, so
// registrations nobody uses are dropped: expired records are invisible at
// once, and the store's periodic purge reclaims them.
func (r *registry) registerClient(ctx context.Context, md *clientmeta.Metadata) error {
	data, err := json.Marshal(md)
	if err != nil {
		return fmt.Errorf("authserver: encode client: %w", err)
	}
	w := Write{IfAbsent: true}
	if ttl := r.s.cfg.UnusedClientTTL; ttl > 0 {
		w.TTL = ttl
	}
	if _, err := r.s.store.Put(ctx, nsClients, md.ClientID, data, w); err != nil {
		return fmt.Errorf("authserver: save client: %w", err)
	}
	return nil
}

// keep makes a dynamic client that is obtaining a token permanent: its
// record is rewritten without the expiry it was registered with. It is
// called before every token is issued; only the first call per client and
// process writes. A client whose registration expired in the meantime is
// unknown.
func (r *registry) keep(ctx context.Context, c *client) error {
	if c.Kind != kindDynamic || r.s.cfg.UnusedClientTTL <= 0 || c.stored == nil {
		return nil
	}
	r.keptMu.Lock()
	done := r.kept[c.ID]
	r.keptMu.Unlock()
	if done {
		return nil
	}
	_, err := r.s.store.Put(ctx, nsClients, c.ID, c.stored, Write{IfVersion: c.version})
	if errors.Is(err, ErrConflict) {
		// Rewritten since it was read (kept by a concurrent request or
		// another host), or expired.
		if _, _, err = r.s.store.Get(ctx, nsClients, c.ID); errors.Is(err, ErrNotFound) {
			return errUnknownClient
		}
	}
	if err != nil {
		return fmt.Errorf("authserver: keep client: %w", err)
	}
	r.keptMu.Lock()
	if len(r.kept) >= maxKeptCache {
		clear(r.kept)
	}
	r.kept[c.ID] = true
	r.keptMu.Unlock()
	return nil
}
