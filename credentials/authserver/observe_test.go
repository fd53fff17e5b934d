package authserver

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestOnTokenRequest: every token endpoint request is reported with its
// grant type and its result: issued, or the OAuth error code sent; a
// grant type the server does not know is reported as empty, so a client
// cannot make up values.
func TestOnTokenRequest(t *testing.T) {
	type report struct{ grant, result string }
	var got []report
	e := newTestEnv(t, func(c *Config) {
		c.OnTokenRequest = func(_ context.Context, grant, result string) {
			got = append(got, report{grant, result})
		}
	})
	tests := []struct {
		name   string
		form   func() url.Values
		status int
		want   report
	}{
		{"issued", func() url.Values {
			return ccAgent(e, url.Values{"resource": {notesURI}, "scope": {"notes:read"}})
		}, http.StatusOK, report{oauth.GrantClientCredentials, TokenIssued}},
		{"unknown resource", func() url.Values {
			return ccAgent(e, url.Values{"resource": {"https://unknown.example/"}})
		}, http.StatusBadRequest, report{oauth.GrantClientCredentials, oauth.CodeInvalidTarget}},
		{"made-up grant", func() url.Values {
			return url.Values{"grant_type": {"urn:x:anything-a-client-likes"}}
		}, http.StatusBadRequest, report{"", oauth.CodeUnsupportedGrantType}},
		{"no grant", func() url.Values { return url.Values{"client_id": {"x"}} },
			http.StatusBadRequest, report{"", oauth.CodeInvalidRequest}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			status, body, _ := e.post(PathToken, tt.form(), nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, body)
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("reported %+v, want [%+v]", got, tt.want)
			}
		})
	}
	if g := TokenGrants(); !slices.Contains(g, oauth.GrantTokenExchange) || len(g) != len(tokenGrants) {
		t.Errorf("TokenGrants() = %v", g)
	}
}
