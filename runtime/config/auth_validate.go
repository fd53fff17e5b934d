package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// auth checks the auth section and the agents' scopes.
func (v *validator) auth() {
	a := v.c.Auth
	v.ttlRange("auth.access_token_ttl", a.AccessTokenTTL, MinAccessTokenTTL, MaxAccessTokenTTL)
	v.ttlRange("auth.refresh_token_ttl", a.RefreshTokenTTL, MinRefreshTokenTTL, MaxRefreshTokenTTL)
	v.ttlRange("auth.code_ttl", a.CodeTTL, MinCodeTTL, MaxCodeTTL)
	v.ttlRange("auth.signing_key_period", a.SigningKeyPeriod, MinSigningKeyPeriod, 0)
	v.registration()
	v.users()
	v.clients()
	v.resources()
	v.trustedIssuers()
	for i, ag := range v.c.Agents {
		v.scopes(fmt.Sprintf("agents[%d].scopes", i), ag.Scopes)
	}
}

// registration checks the limits of dynamic client registration.
func (v *validator) registration() {
	a := v.c.Auth
	if a.RegistrationTokenHash != "" {
		if err := checkPasswordHash(a.RegistrationTokenHash); err != nil {
			v.invalid("auth.registration_token_hash", "%v; make one with agenthost hash-password", err)
		}
	}
	v.intRange("auth.registration_burst", a.RegistrationBurst, 1, MaxRegistrationBurst)
	v.ttlRange("auth.registration_interval", a.RegistrationInterval, MinRegistrationInterval, MaxRegistrationInterval)
	v.intRange("auth.max_dynamic_clients", a.MaxDynamicClients, 1, MaxDynamicClientsLimit)
	v.ttlRange("auth.unused_client_ttl", a.UnusedClientTTL, MinUnusedClientTTL, MaxUnusedClientTTL)
	if len(a.TrustedProxies) > MaxTrustedProxies {
		v.invalid("auth.trusted_proxies", "lists %d entries; at most %d", len(a.TrustedProxies), MaxTrustedProxies)
	}
	for i, p := range a.TrustedProxies {
		if _, err := parseProxy(p); err != nil {
			v.invalid(fmt.Sprintf("auth.trusted_proxies[%d]", i), "%s is not an IP address or a CIDR prefix such as 10.0.0.0/8", quoteValue(p))
		}
	}
}

// intRange checks lo <= n <= hi.
func (v *validator) intRange(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.invalid(path, "%d is not from %d to %d", n, lo, hi)
	}
}

// ttlRange checks lo <= d and, when hi > 0, d <= hi.
func (v *validator) ttlRange(path string, d, lo, hi time.Duration) {
	switch {
	case d < lo:
		v.invalid(path, "%s is shorter than the minimum of %s", formatDuration(d), formatDuration(lo))
	case hi > 0 && d > hi:
		v.invalid(path, "%s is longer than the maximum of %s", formatDuration(d), formatDuration(hi))
	}
}

func (v *validator) users() {
	seen := map[string]int{}
	for i, u := range v.c.Auth.Users {
		base := fmt.Sprintf("auth.users[%d]", i)
		switch {
		case u.Name == "":
			v.invalid(base+".name", "is required")
		case len(u.Name) > MaxUserNameLen:
			v.invalid(base+".name", "is %d bytes long; a user name is at most %d bytes", len(u.Name), MaxUserNameLen)
		case !printableNoSpace(u.Name):
			v.invalid(base+".name", "%s must be UTF-8 without spaces or control characters", quoteValue(u.Name))
		default:
			if j, dup := seen[u.Name]; dup {
				v.invalid(base+".name", "user %q is already defined at auth.users[%d]", u.Name, j)
			}
			seen[u.Name] = i
		}
		v.hash(base+".password_hash", u.PasswordHash)
		if u.Email != "" && !plausibleEmail(u.Email) {
			v.invalid(base+".email", "%s is not an email address: want local@domain, with one '@' and no spaces", quoteValue(u.Email))
		}
	}
}

// hash checks a required password or secret hash.
func (v *validator) hash(path, h string) {
	if h == "" {
		v.invalid(path, "is required: an argon2id or bcrypt hash (agenthost hash-password)")
		return
	}
	if err := checkPasswordHash(h); err != nil {
		v.invalid(path, "%v; make one with agenthost hash-password", err)
	}
}

