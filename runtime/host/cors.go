package host

import (
	"net/http"
)

// allowCORS lets browser-based clients (a web MCP client, a single-page
// app) call endpoints that take no cookies: discovery metadata, JWKS, the
// token, registration and revocation endpoints, and the MCP servers. Any
// origin may call them, never with credentials: their authority comes from
// the tokens and client assertions in the request, not from the browser.
// The cookie-based sign-in pages are navigations and get no CORS headers.
func allowCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
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
