package config_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/agenthost/agenthost/runtime/config"
)

const (
	argonHash  = "$argon2id$v=19$m=19456,t=2,p=1$AAECAwQFBgcICQoLDA0ODw$ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM"
	bcryptHash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	publicJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1",` +
		`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
)

// authDir returns a directory with an executable agent "research" and JWKS
// files under keys/, where a config file can be placed.
func authDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"keys/signer.jwks.json":  publicJWKS,
		"keys/private.jwks.json": `{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}`,
		"keys/secret.jwks.json":  `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		"keys/empty.jwks.json":   `{"keys":[]}`,
		"keys/notjson.jwks.json": `keys: []`,
		"keys/big.jwks.json":     `{"keys":[` + strings.Repeat(" ", config.MaxJWKSFileSize) + `]}`,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "research"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exact describes one expected problem completely.
type exact struct {
	line, col int
	path      string
	kind      error
	msg       string
}

func checkExact(t *testing.T, err error, wants []exact) {
	t.Helper()
	errs := problems(t, err)
	if len(errs) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(wants), err)
	}
	for i, w := range wants {
		e := errs[i]
		if e.Line != w.line || e.Column != w.col || e.Path != w.path || !errors.Is(e, w.kind) || e.Message != w.msg {
			t.Errorf("problem %d =\n  %d:%d %s: %s (kind %v)\nwant\n  %d:%d %s: %s (kind %v)",
				i, e.Line, e.Column, e.Path, e.Message, e.Kind, w.line, w.col, w.path, w.msg, w.kind)
		}
	}
}

func TestAuthValid(t *testing.T) {
	dir := authDir(t)
	src := `version: 1
auth:
  access_token_ttl: 10m
  refresh_token_ttl: 2160h
  code_ttl: 30s
  signing_key_period: 1h
  dynamic_registration: false
  registration_token_hash: "` + bcryptHash + `"
  registration_burst: 3
  registration_interval: 10s
  max_dynamic_clients: 50
  unused_client_ttl: 1h
  trusted_proxies: [10.0.0.0/8, "2001:db8::1", 192.0.2.7]
  client_id_metadata_documents: false
  allow_private_fetch: true
  require_dpop_nonce: true
  users:
    - name: alice
      password_hash: "` + argonHash + `"
      display_name: Alice Example
      email: alice@example.org
    - name: bob@example.org
      password_hash: "` + bcryptHash + `"
  clients:
    - id: webapp
      name: Web App
      auth_method: none
      redirect_uris:
        - https://app.example/cb
        - http://127.0.0.1:51234/cb
        - "http://[::1]/cb"
        - http://localhost:8080/cb?x=1
        - com.example.app:/oauth2redirect
      scopes: [notes:read, openid]
    - id: backend
      auth_method: client_secret_basic
      secret_hash: "` + bcryptHash + `"
      grant_types: [client_credentials, "urn:ietf:params:oauth:grant-type:token-exchange"]
    - id: poster
      auth_method: client_secret_post
      secret_hash: "` + argonHash + `"
      grant_types: [client_credentials]
    - id: signer
      auth_method: private_key_jwt
      jwks_file: keys/signer.jwks.json
      grant_types: ["urn:ietf:params:oauth:grant-type:jwt-bearer", client_credentials]
      scopes: []
  resources:
    - uri: https://notes.example/mcp
      scopes: [notes:read, notes:write]
    - uri: urn:example:calendar
agents:
  - name: research
    path: research
    scopes: [notes:read, "calendar:*"]
`
	got, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Default()
	want.Auth = config.AuthConfig{
		AccessTokenTTL:            10 * time.Minute,
		RefreshTokenTTL:           2160 * time.Hour,
		CodeTTL:                   30 * time.Second,
		SigningKeyPeriod:          time.Hour,
		DynamicRegistration:       false,
		RegistrationTokenHash:     bcryptHash,
		RegistrationBurst:         3,
		RegistrationInterval:      10 * time.Second,
		MaxDynamicClients:         50,
		UnusedClientTTL:           time.Hour,
		TrustedProxies:            []string{"10.0.0.0/8", "2001:db8::1", "192.0.2.7"},
		ClientIDMetadataDocuments: false,
		AllowPrivateFetch:         true,
		RequireDPoPNonce:          true,
		Users: []config.UserConfig{
			{Name: "alice", PasswordHash: argonHash, DisplayName: "Alice Example", Email: "alice@example.org"},
			{Name: "bob@example.org", PasswordHash: bcryptHash},
		},
		Clients: []config.ClientConfig{
			{
				ID: "webapp", Name: "Web App", AuthMethod: config.AuthMethodNone,
				RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1:51234/cb", "http://[::1]/cb",
					"http://localhost:8080/cb?x=1", "com.example.app:/oauth2redirect"},
				GrantTypes: []config.GrantType{config.GrantAuthorizationCode, config.GrantRefreshToken},
				Scopes:     []string{"notes:read", "openid"},
			},
			{
				ID: "backend", AuthMethod: config.AuthMethodClientSecretBasic, SecretHash: bcryptHash,
				GrantTypes: []config.GrantType{config.GrantClientCredentials, config.GrantTokenExchange},
			},
			{
				ID: "poster", AuthMethod: config.AuthMethodClientSecretPost, SecretHash: argonHash,
				GrantTypes: []config.GrantType{config.GrantClientCredentials},
			},
			{
				ID: "signer", AuthMethod: config.AuthMethodPrivateKeyJWT,
				JWKSFile:   filepath.Join(dir, "keys", "signer.jwks.json"),
				GrantTypes: []config.GrantType{config.GrantJWTBearer, config.GrantClientCredentials},
				Scopes:     []string{},
			},
		},
		Resources: []config.ResourceConfig{
			{URI: "https://notes.example/mcp", Scopes: []string{"notes:read", "notes:write"}},
			{URI: "urn:example:calendar"},
		},
	}
	want.Agents = []config.AgentConfig{{Name: "research", Path: filepath.Join(dir, "research"), Scopes: []string{"notes:read", "calendar:*"}}}
	if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if p, ok := got.Position("auth.clients[3].jwks_file"); !ok || p != (config.Position{Line: 45, Column: 18}) {
		t.Errorf("Position(auth.clients[3].jwks_file) = %v, %v", p, ok)
	}
	wantProxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("192.0.2.7/32")}
	if diff := cmp.Diff(wantProxies, got.Auth.TrustedProxyPrefixes(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("TrustedProxyPrefixes (-want +got):\n%s", diff)
	}
}

