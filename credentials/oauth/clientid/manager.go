package clientid

import (
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	// DefaultMaxAge is the Cache-Control max-age of the documents and
	// JWK Sets [Manager.Handler] serves.
	DefaultMaxAge = 5 * time.Minute
	// DefaultReregisterAfter is how old a renewed registration must be
	// before a refusal has it registered again ([Manager.Rejected]).
	DefaultReregisterAfter = 10 * time.Minute
	// DefaultTimeout bounds a registration request when Config.HTTPClient
	// is nil.
	DefaultTimeout = 10 * time.Second
)

// Log attribute keys.
const (
	attrWorkload = "workload"
	attrIssuer   = "issuer"
	attrClientID = "client_id"
	attrMode     = "mode"
	attrErr      = "err"
)

// Config configures a [Manager].
type Config struct {
	// Keys keeps the workloads' private keys. Nil means a
	// [MemoryKeyStore]: keys then last as long as the Manager.
	Keys KeyStore
	// Registrations keeps dynamic client registrations. Nil means a
	// [MemoryRegistrationStore]: registrations then last as long as the
	// Manager.
	Registrations RegistrationStore
	// Workloads are the workloads known from the start ([Manager.Put]
	// adds more).
	Workloads []Workload
	// Servers holds per-server settings by issuer identifier (compared
	// exactly). A server not listed is in ModeAuto with no static
	// clients.
	Servers map[string]ServerConfig
	// HTTPClient posts registration requests. Nil means a client with a
	// DefaultTimeout timeout. A given client is copied and its redirect
	// policy replaced: redirects are never followed.
	HTTPClient *http.Client
	// AllowHTTP permits registration endpoints (and the management URIs
	// they return) with the http scheme. It is for tests and loopback
	// development; by default only https is used. Workload URLs are https
	// regardless.
	AllowHTTP bool
	// MaxAge is the Cache-Control max-age of served documents and JWK
	// Sets. Zero means DefaultMaxAge.
	MaxAge time.Duration
	// ReregisterAfter: a registration that itself replaced a refused one
	// is registered again on refusal only when older than this. Zero
	// means DefaultReregisterAfter.
	ReregisterAfter time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives records of keys created, clients registered and
	// refusals. Nil means silent. Keys and tokens are never logged.
	Logger *slog.Logger
}

// ServerConfig is what the host is told about one authorization server.
type ServerConfig struct {
	// Mode says how workloads are known there. Empty means ModeAuto. A
	// forced mode is used whatever the server's metadata advertises,
	// except that ModeRegistration needs a registration_endpoint.
	Mode Mode
	// Static holds the clients registered there out of band, by
	// workload name.
	Static map[string]StaticClient
	// InitialAccessToken, when set, is sent as a bearer token with
	// registration requests (RFC 7591 §3).
	InitialAccessToken string
}

// StaticClient is a client registered out of band: a client_id and the
// key whose public part the server was given.
type StaticClient struct {
	// ClientID is the client_id. Required.
	ClientID string
	// Key signs the client's assertions. Nil means the workload's own key
	// (the one its JWK Set publishes).
	Key crypto.Signer
}

// Manager holds the workloads' client keys, serves their client ID
// metadata documents and JWK Sets ([Manager.Handler]), and picks how each
// workload is known at each authorization server ([Manager.Resolve]). It
// is safe for concurrent use.
type Manager struct {
	keyStore        KeyStore
	regStore        RegistrationStore
	servers         map[string]serverSettings
	client          *http.Client
	allowHTTP       bool
	maxAge          time.Duration
	reregisterAfter time.Duration
	now             func() time.Time
	log             *slog.Logger

	locks locks

	mu        sync.RWMutex
	workloads map[string]Workload
	// paths maps the escaped path of a document or JWK Set URL to what
	// it serves.
	paths map[string]route
	keys  map[string]*signingKey
	regs  map[[2]string]*Registration
}

type route struct {
	workload string
	jwks     bool
}

type serverSettings struct {
	ServerConfig
	static map[string]staticKey
}

type staticKey struct {
	clientID string
	key      *signingKey // nil: the workload's key
}

