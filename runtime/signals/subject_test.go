package signals

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestSubjectValidate(t *testing.T) {
	valid := []string{
		`{"format":"account","uri":"acct:alice@example.com"}`,
		`{"format":"email","email":"alice@example.com"}`,
		`{"format":"iss_sub","iss":"https://idp.example","sub":"145234573"}`,
		`{"format":"opaque","id":"11112222333344445555"}`,
		`{"format":"phone_number","phone_number":"+12065550100"}`,
		`{"format":"did","url":"did:example:123456"}`,
		`{"format":"uri","uri":"https://user.example.com/"}`,
		`{"format":"aliases","identifiers":[{"format":"email","email":"a@example.com"},{"format":"opaque","id":"x"}]}`,
		`{"format":"jwt_id","iss":"https://idp.example","jti":"B70BA622"}`,
		`{"format":"saml_assertion_id","issuer":"https://idp.example","assertion_id":"_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6"}`,
		`{"format":"ip-addresses","ip-addresses":["10.29.37.75","2001:db8::1"]}`,
		`{"format":"complex","user":{"format":"email","email":"a@example.com"},"device":{"format":"opaque","id":"d"},"session":{"format":"opaque","id":"s"},"tenant":{"format":"opaque","id":"t"}}`,
		`{"format":"complex","user":{"format":"email","email":"a@example.com"},"x_extra":{"format":"opaque","id":"ignored unless critical"}}`,
	}
	for _, s := range valid {
		if _, err := parseSubject(json.RawMessage(s), nil); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	invalid := map[string]error{
		`{"format":"x-custom","id":"a"}`:                        ErrUnknownSubjectFormat,
		`{"id":"a"}`:                                            ErrInvalidSubject,
		`{"format":"email","email":"alice"}`:                    ErrInvalidSubject,
		`{"format":"account","uri":"mailto:alice@example.com"}`: ErrInvalidSubject,
		`{"format":"iss_sub","iss":"https://idp.example"}`:      ErrInvalidSubject,
		`{"format":"opaque"}`:                                   ErrInvalidSubject,
		`{"format":"phone_number","phone_number":"2065550100"}`: ErrInvalidSubject,
		`{"format":"did","url":"https://example.com"}`:          ErrInvalidSubject,
		`{"format":"uri","uri":"relative/path"}`:                ErrInvalidSubject,
		`{"format":"aliases","identifiers":[]}`:                 ErrInvalidSubject,
		`{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[{"format":"opaque","id":"x"}]}]}`: ErrInvalidSubject,
		`{"format":"complex"}`: ErrInvalidSubject,
		`{"format":"complex","user":{"format":"complex","user":{"format":"opaque","id":"x"}}}`: ErrInvalidSubject,
		`{"format":"complex","user":{"format":"x-custom"}}`:                                    ErrUnknownSubjectFormat,
		`{"format":"ip-addresses","ip-addresses":["not-an-ip"]}`:                               ErrInvalidSubject,
		`{"format":"opaque","id":"a","id":"b"}`:                                                ErrInvalidSubject,
		`"opaque"`:                                                                             ErrInvalidSubject,
		`{"format":7}`:                                                                         ErrInvalidSubject,
	}
	for s, want := range invalid {
		if _, err := parseSubject(json.RawMessage(s), nil); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", s, err, want)
		}
	}
	crit := `{"format":"complex","user":{"format":"email","email":"a@example.com"},"x_realm":{"format":"opaque","id":"r"}}`
	if _, err := parseSubject(json.RawMessage(crit), []string{"x_realm"}); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("critical member: %v", err)
	}
	if _, err := parseSubject(json.RawMessage(crit), []string{"device"}); err != nil {
		t.Errorf("critical member we understand: %v", err)
	}
}

func TestSubjectMatches(t *testing.T) {
	alice := EmailSubject("alice@example.com")
	dev := OpaqueSubject("dev-1")
	cx := Subject{Format: FormatComplex, User: &alice, Device: &dev}
	tenantOnly := Subject{Format: FormatComplex, Tenant: &Subject{Format: FormatOpaque, ID: "t"}}
	userOnly := Subject{Format: FormatComplex, User: &Subject{Format: FormatEmail, Email: "ALICE@example.com"}}
	otherDev := Subject{Format: FormatComplex, User: &alice, Device: &Subject{Format: FormatOpaque, ID: "dev-2"}}
	aliases := Subject{Format: FormatAliases, Identifiers: []Subject{OpaqueSubject("x"), alice}}
	tests := []struct {
		a, b Subject
		want bool
	}{
		{alice, EmailSubject("Alice@Example.com"), true},
		{alice, EmailSubject("bob@example.com"), false},
		{alice, OpaqueSubject("alice@example.com"), false},
		{cx, alice, true},
		{alice, cx, true},
		{cx, userOnly, true},
		{cx, otherDev, false},
		{cx, tenantOnly, false},
		{aliases, alice, true},
		{cx, aliases, true},
		{IssSubSubject("i", "s"), IssSubSubject("i", "s"), true},
		{IssSubSubject("i", "s"), IssSubSubject("i", "t"), false},
	}
	for i, tt := range tests {
		if got := tt.a.Matches(tt.b); got != tt.want {
			t.Errorf("%d: %s.Matches(%s) = %v, want %v", i, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAudienceJSON(t *testing.T) {
	b, _ := json.Marshal(Audience{"a"})
	if string(b) != `"a"` {
		t.Errorf("one: %s", b)
	}
	b, _ = json.Marshal(Audience{"a", "b"})
	if string(b) != `["a","b"]` {
		t.Errorf("two: %s", b)
	}
	var a Audience
	if err := json.Unmarshal([]byte(`"x"`), &a); err != nil || len(a) != 1 {
		t.Errorf("unmarshal one: %v %v", a, err)
	}
	if err := json.Unmarshal([]byte(`7`), &a); err == nil {
		t.Error("number accepted")
	}
}
