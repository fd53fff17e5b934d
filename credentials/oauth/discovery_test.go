package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

func TestMetadataURLs(t *testing.T) {
	for in, want := range map[string]string{
		"https://rs.example.com":            "https://rs.example.com/.well-known/oauth-protected-resource",
		"https://rs.example.com/":           "https://rs.example.com/.well-known/oauth-protected-resource",
		"https://rs.example.com/resource1":  "https://rs.example.com/.well-known/oauth-protected-resource/resource1",
		"https://rs.example.com/public/mcp": "https://rs.example.com/.well-known/oauth-protected-resource/public/mcp",
		"https://rs.example.com/?t=1":       "https://rs.example.com/.well-known/oauth-protected-resource?t=1",
	} {
		got, err := ProtectedResourceMetadataURL(in)
		if err != nil || got != want {
			t.Errorf("%s → %s, %v; want %s", in, got, err, want)
		}
	}
	got, _ := ServerMetadataURLs("https://as.example/tenant1/")
	want := []string{"https://as.example/.well-known/oauth-authorization-server/tenant1",
		"https://as.example/.well-known/openid-configuration/tenant1", "https://as.example/tenant1/.well-known/openid-configuration"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("path issuer: %v", got)
	}
	got, _ = ServerMetadataURLs("https://as.example")
	if len(got) != 2 || got[0] != "https://as.example/.well-known/oauth-authorization-server" {
		t.Errorf("host issuer: %v", got)
	}
	for _, bad := range []string{"/relative", "https://as.example?x=1", "https://as.example#f", ""} {
		if _, err := ServerMetadataURLs(bad); !errors.Is(err, ErrMetadata) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDiscover(t *testing.T) {
	var srv *httptest.Server
	docs := map[string]any{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d)
	}))
	defer srv.Close()
	f := fetch.New(fetch.Config{AllowHTTP: true, AllowPrivate: true})
	ctx := context.Background()
	res := srv.URL + "/mcp"
	docs["/.well-known/oauth-protected-resource/mcp"] = ResourceMetadata{Resource: res, AuthorizationServers: []string{srv.URL + "/t1"}}
	docs["/other-prm"] = ResourceMetadata{Resource: srv.URL + "/elsewhere", AuthorizationServers: []string{srv.URL}}
	// RFC 8414 insertion for issuer /t1 answers for an attacker's issuer;
	// OIDC insertion has the honest document.
	docs["/.well-known/oauth-authorization-server/t1"] = ServerMetadata{Issuer: "https://honest.example", TokenEndpoint: "x"}
	docs["/.well-known/openid-configuration/t1"] = ServerMetadata{Issuer: srv.URL + "/t1", TokenEndpoint: srv.URL + "/t1/token"}

	md, err := DiscoverResource(ctx, f, res, "")
	if err != nil || md.AuthorizationServers[0] != srv.URL+"/t1" {
		t.Fatalf("DiscoverResource: %+v %v", md, err)
	}
	if _, err := DiscoverResource(ctx, f, res, srv.URL+"/other-prm"); !errors.Is(err, ErrMetadata) {
		t.Fatalf("PRM for another resource: %v", err)
	}
	if _, err := DiscoverResource(ctx, f, res+"/", ""); !errors.Is(err, ErrMetadata) {
		t.Fatalf("trailing slash matched: %v", err)
	}
	as, err := DiscoverServer(ctx, f, srv.URL+"/t1")
	if err != nil || as.TokenEndpoint != srv.URL+"/t1/token" {
		t.Fatalf("DiscoverServer: %+v %v", as, err)
	}
	if _, err := DiscoverServer(ctx, f, srv.URL+"/none"); !errors.Is(err, ErrMetadata) {
		t.Fatalf("no metadata: %v", err)
	}
}
