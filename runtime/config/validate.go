package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/runtime/hosttools"
	"github.com/agenthost/agenthost/runtime/mediator"
)

// maxTrustDomainLen is the SPIFFE-ID §2.1 limit on a trust domain name.
const maxTrustDomainLen = 255

// Validate runs the semantic checks on c and returns every problem as
// [Errors] (each wrapping [ErrInvalid] or [ErrUnsupportedVersion]), or nil.
// Problems are located at the line of the value concerned when c was decoded
// from a file, or at its enclosing section when the key was omitted.
//
// Validate checks that TLS files and the plugins' sandbox read-only paths
// exist, so its result depends on the file system; it does not change c.
func (c *Config) Validate() error {
	v := &validator{c: c}
	if c.Version != Version {
		v.add("version", ErrUnsupportedVersion, "unsupported version %d; this agenthost reads version %d", c.Version, Version)
	}
	v.trustDomain()
	v.listen()
	v.identity()
	v.storage()
	v.log()
	v.models()
	v.sandbox()
	v.agents()
	v.auth()
	v.mcp()
	v.a2a()
	v.federation()
	v.telemetry()
	v.console()
	v.governance()
	if len(v.errs) == 0 {
		return nil
	}
	sortErrors(v.errs)
	return v.errs
}

type validator struct {
	c    *Config
	errs Errors
}

// add records a problem at path, positioned at the closest written key.
func (v *validator) add(path string, kind error, format string, args ...any) {
	e := &Error{File: v.c.file, Path: path, Message: fmt.Sprintf(format, args...), Kind: kind}
	for p := path; ; p = parentPath(p) {
		if slices.Contains(v.c.overridden, p) {
			// The value is not in the file: no line to point at.
			break
		}
		if pos, ok := v.c.pos[p]; ok {
			e.Line, e.Column = pos.Line, pos.Column
			break
		}
		if p == "" {
			break
		}
	}
	v.errs = append(v.errs, e)
}

func (v *validator) invalid(path, format string, args ...any) {
	v.add(path, ErrInvalid, format, args...)
}

// parentPath drops the last element of a key path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// trustDomain checks the SPIFFE-ID §2.1 rules for a trust domain name.
func (v *validator) trustDomain() {
	const path = "trust_domain"
	td := v.c.TrustDomain
	switch {
	case td == "":
		v.invalid(path, "must not be empty; for example %q", DefaultTrustDomain)
		return
	case strings.Contains(td, "://"):
		v.invalid(path, "%s is a URI; give the bare trust domain name, such as %q", quoteValue(td), DefaultTrustDomain)
		return
	case len(td) > maxTrustDomainLen:
		v.invalid(path, "is %d bytes long; a trust domain is at most %d bytes", len(td), maxTrustDomainLen)
		return
	}
	// Report a character that no case change fixes before suggesting the
	// lowercase form.
	upper := false
	for i := 0; i < len(td); i++ {
		switch ch := td[i]; {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '.', ch == '-', ch == '_':
		case ch >= 'A' && ch <= 'Z':
			upper = true
		case ch == ':':
			v.invalid(path, "%s must not carry a port", quoteValue(td))
			return
		case ch == '/':
			v.invalid(path, "%s must not carry a path", quoteValue(td))
			return
		case ch == '@':
			v.invalid(path, "%s must not carry user information", quoteValue(td))
			return
		default:
			v.invalid(path, "%s has the character %q; only a-z, 0-9, '.', '-' and '_' are allowed", quoteValue(td), rune(ch))
			return
		}
	}
	if upper {
		v.invalid(path, "%s must be lowercase: %q", quoteValue(td), strings.ToLower(td))
	}
}