// New checks cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	m := &Manager{
		keyStore:        cfg.Keys,
		regStore:        cfg.Registrations,
		servers:         map[string]serverSettings{},
		allowHTTP:       cfg.AllowHTTP,
		maxAge:          cfg.MaxAge,
		reregisterAfter: cfg.ReregisterAfter,
		now:             cfg.Now,
		log:             cfg.Logger,
		workloads:       map[string]Workload{},
		paths:           map[string]route{},
		keys:            map[string]*signingKey{},
		regs:            map[[2]string]*Registration{},
	}
	if m.keyStore == nil {
		m.keyStore = NewMemoryKeyStore()
	}
	if m.regStore == nil {
		m.regStore = NewMemoryRegistrationStore()
	}
	if m.maxAge <= 0 {
		m.maxAge = DefaultMaxAge
	}
	if m.reregisterAfter <= 0 {
		m.reregisterAfter = DefaultReregisterAfter
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	c := http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	m.client = &c
	for issuer, sc := range cfg.Servers {
		s, err := checkServer(issuer, sc)
		if err != nil {
			return nil, err
		}
		m.servers[issuer] = s
	}
	for _, w := range cfg.Workloads {
		if err := m.Put(w); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkServer(issuer string, sc ServerConfig) (serverSettings, error) {
	s := serverSettings{ServerConfig: sc, static: map[string]staticKey{}}
	if issuer == "" {
		return s, fmt.Errorf("%w: a server without issuer", ErrConfig)
	}
	if _, err := ParseMode(string(sc.Mode)); err != nil {
		return s, fmt.Errorf("%w: server %s: %w", ErrConfig, issuer, err)
	}
	for name, st := range sc.Static {
		if !workloadName.MatchString(name) {
			return s, fmt.Errorf("%w: server %s: static client for workload %q: not a workload name", ErrConfig, issuer, truncate(name, 64))
		}
		if err := checkClientID(st.ClientID); err != nil {
			return s, fmt.Errorf("%w: server %s: static client of workload %q: client_id %w", ErrConfig, issuer, name, err)
		}
		sk := staticKey{clientID: st.ClientID}
		if st.Key != nil {
			k, err := newSigningKey(st.Key)
			if err != nil {
				return s, fmt.Errorf("%w: server %s: static client of workload %q: %w", ErrConfig, issuer, name, err)
			}
			sk.key = k
		}
		s.static[name] = sk
	}
	return s, nil
}

// Put adds w, or replaces the workload of the same name. A URL whose path
// another workload's URL has is refused.
func (m *Manager) Put(w Workload) error {
	docPath, jwksPath, err := w.validate()
	if err != nil {
		return err
	}
	w.RedirectURIs = append([]string(nil), w.RedirectURIs...)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range []string{docPath, jwksPath} {
		if r, ok := m.paths[p]; ok && p != "" && r.workload != w.Name {
			return fmt.Errorf("%w: workload %q: path %s is workload %q's", ErrConfig, w.Name, p, r.workload)
		}
	}
	m.dropPaths(w.Name)
	if docPath != "" {
		m.paths[docPath] = route{workload: w.Name}
	}
	if jwksPath != "" {
		m.paths[jwksPath] = route{workload: w.Name, jwks: true}
	}
	m.workloads[w.Name] = w
	return nil
}

// Remove drops the workload named name: its document and JWK Set are no
// longer served. Its saved key and registrations stay in the stores.
func (m *Manager) Remove(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropPaths(name)
	delete(m.workloads, name)
	delete(m.keys, name)
	for k := range m.regs {
		if k[1] == name {
			delete(m.regs, k)
		}
	}
}

// dropPaths removes name's routes; m.mu is held.
func (m *Manager) dropPaths(name string) {
	for p, r := range m.paths {
		if r.workload == name {
			delete(m.paths, p)
		}
	}
}

func (m *Manager) workload(name string) (Workload, error) {
	m.mu.RLock()
	w, ok := m.workloads[name]
	m.mu.RUnlock()
	if !ok {
		return Workload{}, fmt.Errorf("%w: %q", ErrUnknownWorkload, truncate(name, 64))
	}
	return w, nil
}
