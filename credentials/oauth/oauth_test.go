package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials"
)

func formRequest(method, ctype, body string) *http.Request {
	r := httptest.NewRequest(method, "/token", strings.NewReader(body))
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	return r
}

func TestParseForm(t *testing.T) {
	const ct = "application/x-www-form-urlencoded"
	tests := []struct {
		name     string
		method   string
		ctype    string
		body     string
		wantCode string
		status   int
	}{
		{"ok", "POST", ct, "grant_type=client_credentials&scope=a+b", "", 0},
		{"ok with charset", "POST", ct + "; charset=UTF-8", "grant_type=x", "", 0},
		{"GET", "GET", ct, "grant_type=x", CodeInvalidRequest, 405},
		{"json", "POST", "application/json", `{"grant_type":"x"}`, CodeInvalidRequest, 400},
		{"no content type", "POST", "", "grant_type=x", CodeInvalidRequest, 400},
		{"bad escape", "POST", ct, "grant_type=%zz", CodeInvalidRequest, 400},
		{"too big", "POST", ct, "a=" + strings.Repeat("x", MaxFormBytes), CodeInvalidRequest, 400},
		{"long value", "POST", ct, "a=" + strings.Repeat("x", MaxParamBytes+1), CodeInvalidRequest, 400},
		{"control char", "POST", ct, "a=%00", CodeInvalidRequest, 400},
		{"bad utf8", "POST", ct, "a=%ff%fe", CodeInvalidRequest, 400},
		{"too many params", "POST", ct, strings.Repeat("a=1&", MaxParams) + "b=2", CodeInvalidRequest, 400},
		{"semicolon", "POST", ct, "a=1;b=2", CodeInvalidRequest, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseForm(formRequest(tt.method, tt.ctype, tt.body))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ParseForm: %v", err)
				}
				return
			}
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != tt.wantCode || oe.HTTPStatus() != tt.status {
				t.Fatalf("ParseForm error = %v (status %d), want %s/%d", err, statusOf(err), tt.wantCode, tt.status)
			}
		})
	}
}

func statusOf(err error) int {
	var oe *Error
	if errors.As(err, &oe) {
		return oe.HTTPStatus()
	}
	return 0
}

func TestFormGetRefusesDuplicates(t *testing.T) {
	f, err := ParseEncoded("scope=a&scope=b&resource=https://r1&resource=https://r2&empty=")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("scope"); !errors.Is(err, &Error{Code: CodeInvalidRequest}) {
		t.Fatalf("duplicate scope: %v", err)
	}
	rs, err := f.All("resource")
	if err != nil || len(rs) != 2 {
		t.Fatalf("All(resource) = %v, %v", rs, err)
	}
	if v, err := f.Get("empty"); err != nil || v != "" {
		t.Fatalf("Get(empty) = %q, %v", v, err)
	}
	if _, err := f.Require("empty"); err == nil {
		t.Fatal("Require(empty) succeeded")
	}
	if _, err := f.All("empty"); err == nil {
		t.Fatal("All(empty) succeeded")
	}
	if !f.Has("empty") || f.Has("missing") {
		t.Fatal("Has is wrong")
	}
}