func (v *validator) listen() {
	l := v.c.Listen
	if _, err := ParseAddress(string(l.Address)); err != nil {
		v.invalid("listen.address", "%v", err)
		return
	}
	refused := false
	if l.TLS == nil && !l.Address.IsLoopback() {
		refused = true
		v.invalid("listen.address", "listening on %s without TLS is refused; configure listen.tls or bind a loopback address", l.Address)
	}
	if l.TLS != nil {
		v.listenTLS(*l.TLS)
	}
	if l.Issuer == "" {
		return
	}
	// A derived issuer is only checked for being usable; the rules below are
	// for one that was written (or changed after defaults were filled).
	if v.c.issuerDefaulted && l.Issuer == l.defaultIssuer() {
		if l.Address.IsUnspecified() && !refused {
			v.invalid("listen.issuer", "must be set when listening on every interface (%s): it is the public URL clients use, such as https://agenthost.example.com", l.Address)
		}
		return
	}
	v.issuer(l.Issuer, l.Address, refused)
}

// issuer checks the issuer identifier rules of RFC 8414 §2 (https, no query,
// no fragment) with the loopback exception for http, and forbids a trailing
// slash so that endpoint URLs can be built by appending paths.
func (v *validator) issuer(issuer string, addr Address, refused bool) {
	const path = "listen.issuer"
	u, err := url.Parse(issuer)
	if err != nil {
		v.invalid(path, "%s is not a valid URL", quoteValue(issuer))
		return
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.invalid(path, "%s must be an http or https URL", quoteValue(issuer))
	case u.Opaque != "" || u.Host == "":
		v.invalid(path, "%s has no host", quoteValue(issuer))
	case u.User != nil:
		v.invalid(path, "%s must not carry user information", quoteValue(issuer))
	case u.RawQuery != "" || u.ForceQuery:
		v.invalid(path, "%s must not have a query", quoteValue(issuer))
	case u.Fragment != "" || strings.Contains(issuer, "#"):
		v.invalid(path, "%s must not have a fragment", quoteValue(issuer))
	case strings.HasSuffix(issuer, "/"):
		v.invalid(path, "%s must not end with a slash; use %q", quoteValue(issuer), strings.TrimRight(issuer, "/"))
	case u.Scheme == "http" && refused:
		// The listener itself is refused; one problem is enough.
	case u.Scheme == "http" && !addr.IsLoopback():
		v.invalid(path, "an http issuer is only allowed when listening on a loopback address; use https")
	case u.Scheme == "http" && !hostIsLoopback(u.Hostname()):
		v.invalid(path, "an http issuer is only allowed for a loopback host (localhost, 127.0.0.1, [::1]); use https for %s", u.Hostname())
	}
}

func hostIsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) tlsFile(path, file string) {
	if file == "" {
		v.invalid(path, "is required when listen.tls is set")
		return
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.invalid(path, "%s does not exist", file)
	case err != nil:
		v.invalid(path, "cannot read %s: %v", file, errors.Unwrap(err))
	case fi.IsDir():
		v.invalid(path, "%s is a directory, not a file", file)
	}
}

func (v *validator) identity() {
	id := v.c.Identity
	if id.WorkloadAPI != "" {
		v.workloadAPIAddr(id.WorkloadAPI)
	}
	svidOK, caOK := true, true
	if id.SVIDTTL < MinSVIDTTL {
		svidOK = false
		v.invalid("identity.svid_ttl", "%s is shorter than the minimum of %s", formatDuration(id.SVIDTTL), formatDuration(MinSVIDTTL))
	}
	if id.CATTL < MinCATTL {
		caOK = false
		v.invalid("identity.ca_ttl", "%s is shorter than the minimum of %s", formatDuration(id.CATTL), formatDuration(MinCATTL))
	}
	// The next CA is activated when a sixth of the current one's lifetime is
	// left; an SVID signed just before must expire before its CA does.
	if svidOK && caOK && id.SVIDTTL >= id.CATTL/6 {
		v.invalid("identity.svid_ttl", "%s must be less than ca_ttl/6 (%s), so that every SVID expires before the CA that signed it",
			formatDuration(id.SVIDTTL), formatDuration(id.CATTL/6))
	}
}