func (v *validator) clients() {
	seen := map[string]int{}
	for i, c := range v.c.Auth.Clients {
		base := fmt.Sprintf("auth.clients[%d]", i)
		switch {
		case c.ID == "":
			v.invalid(base+".id", "is required")
		case strings.HasPrefix(strings.ToLower(c.ID), "spiffe://"):
			v.invalid(base+".id", "%s", msgSPIFFEClient)
		case len(c.ID) > MaxClientIDLen:
			v.invalid(base+".id", "is %d bytes long; a client id is at most %d bytes", len(c.ID), MaxClientIDLen)
		case !printableNoSpace(c.ID):
			v.invalid(base+".id", "%s must be UTF-8 without spaces or control characters", quoteValue(c.ID))
		default:
			if j, dup := seen[c.ID]; dup {
				v.invalid(base+".id", "client %q is already defined at auth.clients[%d]", c.ID, j)
			}
			seen[c.ID] = i
		}
		v.clientCredentials(base, c)
		for j, uri := range c.RedirectURIs {
			if err := checkRedirectURI(uri); err != nil {
				v.invalid(fmt.Sprintf("%s.redirect_uris[%d]", base, j), "%s %v", quoteValue(uri), err)
			}
		}
		v.grantTypes(base, c)
		v.scopes(base+".scopes", c.Scopes)
	}
}

// clientCredentials checks auth_method against secret_hash and jwks_file.
func (v *validator) clientCredentials(base string, c ClientConfig) {
	switch {
	case c.AuthMethod == "":
		v.invalid(base+".auth_method", "is required: %s", strings.Join(enumNames(clientAuthMethods), ", "))
		// Without a method, what goes with it cannot be checked.
		return
	case !c.AuthMethod.Valid():
		v.invalid(base+".auth_method", "%v", enumError("auth method", string(c.AuthMethod), clientAuthMethods))
		return
	}
	if c.AuthMethod.UsesSecret() {
		v.hash(base+".secret_hash", c.SecretHash)
	} else if c.SecretHash != "" {
		v.invalid(base+".secret_hash", "is only used with client_secret_basic and client_secret_post, not %s", c.AuthMethod)
	}
	switch {
	case c.AuthMethod != AuthMethodPrivateKeyJWT:
		if c.JWKSFile != "" {
			v.invalid(base+".jwks_file", "is only used with private_key_jwt, not %s", c.AuthMethod)
		}
		if c.GenerateKey {
			v.invalid(base+".generate_key", "is only used with private_key_jwt, not %s", c.AuthMethod)
		}
	case c.GenerateKey && c.JWKSFile != "":
		v.invalid(base+".generate_key", "and jwks_file exclude each other: the host generates the key, or the client registers its own")
	case !c.GenerateKey:
		v.jwksFile(base+".jwks_file", c.JWKSFile)
	}
}

func (v *validator) grantTypes(base string, c ClientConfig) {
	path := base + ".grant_types"
	grants := c.GrantTypes
	if grants == nil {
		grants = DefaultGrantTypes()
	} else if len(grants) == 0 {
		v.invalid(path, "is empty; list at least one grant type, or leave it out for authorization_code and refresh_token")
		return
	}
	for j, g := range grants {
		if !g.Valid() {
			v.invalid(fmt.Sprintf("%s[%d]", path, j), "%v", enumError("grant type", string(g), grantTypes))
		}
	}
	if oneOf(GrantAuthorizationCode, grants) && len(c.RedirectURIs) == 0 {
		v.invalid(base+".redirect_uris", "is required for the authorization_code grant")
	}
	if oneOf(GrantClientCredentials, grants) && c.AuthMethod == AuthMethodNone {
		v.invalid(path, "client_credentials needs a client that authenticates: set auth_method to client_secret_basic, client_secret_post or private_key_jwt")
	}
}

// checkRedirectURI applies the redirect URI rules of RFC 6749 §3.1.2 and
// RFC 8252 §7: absolute, no fragment; https, http on a loopback host, or
// a private-use scheme in reverse domain name form.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a valid URI")
	case !u.IsAbs():
		return errors.New("is not an absolute URI")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("must not have a fragment")
	}
	switch {
	case u.Scheme == "https":
		if u.Host == "" {
			return errors.New("has no host")
		}
	case u.Scheme == "http":
		if !hostIsLoopback(u.Hostname()) {
			return errors.New("is http on a host that is not loopback (localhost, 127.0.0.1, [::1]); use https")
		}
	case !strings.Contains(u.Scheme, "."):
		return fmt.Errorf("has scheme %q; want https, http on a loopback host, or a private-use scheme with a '.' such as com.example.app", u.Scheme)
	}
	if u.Scheme == "https" || u.Scheme == "http" {
		if port, ok := uriPort(u); ok && !validPortNumber(port) {
			return fmt.Errorf("has port %q; want a number from 1 to 65535", port)
		}
	}
	return nil
}

