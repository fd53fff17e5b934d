package host

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/runtime/config"
)

// allowCORS lets browser-based clients (a web MCP client, a single-page
// app) call endpoints that take no cookies: discovery metadata, JWKS, the
// token, registration and revocation endpoints, and the MCP servers. Any
// origin may call them, never with credentials: their authority comes from
// the tokens and client assertions in the request, not from the browser.
// The cookie-based sign-in pages are navigations and get no CORS headers.
func allowCORS(next http.Handler) http.Handler { return allowCORSFor("*", next) }

// allowCORSFor is allowCORS naming allowOrigin ("*" or one origin).
func allowCORSFor(allowOrigin string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", allowOrigin)
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce, Mcp-Session-Id, Mcp-Protocol-Version")
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Accept")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// originGuard refuses, with 403, a browser request to a hosted MCP server
// from an origin that is not allowed (MCP 2025-11-25 requires servers to
// validate Origin, against DNS rebinding): allowed are the host's own
// origin, loopback origins, and those listed in mcp.allowed_origins ("*":
// all). A request without an Origin header does not come from a browser
// page and passes. An allowed origin gets CORS headers naming it.
type originGuard struct {
	own     string          // the host's own origin
	allowed map[string]bool // canonical origins from the config
	any     bool
}

func newOriginGuard(issuer string, configured []string) originGuard {
	g := originGuard{allowed: map[string]bool{}}
	if u, err := url.Parse(issuer); err == nil {
		g.own = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	for _, o := range configured {
		if o == "*" {
			g.any = true
			continue
		}
		if c, err := config.ParseOrigin(o); err == nil {
			g.allowed[c] = true
		}
	}
	return g
}

// allows reports whether a request from origin may reach the servers.
func (g originGuard) allows(origin string) bool {
	if g.any {
		return true
	}
	o, err := config.ParseOrigin(origin)
	if err != nil {
		return false // "null" (a sandboxed page, a file) and anything malformed
	}
	if o == g.own || g.allowed[o] {
		return true
	}
	u, _ := url.Parse(o) // o is canonical: lowercase, parsed once already
	return isLoopbackHost(u.Hostname())
}

func (g originGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		if !g.allows(origin) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Add("Vary", "Origin")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"error":             "forbidden",
				"error_description": "requests from origin " + strconv.Quote(origin) + " are not allowed; see mcp.allowed_origins",
			})
			return
		}
		allowCORSFor(origin, next).ServeHTTP(w, r)
	})
}
