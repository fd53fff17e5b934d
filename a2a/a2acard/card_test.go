package a2acard_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/a2aproject/a2a-go/a2a"
	"github.com/google/go-cmp/cmp"

	"github.com/agenthost/agenthost/a2a/a2acard"
	"github.com/agenthost/agenthost/credentials/jose"
)

const agentURL = "https://host.example/a2a/research"

func testInfo() a2acard.AgentInfo {
	return a2acard.AgentInfo{
		Name: "research", DisplayName: "Research", Description: "Finds & summarises papers <fast>.", Version: "1.2.0",
		Skills: []a2acard.Skill{
			{ID: "search", Name: "Search", Description: "Searches the literature", Tags: []string{"papers"}, Examples: []string{"find papers on A2A"}},
			{ID: "summarise", Description: "Summarises a paper"},
		},
		Scopes: []string{"agent:research"},
	}
}

func testOptions() a2acard.Options {
	return a2acard.Options{
		URL: agentURL, TokenURL: "https://host.example/token",
		OAuthMetadataURL: "https://host.example/.well-known/oauth-authorization-server",
	}
}

func newCard(t testing.TB, mutate func(*a2acard.Options)) *a2a.AgentCard {
	t.Helper()
	opts := testOptions()
	if mutate != nil {
		mutate(&opts)
	}
	c, err := a2acard.New(testInfo(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew(t *testing.T) {
	c := newCard(t, func(o *a2acard.Options) {
		o.AuthorizationURL = "https://host.example/authorize"
		o.MutualTLS = true
	})
	if c.URL != agentURL || c.PreferredTransport != a2a.TransportProtocolJSONRPC || c.ProtocolVersion != a2acard.ProtocolVersion ||
		!c.Capabilities.Streaming || c.Name != "Research" || c.Version != "1.2.0" {
		t.Fatalf("card %+v", c)
	}
	if len(c.AdditionalInterfaces) != 1 || c.AdditionalInterfaces[0].URL != agentURL {
		t.Fatalf("interfaces %+v", c.AdditionalInterfaces)
	}
	if c.Skills[1].Name != "summarise" || c.Skills[1].Tags == nil {
		t.Fatalf("defaults of a skill: %+v", c.Skills[1])
	}
	oa, ok := c.SecuritySchemes[a2acard.SchemeOAuth2].(a2a.OAuth2SecurityScheme)
	if !ok || oa.Flows.ClientCredentials == nil || oa.Flows.ClientCredentials.TokenURL != "https://host.example/token" ||
		oa.Flows.AuthorizationCode == nil || oa.Flows.AuthorizationCode.AuthorizationURL != "https://host.example/authorize" ||
		oa.Oauth2MetadataURL == "" || oa.Flows.ClientCredentials.Scopes["agent:research"] == "" {
		t.Fatalf("oauth2 scheme %+v", c.SecuritySchemes[a2acard.SchemeOAuth2])
	}
	if _, ok := c.SecuritySchemes[a2acard.SchemeMutualTLS].(a2a.MutualTLSSecurityScheme); !ok {
		t.Fatalf("no mtls scheme: %+v", c.SecuritySchemes)
	}
	want := []a2a.SecurityRequirements{
		{a2acard.SchemeOAuth2: {"agent:research"}},
		{a2acard.SchemeOAuth2: {"agent:research"}, a2acard.SchemeMutualTLS: {}},
	}
	if diff := cmp.Diff(want, c.Security); diff != "" {
		t.Fatalf("security (-want +got):\n%s", diff)
	}
	// The JSON form decodes back into the same card (a2a-go's unions).
	b, _ := json.Marshal(c)
	var back a2a.AgentCard
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, &back); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}

	plain := newCard(t, nil)
	if plain.SecuritySchemes[a2acard.SchemeMutualTLS] != nil || len(plain.Security) != 1 ||
		plain.SecuritySchemes[a2acard.SchemeOAuth2].(a2a.OAuth2SecurityScheme).Flows.AuthorizationCode != nil {
		t.Fatalf("card without mTLS or authorization code: %+v", plain)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		info func(*a2acard.AgentInfo)
		opts func(*a2acard.Options)
	}{
		{"no name", func(i *a2acard.AgentInfo) { i.Name = "" }, nil},
		{"no URL", nil, func(o *a2acard.Options) { o.URL = "" }},
		{"relative URL", nil, func(o *a2acard.Options) { o.URL = "/a2a/x" }},
		{"URL with fragment", nil, func(o *a2acard.Options) { o.URL = agentURL + "#x" }},
		{"no token URL", nil, func(o *a2acard.Options) { o.TokenURL = "" }},
		{"skill without id", func(i *a2acard.AgentInfo) { i.Skills[0].ID = "" }, nil},
		{"duplicate skill", func(i *a2acard.AgentInfo) { i.Skills[1].ID = i.Skills[0].ID }, nil},
		{"empty scope", func(i *a2acard.AgentInfo) { i.Scopes = []string{""} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, opts := testInfo(), testOptions()
			if tt.info != nil {
				tt.info(&info)
			}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			if _, err := a2acard.New(info, opts); !errors.Is(err, a2acard.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDefaultSkill(t *testing.T) {
	c, err := a2acard.New(a2acard.AgentInfo{Name: "echo"}, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Skills) != 1 || c.Skills[0].ID != "echo" || c.Description != "echo" || c.Version != "0.0.0" {
		t.Fatalf("card %+v", c)
	}
}

func TestCanonical(t *testing.T) {
	raw := []byte(`{"url":"https://h/a2a/x","signatures":[{"protected":"e30","signature":"AA"}],
		"name":"A <&> \u00e9","iconUrl":"","skills":[{"id":"s","tags":[],"examples":["",null]}],
		"capabilities":{"streaming":false,"extensions":[]},"n":1.0e2,"provider":{}}`)
	got, err := a2acard.Canonical(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"capabilities":{"streaming":false},"n":100,"name":"A <&> é","skills":[{"id":"s"}],"url":"https://h/a2a/x"}`
	if string(got) != want {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
	for _, bad := range []string{`[]`, `{"a":1,"a":2}`, `{"a":1} {}`, "{\"a\":\"\xff\"}", `{"a":"\udc00"}`} {
		if _, err := a2acard.Canonical([]byte(bad)); !errors.Is(err, a2acard.ErrMalformed) {
			t.Errorf("Canonical(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

type testKey struct {
	name   string
	signer crypto.Signer
	alg    jose.Alg
}

func testKeys(t testing.TB) []testKey {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return []testKey{{"P-256", p256, jose.ES256}, {"P-384", p384, jose.ES384}, {"P-521", p521, jose.ES512}, {"RSA", rk, jose.RS256}, {"Ed25519", ed, jose.EdDSA}}
}

func keySet(kid string, pub crypto.PublicKey) jose.KeyFunc {
	return jose.StaticKeys(map[string]crypto.PublicKey{kid: pub})
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	for _, k := range testKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			c := newCard(t, nil)
			if err := a2acard.Sign(ctx, c, a2acard.Key{Signer: k.signer, KID: "agent-1", JKU: "https://host.example/jwks"}); err != nil {
				t.Fatal(err)
			}
			if len(c.Signatures) != 1 {
				t.Fatalf("signatures %+v", c.Signatures)
			}
			hdr := decodeHeader(t, c.Signatures[0].Protected)
			if hdr["alg"] != string(k.alg) || hdr["kid"] != "agent-1" || hdr["typ"] != "JOSE" || hdr["jku"] != "https://host.example/jwks" {
				t.Fatalf("protected header %v", hdr)
			}
			v, err := a2acard.Verify(ctx, c, a2acard.VerifyOptions{Keys: keySet("agent-1", k.signer.Public())})
			if err != nil {
				t.Fatal(err)
			}
			if v.KeyID != "agent-1" || v.Alg != k.alg {
				t.Fatalf("verified %+v", v)
			}
			// As served: the JSON bytes verify, and so does the JSON with
			// members the signer omitted added back empty.
			raw, _ := json.Marshal(c)
			if _, err := a2acard.VerifyJSON(ctx, raw, a2acard.VerifyOptions{Keys: keySet("agent-1", k.signer.Public())}); err != nil {
				t.Fatal(err)
			}
			padded := bytes.Replace(raw, []byte(`{"additionalInterfaces"`), []byte(`{"iconUrl":"","documentationUrl":null,"extra":{},"additionalInterfaces"`), 1)
			if _, err := a2acard.VerifyJSON(ctx, padded, a2acard.VerifyOptions{Keys: keySet("agent-1", k.signer.Public())}); err != nil {
				t.Fatalf("card with empty members added: %v", err)
			}
		})
	}
}

func decodeHeader(t testing.TB, protected string) map[string]string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(protected)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyRefuses(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signed := func(t testing.TB) *a2a.AgentCard {
		c := newCard(t, nil)
		if err := a2acard.Sign(ctx, c, a2acard.Key{Signer: key, KID: "agent-1"}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	withHeader := func(t testing.TB, hdr string) *a2a.AgentCard {
		c := signed(t)
		c.Signatures[0].Protected = base64.RawURLEncoding.EncodeToString([]byte(hdr))
		return c
	}
	trusted := keySet("agent-1", key.Public())
	tests := []struct {
		name string
		card func(t testing.TB) *a2a.AgentCard
		keys jose.KeyFunc
		want error
	}{
		{"skill description changed", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.Skills[0].Description = "Searches the literature, and sends it elsewhere"
			return c
		}, trusted, a2acard.ErrSignature},
		{"url changed", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.URL = "https://evil.example/a2a/research"
			return c
		}, trusted, a2acard.ErrSignature},
		{"scope removed", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.Security[0][a2acard.SchemeOAuth2] = a2a.SecuritySchemeScopes{"other"}
			return c
		}, trusted, a2acard.ErrSignature},
		{"capability added", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.Capabilities.PushNotifications = true
			return c
		}, trusted, a2acard.ErrSignature},
		{"unsigned", func(t testing.TB) *a2a.AgentCard { return newCard(t, nil) }, trusted, a2acard.ErrUnsigned},
		{"signature removed", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.Signatures = nil
			return c
		}, trusted, a2acard.ErrUnsigned},
		{"signed by an unknown key", signed, keySet("agent-1", other.Public()), a2acard.ErrSignature},
		{"kid not in the bundle", signed, keySet("agent-2", key.Public()), a2acard.ErrUnknownKey},
		{"no kid", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"ES256","typ":"JOSE"}`)
		}, trusted, a2acard.ErrUnknownKey},
		{"alg none", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"none","kid":"agent-1","typ":"JOSE"}`)
		}, trusted, a2acard.ErrAlgorithm},
		{"alg HS256", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"HS256","kid":"agent-1","typ":"JOSE"}`)
		}, trusted, a2acard.ErrAlgorithm},
		{"unknown alg", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"ES999","kid":"agent-1","typ":"JOSE"}`)
		}, trusted, a2acard.ErrAlgorithm},
		{"alg of another key type", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"RS256","kid":"agent-1","typ":"JOSE"}`)
		}, trusted, a2acard.ErrAlgorithm},
		{"another typ", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"ES256","kid":"agent-1","typ":"at+jwt"}`)
		}, trusted, a2acard.ErrMalformed},
		{"crit header", func(t testing.TB) *a2a.AgentCard {
			return withHeader(t, `{"alg":"ES256","kid":"agent-1","typ":"JOSE","crit":["x"],"x":1}`)
		}, trusted, a2acard.ErrMalformed},
		{"signature garbage", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			c.Signatures[0].Signature = "AAAA"
			return c
		}, trusted, a2acard.ErrSignature},
		{"signature of another card", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			d := newCard(t, func(o *a2acard.Options) { o.URL = "https://host.example/a2a/payments" })
			d.Signatures = c.Signatures
			return d
		}, trusted, a2acard.ErrSignature},
		{"too many signatures", func(t testing.TB) *a2a.AgentCard {
			c := signed(t)
			for len(c.Signatures) <= a2acard.MaxSignatures {
				c.Signatures = append(c.Signatures, c.Signatures[0])
			}
			return c
		}, trusted, a2acard.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a2acard.Verify(ctx, tt.card(t), a2acard.VerifyOptions{Keys: tt.keys})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyAnySignature: a card with a signature by a key of another
// domain and one by a trusted key verifies by the trusted one; with only
// untrusted signatures the error names each.
func TestVerifyAnySignature(t *testing.T) {
	ctx := context.Background()
	mine, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	theirs, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := newCard(t, nil)
	if err := a2acard.Sign(ctx, c, a2acard.Key{Signer: theirs, KID: "theirs"}); err != nil {
		t.Fatal(err)
	}
	if err := a2acard.Sign(ctx, c, a2acard.Key{Signer: mine, KID: "mine"}); err != nil {
		t.Fatal(err)
	}
	v, err := a2acard.Verify(ctx, c, a2acard.VerifyOptions{Keys: keySet("mine", mine.Public())})
	if err != nil || v.KeyID != "mine" {
		t.Fatalf("verified %+v, %v", v, err)
	}
	_, err = a2acard.Verify(ctx, c, a2acard.VerifyOptions{Keys: keySet("nobody", mine.Public())})
	if !errors.Is(err, a2acard.ErrUnknownKey) || !strings.Contains(err.Error(), "signature 1") {
		t.Fatalf("err = %v", err)
	}
	// A2A allows algorithms to be narrowed: EdDSA only refuses ES256.
	_, err = a2acard.Verify(ctx, c, a2acard.VerifyOptions{Keys: keySet("mine", mine.Public()), Algorithms: []jose.Alg{jose.EdDSA}})
	if !errors.Is(err, a2acard.ErrAlgorithm) {
		t.Fatalf("err = %v, want ErrAlgorithm", err)
	}
}

func TestSignRefuses(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := a2acard.Sign(ctx, newCard(t, nil), a2acard.Key{Signer: key}); !errors.Is(err, a2acard.ErrSign) {
		t.Fatalf("no kid: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if err := a2acard.Sign(ctx, newCard(t, nil), a2acard.Key{Signer: small, KID: "k"}); !errors.Is(err, a2acard.ErrSign) {
		t.Fatalf("1024-bit RSA: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a2acard.Sign(canceled, newCard(t, nil), a2acard.Key{Signer: key, KID: "k"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}
