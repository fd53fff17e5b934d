package host

// The agents as OAuth clients of authorization servers that do not trust
// the host's trust domain (package clientid). Such a server cannot check
// an agent's JWT-SVID, so the agent is known there by a client_id of
// another kind, with the agent's own key (private_key_jwt):
//
//   - cimd: the URL of its client ID metadata document, which the host
//     serves at <issuer>/oauth-client/<agent> with its JWK Set at
//     <issuer>/oauth-client/<agent>/jwks.json (SPECS.md §11.5). Only
//     with an https issuer: a document URL must be https, so with an
//     http issuer nothing is published and the method is unavailable;
//   - registration: a client_id the server assigned by dynamic client
//     registration (RFC 7591), kept in the store so that a restarted
//     host reuses it, registered again once when the server answers
//     invalid_client;
//   - static: the client_id and key configured for the remote
//     (mcp.remotes[].client id and key_file), the same for every agent.
//
// Which one a remote's server gets is mcp.remotes[].client.method; auto
// (the default) picks by the server's metadata, and still chooses the
// JWT-SVID at a server that lists spiffe_jwt, or when nothing else
// applies. spiffe keeps the JWT-SVID whatever the metadata says. The
// choice is made when an agent's token client first meets the remote's
// authorization server (after discovery, in mcpclient) and kept per
// issuer. In a token exchange the actor_token stays the agent's JWT-SVID.
//
// Each agent's key is made on first use and kept owner-only in the data
// directory (clients/agents/<agent>.key, PEM PKCS #8), never replaced.
// Several hosts behind one issuer each make their own keys, so their
// documents would disagree: such a deployment must give every host the
// same clients/agents folder. Remotes with chaining id_jag keep the
// JWT-SVID: the ID-JAG names the agent's SPIFFE ID as its client.

import (
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
	"github.com/agenthost/agenthost/runtime/config"
	"github.com/agenthost/agenthost/runtime/remotetools"
	"github.com/agenthost/agenthost/runtime/store"
)

// PathOAuthClient is where the agents' client ID metadata documents are
// served, below the issuer: PathOAuthClient + agent, and their JWK Sets
// at PathOAuthClient + agent + "/jwks.json".
const PathOAuthClient = "/oauth-client/"

// agentKeysDirName is the data directory's folder of the agents' client
// keys, inside clientKeysDirName.
const agentKeysDirName = "agents"

// nsClientRegistrations holds the agents' dynamic client registrations,
// by agent and issuer.
const nsClientRegistrations = "clientid.registrations"

// agentClients holds what the agents are known by at authorization
// servers that do not trust the trust domain: their keys, their
// registrations, and the documents the host publishes.
type agentClients struct {
	h         *Host
	workloads []clientid.Workload
	keys      clientid.KeyStore
	regs      clientid.RegistrationStore
	// docs serves the documents; nil when none are published (an http
	// issuer).
	docs *clientid.Manager
	// staticKeys are the keys of the remotes' static clients, by remote.
	staticKeys map[string]crypto.Signer

	mu sync.Mutex
	// managers resolve the agents' identities at the remotes' servers,
	// by remote name, issuer and agent.
	managers map[string]*clientid.Manager
}

