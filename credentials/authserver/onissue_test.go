package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestOnIssue: every issued access token is reported (claims and grant,
// never the token) before the response; when the report fails, no token
// is handed out.
func TestOnIssue(t *testing.T) {
	var got []Issued
	fail := false
	e := newTestEnv(t, func(c *Config) {
		c.OnIssue = func(_ context.Context, it Issued) error {
			if fail {
				return errors.New("audit log unavailable")
			}
			got = append(got, it)
			return nil
		}
	})
	status, body, _ := e.post(PathToken, ccAgent(e, url.Values{"resource": {notesURI}, "scope": {"notes:read"}}), nil)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	if len(got) != 1 {
		t.Fatalf("%d tokens reported, want 1", len(got))
	}
	c := e.verify(body["access_token"].(string), notesURI)
	if it := got[0]; it.Claims.ID != c.ID || it.Claims.Subject != researchID.String() || it.GrantType != oauth.GrantClientCredentials ||
		it.Claims.Scope != "notes:read" {
		t.Fatalf("reported %+v", it)
	}
	fail = true
	status, body, _ = e.post(PathToken, ccAgent(e, url.Values{"resource": {notesURI}, "scope": {"notes:read"}}), nil)
	if status != http.StatusInternalServerError || body["error"] != oauth.CodeServerError || body["access_token"] != nil {
		t.Fatalf("token while the report fails: %d %v", status, body)
	}
	if d, _ := body["error_description"].(string); strings.Contains(d, "audit") {
		t.Fatalf("internal detail leaked: %q", d)
	}
}
