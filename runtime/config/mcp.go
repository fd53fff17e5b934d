package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// MCPConfig is the mcp section.
type MCPConfig struct {
	// Servers are the MCP servers the host serves at /mcp/<name>, each a
	// protected resource of the embedded authorization server.
	Servers []MCPServerConfig `json:"servers,omitempty"`
	// Remotes are MCP servers elsewhere whose tools agents may call
	// through the host, as "<name>/<tool>". The host acquires the tokens.
	Remotes []MCPRemoteConfig `json:"remotes,omitempty"`
	// Plugins are tool plugins: processes the host runs that offer tools,
	// served as host tools "<plugin>/<tool>" (offered by servers, granted
	// to agents). They get the verified caller of each call, never a token.
	Plugins []MCPPluginConfig `json:"plugins,omitempty"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// requests the hosted MCP servers accept, besides the host's own origin
	// and loopback origins, which are always accepted. A request with any
	// other Origin header is refused with 403, so that a web page cannot
	// reach the servers through DNS rebinding (MCP 2025-11-25, streamable
	// HTTP). "*" accepts every origin. Requests without an Origin header
	// (not from a browser) are not affected.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
}

// ParseOrigin checks that s is a web origin as a browser sends it in the
// Origin header: http or https, a host, an optional port, nothing else. It
// returns the origin in its canonical (lowercase) form.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("origin %s is not scheme://host[:port] with scheme http or https", quoteValue(s))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %s has more than scheme, host and port", quoteValue(s))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", fmt.Errorf("origin %s has port %s; want a number from 1 to 65535", quoteValue(s), quoteValue(p))
		}
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// MCPPluginConfig is one tool plugin.
type MCPPluginConfig struct {
	// Name prefixes its tools ("textkit" → "textkit/count"). Same rules
	// as a server name; unique among plugins and remotes.
	Name string `json:"name"`
	// Path is the plugin binary. REQUIRED. A relative path is resolved
	// against the directory of the configuration file.
	Path string `json:"path"`
	// SHA256 pins the binary's digest (64 hex digits). OPTIONAL: when
	// empty the host pins the digest it measures at start.
	SHA256 string `json:"sha256"`
	// Env is the plugin's whole environment; the host's own is never
	// passed on.
	Env map[string]string `json:"env"`
	// Sandbox overrides the top-level sandbox for this plugin, key by
	// key, and adds the paths and loopback ports it may reach; see
	// [Config.PluginSandbox].
	Sandbox SandboxConfig `json:"sandbox"`
}

// MCPRemoteConfig is a remote MCP server.
type MCPRemoteConfig struct {
	// Name prefixes its tools for agents ("docs" → "docs/search"). Same
	// rules as a server name; unique among servers and remotes.
	Name string `json:"name"`
	// URL is the MCP endpoint (streamable HTTP), also its OAuth resource
	// identifier: https, or http on a loopback host for development.
	// Exactly one of URL and Command is set.
	URL string `json:"url"`
	// Command runs a local MCP server over stdio: the absolute path of
	// the executable, then its arguments (relative paths are resolved
	// against the configuration file's directory). It gets no token: the
	// host has authorized each call.
	Command []string `json:"command"`
	// Env is the command's whole environment; the host's own is never
	// passed on.
	Env map[string]string `json:"env"`
	// Tools are the remote tools agents may be granted. REQUIRED.
	Tools []string `json:"tools"`
	// ActingAs is whose authority an agent's call to the server carries
	// (a url remote only): "user", the user a task was started for with
	// their own access token, by token exchange (RFC 8693: the server
	// sees sub = the user, act = the agent, nested through the agents
	// that delegated the task), and a task without such a user fails; or
	// "agent", the agent's own (client_credentials: sub = the agent).
	// Empty means "user" for a task with a user and "agent" for one
	// without.
	ActingAs ActingAs `json:"acting_as"`
	// Chaining is how a user's authority reaches a server whose
	// authorization server is of another domain: empty, by token exchange
	// at that server (it must trust this host's issuer); or "id_jag",
	// identity chaining: the embedded server issues an ID-JAG for that
	// server (listed under auth.id_jag), which the agent redeems there by
	// the jwt-bearer grant (SPECS.md §12).
	Chaining Chaining `json:"chaining,omitempty"`
	// Client is how the calling agent is known as a client of the
	// server's authorization server. Default: chosen from its metadata.
	Client *RemoteClientConfig `json:"client,omitempty"`
}

// Chaining is how a user's authority crosses to another domain.
type Chaining string

// Values of mcp.remotes[].chaining.
const (
	ChainingIDJAG Chaining = "id_jag"
)

var chainings = []Chaining{ChainingIDJAG}

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (c *Chaining) UnmarshalConfigScalar(text string) error {
	v := Chaining(text)
	if !oneOf(v, chainings) {
		return enumError("chaining", text, chainings)
	}
	*c = v
	return nil
}

// RemoteClientConfig is how agents are known at a remote's authorization
// server.
type RemoteClientConfig struct {
	// Method is one of auto (the default), spiffe (a JWT-SVID, for a
	// server that trusts this trust domain), cimd (the agent's client ID
	// metadata document URL at this host, with private_key_jwt; the
	// host's issuer must be https), registration (RFC 7591, once per
	// agent, kept in the store) or static (ID and KeyFile). auto takes
	// the first the server supports in that order, static before the
	// JWT-SVID fallback when ID is set.
	Method ClientMethod `json:"method,omitempty"`
	// ID is the client_id registered at that server (static).
	ID string `json:"id,omitempty"`
	// KeyFile is a PEM PKCS#8 private key whose public key is registered
	// there, for private_key_jwt (static). Owner-only.
	KeyFile string `json:"key_file,omitempty"`
}

// ClientMethod is how an agent is known at a remote authorization server.
type ClientMethod string

// Client methods.
const (
	ClientMethodAuto         ClientMethod = "auto"
	ClientMethodSPIFFE       ClientMethod = "spiffe"
	ClientMethodCIMD         ClientMethod = "cimd"
	ClientMethodRegistration ClientMethod = "registration"
	ClientMethodStatic       ClientMethod = "static"
)

var clientMethods = []ClientMethod{ClientMethodAuto, ClientMethodSPIFFE, ClientMethodCIMD, ClientMethodRegistration, ClientMethodStatic}

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (m *ClientMethod) UnmarshalConfigScalar(text string) error {
	v := ClientMethod(text)
	if !oneOf(v, clientMethods) {
		return enumError("client method", text, clientMethods)
	}
	*m = v
	return nil
}

// ActingAs is whose authority calls to a remote MCP server carry.
type ActingAs string

// Values of mcp.remotes[].acting_as.
const (
	ActingAsUser  ActingAs = "user"
	ActingAsAgent ActingAs = "agent"
)

var actingAs = []ActingAs{ActingAsUser, ActingAsAgent}

// Valid reports whether a is one of the defined values (empty is not).
func (a ActingAs) Valid() bool { return oneOf(a, actingAs) }

// UnmarshalConfigScalar implements [ScalarUnmarshaler].
func (a *ActingAs) UnmarshalConfigScalar(text string) error {
	v := ActingAs(text)
	if !v.Valid() {
		return enumError("acting_as", text, actingAs)
	}
	*a = v
	return nil
}

// MCPServerConfig is one hosted MCP server.
type MCPServerConfig struct {
	// Name is the path segment: lowercase letters, digits, '-' and '_',
	// starting with a letter or digit, at most 63 bytes. REQUIRED, unique.
	Name string `json:"name"`
	// Tools are host tools ("notes/search") the server offers. REQUIRED
	// unless Upstream is set.
	Tools []string `json:"tools"`
	// Upstream, when set, makes the server a gateway to that remote (a
	// name under mcp.remotes): it offers the remote's tools, and calls
	// them for each caller with a token exchanged from the caller's own,
	// never a shared credential.
	Upstream string `json:"upstream"`
	// Scopes of a gateway: what callers consent to and what is passed on
	// to the upstream. REQUIRED with Upstream.
	Scopes []string `json:"scopes"`
}

func (v *validator) mcp() {
	seen := map[string]int{}
	defer v.mcpRemotes(seen)
	for i, o := range v.c.MCP.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := ParseOrigin(o); err != nil {
			v.invalid(fmt.Sprintf("mcp.allowed_origins[%d]", i), "%v", err)
		}
	}
	for i, s := range v.c.MCP.Servers {
		base := fmt.Sprintf("mcp.servers[%d]", i)
		if v.segmentName(base+".name", "server", s.Name) {
			if j, dup := seen[s.Name]; dup {
				v.invalid(base+".name", "MCP server %q is already defined at mcp.servers[%d]", s.Name, j)
			}
			seen[s.Name] = i
		}
		switch {
		case s.Upstream != "":
			if !slices.ContainsFunc(v.c.MCP.Remotes, func(r MCPRemoteConfig) bool { return r.Name == s.Upstream }) {
				v.invalid(base+".upstream", "no remote %q is defined under mcp.remotes", s.Upstream)
			}
			if len(s.Tools) > 0 {
				v.invalid(base+".tools", "a gateway offers its upstream's tools; remove tools or upstream")
			}
			if len(s.Scopes) == 0 {
				v.invalid(base+".scopes", "a gateway needs the scopes its callers consent to and it passes on")
			}
			for j, sc := range s.Scopes {
				if !validScopeToken(sc) {
					v.invalid(fmt.Sprintf("%s.scopes[%d]", base, j), "%s is not a valid scope token", quoteValue(sc))
				}
			}
		case len(s.Tools) == 0:
			v.invalid(base+".tools", "lists no tools")
		case len(s.Scopes) > 0:
			v.invalid(base+".scopes", "only a gateway (with upstream) takes scopes; host tools have fixed scopes")
		}
		tools := map[string]bool{}
		for j, t := range s.Tools {
			p := fmt.Sprintf("%s.tools[%d]", base, j)
			switch {
			case t == "":
				v.invalid(p, "is empty")
			case tools[t]:
				v.invalid(p, "tool %q is listed twice", t)
			}
			tools[t] = true
		}
	}
}

func (v *validator) mcpRemotes(servers map[string]int) {
	seen := map[string]int{}
	defer v.mcpPlugins(seen)
	for i, r := range v.c.MCP.Remotes {
		base := fmt.Sprintf("mcp.remotes[%d]", i)
		if v.segmentName(base+".name", "remote", r.Name) {
			if j, dup := seen[r.Name]; dup {
				v.invalid(base+".name", "remote %q is already defined at mcp.remotes[%d]", r.Name, j)
			} else if j, dup := servers[r.Name]; dup {
				v.invalid(base+".name", "%q is already the name of mcp.servers[%d]", r.Name, j)
			}
			seen[r.Name] = i
		}
		if len(r.Command) > 0 {
			if r.URL != "" {
				v.invalid(base+".command", "set either url or command, not both")
			} else if r.Command[0] == "" {
				v.invalid(base+".command", "names no executable")
			} else if _, err := os.Stat(r.Command[0]); err != nil {
				v.invalid(base+".command", "%s does not exist", quoteValue(r.Command[0]))
			}
			for k := range r.Env {
				if k == "" || strings.ContainsAny(k, "=\x00") {
					v.invalid(base+".env", "%s is not an environment variable name", quoteValue(k))
				}
			}
		}
		u, err := url.Parse(r.URL)
		switch {
		case len(r.Command) > 0:
		case r.URL == "":
			v.invalid(base+".url", "is required (or command, for a local server)")
		case err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil:
			v.invalid(base+".url", "%s is not an absolute URL without user info or fragment", quoteValue(r.URL))
		case u.Scheme == "http" && !hostIsLoopback(u.Hostname()):
			v.invalid(base+".url", "must be https (http only on a loopback host)")
		case u.Scheme != "http" && u.Scheme != "https":
			v.invalid(base+".url", "must be https")
		}
		if len(r.Tools) == 0 {
			v.invalid(base+".tools", "lists no tools")
		}
		switch {
		case r.ActingAs != "" && !r.ActingAs.Valid():
			v.invalid(base+".acting_as", "%v", enumError("acting_as", string(r.ActingAs), actingAs))
		case r.ActingAs != "" && len(r.Command) > 0:
			v.invalid(base+".acting_as", "a command remote gets no token; acting_as applies to url remotes only")
		}
		v.remoteClient(base, r)
		for j, t := range r.Tools {
			if t == "" || strings.ContainsAny(t, "/ \t") {
				v.invalid(fmt.Sprintf("%s.tools[%d]", base, j), "%s is not a tool name", quoteValue(t))
			}
		}
	}
}

// mcpPlugins checks the tool plugins; remotes maps remote names to their
// index, since a plugin and a remote would both name tools "<name>/…".
func (v *validator) mcpPlugins(remotes map[string]int) {
	seen := map[string]int{}
	for i, p := range v.c.MCP.Plugins {
		base := fmt.Sprintf("mcp.plugins[%d]", i)
		if v.segmentName(base+".name", "plugin", p.Name) {
			if j, dup := seen[p.Name]; dup {
				v.invalid(base+".name", "plugin %q is already defined at mcp.plugins[%d]", p.Name, j)
			} else if j, dup := remotes[p.Name]; dup {
				v.invalid(base+".name", "%q is already the name of mcp.remotes[%d]", p.Name, j)
			}
			seen[p.Name] = i
		}
		v.agentPath(base+".path", p.Path)
		if p.SHA256 != "" && !isLowerHex(p.SHA256, 64) {
			v.invalid(base+".sha256", "must be 64 lowercase hex digits (a SHA-256 digest)")
		}
		for k := range p.Env {
			if !validEnvName(k) {
				v.invalid(base+".env", "%s is not an environment variable name", quoteValue(k))
			}
		}
		v.sandboxEntry(base+".sandbox", p.Sandbox)
	}
}
