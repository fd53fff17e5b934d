package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Version is the only configuration file version this package reads.
const Version = 1

// Defaults for omitted keys.
const (
	DefaultTrustDomain = "agenthost.local"
	DefaultAddress     = Address("127.0.0.1:8420")
	DefaultSVIDTTL     = time.Hour
	DefaultCATTL       = 720 * time.Hour
	DefaultDriver      = DriverSQLite
	DefaultLogLevel    = LevelInfo
	DefaultLogFormat   = FormatText
)

// Lower bounds checked by [Config.Validate].
const (
	MinSVIDTTL = time.Minute
	MinCATTL   = time.Hour
)

// Config is agenthost's configuration (version 1): the canonical form of the
// YAML file, and what [Config.Digest] covers. Build one with [Load], [Parse]
// or [Default]; a Config literal has no defaults and no positions.
type Config struct {
	// Version of the file format. REQUIRED; only 1 is supported.
	Version int `json:"version"`
	// TrustDomain is the SPIFFE trust domain of the host and its agents
	// (SPIFFE-ID §2.1): lowercase [a-z0-9._-], at most 255 bytes.
	TrustDomain string `json:"trust_domain"`
	// Listen is the host's HTTP listener.
	Listen ListenConfig `json:"listen"`
	// Identity sets credential lifetimes.
	Identity IdentityConfig `json:"identity"`
	// Storage selects where state is kept.
	Storage StorageConfig `json:"storage"`
	// Log configures the host's logger.
	Log LogConfig `json:"log"`
	// Auth configures the embedded OAuth authorization server.
	Auth AuthConfig `json:"auth"`
	// Models are the language models agents may use, by alias. Empty means
	// one model, "default", the offline model.
	Models map[string]ModelConfig `json:"models,omitempty"`
	// Sandbox is the containment every plugin process (agent or tool
	// plugin) gets unless its own sandbox key overrides it: the level and
	// the resource limits. Default: [DefaultSandboxLevel] with the
	// DefaultSandbox… limits.
	Sandbox SandboxConfig `json:"sandbox"`
	// Agents are the agent plugins the host runs.
	Agents []AgentConfig `json:"agents,omitempty"`
	// MCP configures the MCP servers the host serves.
	MCP MCPConfig `json:"mcp"`
	// A2A names the remote A2A agents agents may call. Left out of the
	// canonical form when empty, so adding the section changed no digest.
	A2A A2AConfig `json:"a2a,omitzero"`
	// Policy configures the policies that decide calls.
	Policy PolicyConfig `json:"policy"`
	// Audit configures the audit log.
	Audit AuditConfig `json:"audit"`
	// Signals configures Shared Signals streams (CAEP).
	Signals SignalsConfig `json:"signals"`
	// Federation names the other trust domains this one federates with.
	// Left out of the canonical form when empty.
	Federation FederationConfig `json:"federation,omitzero"`
	// Telemetry configures metrics and traces. Left out of the canonical
	// form when it says what the defaults say.
	Telemetry TelemetryConfig `json:"telemetry,omitzero"`
	// Console names the operators of the web console. Left out of the
	// canonical form when empty.
	Console ConsoleConfig `json:"console,omitzero"`

	file            string
	pos             map[string]Position
	issuerDefaulted bool
	// overridden are the key paths whose value [LoadOptions] set rather
	// than the file.
	overridden []string
}

// ListenConfig is the listen section.
type ListenConfig struct {
	// Address is host:port to bind. Default 127.0.0.1:8420.
	Address Address `json:"address"`
	// Issuer is the public base URL of the host, the OAuth issuer (RFC 8414
	// §2): http(s), no trailing slash, no query, no fragment. Default
	// "http://" + Address, or "https://" + Address with TLS.
	Issuer string `json:"issuer"`
	// TLS, when set, serves HTTPS with the given key pair.
	TLS *TLSConfig `json:"tls"`
}

