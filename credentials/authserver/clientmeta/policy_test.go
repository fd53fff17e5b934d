package clientmeta

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const (
	codeRedirect = "invalid_redirect_uri"
	codeMetadata = "invalid_client_metadata"
)

// checkCode asserts that err is nil (want == "") or an *Error with code
// want that matches the right sentinel.
func checkCode(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T): want *Error %s", err, err, want)
	}
	if ce.Code != want {
		t.Fatalf("code %s (%s), want %s", ce.Code, ce.Description, want)
	}
	sentinel := ErrInvalidClientMetadata
	if want == codeRedirect {
		sentinel = ErrInvalidRedirectURI
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("errors.Is(%v, %v) = false", err, sentinel)
	}
	if strings.ContainsAny(ce.Description, "\"\\") {
		t.Errorf("description %q has characters RFC 6749 §5.2 forbids", ce.Description)
	}
}

func TestValidateRegistration(t *testing.T) {
	jwks := testJWKS(t)
	base := func() *Metadata {
		return &Metadata{RedirectURIs: []string{"https://app.example/cb"}, ClientName: "App"}
	}
	tests := []struct {
		name   string
		policy Policy
		edit   func(m *Metadata)
		raw    string // when set, the request is parsed from raw instead
		want   string
	}{
		{name: "minimal https", edit: func(*Metadata) {}},
		{name: "loopback IPv4 with port", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1:51234/cb"} }},
		{name: "loopback IPv4 without port", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1/cb"} }},
		{name: "loopback highest port", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1:65535/cb"} }},
		{name: "loopback port 1", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://[::1]:1/cb"} }},
		{name: "loopback IPv6", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://[::1]:8080/callback"} }},
		{name: "localhost", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://localhost:3000/oauth/callback"} }},
		{name: "private-use scheme", edit: func(m *Metadata) { m.RedirectURIs = []string{"com.example.app:/oauth2redirect"} }},
		{name: "https with query", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/cb?tenant=a"} }},
		{name: "refresh token grant", edit: func(m *Metadata) { m.GrantTypes = []string{"authorization_code", "refresh_token"} }},
		{name: "scope", edit: func(m *Metadata) { m.Scope = "openid mcp:tools read:a/b" }},
		{name: "private_key_jwt with jwks", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKS = jwks
		}},
		{name: "private_key_jwt with jwks_uri", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKSURI = "https://app.example/jwks.json"
		}},
		{name: "all informational members", edit: func(m *Metadata) {
			m.ClientURI, m.LogoURI, m.TOSURI, m.PolicyURI = "https://app.example/", "https://app.example/l.png",
				"https://app.example/tos", "https://app.example/p"
			m.Contacts = []string{"ops@app.example"}
			m.SoftwareID, m.SoftwareVersion, m.ApplicationType = "id", "1.0", "native"
			m.DPoPBoundAccessTokens = true
		}},
		{name: "ten redirect URIs", edit: func(m *Metadata) {
			m.RedirectURIs = nil
			for i := range 10 {
				m.RedirectURIs = append(m.RedirectURIs, "https://app.example/cb"+strings.Repeat("x", i))
			}
		}},

		// Redirect URIs.
		{name: "missing redirect_uris", edit: func(m *Metadata) { m.RedirectURIs = nil }, want: codeRedirect},
		{name: "fragment", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/cb#frag"} }, want: codeRedirect},
		{name: "empty fragment", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/cb#"} }, want: codeRedirect},
		{name: "http non-loopback", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://app.example/cb"} }, want: codeRedirect},
		{name: "http other loopback address", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.2/cb"} }, want: codeRedirect},
		{name: "http localhost lookalike", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://localhost.evil.example/cb"} }, want: codeRedirect},
		{name: "wildcard host", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://*.app.example/cb"} }, want: codeRedirect},
		{name: "wildcard path", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/*"} }, want: codeRedirect},
		{name: "javascript", edit: func(m *Metadata) { m.RedirectURIs = []string{"javascript:alert(document.domain)"} }, want: codeRedirect},
		{name: "data", edit: func(m *Metadata) { m.RedirectURIs = []string{"data:text/html,<script>alert(1)</script>"} }, want: codeRedirect},
		{name: "file", edit: func(m *Metadata) { m.RedirectURIs = []string{"file:///etc/passwd"} }, want: codeRedirect},
		{name: "custom scheme without dot", edit: func(m *Metadata) { m.RedirectURIs = []string{"myapp://cb"} }, want: codeRedirect},
		{name: "custom scheme only", edit: func(m *Metadata) { m.RedirectURIs = []string{"com.example.app:"} }, want: codeRedirect},
		{name: "relative", edit: func(m *Metadata) { m.RedirectURIs = []string{"/cb"} }, want: codeRedirect},
		{name: "scheme-relative", edit: func(m *Metadata) { m.RedirectURIs = []string{"//app.example/cb"} }, want: codeRedirect},
		{name: "empty redirect URI", edit: func(m *Metadata) { m.RedirectURIs = []string{""} }, want: codeRedirect},
		{name: "userinfo", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://user@app.example/cb"} }, want: codeRedirect},
		{name: "https without host", edit: func(m *Metadata) { m.RedirectURIs = []string{"https:///cb"} }, want: codeRedirect},
		{name: "https opaque", edit: func(m *Metadata) { m.RedirectURIs = []string{"https:app.example/cb"} }, want: codeRedirect},
		{name: "whitespace", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/c b"} }, want: codeRedirect},
		{name: "non-ASCII", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://äpp.example/cb"} }, want: codeRedirect},
		{name: "backslash", edit: func(m *Metadata) { m.RedirectURIs = []string{`https://app.example\@evil.example/cb`} }, want: codeRedirect},
		{name: "duplicate redirect URI", edit: func(m *Metadata) {
			m.RedirectURIs = []string{"https://app.example/cb", "https://app.example/cb"}
		}, want: codeRedirect},
		{name: "too many redirect URIs", policy: Policy{MaxRedirectURIs: 2}, edit: func(m *Metadata) {
			m.RedirectURIs = []string{"https://a.example/cb", "https://b.example/cb", "https://c.example/cb"}
		}, want: codeRedirect},
		{name: "overlong redirect URI", edit: func(m *Metadata) {
			m.RedirectURIs = []string{"https://app.example/" + strings.Repeat("a", maxURILength)}
		}, want: codeRedirect},
		{name: "loopback port out of range", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1:99999/cb"} }, want: codeRedirect},
		{name: "loopback port 65536", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://[::1]:65536/cb"} }, want: codeRedirect},
		{name: "loopback port 0", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://localhost:0/cb"} }, want: codeRedirect},
		{name: "loopback port with a leading zero", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1:08080/cb"} }, want: codeRedirect},
		{name: "loopback empty port", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1:/cb"} }, want: codeRedirect},
		{name: "https port out of range", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example:99999/cb"} }, want: codeRedirect},
		{name: "loopback denied by policy", policy: Policy{DenyLoopbackHTTP: true},
			edit: func(m *Metadata) { m.RedirectURIs = []string{"http://127.0.0.1/cb"} }, want: codeRedirect},
		{name: "custom scheme denied by policy", policy: Policy{DenyCustomSchemes: true},
			edit: func(m *Metadata) { m.RedirectURIs = []string{"com.example.app:/cb"} }, want: codeRedirect},

		// Auth methods and keys.
		{name: "client_secret_basic", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_basic" }, want: codeMetadata},
		{name: "client_secret_post", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_post" }, want: codeMetadata},
		{name: "client_secret_jwt", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_jwt" }, want: codeMetadata},
		{name: "secret method even if policy lists it",
			policy: Policy{AllowedAuthMethods: []string{"client_secret_basic"}},
			edit:   func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_basic" }, want: codeMetadata},
		{name: "unknown method", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "tls_client_auth" }, want: codeMetadata},
		{name: "method not in policy", policy: Policy{AllowedAuthMethods: []string{"none"}},
			edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "private_key_jwt"; m.JWKS = jwks }, want: codeMetadata},
		{name: "client_secret sent", edit: func(m *Metadata) { m.ClientSecret = "s3cret" }, want: codeMetadata},
		{name: "client_secret_expires_at sent", edit: func(m *Metadata) { m.ClientSecretExpiresAt = 1 }, want: codeMetadata},
		{name: "private_key_jwt without keys", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "private_key_jwt" }, want: codeMetadata},
		{name: "jwks and jwks_uri", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKS, m.JWKSURI = jwks, "https://app.example/jwks.json"
		}, want: codeMetadata},
		{name: "jwks_uri over http", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKSURI = "http://app.example/jwks.json"
		}, want: codeMetadata},
		{name: "jwks not a key set", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKS = json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`)
		}, want: codeMetadata},
		{name: "jwks empty", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKS = json.RawMessage(`{"keys":[]}`)
		}, want: codeMetadata},

		// Grant and response types.
		{name: "implicit response type", edit: func(m *Metadata) { m.ResponseTypes = []string{"token"} }, want: codeMetadata},
		{name: "code without authorization_code", policy: Policy{AllowedGrantTypes: []string{"authorization_code", "client_credentials"}},
			edit: func(m *Metadata) { m.GrantTypes = []string{"client_credentials"}; m.ResponseTypes = []string{"code"} }, want: codeMetadata},
		{name: "hybrid response type", edit: func(m *Metadata) {
			m.GrantTypes = []string{"authorization_code"}
			m.ResponseTypes = []string{"code id_token"}
		}, want: codeMetadata},
		{name: "refresh_token alone", edit: func(m *Metadata) { m.GrantTypes = []string{"refresh_token"} }, want: codeMetadata},
		{name: "password grant", edit: func(m *Metadata) { m.GrantTypes = []string{"password"} }, want: codeMetadata},
		{name: "grant not in policy", edit: func(m *Metadata) { m.GrantTypes = []string{"client_credentials"} }, want: codeMetadata},
		{name: "duplicate grant", edit: func(m *Metadata) {
			m.GrantTypes = []string{"authorization_code", "authorization_code"}
		}, want: codeMetadata},

		// Other members.
		{name: "scope with quote", edit: func(m *Metadata) { m.Scope = `read "write"` }, want: codeMetadata},
		{name: "scope with backslash", edit: func(m *Metadata) { m.Scope = `read\write` }, want: codeMetadata},
		{name: "scope double space", edit: func(m *Metadata) { m.Scope = "read  write" }, want: codeMetadata},
		{name: "scope non-ASCII", edit: func(m *Metadata) { m.Scope = "lire écrire" }, want: codeMetadata},
		{name: "application_type other", edit: func(m *Metadata) { m.ApplicationType = "desktop" }, want: codeMetadata},
		{name: "client_name with control", edit: func(m *Metadata) { m.ClientName = "App\u202eevil" }, want: codeMetadata},
		{name: "client_name too long", edit: func(m *Metadata) { m.ClientName = strings.Repeat("n", 300) }, want: codeMetadata},
		{name: "logo_uri javascript", edit: func(m *Metadata) { m.LogoURI = "javascript:alert(1)" }, want: codeMetadata},
		{name: "client_uri http", edit: func(m *Metadata) { m.ClientURI = "http://app.example/" }, want: codeMetadata},
		{name: "tos_uri userinfo", edit: func(m *Metadata) { m.TOSURI = "https://u:p@app.example/" }, want: codeMetadata},
		{name: "empty contact", edit: func(m *Metadata) { m.Contacts = []string{""} }, want: codeMetadata},
		{name: "too many contacts", edit: func(m *Metadata) { m.Contacts = slices.Repeat([]string{"a@b"}, 11) }, want: codeMetadata},

		// From the wire.
		{name: "wire: duplicate keys", raw: `{"redirect_uris":["https://a/cb"],"redirect_uris":["https://evil/cb"]}`, want: codeMetadata},
		{name: "wire: wrong type", raw: `{"redirect_uris":"https://a/cb"}`, want: codeMetadata},
		{name: "wire: oversized", raw: `{"client_name":"` + strings.Repeat("x", 40<<10) + `"}`, want: codeMetadata},
		{name: "wire: ok", raw: `{"redirect_uris":["http://localhost:1234/cb"],"client_name":"CLI","unknown":{"x":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *Metadata
			if tt.raw != "" {
				var err error
				m, err = Parse([]byte(tt.raw), 32<<10)
				if err != nil {
					checkCode(t, err, tt.want)
					return
				}
			} else {
				m = base()
				tt.edit(m)
			}
			checkCode(t, tt.policy.ValidateRegistration(m), tt.want)
		})
	}
}

func TestValidateRegistrationDefaults(t *testing.T) {
	m := &Metadata{RedirectURIs: []string{"https://app.example/cb"}}
	if err := (Policy{}).ValidateRegistration(m); err != nil {
		t.Fatal(err)
	}
	if m.TokenEndpointAuthMethod != "none" || !slices.Equal(m.GrantTypes, []string{"authorization_code"}) ||
		!slices.Equal(m.ResponseTypes, []string{"code"}) {
		t.Fatalf("defaults not applied: %+v", m)
	}
	// Explicit values are kept.
	m = &Metadata{RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{"refresh_token", "authorization_code"}}
	if err := (Policy{}).ValidateRegistration(m); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.GrantTypes, []string{"refresh_token", "authorization_code"}) {
		t.Fatalf("grant types changed: %v", m.GrantTypes)
	}
	// Without authorization_code no response type is implied and no
	// redirect URI is required.
	p := Policy{AllowedGrantTypes: []string{"client_credentials"}}
	m = &Metadata{GrantTypes: []string{"client_credentials"}}
	if err := p.ValidateRegistration(m); err != nil {
		t.Fatal(err)
	}
	if m.ResponseTypes != nil {
		t.Fatalf("response types %v", m.ResponseTypes)
	}
	checkCode(t, Policy{}.ValidateRegistration(nil), codeMetadata)
}

func TestValidateDocument(t *testing.T) {
	const id = "https://app.example/oauth/client.json"
	base := func() *Metadata {
		return &Metadata{ClientID: id, ClientName: "App", RedirectURIs: []string{"http://127.0.0.1/cb"}}
	}
	tests := []struct {
		name     string
		clientID string
		edit     func(m *Metadata)
		want     string
	}{
		{name: "ok", edit: func(*Metadata) {}},
		{name: "ok with query", clientID: "https://app.example/c?v=1", edit: func(m *Metadata) { m.ClientID = "https://app.example/c?v=1" }},
		{name: "ok private_key_jwt", edit: func(m *Metadata) {
			m.TokenEndpointAuthMethod = "private_key_jwt"
			m.JWKSURI = "https://app.example/jwks"
		}},
		{name: "client_id mismatch", edit: func(m *Metadata) { m.ClientID = "https://other.example/oauth/client.json" }, want: codeMetadata},
		{name: "client_id missing", edit: func(m *Metadata) { m.ClientID = "" }, want: codeMetadata},
		{name: "trailing slash mismatch", edit: func(m *Metadata) { m.ClientID = id + "/" }, want: codeMetadata},
		{name: "case mismatch", edit: func(m *Metadata) { m.ClientID = "https://APP.example/oauth/client.json" }, want: codeMetadata},
		{name: "default port mismatch", edit: func(m *Metadata) { m.ClientID = "https://app.example:443/oauth/client.json" }, want: codeMetadata},
		{name: "percent-encoding mismatch", edit: func(m *Metadata) { m.ClientID = "https://app.example/oauth/client%2Ejson" }, want: codeMetadata},
		{name: "secret present", edit: func(m *Metadata) { m.ClientSecret = "s" }, want: codeMetadata},
		{name: "secret expiry present", edit: func(m *Metadata) { m.ClientSecretExpiresAt = 10 }, want: codeMetadata},
		{name: "client_secret_basic", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_basic" }, want: codeMetadata},
		{name: "client_secret_jwt", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "client_secret_jwt" }, want: codeMetadata},
		{name: "tls_client_auth", edit: func(m *Metadata) { m.TokenEndpointAuthMethod = "tls_client_auth" }, want: codeMetadata},
		{name: "http client_id", clientID: "http://app.example/oauth/client.json",
			edit: func(m *Metadata) { m.ClientID = "http://app.example/oauth/client.json" }, want: codeMetadata},
		{name: "dot segment", clientID: "https://app.example/oauth/../client.json",
			edit: func(m *Metadata) { m.ClientID = "https://app.example/oauth/../client.json" }, want: codeMetadata},
		{name: "single dot segment", clientID: "https://app.example/./client.json",
			edit: func(m *Metadata) { m.ClientID = "https://app.example/./client.json" }, want: codeMetadata},
		{name: "no path", clientID: "https://app.example", edit: func(m *Metadata) { m.ClientID = "https://app.example" }, want: codeMetadata},
		{name: "missing client_name", edit: func(m *Metadata) { m.ClientName = "" }, want: codeMetadata},
		{name: "missing redirect_uris", edit: func(m *Metadata) { m.RedirectURIs = nil }, want: codeRedirect},
		{name: "fragment redirect", edit: func(m *Metadata) { m.RedirectURIs = []string{"https://app.example/cb#x"} }, want: codeRedirect},
		{name: "http redirect", edit: func(m *Metadata) { m.RedirectURIs = []string{"http://app.example/cb"} }, want: codeRedirect},
		{name: "bad scope", edit: func(m *Metadata) { m.Scope = "a\tb" }, want: codeMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.edit(m)
			clientID := tt.clientID
			if clientID == "" {
				clientID = id
			}
			checkCode(t, Policy{}.ValidateDocument(clientID, m), tt.want)
		})
	}
	checkCode(t, Policy{}.ValidateDocument(id, nil), codeMetadata)
}

func TestIsClientIDURL(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"https://app.example/client.json", true},
		{"https://app.example/", true},
		{"https://app.example:8443/c", true},
		{"https://app.example/c?x=1", true},
		{"https://app.example/a//b", true},
		{"https://app.example/.well-known/client", true},
		{"https://app.example/...", true},
		{"https://app.example", false},
		{"https://app.example?x=1", false},
		{"http://app.example/client.json", false},
		{"HTTPS://app.example/client.json", false},
		{"https://user@app.example/c", false},
		{"https://app.example/c#", false},
		{"https://app.example/c#f", false},
		{"https://app.example/a/../c", false},
		{"https://app.example/a/./c", false},
		{"https://app.example/..", false},
		{"https://app.example/a/%2e%2e/c", false},
		{"https://app.example/a/%2E/c", false},
		{"https://app.example/a/.%2e", false},
		{"https:///c", false},
		{"https://app.example/c d", false},
		{"https://app.example/c\\d", false},
		{"https://äpp.example/c", false},
		{"https://app.example/" + strings.Repeat("a", maxClientIDLength), false},
		{"dyn-abc123", false},
		{"spiffe://td/agent/a", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsClientIDURL(tt.in); got != tt.want {
			t.Errorf("IsClientIDURL(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzIsClientIDURL(f *testing.F) {
	for _, s := range []string{"https://app.example/c.json", "https://app.example/%2e%2e/x", "https://a@b/c",
		"https://[::1]:443/x", "https://app.example/a/./b", "https://app.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsClientIDURL(s) {
			return
		}
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.User != nil || u.Hostname() == "" || strings.Contains(s, "#") ||
			!strings.HasPrefix(u.EscapedPath(), "/") {
			t.Fatalf("accepted %q", s)
		}
		for _, seg := range strings.Split(u.EscapedPath(), "/") {
			if dec, err := url.PathUnescape(seg); err != nil || dec == "." || dec == ".." {
				t.Fatalf("accepted dot segment in %q", s)
			}
		}
	})
}