// newAgentClients prepares the agents' client identities for the issuer
// issuer, and checks the remotes' client settings against it.
func (h *Host) newAgentClients(issuer string) (*agentClients, error) {
	c := &agentClients{h: h, staticKeys: map[string]crypto.Signer{}, managers: map[string]*clientid.Manager{},
		keys: &fileKeyStore{dir: filepath.Join(h.dataDir, clientKeysDirName, agentKeysDirName)},
		regs: &storeRegistrations{kv: h.store}}
	publish := strings.HasPrefix(issuer, "https://")
	for _, a := range h.cfg.Agents {
		id, ok := h.agentIDs[a.Name]
		if !ok {
			continue
		}
		w := clientid.Workload{Name: a.Name, SPIFFEID: id, ClientName: "agenthost agent " + a.Name}
		if publish {
			w.MetadataURL = issuer + PathOAuthClient + a.Name
			w.JWKSURI = w.MetadataURL + "/jwks.json"
		}
		c.workloads = append(c.workloads, w)
	}
	if publish {
		m, err := clientid.New(clientid.Config{Keys: c.keys, Registrations: c.regs, Workloads: c.workloads, Now: h.now,
			Logger: h.log.With("component", "clientid")})
		if err != nil {
			return nil, fmt.Errorf("host: agents' client documents: %w", err)
		}
		c.docs = m
	}
	for _, rc := range h.cfg.MCP.Remotes {
		cc := rc.Client
		if cc == nil || len(rc.Command) > 0 {
			continue
		}
		if cc.Method == config.ClientMethodCIMD && !publish {
			return nil, fmt.Errorf("host: remote %s: client method cimd: the host's issuer %s is not https, so no client ID metadata document is published",
				rc.Name, issuer)
		}
		if cc.KeyFile != "" {
			key, err := readOwnerOnlyKey(cc.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("host: remote %s: client key_file: %w", rc.Name, err)
			}
			c.staticKeys[rc.Name] = key
		}
		// Check the settings now, with the remote's URL standing for the
		// issuer its metadata will name.
		if _, err := clientid.New(clientid.Config{Keys: c.keys, Registrations: c.regs, Workloads: c.workloads,
			Servers: map[string]clientid.ServerConfig{rc.URL: c.serverConfig(rc)}}); err != nil {
			return nil, fmt.Errorf("host: remote %s: client: %w", rc.Name, err)
		}
	}
	return c, nil
}

// mountAgentClients serves the agents' documents and JWK Sets, when the
// issuer is https.
func (h *Host) mountAgentClients(mux *http.ServeMux) error {
	c, err := h.newAgentClients(h.Issuer())
	if err != nil {
		return err
	}
	h.agentClients = c
	if c.docs == nil {
		return nil
	}
	// The documents are matched on their URLs' whole path, the issuer's
	// own path included.
	u, err := url.Parse(h.Issuer())
	if err != nil {
		return fmt.Errorf("host: issuer: %w", err)
	}
	mux.Handle(strings.TrimSuffix(u.Path, "/")+PathOAuthClient, c.docs.Handler())
	return nil
}

// serverConfig is the remote rc's client setting as clientid takes it.
func (c *agentClients) serverConfig(rc config.MCPRemoteConfig) clientid.ServerConfig {
	var sc clientid.ServerConfig
	cc := rc.Client
	if cc == nil {
		return sc
	}
	switch cc.Method {
	case config.ClientMethodCIMD:
		sc.Mode = clientid.ModeCIMD
	case config.ClientMethodRegistration:
		sc.Mode = clientid.ModeRegistration
	case config.ClientMethodStatic:
		sc.Mode = clientid.ModeStatic
	default:
		sc.Mode = clientid.ModeAuto
	}
	if cc.ID != "" {
		sc.Static = map[string]clientid.StaticClient{}
		for _, w := range c.workloads {
			sc.Static[w.Name] = clientid.StaticClient{ClientID: cc.ID, Key: c.staticKeys[rc.Name]}
		}
	}
	return sc
}

// identify is how the workload id resolves its identity at the remote
// r's authorization server (oauth.ClientConfig.Identify), or nil when it
// always uses its JWT-SVID there: it is not an agent (the host itself,
// for a gateway), the remote's method is spiffe, or the remote chains
// identities. loopback: r is on a loopback address (development).
func (c *agentClients) identify(r config.MCPRemoteConfig, loopback bool, id credentials.Identity, hc *http.Client) func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
	if c == nil || r.Chaining == config.ChainingIDJAG || (r.Client != nil && r.Client.Method == config.ClientMethodSPIFFE) {
		return nil
	}
	agent := ""
	for _, w := range c.workloads {
		if w.SPIFFEID == id {
			agent = w.Name
			break
		}
	}
	if agent == "" {
		return nil
	}
	return func(ctx context.Context, md *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
		m, err := c.manager(r, loopback, md.Issuer, agent, hc)
		if err != nil {
			return nil, err
		}
		cid, err := m.Resolve(ctx, md, agent)
		if err != nil {
			return nil, fmt.Errorf("host: remote %s: agent %s at %s: %w", r.Name, agent, md.Issuer, err)
		}
		return c.clientIdentity(ctx, r, m, cid), nil
	}
}