// storage checks the storage section: each driver's own keys, and for
// postgres exactly one source of the connection string, which is never
// written in the file itself.
func (v *validator) storage() {
	s := v.c.Storage
	if !s.Driver.Supported() {
		v.invalid("storage.driver", "%v", enumError("storage driver", string(s.Driver), storageDrivers))
		return
	}
	if s.Driver == DriverSQLite {
		if s.Path != "" {
			if fi, err := os.Stat(s.Path); err == nil && fi.IsDir() {
				v.invalid("storage.path", "%s is a directory; give the database file", s.Path)
			}
		}
		if s.DSNEnv != "" {
			v.invalid("storage.dsn_env", "is only used with driver postgres")
		}
		if s.DSNFile != "" {
			v.invalid("storage.dsn_file", "is only used with driver postgres")
		}
		return
	}
	if s.Path != "" {
		v.invalid("storage.path", "is only used with driver sqlite; driver postgres keeps its state in the database that dsn_env or dsn_file names")
	}
	switch {
	case s.DSNEnv == "" && s.DSNFile == "":
		v.invalid("storage.driver", "driver postgres needs dsn_env (an environment variable holding the connection string) or dsn_file (a file holding it); the connection string itself is never written in the config file")
	case s.DSNEnv != "" && s.DSNFile != "":
		v.invalid("storage.dsn_file", "give dsn_env or dsn_file, not both")
	case s.DSNEnv != "":
		switch {
		case validEnvName(s.DSNEnv):
		case strings.ContainsAny(s.DSNEnv, ":/@= "):
			// Perhaps the connection string itself: not quoted back.
			v.invalid("storage.dsn_env", "is not an environment variable name (letters, digits and '_'); %s", msgDSN)
		default:
			v.invalid("storage.dsn_env", "%s is not an environment variable name", quoteValue(s.DSNEnv))
		}
	case looksLikeDSN(s.DSNFile):
		v.invalid("storage.dsn_file", "holds a connection string, not the path of a file; %s", msgDSN)
	default:
		v.tlsFile("storage.dsn_file", s.DSNFile)
	}
}

func (v *validator) log() {
	if !v.c.Log.Level.Valid() {
		v.invalid("log.level", "%v", enumError("log level", string(v.c.Log.Level), logLevels))
	}
	if !v.c.Log.Format.Valid() {
		v.invalid("log.format", "%v", enumError("log format", string(v.c.Log.Format), logFormats))
	}
}

// formatDuration prints a duration without trailing zero units: 1h, 1h30m,
// 90s, 720h.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// reservedAgentEnv are variables the host sets for every plugin.
var reservedAgentEnv = map[string]bool{"SPIFFE_ENDPOINT_SOCKET": true}

// segmentName checks a name that becomes one path segment (an agent's, an
// MCP server's, a remote's) and reports whether it is valid.
func (v *validator) segmentName(path, kind, name string) bool {
	switch {
	case name == "":
		v.invalid(path, "is required")
	case !validAgentName(name):
		v.invalid(path, "%s is not a valid %s name: use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63 bytes", quoteValue(name), kind)
	default:
		return true
	}
	return false
}

func (v *validator) agents() {
	seen := map[string]int{}
	for i, a := range v.c.Agents {
		base := fmt.Sprintf("agents[%d]", i)
		if v.segmentName(base+".name", "agent", a.Name) {
			if j, dup := seen[a.Name]; dup {
				v.invalid(base+".name", "agent %q is already defined at agents[%d]", a.Name, j)
			}
			seen[a.Name] = i
		}
		v.agentPath(base+".path", a.Path)
		if a.SHA256 != "" && !isLowerHex(a.SHA256, 64) {
			v.invalid(base+".sha256", "must be 64 lowercase hex digits (a SHA-256 digest)")
		}
		if a.Model != "" && a.Model != "default" {
			if _, ok := v.c.Models[a.Model]; !ok {
				v.invalid(base+".model", "no model %q is defined under models", a.Model)
			}
		}
		if a.TaskTimeout != 0 && a.TaskTimeout < time.Second {
			v.invalid(base+".task_timeout", "must be at least 1s")
		}
		for j, other := range a.CallAgents {
			switch {
			case other == a.Name:
				v.invalid(fmt.Sprintf("%s.call_agents[%d]", base, j), "an agent cannot delegate to itself")
			case !v.hasAgent(other) && !v.hasRemoteAgent(other):
				v.invalid(fmt.Sprintf("%s.call_agents[%d]", base, j), "no agent %q is defined under agents or a2a.remotes", other)
			}
		}
		for j, tool := range a.Tools {
			p := fmt.Sprintf("%s.tools[%d]", base, j)
			if !validToolPattern(tool) {
				v.invalid(p, "%q is not a tool name: want server/tool or server/*", tool)
			} else if why := v.unoffered(tool); why != "" {
				v.invalid(p, "agent %s is granted %q, which %s", a.Name, tool, why)
			}
		}
		for k := range a.Env {
			if !validEnvName(k) {
				v.invalid(base+".env", "%q is not a valid environment variable name", k)
			} else if reservedAgentEnv[k] {
				v.invalid(base+".env", "%s is set by the host and cannot be configured", k)
			}
		}
		v.sandboxEntry(base+".sandbox", a.Sandbox)
	}
}