// uriPort returns the port of u's authority and whether it has one (a
// colon with nothing after it is an empty port).
func uriPort(u *url.URL) (string, bool) {
	if strings.HasSuffix(u.Host, ":") {
		return "", true
	}
	p := u.Port()
	return p, p != ""
}

// validPortNumber reports whether s is a port from 1 to 65535 without
// leading zeros. A loopback redirect URI may use any port at request time
// (RFC 8252 §7.3), but it must be a port.
func validPortNumber(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// jwksFile checks a client's JWK Set file: it exists, is at most
// MaxJWKSFileSize bytes, is a JSON object with a non-empty keys array,
// and holds public keys only.
func (v *validator) jwksFile(path, file string) {
	if file == "" {
		v.invalid(path, "is required for private_key_jwt")
		return
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.invalid(path, "%s does not exist", file)
		return
	case err != nil:
		v.invalid(path, "cannot read %s: %v", file, errors.Unwrap(err))
		return
	case !fi.Mode().IsRegular():
		v.invalid(path, "%s is not a regular file", file)
		return
	case fi.Size() > MaxJWKSFileSize:
		v.invalid(path, "%s is %d bytes; a JWK Set file is at most %d bytes", file, fi.Size(), MaxJWKSFileSize)
		return
	}
	data, err := os.ReadFile(file)
	if err != nil {
		v.invalid(path, "cannot read %s: %v", file, errors.Unwrap(err))
		return
	}
	if len(data) > MaxJWKSFileSize {
		v.invalid(path, "%s is %d bytes; a JWK Set file is at most %d bytes", file, len(data), MaxJWKSFileSize)
		return
	}
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		v.invalid(path, "%s is not a JWK Set (a JSON object with a keys array): %v", file, err)
		return
	}
	if len(set.Keys) == 0 {
		v.invalid(path, "%s has no keys", file)
		return
	}
	for i, k := range set.Keys {
		_, d := k["d"]
		_, sym := k["k"]
		if d || sym {
			v.invalid(path, "%s holds a private or symmetric key (keys[%d]); give the client's public keys only", file, i)
			return
		}
	}
}

func (v *validator) resources() {
	seen := map[string]int{}
	for i, r := range v.c.Auth.Resources {
		base := fmt.Sprintf("auth.resources[%d]", i)
		if err := checkResourceURI(r.URI); err != nil {
			v.invalid(base+".uri", "%v", err)
		} else {
			if j, dup := seen[r.URI]; dup {
				v.invalid(base+".uri", "resource %q is already defined at auth.resources[%d]", r.URI, j)
			}
			seen[r.URI] = i
		}
		v.scopes(base+".scopes", r.Scopes)
	}
}

// checkResourceURI applies RFC 8707 §2: absolute URI, no fragment.
func checkResourceURI(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%s is not a valid URI", quoteValue(s))
	case !u.IsAbs():
		return fmt.Errorf("%s is not an absolute URI", quoteValue(s))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%s must not have a fragment", quoteValue(s))
	}
	return nil
}

// scopes checks each element of a scope list.
func (v *validator) scopes(path string, scopes []string) {
	for j, sc := range scopes {
		if !validScopeToken(sc) {
			v.invalid(fmt.Sprintf("%s[%d]", path, j), "%s is not a scope token: 1 to %d printable ASCII characters without spaces, '\"' or '\\'", quoteValue(sc), MaxScopeTokenLen)
		}
	}
}

// validScopeToken reports whether s is a scope-token (RFC 6749 §3.3):
// 1*( %x21 / %x23-5B / %x5D-7E ).
func validScopeToken(s string) bool {
	if s == "" || len(s) > MaxScopeTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// printableNoSpace reports whether s is valid UTF-8 without white space
// or control characters.
func printableNoSpace(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// plausibleEmail accepts local@domain with one '@', both parts non-empty,
// and no spaces or control characters.
func plausibleEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") && printableNoSpace(s)
}

func enumNames[T ~string](set []T) []string {
	names := make([]string, len(set))
	for i, s := range set {
		names[i] = string(s)
	}
	return names
}