// clientIdentity is cid as the token client takes it; a registered
// client is registered again when the server refuses it.
func (c *agentClients) clientIdentity(ctx context.Context, r config.MCPRemoteConfig, m *clientid.Manager, cid *clientid.Identity) *oauth.ClientIdentity {
	c.h.log.InfoContext(ctx, "agent client identity at a remote's authorization server", "remote", r.Name,
		"agent", cid.Workload, "issuer", cid.Issuer, "mode", string(cid.Mode), "client_id", cid.ClientID)
	out := &oauth.ClientIdentity{ClientID: cid.ClientID, AssertionType: cid.AssertionType}
	if !cid.UsesSVID() {
		out.Assertion = cid.Assertion()
	}
	if cid.Mode == clientid.ModeRegistration {
		out.Rejected = func(ctx context.Context) (*oauth.ClientIdentity, error) {
			next, err := m.Rejected(ctx, cid)
			if err != nil {
				return nil, fmt.Errorf("host: remote %s: %w", r.Name, err)
			}
			return c.clientIdentity(ctx, r, m, next), nil
		}
	}
	return out
}

// manager is the Manager resolving agent's identity at the remote r's
// server issuer, registering through hc (the agent's own transport).
// Every Manager shares the key and registration stores, so an agent has
// one key whichever resolves it, and a registration one Manager made is
// the others' too.
func (c *agentClients) manager(r config.MCPRemoteConfig, loopback bool, issuer, agent string, hc *http.Client) (*clientid.Manager, error) {
	key := r.Name + "\x00" + issuer + "\x00" + agent
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.managers[key]; ok {
		return m, nil
	}
	m, err := clientid.New(clientid.Config{
		Keys:          c.keys,
		Registrations: c.regs,
		Workloads:     c.workloads,
		Servers:       map[string]clientid.ServerConfig{issuer: c.serverConfig(r)},
		HTTPClient:    hc,
		// As for the remote's metadata: a remote on a loopback address
		// is a development setup, whose server may register over http.
		AllowHTTP: loopback,
		Now:       c.h.now,
		Logger:    c.h.log.With("component", "clientid", "remote", r.Name),
	})
	if err != nil {
		return nil, fmt.Errorf("host: remote %s: client: %w", r.Name, err)
	}
	c.managers[key] = m
	return m, nil
}

// remoteTokenClient is the token client of a workload for a remote
// (remotetools.Config.TokenClient): its JWT-SVID as client assertion and
// actor token, its DPoP keys, and, for an agent, the client identity the
// remote's authorization server gets (see above).
func (h *Host) remoteTokenClient(r remotetools.TokenClientRequest) (*oauth.Client, error) {
	cfg, err := h.agentClientConfig(r.Workload, r.HTTPClient, r.DPoPKeys)
	if err != nil {
		return nil, err
	}
	if identify := h.agentClients.identify(r.Remote, r.Loopback, r.Workload, r.HTTPClient); identify != nil {
		cfg.Identify = identify
		cfg.ActorToken = cfg.Assertion
	}
	return oauth.NewClient(cfg)
}

// readOwnerOnlyKey reads a PEM PKCS #8 private key that only its owner
// may read. Its own errors have no package prefix.
func readOwnerOnlyKey(path string) (crypto.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o; a private key must be accessible by its owner only (chmod 600 %s)",
			path, fi.Mode().Perm(), path)
	}
	key, _, err := ReadClientKey(path)
	return key, err
}

// maxAgentKeyFile caps an agent key file.
const maxAgentKeyFile = 64 << 10