// TLSConfig is the listener's TLS: a certificate and key from files (a
// Web PKI certificate browsers and OAuth clients accept), or the host's
// own X.509-SVID (svid: true) for connections between hosts and
// workloads that verify SPIFFE IDs. Relative paths are resolved against
// the directory of the configuration file.
type TLSConfig struct {
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// SVID serves the host's X.509-SVID, renewed at half its lifetime
	// without dropping connections, instead of cert_file and key_file.
	SVID bool `json:"svid,omitempty"`
	// Peers narrows which client certificates are accepted (always
	// optional: OAuth clients without one still connect): SPIFFE IDs, or
	// trust domains as spiffe://<name>. A client that presents a
	// certificate must present an X.509-SVID of this trust domain or a
	// federated one, and, when Peers is set, one it names. Only with svid.
	Peers []string `json:"peers,omitempty"`
}

// IdentityConfig sets the lifetimes of the trust domain's credentials.
type IdentityConfig struct {
	// SVIDTTL is the lifetime of X.509-SVIDs, JWT-SVIDs and WITs. Default 1h,
	// at least 1m, and less than CATTL/6.
	SVIDTTL time.Duration `json:"svid_ttl"`
	// CATTL is the lifetime of a CA key. Default 720h, at least 1h.
	CATTL time.Duration `json:"ca_ttl"`
	// WorkloadAPI, when set, is the SPIFFE Workload API endpoint
	// (unix:///path or tcp://ip:port; a SPIRE agent's socket) the host
	// takes its own and its agents' identities and the trust bundle
	// from, instead of running its own CA: the host's workload must be
	// registered as spiffe://<trust_domain>/host and as
	// spiffe://<trust_domain>/agent/<name> for each agent. svid_ttl and
	// ca_ttl are then the upstream's business.
	WorkloadAPI string `json:"workload_api,omitempty"`
}

// StorageConfig selects the storage backend: sqlite (the default, one file
// in the data directory) or postgres (one database shared by every host of
// a deployment). The PostgreSQL connection string may hold a password, so,
// like every other secret, it is never written in the file: dsn_env names
// an environment variable holding it, or dsn_file a file holding it
// (exactly one of the two, and only with driver postgres). [StorageConfig.DSN]
// reads it.
type StorageConfig struct {
	// Driver is the backend: sqlite (default) or postgres.
	Driver StorageDriver `json:"driver"`
	// Path is the database file of driver sqlite. Empty means agenthost.db
	// in the data directory, which the caller resolves. A relative path is
	// resolved against the directory of the configuration file. Not used
	// with postgres.
	Path string `json:"path"`
	// DSNEnv names the environment variable that holds the PostgreSQL
	// connection string ("postgres://user:password@host:5432/db?sslmode=
	// verify-full", or the keyword/value form). Driver postgres only.
	DSNEnv string `json:"dsn_env,omitempty"`
	// DSNFile is a file that holds the PostgreSQL connection string (one
	// line; surrounding white space, such as the final newline, is
	// ignored). A relative path is resolved against the directory of the
	// configuration file. Driver postgres only.
	DSNFile string `json:"dsn_file,omitempty"`
}

// msgDSN explains why a key that would hold the connection string is
// refused.
const msgDSN = "the PostgreSQL connection string is never written in the config; put it in an environment variable named by dsn_env, or in a file named by dsn_file"

func (StorageConfig) refuseKey(name string) (string, bool) {
	switch name {
	case "dsn", "url", "database_url", "connection_string", "conn_string", "password":
		return msgDSN, true
	}
	return "", false
}

// looksLikeDSN reports whether s, written where a file path belongs, is a
// connection string instead (a URL, whose "//" resolving the path against
// the file's directory made "/", or keyword=value pairs); it is then never
// quoted back.
func looksLikeDSN(s string) bool {
	return strings.Contains(s, "://") || strings.Contains(s, "postgres:/") || strings.Contains(s, "postgresql:/") ||
		(strings.Contains(s, "=") && strings.Contains(s, " "))
}

// MaxDSNFileSize is the largest storage.dsn_file read, in bytes.
const MaxDSNFileSize = 64 << 10

