package signals

import (
	"context"
	"crypto"
	"encoding/json"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/jose"
)

// FuzzDecodeSET feeds arbitrary claim sets to the SET decoder. Whatever
// it accepts must hold exactly one event of a known type and a valid
// subject; nothing may panic.
func FuzzDecodeSET(f *testing.F) {
	now := time.Now().Unix()
	seeds := []map[string]any{
		validClaims("https://tr.example"),
		{"iss": "i", "jti": "j", "iat": now, "sub_id": map[string]any{"format": "opaque", "id": "s"},
			"events": map[string]any{EventVerification: map[string]any{"state": "x"}}},
		{"iss": "i", "jti": "j", "iat": now,
			"events": map[string]any{EventCredentialChange: map[string]any{"credential_type": "password", "change_type": "update",
				"subject": map[string]any{"format": "iss_sub", "iss": "a", "sub": "b"}}}},
		{"iss": "i", "jti": "j", "iat": now, "sub_id": map[string]any{"format": "aliases", "identifiers": []any{map[string]any{"format": "email", "email": "a@b"}}},
			"events": map[string]any{EventRiskLevelChange: map[string]any{"principal": "USER", "current_level": "LOW"}}},
		{"iss": "i", "jti": "j", "iat": now, "sub_id": map[string]any{"format": "x"}, "events": map[string]any{"a": map[string]any{}, "b": map[string]any{}}},
	}
	for _, s := range seeds {
		b, err := json.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"events":{"` + EventSessionRevoked + `":{}},"events":{}}`))
	f.Add([]byte(`{"iss":"i","jti":"j","iat":1e400,"events":null}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := decodeSET(payload, []string{"x_crit"})
		if err != nil {
			if ErrorCode(err) == "" {
				t.Fatalf("error without an RFC 8935 code: %v", err)
			}
			return
		}
		if ev.JTI == "" || ev.Issuer == "" || ev.IssuedAt.IsZero() {
			t.Fatalf("accepted without envelope: %+v", ev)
		}
		if err := ev.Subject.Validate(); err != nil {
			t.Fatalf("accepted invalid subject: %v", err)
		}
		if err := ev.checkMembers(); err != nil {
			t.Fatalf("accepted nonconforming event: %v", err)
		}
		var raw map[string]json.RawMessage
		if json.Unmarshal(payload, &raw) != nil {
			t.Fatal("accepted a payload that is not an object")
		}
		var events map[string]json.RawMessage
		if json.Unmarshal(raw["events"], &events) != nil || len(events) != 1 {
			t.Fatalf("accepted %d events", len(events))
		}
		if _, ok := raw["sub"]; ok {
			t.Fatal("accepted a SET with sub")
		}
	})
}

// FuzzVerifySET feeds arbitrary tokens to the full verifier.
func FuzzVerifySET(f *testing.F) {
	key := newKey(f)
	iss := "https://tr.example"
	for _, typ := range []jose.Typ{jose.TypSecEvent, jose.TypJWT} {
		f.Add(mint(f, key, "k1", typ, validClaims(iss)))
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		v, err := NewVerifier(VerifierConfig{
			Issuer: iss, Audience: testAudience,
			Keys: jose.StaticKeys(map[string]crypto.PublicKey{"k1": key.Public()}),
		})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := v.Verify(context.Background(), token)
		if err != nil {
			if ErrorCode(err) == "" {
				t.Fatalf("error without an RFC 8935 code: %v", err)
			}
			return
		}
		if ev.Issuer != iss || ev.Subject.Validate() != nil {
			t.Fatalf("accepted %+v", ev)
		}
	})
}