func TestAuthDefaults(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{"no auth section", "version: 1\n"},
		{"empty auth section", "version: 1\nauth:\n"},
		{"empty auth mapping", "version: 1\nauth: {}\n"},
		{"defaults written out", "version: 1\nauth:\n  access_token_ttl: 5m\n  refresh_token_ttl: 24h\n  code_ttl: 1m\n" +
			"  signing_key_period: 720h\n  dynamic_registration: true\n  client_id_metadata_documents: true\n" +
			"  allow_private_fetch: false\n  require_dpop_nonce: false\n  users: []\n  clients: ~\n" +
			"  registration_burst: 10\n  registration_interval: 1m\n  max_dynamic_clients: 1000\n  unused_client_ttl: 24h\n" +
			"  registration_token_hash: \"\"\n  trusted_proxies: []\n"},
	}
	want := config.AuthConfig{
		AccessTokenTTL:            config.DefaultAccessTokenTTL,
		RefreshTokenTTL:           config.DefaultRefreshTokenTTL,
		CodeTTL:                   config.DefaultCodeTTL,
		SigningKeyPeriod:          config.DefaultSigningKeyPeriod,
		DynamicRegistration:       config.DefaultDynamicRegistration,
		RegistrationBurst:         config.DefaultRegistrationBurst,
		RegistrationInterval:      config.DefaultRegistrationInterval,
		MaxDynamicClients:         config.DefaultMaxDynamicClients,
		UnusedClientTTL:           config.DefaultUnusedClientTTL,
		ClientIDMetadataDocuments: config.DefaultClientIDMetadataDocuments,
		AllowPrivateFetch:         config.DefaultAllowPrivateFetch,
		RequireDPoPNonce:          config.DefaultRequireDPoPNonce,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("agenthost.yaml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(want, c.Auth, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("auth (-want +got):\n%s", diff)
			}
			if c.Digest() != config.Default().Digest() {
				t.Errorf("digest differs from Default()'s")
			}
		})
	}
}

