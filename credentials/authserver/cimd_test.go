package authserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestClientIDMetadataDocument: an https client_id is resolved to its
// metadata document and used for the authorization request; a document
// that names another client_id, or a client_id whose document redirects
// elsewhere, is refused with an error page and no redirect.
func TestClientIDMetadataDocument(t *testing.T) {
	var docs *httptest.Server
	docs = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/client.json", "/liar.json":
			id := docs.URL + "/client.json"
			if r.URL.Path == "/liar.json" {
				id = "https://honest.example/client.json"
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"client_id": id, "client_name": "Doc Client", "redirect_uris": []string{"http://127.0.0.1:9/cb"},
				"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"},
			})
		case "/moved.json":
			http.Redirect(w, r, "https://elsewhere.example/client.json", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer docs.Close()
	e := newCodeEnv(t, func(c *Config) {
		c.ClientIDMetadataDocuments = true
		c.AllowPrivateFetch = true // the document server is on loopback
		c.HTTPClient = docs.Client()
	})
	authorize := func(clientID string) (int, string) {
		q := url.Values{
			"client_id": {clientID}, "response_type": {"code"}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "state": {"s"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get(e.issuer + PathAuthorize + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if loc := resp.Header.Get("Location"); loc != "" {
			return resp.StatusCode, "redirect to " + loc
		}
		return resp.StatusCode, string(body)
	}
	status, body := authorize(docs.URL + "/client.json")
	if status != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("document client: %d %.200s", status, body)
	}
	for _, bad := range []string{docs.URL + "/liar.json", docs.URL + "/moved.json", docs.URL + "/missing.json"} {
		status, body := authorize(bad)
		// The page says the document could not be used, not merely that
		// the application is unknown, and keeps the reason to the log.
		if status != 400 || strings.HasPrefix(body, "redirect") ||
			!strings.Contains(body, "client ID metadata document at "+bad+", which this server could not use") ||
			strings.Contains(body, "elsewhere.example") || strings.Contains(body, "404") {
			t.Errorf("%s: %d %.400s", bad, status, body)
		}
	}
	// The page shows the client_id, which the request chose: as text.
	status, body = authorize(docs.URL + `/"><script>alert(1)</script>.json`)
	if status != 400 || strings.Contains(body, "<script>") ||
		!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;.json, which this server could not use") {
		t.Errorf("client_id with markup: %d %.600s", status, body)
	}
}
