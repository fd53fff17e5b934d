package oauth

import (
	"errors"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	cs, err := ParseChallenges([]string{
		`Bearer resource_metadata="https://rs.example/.well-known/oauth-protected-resource/mcp", scope="notes:read notes:write", error="insufficient_scope", DPoP algs="ES256 PS256"`,
		`Basic realm="x\"y"`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("%d challenges: %+v", len(cs), cs)
	}
	if cs[0].Scheme != "Bearer" || cs[0].Param("resource_metadata") != "https://rs.example/.well-known/oauth-protected-resource/mcp" ||
		cs[0].Param("scope") != "notes:read notes:write" || cs[0].Param("ERROR") != "insufficient_scope" {
		t.Fatalf("bearer %+v", cs[0])
	}
	if cs[1].Scheme != "DPoP" || cs[1].Param("algs") != "ES256 PS256" {
		t.Fatalf("dpop %+v", cs[1])
	}
	if cs[2].Param("realm") != `x"y` {
		t.Fatalf("basic %+v", cs[2])
	}
	if cs, err := ParseChallenges([]string{"Bearer"}); err != nil || len(cs) != 1 || cs[0].Scheme != "Bearer" {
		t.Fatalf("bare scheme: %+v %v", cs, err)
	}
	if cs, err := ParseChallenges([]string{"Bearer realm=example, error=invalid_token"}); err != nil || cs[0].Param("error") != "invalid_token" {
		t.Fatalf("token values: %+v %v", cs, err)
	}
	for _, bad := range []string{`Bearer scope="unterminated`, `Bearer a="1", a="2"`, `Bearer scope="x" junk`, "Bearer a=\"\x01\"", `="x"`} {
		if _, err := ParseChallenges([]string{bad}); !errors.Is(err, ErrMalformedChallenge) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{`Bearer resource_metadata="x", scope="a b"`, `DPoP algs="ES256", Bearer`, `Basic abc==`, `a="\"`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseChallenges([]string{s})
		if err == nil {
			for _, c := range cs {
				if c.Scheme == "" {
					t.Fatal("challenge without scheme")
				}
			}
		}
	})
}

func TestParseChallengesToken68(t *testing.T) {
	cs, err := ParseChallenges([]string{`Negotiate YII=, Bearer scope="a"`, `Basic abc==`})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Param("") != "YII=" || cs[1].Param("scope") != "a" || cs[2].Param("") != "abc==" {
		t.Fatalf("%+v", cs)
	}
}
