package authserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// FuzzTokenEndpoint sends arbitrary bodies and headers to the token,
// introspection and revocation endpoints: every answer is a spec-shaped
// JSON error (or success), never a panic or a 500.
func FuzzTokenEndpoint(f *testing.F) {
	seeds := []struct{ path, body, auth, dpop string }{
		{PathToken, "grant_type=client_credentials", "", ""},
		{PathToken, "grant_type=client_credentials&client_id=batch-job&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c", "", ""},
		{PathToken, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x&subject_token_type=y", "Basic Zm9vOmJhcg==", ""},
		{PathToken, "grant_type=refresh_token&refresh_token=x&client_id=c", "", "eyJ.eyJ.sig"},
		{PathToken, "grant_type=authorization_code&code=x&code_verifier=y&redirect_uri=http%3A%2F%2Fx", "", ""},
		{PathIntrospect, "token=x&token_type_hint=refresh_token", "Basic !!", ""},
		{PathRevoke, "token=x", "Bearer y", ""},
		{PathToken, "a=%zz&&==&", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.path, s.body, s.auth, s.dpop)
	}
	e := newTestEnv(f)
	f.Fuzz(func(t *testing.T, path, body, auth, dpop string) {
		switch path {
		case PathToken, PathIntrospect, PathRevoke:
		default:
			path = PathToken
		}
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if dpop != "" {
			r.Header["Dpop"] = []string{dpop}
		}
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code == http.StatusOK && path == PathRevoke {
			return
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("response is not JSON: %q", w.Body.String())
		}
		if w.Code != http.StatusOK {
			code, _ := out["error"].(string)
			if code == "" || oauth.StatusFor(code) == 0 {
				t.Fatalf("error response without a code: %s", w.Body.String())
			}
		}
	})
}