func TestAuthProblems(t *testing.T) {
	dir := authDir(t)
	keys := filepath.Join(dir, "keys")
	const hashHint = "; make one with agenthost hash-password"
	tests := []struct {
		name string
		src  string // follows "version: 1\n"
		want []exact
	}{
		// Lifetimes.
		{"access ttl below minimum", "auth:\n  access_token_ttl: 10s\n",
			[]exact{{3, 21, "auth.access_token_ttl", config.ErrInvalid, "10s is shorter than the minimum of 30s"}}},
		{"access ttl above maximum", "auth:\n  access_token_ttl: 61m\n",
			[]exact{{3, 21, "auth.access_token_ttl", config.ErrInvalid, "1h1m is longer than the maximum of 1h"}}},
		{"explicit zero access ttl", "auth:\n  access_token_ttl: 0s\n",
			[]exact{{3, 21, "auth.access_token_ttl", config.ErrInvalid, "0s is shorter than the minimum of 30s"}}},
		{"refresh ttl below minimum", "auth:\n  refresh_token_ttl: 59s\n",
			[]exact{{3, 22, "auth.refresh_token_ttl", config.ErrInvalid, "59s is shorter than the minimum of 1m"}}},
		{"refresh ttl above 90 days", "auth:\n  refresh_token_ttl: 2161h\n",
			[]exact{{3, 22, "auth.refresh_token_ttl", config.ErrInvalid, "2161h is longer than the maximum of 2160h"}}},
		{"code ttl below minimum", "auth:\n  code_ttl: 9s\n",
			[]exact{{3, 13, "auth.code_ttl", config.ErrInvalid, "9s is shorter than the minimum of 10s"}}},
		{"code ttl above maximum", "auth:\n  code_ttl: 10m1s\n",
			[]exact{{3, 13, "auth.code_ttl", config.ErrInvalid, "10m1s is longer than the maximum of 10m"}}},
		{"signing key period below minimum", "auth:\n  signing_key_period: 59m\n",
			[]exact{{3, 23, "auth.signing_key_period", config.ErrInvalid, "59m is shorter than the minimum of 1h"}}},
		{"ttl without unit", "auth:\n  code_ttl: 60\n",
			[]exact{{3, 13, "auth.code_ttl", config.ErrType, `expected a duration with a unit, such as "90s", "30m" or "1h", got the integer "60"`}}},
		{"flag as string", "auth:\n  dynamic_registration: \"no\"\n",
			[]exact{{3, 25, "auth.dynamic_registration", config.ErrType, `expected true or false, got the string "no"`}}},
		{"unknown key with suggestion", "auth:\n  require_dpop_nonces: true\n",
			[]exact{{3, 3, "auth.require_dpop_nonces", config.ErrUnknownKey, `unknown key "require_dpop_nonces" (did you mean "require_dpop_nonce"?)`}}},
		// Registration limits.
		{"registration burst of zero", "auth:\n  registration_burst: 0\n",
			[]exact{{3, 23, "auth.registration_burst", config.ErrInvalid, "0 is not from 1 to 10000"}}},
		{"registration burst too large", "auth:\n  registration_burst: 10001\n",
			[]exact{{3, 23, "auth.registration_burst", config.ErrInvalid, "10001 is not from 1 to 10000"}}},
		{"registration interval too short", "auth:\n  registration_interval: 500ms\n",
			[]exact{{3, 26, "auth.registration_interval", config.ErrInvalid, "500ms is shorter than the minimum of 1s"}}},
		{"registration interval too long", "auth:\n  registration_interval: 25h\n",
			[]exact{{3, 26, "auth.registration_interval", config.ErrInvalid, "25h is longer than the maximum of 24h"}}},
		{"no dynamic clients", "auth:\n  max_dynamic_clients: 0\n",
			[]exact{{3, 24, "auth.max_dynamic_clients", config.ErrInvalid, "0 is not from 1 to 1000000"}}},
		{"negative dynamic clients", "auth:\n  max_dynamic_clients: -1\n",
			[]exact{{3, 24, "auth.max_dynamic_clients", config.ErrInvalid, "-1 is not from 1 to 1000000"}}},
		{"unused client ttl too short", "auth:\n  unused_client_ttl: 30s\n",
			[]exact{{3, 22, "auth.unused_client_ttl", config.ErrInvalid, "30s is shorter than the minimum of 1m"}}},
		{"unused client ttl too long", "auth:\n  unused_client_ttl: 2161h\n",
			[]exact{{3, 22, "auth.unused_client_ttl", config.ErrInvalid, "2161h is longer than the maximum of 2160h"}}},
		{"plaintext initial access token in the hash", "auth:\n  registration_token_hash: s3cret-token\n",
			[]exact{{3, 28, "auth.registration_token_hash", config.ErrInvalid, "is not an argon2id or bcrypt hash" + hashHint}}},
		{"plaintext initial access token key", "auth:\n  registration_token: s3cret-token\n",
			[]exact{{3, 3, "auth.registration_token", config.ErrInvalid,
				"the initial access token is never written in the config; put an argon2id or bcrypt hash of it in registration_token_hash (agenthost hash-password)"}}},
		{"trusted proxy that is a name", "auth:\n  trusted_proxies: [10.0.0.0/8, proxy.internal, 10.0.0.0/33]\n",
			[]exact{
				{3, 33, "auth.trusted_proxies[1]", config.ErrInvalid, `"proxy.internal" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
				{3, 49, "auth.trusted_proxies[2]", config.ErrInvalid, `"10.0.0.0/33" is not an IP address or a CIDR prefix such as 10.0.0.0/8`},
			}},

		{"users as mapping", "auth:\n  users: {alice: x}\n",
			[]exact{{3, 10, "auth.users", config.ErrType, "expected a list, got a mapping"}}},

		// Users.
		{"user without name", "auth:\n  users:\n    - password_hash: \"" + argonHash + "\"\n",
			[]exact{{4, 7, "auth.users[0].name", config.ErrInvalid, "is required"}}},
		{"user name with a space", "auth:\n  users:\n    - name: al ice\n      password_hash: \"" + argonHash + "\"\n",
			[]exact{{4, 13, "auth.users[0].name", config.ErrInvalid, `"al ice" must be UTF-8 without spaces or control characters`}}},
		{"user name with a control character", "auth:\n  users:\n    - name: \"al\\tice\"\n      password_hash: \"" + argonHash + "\"\n",
			[]exact{{4, 13, "auth.users[0].name", config.ErrInvalid, `"al\tice" must be UTF-8 without spaces or control characters`}}},
		{"user name too long", "auth:\n  users:\n    - name: " + strings.Repeat("a", 129) + "\n      password_hash: \"" + argonHash + "\"\n",
			[]exact{{4, 13, "auth.users[0].name", config.ErrInvalid, "is 129 bytes long; a user name is at most 128 bytes"}}},
		{"duplicate user", "auth:\n  users:\n    - {name: alice, password_hash: \"" + argonHash + "\"}\n    - {name: alice, password_hash: \"" + bcryptHash + "\"}\n",
			[]exact{{5, 14, "auth.users[1].name", config.ErrInvalid, `user "alice" is already defined at auth.users[0]`}}},
		{"user without password hash", "auth:\n  users:\n    - name: alice\n",
			[]exact{{4, 7, "auth.users[0].password_hash", config.ErrInvalid, "is required: an argon2id or bcrypt hash (agenthost hash-password)"}}},
		{"plaintext in password_hash", "auth:\n  users:\n    - name: alice\n      password_hash: hunter2\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "is not an argon2id or bcrypt hash" + hashHint}}},
		{"argon2id memory bomb", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + strings.Replace(argonHash, "m=19456", "m=4294967295", 1) + "\"\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "has argon2id parameter m=4294967295; want 1 to 1048576" + hashHint}}},
		{"argon2id too many passes", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + strings.Replace(argonHash, "t=2", "t=11", 1) + "\"\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "has argon2id parameter t=11; want 1 to 10" + hashHint}}},
		{"argon2id too many lanes", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + strings.Replace(argonHash, "p=1", "p=17", 1) + "\"\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "has argon2id parameter p=17; want 1 to 16" + hashHint}}},
		{"argon2i hash", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + strings.Replace(argonHash, "argon2id", "argon2i", 1) + "\"\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "is an argon2i or argon2d hash; only argon2id is accepted" + hashHint}}},
		{"bcrypt cost out of range", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + strings.Replace(bcryptHash, "$10$", "$40$", 1) + "\"\n",
			[]exact{{5, 22, "auth.users[0].password_hash", config.ErrInvalid, "has a bcrypt cost that is not 04 to 31" + hashHint}}},
		{"plaintext password key", "auth:\n  users:\n    - name: alice\n      password: hunter2\n      password_hash: \"" + argonHash + "\"\n",
			[]exact{{5, 7, "auth.users[0].password", config.ErrInvalid,
				"passwords are never written in the config; put an argon2id or bcrypt hash in password_hash (agenthost hash-password)"}}},
		{"email without @", "auth:\n  users:\n    - {name: alice, password_hash: \"" + argonHash + "\", email: alice.example.org}\n",
			[]exact{{4, 144, "auth.users[0].email", config.ErrInvalid, `"alice.example.org" is not an email address: want local@domain, with one '@' and no spaces`}}},
		{"email with two @", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + argonHash + "\"\n      email: a@b@c\n",
			[]exact{{6, 14, "auth.users[0].email", config.ErrInvalid, `"a@b@c" is not an email address: want local@domain, with one '@' and no spaces`}}},
		{"email with empty domain", "auth:\n  users:\n    - name: alice\n      password_hash: \"" + argonHash + "\"\n      email: alice@\n",
			[]exact{{6, 14, "auth.users[0].email", config.ErrInvalid, `"alice@" is not an email address: want local@domain, with one '@' and no spaces`}}},

		// Clients: identity and authentication.
		{"client without id", "auth:\n  clients:\n    - auth_method: none\n      redirect_uris: [https://a.example/cb]\n",
			[]exact{{4, 7, "auth.clients[0].id", config.ErrInvalid, "is required"}}},
		{"client with a SPIFFE ID", "auth:\n  clients:\n    - id: spiffe://agenthost.local/agent/research\n      auth_method: private_key_jwt\n      jwks_file: keys/signer.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{4, 11, "auth.clients[0].id", config.ErrInvalid,
				"agents authenticate with their SVIDs, never a static secret; list the agent under agents instead"}}},
		{"client with an uppercase SPIFFE ID", "auth:\n  clients:\n    - {id: SPIFFE://x/y, auth_method: none, redirect_uris: [https://a.example/cb]}\n",
			[]exact{{4, 12, "auth.clients[0].id", config.ErrInvalid,
				"agents authenticate with their SVIDs, never a static secret; list the agent under agents instead"}}},
		{"client id with a space", "auth:\n  clients:\n    - {id: web app, auth_method: none, redirect_uris: [https://a.example/cb]}\n",
			[]exact{{4, 12, "auth.clients[0].id", config.ErrInvalid, `"web app" must be UTF-8 without spaces or control characters`}}},
		{"client id too long", "auth:\n  clients:\n    - {id: " + strings.Repeat("c", 256) + ", auth_method: none, redirect_uris: [https://a.example/cb]}\n",
			[]exact{{4, 12, "auth.clients[0].id", config.ErrInvalid, "is 256 bytes long; a client id is at most 255 bytes"}}},
		{"duplicate client", "auth:\n  clients:\n    - {id: web, auth_method: none, redirect_uris: [https://a.example/cb]}\n    - {id: web, auth_method: none, redirect_uris: [https://b.example/cb]}\n",
			[]exact{{5, 12, "auth.clients[1].id", config.ErrInvalid, `client "web" is already defined at auth.clients[0]`}}},
		{"client without auth method", "auth:\n  clients:\n    - id: web\n      secret_hash: x\n      redirect_uris: [https://a.example/cb]\n",
			[]exact{{4, 7, "auth.clients[0].auth_method", config.ErrInvalid,
				"is required: none, client_secret_basic, client_secret_post, private_key_jwt"}}},
		{"unknown auth method", "auth:\n  clients:\n    - id: web\n      auth_method: tls_client_auth\n      secret_hash: x\n      redirect_uris: [https://a.example/cb]\n",
			[]exact{{5, 20, "auth.clients[0].auth_method", config.ErrType,
				`unknown auth method "tls_client_auth"; want one of none, client_secret_basic, client_secret_post, private_key_jwt`}}},
		{"secret method without hash", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_post\n      grant_types: [client_credentials]\n",
			[]exact{{4, 7, "auth.clients[0].secret_hash", config.ErrInvalid, "is required: an argon2id or bcrypt hash (agenthost hash-password)"}}},
		{"plaintext in secret_hash", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret_hash: s3cr3t-value\n      grant_types: [client_credentials]\n",
			[]exact{{6, 20, "auth.clients[0].secret_hash", config.ErrInvalid, "is not an argon2id or bcrypt hash" + hashHint}}},
		{"secret hash on a public client", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      secret_hash: \"" + argonHash + "\"\n      redirect_uris: [https://a.example/cb]\n",
			[]exact{{6, 20, "auth.clients[0].secret_hash", config.ErrInvalid, "is only used with client_secret_basic and client_secret_post, not none"}}},
		{"plaintext secret key", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret: s3cr3t\n      secret_hash: \"" + argonHash + "\"\n      grant_types: [client_credentials]\n",
			[]exact{{6, 7, "auth.clients[0].secret", config.ErrInvalid,
				"secrets are never written in the config; put an argon2id or bcrypt hash in secret_hash (agenthost hash-password)"}}},
		{"plaintext client_secret key", "auth:\n  clients:\n    - id: svc\n      client_secret:\n      auth_method: client_secret_basic\n      secret_hash: \"" + argonHash + "\"\n      grant_types: [client_credentials]\n",
			[]exact{{5, 7, "auth.clients[0].client_secret", config.ErrInvalid,
				"secrets are never written in the config; put an argon2id or bcrypt hash in secret_hash (agenthost hash-password)"}}},
		{"private_key_jwt without jwks", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      grant_types: [client_credentials]\n",
			[]exact{{4, 7, "auth.clients[0].jwks_file", config.ErrInvalid, "is required for private_key_jwt"}}},
		{"generate_key with jwks_file", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      generate_key: true\n      jwks_file: keys/signer.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 21, "auth.clients[0].generate_key", config.ErrInvalid, "and jwks_file exclude each other: the host generates the key, or the client registers its own"}}},
		{"generate_key with a secret method", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret_hash: \"" + argonHash + "\"\n      generate_key: true\n      grant_types: [client_credentials]\n",
			[]exact{{7, 21, "auth.clients[0].generate_key", config.ErrInvalid, "is only used with private_key_jwt, not client_secret_basic"}}},
		{"jwks file missing", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/nope.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "nope.json") + " does not exist"}}},
		{"jwks file is a directory", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, keys + " is not a regular file"}}},
		{"jwks file over 64 KiB", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/big.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "big.jwks.json") + " is 65547 bytes; a JWK Set file is at most 65536 bytes"}}},
		{"jwks file not JSON", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/notjson.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "notjson.jwks.json") +
				" is not a JWK Set (a JSON object with a keys array): invalid character 'k' looking for beginning of value"}}},
		{"jwks file without keys", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/empty.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "empty.jwks.json") + " has no keys"}}},
		{"jwks file with a private key", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/private.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "private.jwks.json") +
				" holds a private or symmetric key (keys[0]); give the client's public keys only"}}},
		{"jwks file with a symmetric key", "auth:\n  clients:\n    - id: svc\n      auth_method: private_key_jwt\n      jwks_file: keys/secret.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{6, 18, "auth.clients[0].jwks_file", config.ErrInvalid, filepath.Join(keys, "secret.jwks.json") +
				" holds a private or symmetric key (keys[0]); give the client's public keys only"}}},
		{"jwks file on a secret client", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret_hash: \"" + argonHash + "\"\n      jwks_file: keys/signer.jwks.json\n      grant_types: [client_credentials]\n",
			[]exact{{7, 18, "auth.clients[0].jwks_file", config.ErrInvalid, "is only used with private_key_jwt, not client_secret_basic"}}},

		// Clients: redirect URIs and grants.
		{"relative redirect URI", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [/cb]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"/cb" is not an absolute URI`}}},
		{"redirect URI with fragment", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"https://a.example/cb#x\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"https://a.example/cb#x" must not have a fragment`}}},
		{"redirect URI with empty fragment", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"https://a.example/cb#\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"https://a.example/cb#" must not have a fragment`}}},
		{"http redirect URI on a public host", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [https://a.example/cb, http://a.example/cb]\n",
			[]exact{{6, 45, "auth.clients[0].redirect_uris[1]", config.ErrInvalid,
				`"http://a.example/cb" is http on a host that is not loopback (localhost, 127.0.0.1, [::1]); use https`}}},
		{"loopback redirect URI with a port out of range", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"http://127.0.0.1:99999/cb\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"http://127.0.0.1:99999/cb" has port "99999"; want a number from 1 to 65535`}}},
		{"redirect URI with port 0", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"https://a.example:0/cb\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"https://a.example:0/cb" has port "0"; want a number from 1 to 65535`}}},
		{"https redirect URI without host", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"https:/cb\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"https:/cb" has no host`}}},
		{"redirect URI with a plain scheme", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"myapp:/cb\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid,
				`"myapp:/cb" has scheme "myapp"; want https, http on a loopback host, or a private-use scheme with a '.' such as com.example.app`}}},
		{"unparsable redirect URI", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [\"https://a b/cb\"]\n",
			[]exact{{6, 23, "auth.clients[0].redirect_uris[0]", config.ErrInvalid, `"https://a b/cb" is not a valid URI`}}},
		{"authorization code without redirect URIs", "auth:\n  clients:\n    - id: web\n      auth_method: none\n",
			[]exact{{4, 7, "auth.clients[0].redirect_uris", config.ErrInvalid, "is required for the authorization_code grant"}}},
		{"empty redirect URI list", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: []\n      grant_types: [authorization_code]\n",
			[]exact{{6, 7, "auth.clients[0].redirect_uris", config.ErrInvalid, "is required for the authorization_code grant"}}},
		{"unknown grant type", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret_hash: \"" + argonHash + "\"\n      grant_types: [client_credentials, password]\n",
			[]exact{{7, 41, "auth.clients[0].grant_types[1]", config.ErrType,
				`unknown grant type "password"; want one of authorization_code, refresh_token, client_credentials, ` +
					`urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:jwt-bearer`}}},
		{"empty grant type list", "auth:\n  clients:\n    - id: svc\n      auth_method: client_secret_basic\n      secret_hash: \"" + argonHash + "\"\n      grant_types: []\n",
			[]exact{{7, 7, "auth.clients[0].grant_types", config.ErrInvalid,
				"is empty; list at least one grant type, or leave it out for authorization_code and refresh_token"}}},
		{"client credentials for a public client", "auth:\n  clients:\n    - id: cli\n      auth_method: none\n      grant_types: [client_credentials]\n",
			[]exact{{6, 7, "auth.clients[0].grant_types", config.ErrInvalid,
				"client_credentials needs a client that authenticates: set auth_method to client_secret_basic, client_secret_post or private_key_jwt"}}},
		{"client scope with a space", "auth:\n  clients:\n    - id: web\n      auth_method: none\n      redirect_uris: [https://a.example/cb]\n      scopes: [ok, \"not ok\"]\n",
			[]exact{{7, 20, "auth.clients[0].scopes[1]", config.ErrInvalid,
				`"not ok" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`}}},

		// Resources.
		{"resource without uri", "auth:\n  resources:\n    - scopes: [a]\n",
			[]exact{{4, 7, "auth.resources[0].uri", config.ErrInvalid, "is required"}}},
		{"relative resource uri", "auth:\n  resources:\n    - uri: notes/mcp\n",
			[]exact{{4, 12, "auth.resources[0].uri", config.ErrInvalid, `"notes/mcp" is not an absolute URI`}}},
		{"resource uri with fragment", "auth:\n  resources:\n    - uri: \"https://notes.example/mcp#x\"\n",
			[]exact{{4, 12, "auth.resources[0].uri", config.ErrInvalid, `"https://notes.example/mcp#x" must not have a fragment`}}},
		{"duplicate resource", "auth:\n  resources:\n    - uri: https://notes.example/mcp\n    - uri: https://notes.example/mcp\n",
			[]exact{{5, 12, "auth.resources[1].uri", config.ErrInvalid, `resource "https://notes.example/mcp" is already defined at auth.resources[0]`}}},
		{"resource scope with a backslash", "auth:\n  resources:\n    - uri: https://notes.example/mcp\n      scopes: ['a\\b']\n",
			[]exact{{5, 16, "auth.resources[0].scopes[0]", config.ErrInvalid,
				`"a\\b" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`}}},
		{"empty resource scope", "auth:\n  resources:\n    - uri: https://notes.example/mcp\n      scopes: [\"\"]\n",
			[]exact{{5, 16, "auth.resources[0].scopes[0]", config.ErrInvalid,
				`"" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`}}},

		// Agents.
		{"agent scope with a quote", "agents:\n  - name: research\n    path: research\n    scopes: ['say\"hi']\n",
			[]exact{{5, 14, "agents[0].scopes[0]", config.ErrInvalid,
				`"say\"hi" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`}}},
		{"agent scope not ASCII", "agents:\n  - name: research\n    path: research\n    scopes: [notes:lire, notes:écrire]\n",
			[]exact{{5, 26, "agents[0].scopes[1]", config.ErrInvalid,
				`"notes:écrire" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`}}},
		{"agent with client_secret", "agents:\n  - name: research\n    path: research\n    client_secret: s3cr3t\n",
			[]exact{{5, 5, "agents[0].client_secret", config.ErrInvalid, "agents never authenticate with a static secret; they use their SVIDs"}}},
		{"agent with secret", "agents:\n  - name: research\n    path: research\n    secret: s3cr3t\n",
			[]exact{{5, 5, "agents[0].secret", config.ErrInvalid, "agents never authenticate with a static secret; they use their SVIDs"}}},
		{"agent with secret_hash", "agents:\n  - {name: research, path: research, secret_hash: \"" + argonHash + "\"}\n",
			[]exact{{3, 38, "agents[0].secret_hash", config.ErrInvalid, "agents never authenticate with a static secret; they use their SVIDs"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte("version: 1\n"+tt.src))
			if c != nil {
				t.Fatalf("Parse accepted the file")
			}
			checkExact(t, err, tt.want)
		})
	}
}

func TestAuthProblemsTogether(t *testing.T) {
	dir := authDir(t)
	src := `version: 1
auth:
  access_token_ttl: 2h
  code_tll: 1m
  users:
    - name: alice
      password: hunter2
  clients:
    - id: web
      auth_method: magic
      secret_hash: x
      grant_types: [authorization_code, implicit]
agents:
  - name: research
    path: research
    secret_hash: x
    scopes: ["a b"]
`
	_, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
	want := strings.Join([]string{
		`agenthost.yaml:3:21: auth.access_token_ttl: 2h is longer than the maximum of 1h`,
		`agenthost.yaml:4:3: auth.code_tll: unknown key "code_tll" (did you mean "code_ttl"?)`,
		`agenthost.yaml:6:7: auth.users[0].password_hash: is required: an argon2id or bcrypt hash (agenthost hash-password)`,
		`agenthost.yaml:7:7: auth.users[0].password: passwords are never written in the config; put an argon2id or bcrypt hash in password_hash (agenthost hash-password)`,
		`agenthost.yaml:9:7: auth.clients[0].redirect_uris: is required for the authorization_code grant`,
		`agenthost.yaml:10:20: auth.clients[0].auth_method: unknown auth method "magic"; want one of none, client_secret_basic, client_secret_post, private_key_jwt`,
		`agenthost.yaml:12:41: auth.clients[0].grant_types[1]: unknown grant type "implicit"; want one of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:jwt-bearer`,
		`agenthost.yaml:16:5: agents[0].secret_hash: agents never authenticate with a static secret; they use their SVIDs`,
		`agenthost.yaml:17:14: agents[0].scopes[0]: "a b" is not a scope token: 1 to 256 printable ASCII characters without spaces, '"' or '\'`,
	}, "\n")
	if err == nil {
		t.Fatal("Parse accepted the file")
	}
	got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestAuthValidateLiteral(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *config.Config)
		want   []exact
	}{
		{"defaults", func(c *config.Config) {}, nil},
		{
			name: "client with nil grant types gets the defaults",
			change: func(c *config.Config) {
				c.Auth.Clients = []config.ClientConfig{{ID: "web", AuthMethod: config.AuthMethodNone}}
			},
			want: []exact{{0, 0, "auth.clients[0].redirect_uris", config.ErrInvalid, "is required for the authorization_code grant"}},
		},
		{
			name: "values no file can hold",
			change: func(c *config.Config) {
				c.Auth.Clients = []config.ClientConfig{{ID: "svc", AuthMethod: "magic", GrantTypes: []config.GrantType{"implicit"}}}
			},
			want: []exact{
				{0, 0, "auth.clients[0].auth_method", config.ErrInvalid, `unknown auth method "magic"; want one of none, client_secret_basic, client_secret_post, private_key_jwt`},
				{0, 0, "auth.clients[0].grant_types[0]", config.ErrInvalid, `unknown grant type "implicit"; want one of authorization_code, refresh_token, client_credentials, ` +
					`urn:ietf:params:oauth:grant-type:token-exchange, urn:ietf:params:oauth:grant-type:jwt-bearer`},
			},
		},
		{
			name: "invalid UTF-8 user name",
			change: func(c *config.Config) {
				c.Auth.Users = []config.UserConfig{{Name: "al\xffce", PasswordHash: argonHash}}
			},
			want: []exact{{0, 0, "auth.users[0].name", config.ErrInvalid, `"al\xffce" must be UTF-8 without spaces or control characters`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.change(c)
			checkExact(t, c.Validate(), tt.want)
		})
	}
}

func TestAuthDigest(t *testing.T) {
	dir := authDir(t)
	base := "version: 1\nauth:\n  users:\n    - {name: alice, password_hash: \"" + argonHash + "\"}\n" +
		"  clients:\n    - {id: web, auth_method: none, redirect_uris: [https://a.example/cb]}\n"
	digest := func(t *testing.T, src string) string {
		t.Helper()
		c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c.Digest()
	}
	want := digest(t, base)
	tests := []struct {
		name string
		src  string
		same bool
	}{
		{"identical", base, true},
		{"default grant types written out", strings.Replace(base, "redirect_uris:", "grant_types: [authorization_code, refresh_token], redirect_uris:", 1), true},
		{"default flag written out", base + "  dynamic_registration: true\n", true},
		{"flag changed", base + "  require_dpop_nonce: true\n", false},
		{"ttl changed", base + "  code_ttl: 2m\n", false},
		{"user hash changed", strings.Replace(base, argonHash, bcryptHash, 1), false},
		{"grant types changed", strings.Replace(base, "redirect_uris:", "grant_types: [authorization_code], redirect_uris:", 1), false},
		{"resource added", base + "  resources: [{uri: https://notes.example/mcp}]\n", false},
		{"agent scopes added", base + "agents: []\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digest(t, tt.src); (got == want) != tt.same {
				t.Errorf("same digest = %v, want %v", got == want, tt.same)
			}
		})
	}
}

func TestAgentScopesDigest(t *testing.T) {
	dir := authDir(t)
	parse := func(src string) *config.Config {
		t.Helper()
		c, err := config.Parse(filepath.Join(dir, "agenthost.yaml"), []byte(src))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c
	}
	a := parse("version: 1\nagents:\n  - {name: research, path: research}\n")
	b := parse("version: 1\nagents:\n  - {name: research, path: research, scopes: [notes:read]}\n")
	if a.Digest() == b.Digest() {
		t.Error("agent scopes do not change the digest")
	}
	if got := b.Agents[0].Scopes; !cmp.Equal(got, []string{"notes:read"}) {
		t.Errorf("scopes = %q", got)
	}
}