// fileKeyStore keeps the agents' client keys as owner-only PEM PKCS #8
// files in an owner-only directory, one per agent. A saved key is never
// replaced: a key is written to a temporary file and linked to its name,
// which fails when the name exists, so a reader never sees a partial
// key.
type fileKeyStore struct{ dir string }

var _ clientid.KeyStore = (*fileKeyStore)(nil)

func (s *fileKeyStore) path(workload string) (string, error) {
	if !safeFileName.MatchString(workload) {
		return "", fmt.Errorf("host: agent key: %q is not a file name", workload)
	}
	return filepath.Join(s.dir, workload+".key"), nil
}

// Load implements [clientid.KeyStore].
func (s *fileKeyStore) Load(ctx context.Context, workload string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.path(workload)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		// A missing key wraps fs.ErrNotExist.
		return nil, fmt.Errorf("host: agent key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("host: agent key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("host: agent key %s has mode %04o; it must be accessible by its owner only (chmod 600 %s)",
			path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAgentKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("host: agent key: %w", err)
	}
	if len(data) > maxAgentKeyFile {
		return nil, fmt.Errorf("host: agent key %s exceeds %d bytes", path, maxAgentKeyFile)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("host: agent key %s: not one PEM \"PRIVATE KEY\" block", path)
	}
	return block.Bytes, nil
}

// Save implements [clientid.KeyStore].
func (s *fileKeyStore) Save(ctx context.Context, workload string, der []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := s.path(workload)
	if err != nil {
		return err
	}
	if err := EnsurePrivateDir(filepath.Dir(s.dir)); err != nil {
		return err
	}
	if err := EnsurePrivateDir(s.dir); err != nil {
		return err
	}
	if err := writeKeyFile(path, der); err != nil {
		// An existing key wraps fs.ErrExist: the caller loads that one.
		return fmt.Errorf("host: agent key: %w", err)
	}
	return nil
}

// storeRegistrations keeps the agents' dynamic client registrations in
// the host's store, one record per agent and issuer. A record holds the
// registration access token, a credential: the store is owner-only (the
// data directory) or the deployment's database.
type storeRegistrations struct{ kv store.KV }

var _ clientid.RegistrationStore = (*storeRegistrations)(nil)

// registrationKey is the record key of workload's registration at
// issuer: a workload name has no '|'.
func registrationKey(issuer, workload string) string { return workload + "|" + issuer }

// Load implements [clientid.RegistrationStore].
func (s *storeRegistrations) Load(ctx context.Context, issuer, workload string) (*clientid.Registration, error) {
	rec, err := s.kv.Get(ctx, nsClientRegistrations, registrationKey(issuer, workload))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("host: registration of %s at %s: %w", workload, issuer, clientid.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("host: registration of %s at %s: %w", workload, issuer, err)
	}
	var r clientid.Registration
	if err := json.Unmarshal(rec.Value, &r); err != nil {
		return nil, fmt.Errorf("host: registration of %s at %s: %w", workload, issuer, err)
	}
	if r.Issuer != issuer || r.Workload != workload {
		return nil, fmt.Errorf("host: registration of %s at %s: the record names %s at %s", workload, issuer, r.Workload, r.Issuer)
	}
	return &r, nil
}

// Save implements [clientid.RegistrationStore].
func (s *storeRegistrations) Save(ctx context.Context, r *clientid.Registration) error {
	if r == nil {
		return errors.New("host: save a registration: none given")
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("host: registration of %s at %s: %w", r.Workload, r.Issuer, err)
	}
	if _, err := s.kv.Put(ctx, nsClientRegistrations, registrationKey(r.Issuer, r.Workload), v, store.PutOptions{}); err != nil {
		return fmt.Errorf("host: registration of %s at %s: %w", r.Workload, r.Issuer, err)
	}
	return nil
}

// Delete implements [clientid.RegistrationStore].
func (s *storeRegistrations) Delete(ctx context.Context, issuer, workload string) error {
	err := s.kv.Delete(ctx, nsClientRegistrations, registrationKey(issuer, workload), store.Always)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("host: registration of %s at %s: %w", workload, issuer, err)
	}
	return nil
}