// DSN returns the PostgreSQL connection string of driver postgres, read
// from the environment variable dsn_env or the file dsn_file, with
// surrounding white space trimmed. It fails, without quoting the string,
// when the driver is not postgres, when the variable is unset or empty, or
// when the file cannot be read, is too large or is empty. The host calls it
// at start; [Config.Validate] does not, so that a file can be validated
// where the secret is not present.
func (s StorageConfig) DSN() (string, error) {
	if s.Driver != DriverPostgres {
		return "", fmt.Errorf("config: storage: driver %s has no DSN; only driver %s has one", quoteValue(string(s.Driver)), DriverPostgres)
	}
	switch {
	case s.DSNEnv != "" && s.DSNFile != "":
		return "", errors.New("config: storage: give dsn_env or dsn_file, not both")
	case s.DSNEnv != "":
		v, ok := os.LookupEnv(s.DSNEnv)
		if !ok {
			return "", fmt.Errorf("config: storage.dsn_env: environment variable %s is not set", s.DSNEnv)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("config: storage.dsn_env: environment variable %s is empty", s.DSNEnv)
		}
		return v, nil
	case s.DSNFile != "":
		f, err := os.Open(s.DSNFile)
		if err != nil {
			return "", fmt.Errorf("config: storage.dsn_file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxDSNFileSize+1))
		switch {
		case err != nil:
			return "", fmt.Errorf("config: storage.dsn_file: read %s: %w", s.DSNFile, err)
		case len(b) > MaxDSNFileSize:
			return "", fmt.Errorf("config: storage.dsn_file: %s is larger than %d bytes; it should hold one connection string", s.DSNFile, MaxDSNFileSize)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("config: storage.dsn_file: %s is empty", s.DSNFile)
		}
		return v, nil
	}
	return "", errors.New("config: storage: driver postgres needs dsn_env or dsn_file")
}

// AgentConfig is one agent plugin the host runs. Its identity is
// spiffe://<trust_domain>/agent/<name>.
type AgentConfig struct {
	// Name is one path segment: lowercase letters, digits, '-' and '_',
	// starting with a letter or digit, at most 63 bytes. REQUIRED, unique.
	Name string `json:"name"`
	// Path is the plugin binary. REQUIRED. A relative path is resolved
	// against the directory of the configuration file.
	Path string `json:"path"`
	// SHA256 pins the binary's digest (64 hex digits). OPTIONAL: when empty
	// the host pins the digest it measures at start.
	SHA256 string `json:"sha256"`
	// Env is extra, non-secret environment for the plugin; the host's own
	// environment is never passed on.
	Env map[string]string `json:"env"`
	// Model is the alias of the agent's model. Default "default".
	Model string `json:"model"`
	// Tools the agent may call ("server/tool", or "server/*").
	Tools []string `json:"tools"`
	// CallAgents are the agents this agent may delegate tasks to, by
	// name: hosted agents (agents) and remote ones (a2a.remotes).
	CallAgents []string `json:"call_agents"`
	// TaskTimeout bounds one task; a plugin still running a task past it is
	// treated as hung: killed and restarted. Default 10m, at least 1s.
	TaskTimeout time.Duration `json:"task_timeout"`
	// Scopes are the OAuth scopes the agent may be issued (scope tokens,
	// RFC 6749 §3.3). An agent authenticates with its SVIDs, never with a
	// secret: the keys secret, client_secret and secret_hash are refused.
	Scopes []string `json:"scopes"`
	// Sandbox overrides the top-level sandbox for this agent, key by key,
	// and adds the paths and loopback ports it may reach; see
	// [Config.AgentSandbox].
	Sandbox SandboxConfig `json:"sandbox"`
}

// Model providers.
const (
	ProviderOffline   = "offline"
	ProviderOpenAI    = "openai"
	ProviderAnthropic = "anthropic"
)

// ModelConfig is one language model. API keys stay in the host: they are
// read from an environment variable or a file, never written in the config
// and never passed to a plugin.
type ModelConfig struct {
	// Provider is offline, openai (any OpenAI-compatible chat-completions
	// server: OpenAI, vLLM, llama.cpp, Ollama) or anthropic. REQUIRED.
	Provider string `json:"provider"`
	// Model is the provider's model name. REQUIRED except for offline.
	Model string `json:"model"`
	// BaseURL overrides the provider's default endpoint.
	BaseURL string `json:"base_url"`
	// APIKeyEnv names the environment variable holding the API key.
	APIKeyEnv string `json:"api_key_env"`
	// APIKeyFile is a file holding the API key (relative paths are resolved
	// against the configuration file's directory).
	APIKeyFile string `json:"api_key_file"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  LogLevel  `json:"level"`
	Format LogFormat `json:"format"`
}

// Default returns the configuration an empty version 1 file produces.
func Default() *Config {
	c := base()
	c.fillDerived()
	return c
}

// base is the configuration decoding starts from: every default except the
// ones derived from other keys.
func base() *Config {
	return &Config{
		Version:     Version,
		TrustDomain: DefaultTrustDomain,
		Listen:      ListenConfig{Address: DefaultAddress},
		Identity:    IdentityConfig{SVIDTTL: DefaultSVIDTTL, CATTL: DefaultCATTL},
		Storage:     StorageConfig{Driver: DefaultDriver},
		Log:         LogConfig{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Auth:        defaultAuth(),
		Sandbox:     defaultSandbox(),
	}
}

// LoadOptions change what a configuration file says, for one run: each
// field that is set replaces the value of a key after the file is decoded
// and before the defaults that depend on it are derived and the
// configuration is validated, as if the file held that value. The zero
// value changes nothing.
//
// A problem with a replaced value is reported at its key path without a
// line (the value is not in the file), and a decoding problem of the
// file's own value for that key is dropped.
type LoadOptions struct {
	// ListenAddress, when not empty, replaces listen.address: several hosts
	// can then run from one file on one machine. When the file sets no
	// listen.issuer, the issuer is derived from this address.
	ListenAddress Address
}

// apply replaces the values o sets in c, decoded from the file with the
// problems errs, and returns errs without the problems of the replaced
// values.
func (o LoadOptions) apply(c *Config, errs Errors) Errors {
	if o.ListenAddress != "" {
		c.Listen.Address = o.ListenAddress
		c.override("listen.address")
	}
	if len(c.overridden) == 0 {
		return errs
	}
	kept := errs[:0:0]
	for _, e := range errs {
		if !slices.Contains(c.overridden, e.Path) {
			kept = append(kept, e)
		}
	}
	return kept
}

// override records that the value at path was set by [LoadOptions], not
// written in the file.
func (c *Config) override(path string) {
	delete(c.pos, path)
	c.overridden = append(c.overridden, path)
}

// Load reads, decodes, fills defaults into and validates the configuration
// file at path. Problems with the file's content are returned as [Errors];
// a file that cannot be read is returned as the wrapped I/O error.
func Load(path string) (*Config, error) {
	return LoadWith(path, LoadOptions{})
}

// LoadWith is [Load] with the values of o replacing the file's.
func LoadWith(path string, o LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseWith(path, data, o)
}

// Parse decodes, fills defaults into and validates a configuration file's
// content. name is the file's path: it prefixes every problem, and relative
// paths in the file are resolved against its directory. Every problem is
// returned, as [Errors]: decoding problems (unknown or duplicate keys, wrong
// types) and the [Config.Validate] problems of every value that was
// understood. A syntax error stops at the first problem, since nothing after
// it can be read reliably.
func Parse(name string, data []byte) (*Config, error) {
	return ParseWith(name, data, LoadOptions{})
}

// ParseWith is [Parse] with the values of o replacing the file's.
func ParseWith(name string, data []byte, o LoadOptions) (*Config, error) {
	root, errs := parseDocument(name, data)
	if errs != nil {
		return nil, errs
	}
	d := newDecoder(name)
	d.pos[""] = Position{Line: root.Line, Column: root.Column}
	if stop := d.checkVersion(root); stop {
		return nil, d.errs
	}
	c := base()
	d.decode(root, reflect.ValueOf(c).Elem(), "", 0)
	c.file = name
	c.pos = d.pos
	d.errs = o.apply(c, d.errs)
	c.resolvePaths(filepath.Dir(name))
	c.fillDerived()
	verr := c.Validate()
	if len(d.errs) == 0 {
		if verr != nil {
			return nil, verr
		}
		return c, nil
	}
	// A field that failed to decode kept its default, so the semantic checks
	// still speak about every value that was understood. Drop what they say
	// about a key that already has a decoding problem (or its parent or
	// child keys): that would report one mistake twice.
	all := d.errs
	var ves Errors
	if errors.As(verr, &ves) {
		for _, ve := range ves {
			if !overlapsAny(ve.Path, d.errs) {
				all = append(all, ve)
			}
		}
	}
	sortErrors(all)
	return nil, all
}

// overlapsAny reports whether path is, contains or is contained in the path
// of one of errs.
func overlapsAny(path string, errs Errors) bool {
	for _, e := range errs {
		if e.Path == path || e.Path == "" || path == "" ||
			strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(e.Path, path+".") {
			return true
		}
	}
	return false
}

// parseDocument parses data as exactly one YAML document whose top level is a
// mapping.
func parseDocument(name string, data []byte) (root *yaml.Node, errs Errors) {
	fail := func(line int, kind error, format string, args ...any) (*yaml.Node, Errors) {
		e := &Error{File: name, Line: line, Message: fmt.Sprintf(format, args...), Kind: kind}
		if line > 0 {
			e.Column = 1
		}
		return nil, Errors{e}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(0, ErrEmpty, "file is empty; it needs at least \"version: %d\"", Version)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, ErrEmpty, "file has no content, only comments; it needs at least \"version: %d\"", Version)
		}
		line, msg := yamlErrorLine(err)
		return fail(line, ErrSyntax, "not valid YAML: %s", msg)
	}
	for {
		var next yaml.Node
		err := decodeNode(dec, &next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, msg := yamlErrorLine(err)
			return fail(line, ErrSyntax, "not valid YAML: %s", msg)
		}
		if len(next.Content) > 0 && next.Content[0].ShortTag() != tagNull {
			return fail(next.Content[0].Line, ErrSyntax, "the file holds more than one YAML document; keep only the first")
		}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return fail(0, ErrEmpty, "file is empty; it needs at least \"version: %d\"", Version)
	}
	root = resolve(doc.Content[0])
	if root == nil {
		return fail(0, ErrSyntax, "not valid YAML: the document is an alias to nothing")
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == tagNull {
		return fail(0, ErrEmpty, "file is empty; it needs at least \"version: %d\"", Version)
	}
	if root.Kind != yaml.MappingNode {
		e := &Error{File: name, Line: root.Line, Column: root.Column, Kind: ErrNotMapping,
			Message: fmt.Sprintf("the top level must be a mapping of keys such as \"version: %d\", got %s", Version, describe(root))}
		return nil, Errors{e}
	}
	return root, nil
}

// decodeNode reads one document, turning a panic in the YAML parser into an
// error so that no input can crash the caller.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// yamlErrorLine splits "yaml: line N: message" into a 1-based line and the
// message. The YAML parser counts lines from 1 for scanner problems but from
// 0 for parser problems (whose line is where the enclosing block or flow
// collection starts, and is left out when it is the first line), so parser
// problems are shifted by one.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, after, found := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); found && err == nil && n > 0 {
			line, msg = n, after
		}
	}
	if isParserProblem(msg) {
		line++
	}
	return line, msg
}

// isParserProblem reports whether msg is one of the YAML parser's (as
// opposed to its scanner's) problem texts.
func isParserProblem(msg string) bool {
	return strings.HasPrefix(msg, "did not find expected ") ||
		strings.HasPrefix(msg, "found undefined tag handle") ||
		strings.HasPrefix(msg, "found duplicate %") ||
		strings.HasPrefix(msg, "found incompatible YAML document")
}

// checkVersion looks at the version key before anything else: the version
// decides the schema. It reports whether decoding must stop.
func (d *decoder) checkVersion(root *yaml.Node) (stop bool) {
	var key, val *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := resolve(root.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == "version" {
			key, val = root.Content[i], root.Content[i+1]
			break
		}
	}
	if key == nil {
		// Without a version the file is read as version 1, so that every
		// other problem is reported too.
		d.add(root, "version", ErrNoVersion, "missing required key \"version\"; this agenthost reads version %d", Version)
		return false
	}
	probe := newDecoder(d.file)
	var v int
	probe.decode(val, reflect.ValueOf(&v).Elem(), "version", 0)
	if len(probe.errs) > 0 {
		d.errs = append(d.errs, probe.errs...)
		return true
	}
	if t := resolve(val); t != nil && t.ShortTag() == tagNull {
		d.add(key, "version", ErrNoVersion, "version is empty; this agenthost reads version %d", Version)
		return false
	}
	if v != Version {
		d.add(val, "version", ErrUnsupportedVersion, "unsupported version %d; this agenthost reads version %d", v, Version)
		return true
	}
	return false
}

// resolvePaths makes the file paths in c absolute against dir, the
// directory of the configuration file.
func (c *Config) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if c.Listen.TLS != nil {
		c.Listen.TLS.CertFile = abs(c.Listen.TLS.CertFile)
		c.Listen.TLS.KeyFile = abs(c.Listen.TLS.KeyFile)
	}
	c.Storage.Path = abs(c.Storage.Path)
	c.Storage.DSNFile = abs(c.Storage.DSNFile)
	for i := range c.Agents {
		c.Agents[i].Path = abs(c.Agents[i].Path)
		resolveSandboxPaths(c.Agents[i].Sandbox.ReadOnlyPaths, dir)
	}
	for k, m := range c.Models {
		m.APIKeyFile = abs(m.APIKeyFile)
		c.Models[k] = m
	}
	for i := range c.MCP.Plugins {
		c.MCP.Plugins[i].Path = abs(c.MCP.Plugins[i].Path)
		resolveSandboxPaths(c.MCP.Plugins[i].Sandbox.ReadOnlyPaths, dir)
	}
	for i := range c.MCP.Remotes {
		if cmd := c.MCP.Remotes[i].Command; len(cmd) > 0 && cmd[0] != "" {
			cmd[0] = abs(cmd[0])
		}
		if cl := c.MCP.Remotes[i].Client; cl != nil {
			cl.KeyFile = abs(cl.KeyFile)
		}
	}
	c.Auth.resolvePaths(abs)
	c.A2A.resolvePaths(abs)
	c.Federation.resolvePaths(abs)
	c.Policy.Dir = abs(c.Policy.Dir)
	c.Audit.resolvePaths(abs)
}

// fillDerived sets the defaults that depend on other keys.
func (c *Config) fillDerived() {
	if c.Listen.Issuer == "" {
		c.Listen.Issuer = c.Listen.defaultIssuer()
		c.issuerDefaulted = true
	}
	c.Auth.fillDerived()
}

// IssuerDefaulted reports whether listen.issuer was derived from the
// listen address rather than written in the file; the host then derives it
// from the address it actually binds (which differs for port 0).
func (c *Config) IssuerDefaulted() bool { return c.issuerDefaulted }

// IssuerURL returns the public base URL of the host: listen.issuer, or the
// default derived from the listen address and TLS.
func (c *Config) IssuerURL() string {
	if c.Listen.Issuer != "" {
		return c.Listen.Issuer
	}
	return c.Listen.defaultIssuer()
}

func (l ListenConfig) defaultIssuer() string {
	if l.Address == "" {
		return ""
	}
	if l.TLS != nil {
		return "https://" + string(l.Address)
	}
	return "http://" + string(l.Address)
}

// IsLoopback reports whether the listener binds a loopback address only
// (127.0.0.0/8, ::1 or localhost).
func (l ListenConfig) IsLoopback() bool { return l.Address.IsLoopback() }

// TLSEnabled reports whether the listener serves HTTPS.
func (l ListenConfig) TLSEnabled() bool { return l.TLS != nil }

// File returns the name the configuration was parsed from, or "".
func (c *Config) File() string { return c.file }

// Position returns where key path (for example "listen.address") was written
// in the file. It reports false for keys that were not written, and for
// configurations not decoded from a file.
func (c *Config) Position(path string) (Position, bool) {
	p, ok := c.pos[path]
	return p, ok
}

// CanonicalJSON returns the canonical JSON encoding of the effective
// configuration: fields in schema order, map keys sorted, durations in
// nanoseconds, sizes in bytes, no insignificant white space.
func (c *Config) CanonicalJSON() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: encode canonical JSON: %w", err)
	}
	return b, nil
}

// Digest returns the lowercase hex SHA-256 of [Config.CanonicalJSON]. Key
// order, comments and layout of the source file do not change it; any change
// to an effective value does. It returns "" only for a Config holding a value
// JSON cannot encode, which [Parse] never produces.
func (c *Config) Digest() string {
	b, err := c.CanonicalJSON()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