// unoffered says why no server offers the tool a grant names, or returns ""
// when one does or may. The host's own tools and those of the remote MCP
// servers are known from the config; a tool plugin's tools are known only
// once the host has started it, so a grant of "<plugin>/…" is left to the
// host, which refuses to start on a tool no server offers.
func (v *validator) unoffered(grant string) string {
	server, _, _ := strings.Cut(grant, "/")
	var plugins []string
	for _, p := range v.c.MCP.Plugins {
		if p.Name == server {
			return ""
		}
		plugins = append(plugins, p.Name)
	}
	known := hosttools.Names()
	for _, r := range v.c.MCP.Remotes {
		for _, t := range r.Tools {
			known = append(known, r.Name+"/"+t)
		}
	}
	if slices.ContainsFunc(known, func(n string) bool { return mediator.GrantMatches(grant, n) }) {
		return ""
	}
	why := "no server offers; the tools are: " + strings.Join(known, ", ")
	if len(plugins) > 0 {
		why += ", and those of the tool plugins " + strings.Join(plugins, ", ") + " (listed when the host starts them)"
	}
	return why
}

func (v *validator) hasAgent(name string) bool {
	for _, a := range v.c.Agents {
		if a.Name == name {
			return true
		}
	}
	return false
}

func (v *validator) agentPath(path, file string) {
	if file == "" {
		v.invalid(path, "is required")
		return
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.invalid(path, "%s does not exist", file)
	case err != nil:
		v.invalid(path, "cannot read %s: %v", file, errors.Unwrap(err))
	case !fi.Mode().IsRegular():
		v.invalid(path, "%s is not a regular file", file)
	case fi.Mode().Perm()&0o111 == 0:
		v.invalid(path, "%s is not executable", file)
	}
}

func validAgentName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (v *validator) models() {
	for alias, m := range v.c.Models {
		base := childPath("models", alias)
		switch m.Provider {
		case ProviderOffline:
		case ProviderOpenAI, ProviderAnthropic:
			if m.Model == "" {
				v.invalid(base+".model", "is required for provider %s", m.Provider)
			}
		case "":
			v.invalid(base+".provider", "is required: offline, openai or anthropic")
		default:
			v.invalid(base+".provider", "unknown provider %q; want offline, openai or anthropic", m.Provider)
		}
		if m.APIKeyEnv != "" && m.APIKeyFile != "" {
			v.invalid(base+".api_key_file", "give api_key_env or api_key_file, not both")
		}
		if m.APIKeyFile != "" {
			v.tlsFile(base+".api_key_file", m.APIKeyFile)
		}
		if m.BaseURL != "" {
			if u, err := url.Parse(m.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.invalid(base+".base_url", "%s is not an http(s) URL", quoteValue(m.BaseURL))
			}
		}
	}
}

func validToolPattern(s string) bool {
	server, tool, ok := strings.Cut(s, "/")
	return ok && server != "" && tool != "" && !strings.Contains(tool, "/") && (tool == "*" || !strings.Contains(tool, "*"))
}
