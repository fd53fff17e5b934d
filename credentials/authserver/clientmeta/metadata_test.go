package clientmeta

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/jose"
)

// testJWKS returns a JWK Set with one P-256 public key.
func testJWKS(t testing.TB) json.RawMessage {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jose.MarshalKeySet([]jose.SetKey{{KID: "k1", Key: &key.PublicKey, Alg: "ES256", Use: "sig"}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestParse(t *testing.T) {
	full := `{
		"redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types": ["authorization_code", "refresh_token"],
		"response_types": ["code"],
		"client_name": "Example",
		"client_name#ja": "例",
		"client_uri": "https://app.example/",
		"logo_uri": "https://app.example/logo.png",
		"scope": "read write",
		"contacts": ["ops@app.example"],
		"tos_uri": "https://app.example/tos",
		"policy_uri": "https://app.example/policy",
		"jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "k"}]},
		"software_id": "4NRB1-0XZABZI9E6-5SM3R",
		"software_version": "2.1",
		"application_type": "native",
		"dpop_bound_access_tokens": true,
		"client_id": "https://app.example/client.json",
		"client_id_issued_at": 1700000000,
		"client_secret_expires_at": 0,
		"software_statement": "eyJ...",
		"extension": {"nested": [1, {"a": null}]}
	}`
	t.Run("full", func(t *testing.T) {
		m, err := Parse([]byte(full), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.RedirectURIs, []string{"https://app.example/cb", "http://127.0.0.1/cb"}) ||
			m.TokenEndpointAuthMethod != "private_key_jwt" || m.ClientName != "Example" || m.Scope != "read write" ||
			!m.DPoPBoundAccessTokens || m.ClientIDIssuedAt != 1700000000 || m.ApplicationType != "native" ||
			m.ClientID != "https://app.example/client.json" || !bytes.HasPrefix(m.JWKS, []byte(`{"keys"`)) ||
			len(m.Contacts) != 1 || m.SoftwareVersion != "2.1" || m.PolicyURI == "" || m.TOSURI == "" {
			t.Fatalf("decoded %+v", m)
		}
		// A marshalled Metadata parses back to the same value.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Parse(b, 0)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		b2, _ := json.Marshal(m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip differs:\n%s\n%s", b, b2)
		}
	})
	t.Run("empty object", func(t *testing.T) {
		m, err := Parse([]byte(" {} \n"), 0)
		if err != nil || m.RedirectURIs != nil || m.ClientName != "" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("member names are case-sensitive", func(t *testing.T) {
		m, err := Parse([]byte(`{"Redirect_URIs":["https://x/cb"],"CLIENT_NAME":"n"}`), 0)
		if err != nil || m.RedirectURIs != nil || m.ClientName != "" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
	t.Run("escaped names and values", func(t *testing.T) {
		m, err := Parse([]byte(`{"client_\u006eame":"caf\u00e9"}`), 0)
		if err != nil || m.ClientName != "café" {
			t.Fatalf("got %+v, %v", m, err)
		}
	})
}

func TestParseRejects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)
	deepArray := `{"x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + "}"
	tests := []struct {
		name string
		in   string
		max  int
	}{
		{"empty", "", 0},
		{"whitespace", "  ", 0},
		{"null", "null", 0},
		{"array", `[{"client_name":"x"}]`, 0},
		{"string", `"x"`, 0},
		{"unterminated", `{"client_name":"x"`, 0},
		{"trailing garbage", `{"client_name":"x"} x`, 0},
		{"two objects", `{}{}`, 0},
		{"trailing comma", `{"a":1,}`, 0},
		{"bom", "\ufeff{}", 0},
		{"invalid utf-8", "{\"client_name\":\"\xff\"}", 0},
		{"duplicate member", `{"client_name":"a","client_name":"b"}`, 0},
		{"duplicate by escape", `{"client_name":"a","client_\u006eame":"b"}`, 0},
		{"duplicate unknown member", `{"x":1,"x":2}`, 0},
		{"duplicate inside jwks", `{"jwks":{"keys":[{"kid":"a","kid":"b"}]}}`, 0},
		{"too deep", deep, 0},
		{"too deep arrays", deepArray, 0},
		{"oversized", `{"client_name":"` + strings.Repeat("x", 100) + `"}`, 64},
		{"redirect_uris string", `{"redirect_uris":"https://x/cb"}`, 0},
		{"redirect_uris number item", `{"redirect_uris":[1]}`, 0},
		{"redirect_uris null item", `{"redirect_uris":[null]}`, 0},
		{"redirect_uris null", `{"redirect_uris":null}`, 0},
		{"redirect_uris object", `{"redirect_uris":{"a":"b"}}`, 0},
		{"grant_types nested array", `{"grant_types":[["authorization_code"]]}`, 0},
		{"contacts bool", `{"contacts":true}`, 0},
		{"client_name number", `{"client_name":5}`, 0},
		{"client_name null", `{"client_name":null}`, 0},
		{"scope array", `{"scope":["a","b"]}`, 0},
		{"token_endpoint_auth_method array", `{"token_endpoint_auth_method":["none"]}`, 0},
		{"client_id number", `{"client_id":1}`, 0},
		{"jwks array", `{"jwks":[]}`, 0},
		{"jwks string", `{"jwks":"{}"}`, 0},
		{"jwks null", `{"jwks":null}`, 0},
		{"dpop string", `{"dpop_bound_access_tokens":"true"}`, 0},
		{"dpop number", `{"dpop_bound_access_tokens":1}`, 0},
		{"issued_at fraction", `{"client_id_issued_at":1.5}`, 0},
		{"issued_at exponent", `{"client_id_issued_at":1e9}`, 0},
		{"issued_at negative", `{"client_id_issued_at":-1}`, 0},
		{"issued_at string", `{"client_id_issued_at":"1"}`, 0},
		{"issued_at overflow", `{"client_id_issued_at":99999999999999999999}`, 0},
		{"expires_at bool", `{"client_secret_expires_at":false}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in), tt.max)
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidClientMetadata) || errors.Is(err, ErrInvalidRedirectURI) {
				t.Fatalf("error %v (%T): want *Error invalid_client_metadata", err, err)
			}
			if strings.ContainsAny(ce.Description, "\"\\\x00\n") {
				t.Errorf("description %q has characters RFC 6749 §5.2 forbids", ce.Description)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	redirect := redirectError("x")
	meta := metadataError("y")
	if !errors.Is(redirect, ErrInvalidRedirectURI) || errors.Is(redirect, ErrInvalidClientMetadata) {
		t.Error("redirect error matches the wrong sentinel")
	}
	if !errors.Is(meta, ErrInvalidClientMetadata) || errors.Is(meta, ErrInvalidRedirectURI) {
		t.Error("metadata error matches the wrong sentinel")
	}
	if !errors.Is(meta, &Error{Code: "invalid_client_metadata"}) || errors.Is(meta, ErrInvalidClient) {
		t.Error("*Error matching by code is wrong")
	}
	if oe := redirect.OAuth(); oe.Code != "invalid_redirect_uri" || oe.Description != "x" || oe.HTTPStatus() != 400 {
		t.Errorf("OAuth() = %+v", oe)
	}
	if got := meta.Error(); got != "clientmeta: invalid_client_metadata: y" {
		t.Errorf("Error() = %q", got)
	}
}

func TestShow(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "'abc'"},
		{`a"b\c'd`, "'a?b?c?d'"},
		{"é\n", "'???'"},
		{strings.Repeat("x", 70), "'" + strings.Repeat("x", 64) + "...'"},
	}
	for _, tt := range tests {
		if got := show(tt.in); got != tt.want {
			t.Errorf("show(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClone(t *testing.T) {
	m := &Metadata{RedirectURIs: []string{"https://a/cb"}, GrantTypes: []string{"authorization_code"},
		Contacts: []string{"c"}, JWKS: json.RawMessage(`{"keys":[]}`)}
	c := m.Clone()
	c.RedirectURIs[0] = "changed"
	c.GrantTypes[0] = "changed"
	c.Contacts[0] = "changed"
	c.JWKS[2] = 'X'
	if m.RedirectURIs[0] != "https://a/cb" || m.GrantTypes[0] != "authorization_code" || m.Contacts[0] != "c" ||
		string(m.JWKS) != `{"keys":[]}` {
		t.Fatalf("clone shares memory: %+v", m)
	}
	if (*Metadata)(nil).Clone() != nil {
		t.Fatal("nil clone")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"redirect_uris":["https://a/cb"],"client_name":"x","scope":"a b"}`,
		`{"redirect_uris":["http://127.0.0.1:1234/cb"],"grant_types":["authorization_code","refresh_token"]}`,
		`{"jwks":{"keys":[]},"token_endpoint_auth_method":"private_key_jwt"}`,
		`{"client_id_issued_at":0,"dpop_bound_access_tokens":false}`,
		`{"client_name":"a","client_name":"b"}`,
		`{"a":[[[[{}]]]]}`,
		`{"redirect_uris":[null]}`,
		`{"client_id":"https://app.example/c.json","client_secret":"s"}`,
		`[] `,
		"{\"x\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, 4096)
		if err != nil {
			if !errors.Is(err, ErrInvalidClientMetadata) {
				t.Fatalf("error %v is not invalid_client_metadata", err)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := Parse(b, 0)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if m2.ClientName != m.ClientName || m2.Scope != m.Scope || len(m2.RedirectURIs) != len(m.RedirectURIs) ||
			m2.ClientIDIssuedAt != m.ClientIDIssuedAt {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
		// Validation must not panic on anything Parse accepts.
		_ = Policy{}.ValidateRegistration(m.Clone())
		_ = Policy{}.ValidateDocument(m.ClientID, m.Clone())
	})
}

func BenchmarkParse(b *testing.B) {
	doc := []byte(`{"client_id":"https://app.example/client.json","client_name":"Example",` +
		`"redirect_uris":["https://app.example/cb","http://127.0.0.1/cb"],` +
		`"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none","scope":"read write"}`)
	for b.Loop() {
		if _, err := Parse(doc, MaxDocumentSize); err != nil {
			b.Fatal(err)
		}
	}
}