func TestParseScope(t *testing.T) {
	good := map[string][]string{
		"":                nil,
		"a":               {"a"},
		"a b a":           {"a", "b"},
		"read:x write!#$": {"read:x", "write!#$"},
	}
	for in, want := range good {
		got, err := ParseScope(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{" a", "a  b", "a ", "a\"b", `a\b`, "é", "a\tb", strings.Repeat("a ", MaxScopes) + "z"} {
		if _, err := ParseScope(in); !errors.Is(err, &Error{Code: CodeInvalidScope}) {
			t.Errorf("ParseScope(%q) error = %v, want invalid_scope", in, err)
		}
	}
	if !ScopeSubset([]string{"a"}, []string{"a", "b"}) || ScopeSubset([]string{"c"}, []string{"a"}) {
		t.Error("ScopeSubset is wrong")
	}
	if got := ScopeIntersect([]string{"a", "b", "c"}, []string{"c", "a"}); strings.Join(got, " ") != "a c" {
		t.Errorf("ScopeIntersect = %q", got)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, Errorf(CodeInvalidClient, "bad \"quote\" and \x01 control"))
	if rec.Code != 401 || rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	var got map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["error"] != "invalid_client" || got["error_description"] != "bad 'quote' and ? control" {
		t.Fatalf("body %q", rec.Body.String())
	}

	rec = httptest.NewRecorder()
	WriteError(rec, errors.New("database at /var/lib/x is locked"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "/var/lib") {
		t.Fatalf("internal error leaked: %d %s", rec.Code, rec.Body.String())
	}
}

func TestStatusFor(t *testing.T) {
	for code, want := range map[string]int{
		CodeInvalidClient: 401, CodeInvalidToken: 401, CodeInsufficientScope: 403, CodeServerError: 500,
		CodeTemporarilyUnavailable: 503, CodeInvalidGrant: 400, CodeInvalidDPoPProof: 400, CodeUseDPoPNonce: 400,
	} {
		if got := StatusFor(code); got != want {
			t.Errorf("StatusFor(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestAudienceJSON(t *testing.T) {
	var c AccessTokenClaims
	if err := json.Unmarshal([]byte(`{"aud":"https://r"}`), &c); err != nil || len(c.Audience) != 1 {
		t.Fatalf("string aud: %v %v", c.Audience, err)
	}
	if err := json.Unmarshal([]byte(`{"aud":["a","b"]}`), &c); err != nil || len(c.Audience) != 2 {
		t.Fatalf("array aud: %v %v", c.Audience, err)
	}
	if err := json.Unmarshal([]byte(`{"aud":7}`), &c); err == nil {
		t.Fatal("numeric aud accepted")
	}
	one, _ := json.Marshal(Audience{"x"})
	two, _ := json.Marshal(Audience{"x", "y"})
	if string(one) != `"x"` || string(two) != `["x","y"]` {
		t.Fatalf("marshal: %s %s", one, two)
	}
	a := &Actor{Subject: "b", Actor: &Actor{Subject: "a"}}
	if a.Depth() != 2 || (*Actor)(nil).Depth() != 0 {
		t.Fatal("Depth is wrong")
	}
}

func FuzzParseEncoded(f *testing.F) {
	for _, s := range []string{"a=b", "a=1&a=2", "%zz", "scope=a+b&resource=x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		form, err := ParseEncoded(s)
		if err != nil {
			var oe *Error
			if !errors.As(err, &oe) || oe.Code != CodeInvalidRequest {
				t.Fatalf("error is not invalid_request: %v", err)
			}
			return
		}
		for name := range form.Values() {
			_, _ = form.Get(name)
			_, _ = form.All(name)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"a b", "", " ", "a  b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, err := ParseScope(s)
		if err != nil {
			return
		}
		for _, sc := range scopes {
			if !ValidScopeToken(sc) {
				t.Fatalf("invalid token %q accepted", sc)
			}
		}
	})
}

func TestParties(t *testing.T) {
	c := AccessTokenClaims{Subject: "alice", ClientID: "spiffe://td/agent/a",
		Actor: &Actor{Subject: "spiffe://td/agent/a", Actor: &Actor{Subject: "spiffe://td/agent/b"}}}
	got := strings.Join(c.Parties(), " ")
	if got != "alice spiffe://td/agent/a spiffe://td/agent/b" {
		t.Fatalf("Parties() = %s", got)
	}
	if p := (&AccessTokenClaims{Subject: "svc", ClientID: "svc"}).Parties(); len(p) != 1 {
		t.Fatalf("a client's own token: %v", p)
	}
}

func TestAsErrorUnavailable(t *testing.T) {
	err := fmt.Errorf("authserver: token: %w", fmt.Errorf("store: %w", credentials.ErrUnavailable))
	oe := AsError(err)
	if oe.Code != CodeTemporarilyUnavailable || oe.HTTPStatus() != 503 || strings.Contains(oe.Description, "store") {
		t.Fatalf("AsError(unavailable) = %+v", oe)
	}
	if AsError(errors.New("boom")).Code != CodeServerError {
		t.Fatal("another error is not server_error")
	}
}
