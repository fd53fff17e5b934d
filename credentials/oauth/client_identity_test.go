package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// formEndpoint is a token endpoint that records the forms it gets and
// answers each with what answer says.
type formEndpoint struct {
	srv *httptest.Server

	mu    sync.Mutex
	forms []url.Values
}

func newFormEndpoint(t *testing.T, answer func(form url.Values) (int, string)) *formEndpoint {
	t.Helper()
	f := &formEndpoint{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		f.mu.Unlock()
		status, body := answer(r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *formEndpoint) metadata(issuerPath string, methods ...string) *oauth.ServerMetadata {
	return &oauth.ServerMetadata{Issuer: f.srv.URL + issuerPath, TokenEndpoint: f.srv.URL + "/token",
		TokenEndpointAuthMethodsSupported: methods}
}

func (f *formEndpoint) got() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms...)
}

const okToken = `{"access_token":"t","token_type":"Bearer","expires_in":600}`

// source is an assertion source that says who made it and for whom.
func source(name string) oauth.AssertionSource {
	return func(_ context.Context, aud string) (string, error) { return name + "@" + aud, nil }
}

// TestClientIdentifyPerServer: with Identify, each authorization server
// gets the client_id, assertion and assertion type resolved for it, asked
// for once per issuer; an identity that leaves the assertion unset falls
// back to the configured one, and one that leaves the type unset gets it
// by the server's metadata.
func TestClientIdentifyPerServer(t *testing.T) {
	f := newFormEndpoint(t, func(url.Values) (int, string) { return http.StatusOK, okToken })
	var mu sync.Mutex
	asked := map[string]int{}
	c, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(_ context.Context, md *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			mu.Lock()
			asked[md.Issuer]++
			mu.Unlock()
			if md.Issuer == f.srv.URL+"/cimd" {
				return &oauth.ClientIdentity{ClientID: "https://host.example/oauth-client/research",
					Assertion: source("pkjwt"), AssertionType: oauth.AssertionJWTBearer}, nil
			}
			return &oauth.ClientIdentity{ClientID: "spiffe://example.org/agent/research"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cimd := f.metadata("/cimd")
	spiffe := f.metadata("/spiffe", oauth.AuthPrivateKeyJWT)
	for _, req := range []oauth.TokenRequest{
		{Server: cimd, Resource: notes},
		{Server: cimd, Resource: notes + "/other"},
		{Server: spiffe, Resource: notes},
	} {
		if _, err := c.Token(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	forms := f.got()
	if len(forms) != 3 {
		t.Fatalf("%d token requests, want 3", len(forms))
	}
	want := []struct{ id, typ, assertion string }{
		{"https://host.example/oauth-client/research", oauth.AssertionJWTBearer, "pkjwt@" + cimd.Issuer},
		{"https://host.example/oauth-client/research", oauth.AssertionJWTBearer, "pkjwt@" + cimd.Issuer},
		{"spiffe://example.org/agent/research", oauth.AssertionJWTBearer, "svid@" + spiffe.Issuer},
	}
	for i, w := range want {
		got := forms[i]
		if got.Get("client_id") != w.id || got.Get("client_assertion_type") != w.typ || got.Get("client_assertion") != w.assertion {
			t.Errorf("request %d: client_id %q, type %q, assertion %q; want %q, %q, %q", i, got.Get("client_id"),
				got.Get("client_assertion_type"), got.Get("client_assertion"), w.id, w.typ, w.assertion)
		}
	}
	if asked[cimd.Issuer] != 1 || asked[spiffe.Issuer] != 1 {
		t.Fatalf("Identify asked %v, want once per issuer", asked)
	}
}

// TestClientIdentifyErrorNotKept: a failed resolution fails the request
// and is asked again by the next one.
func TestClientIdentifyErrorNotKept(t *testing.T) {
	f := newFormEndpoint(t, func(url.Values) (int, string) { return http.StatusOK, okToken })
	calls := 0
	unavailable := errors.New("registration endpoint unavailable")
	c, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			calls++
			if calls == 1 {
				return nil, unavailable
			}
			return &oauth.ClientIdentity{ClientID: "c-1", Assertion: source("pkjwt")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	md := f.metadata("")
	if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: md, Resource: notes}); !errors.Is(err, unavailable) {
		t.Fatalf("first request: %v, want the resolution's error", err)
	}
	if len(f.got()) != 0 {
		t.Fatal("a request was sent without an identity")
	}
	if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: md, Resource: notes}); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || f.got()[0].Get("client_id") != "c-1" {
		t.Fatalf("Identify called %d times; client_id %q", calls, f.got()[0].Get("client_id"))
	}
}

// TestClientActorToken: in a token exchange the actor_token is
// ActorToken's (the workload's own credential) even when the client
// authenticates as another identity; without ActorToken it is the
// configured Assertion's, as before.
func TestClientActorToken(t *testing.T) {
	f := newFormEndpoint(t, func(url.Values) (int, string) { return http.StatusOK, okToken })
	identify := func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
		return &oauth.ClientIdentity{ClientID: "https://host.example/oauth-client/research", Assertion: source("pkjwt"),
			AssertionType: oauth.AssertionJWTBearer}, nil
	}
	for _, tt := range []struct {
		name      string
		cfg       oauth.ClientConfig
		wantActor string
	}{
		{"ActorToken set", oauth.ClientConfig{Assertion: source("svid"), ActorToken: source("actor"), Identify: identify}, "actor@"},
		{"ActorToken nil", oauth.ClientConfig{Assertion: source("svid"), Identify: identify}, "svid@"},
		{"no Identify", oauth.ClientConfig{ClientID: "spiffe://example.org/agent/research", Assertion: source("svid")}, "svid@"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := oauth.NewClient(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			md := f.metadata("/" + strings.ReplaceAll(tt.name, " ", "-"))
			if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: md, Resource: notes, SubjectToken: "user-token"}); err != nil {
				t.Fatal(err)
			}
			forms := f.got()
			got := forms[len(forms)-1]
			if got.Get("actor_token") != tt.wantActor+md.Issuer || got.Get("actor_token_type") != oauth.TokenTypeJWT {
				t.Fatalf("actor_token %q (%s), want %q", got.Get("actor_token"), got.Get("actor_token_type"), tt.wantActor+md.Issuer)
			}
			if tt.cfg.Identify != nil && got.Get("client_assertion") != "pkjwt@"+md.Issuer {
				t.Fatalf("client_assertion %q", got.Get("client_assertion"))
			}
		})
	}
}

// TestClientRejectedIdentity: an invalid_client answer to an identity
// that can be replaced is answered once with the replacement, which is
// kept; a second refusal, or a refusal of an identity that cannot be
// replaced, is the request's error.
func TestClientRejectedIdentity(t *testing.T) {
	var mu sync.Mutex
	known := map[string]bool{"c-2": true, "fixed": false}
	f := newFormEndpoint(t, func(form url.Values) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if !known[form.Get("client_id")] {
			return http.StatusUnauthorized, `{"error":"invalid_client","error_description":"unknown client"}`
		}
		return http.StatusOK, okToken
	})
	registrations := 0
	register := func(context.Context) (*oauth.ClientIdentity, error) {
		registrations++
		id := &oauth.ClientIdentity{ClientID: "c-2", Assertion: source("pkjwt-c-2"), AssertionType: oauth.AssertionJWTBearer}
		return id, nil
	}
	identifies := 0
	c, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			identifies++
			return &oauth.ClientIdentity{ClientID: "c-1", Assertion: source("pkjwt-c-1"), AssertionType: oauth.AssertionJWTBearer,
				Rejected: register}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md := f.metadata("")
	if _, err := c.Token(ctx, oauth.TokenRequest{Server: md, Resource: notes}); err != nil {
		t.Fatal(err)
	}
	forms := f.got()
	if len(forms) != 2 || forms[0].Get("client_id") != "c-1" || forms[1].Get("client_id") != "c-2" ||
		forms[1].Get("client_assertion") != "pkjwt-c-2@"+md.Issuer || registrations != 1 {
		t.Fatalf("requests %v, %d registrations; want c-1 refused, then c-2", forms, registrations)
	}
	// The replacement is kept: the next request goes as c-2 directly.
	if _, err := c.Token(ctx, oauth.TokenRequest{Server: md, Resource: notes + "/other"}); err != nil {
		t.Fatal(err)
	}
	if forms = f.got(); len(forms) != 3 || forms[2].Get("client_id") != "c-2" || identifies != 1 {
		t.Fatalf("after the replacement: %d requests, last as %q, Identify asked %d times", len(forms), forms[len(forms)-1].Get("client_id"), identifies)
	}

	// A replacement refused too: one retry only.
	mu.Lock()
	known["c-2"] = false
	mu.Unlock()
	c2, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			return &oauth.ClientIdentity{ClientID: "c-1", Assertion: source("pkjwt-c-1"), Rejected: register}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.got())
	_, err = c2.Token(ctx, oauth.TokenRequest{Server: md, Resource: notes})
	if !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClient}) {
		t.Fatalf("refused twice: %v, want invalid_client", err)
	}
	if n := len(f.got()) - before; n != 2 {
		t.Fatalf("%d requests for a twice-refused client, want 2", n)
	}

	// An identity without Rejected: the refusal stands.
	c3, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			return &oauth.ClientIdentity{ClientID: "fixed"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	before = len(f.got())
	if _, err := c3.Token(ctx, oauth.TokenRequest{Server: md, Resource: notes}); !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClient}) {
		t.Fatalf("refused static client: %v", err)
	}
	if n := len(f.got()) - before; n != 1 {
		t.Fatalf("%d requests for a client that cannot be replaced, want 1", n)
	}

	// A replacement that cannot be made: the refusal and the reason.
	failed := errors.New("registration refused")
	c4, err := oauth.NewClient(oauth.ClientConfig{
		Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			return &oauth.ClientIdentity{ClientID: "c-1", Rejected: func(context.Context) (*oauth.ClientIdentity, error) { return nil, failed }}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c4.Token(ctx, oauth.TokenRequest{Server: md, Resource: notes})
	if !errors.Is(err, failed) || !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClient}) {
		t.Fatalf("no replacement: %v", err)
	}
}

func TestClientIdentifyConfig(t *testing.T) {
	if _, err := oauth.NewClient(oauth.ClientConfig{Assertion: source("svid")}); err == nil {
		t.Fatal("a client without ClientID or Identify was accepted")
	}
	if _, err := oauth.NewClient(oauth.ClientConfig{ClientID: "c", Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
		return nil, nil
	}}); err == nil {
		t.Fatal("a client without Assertion was accepted")
	}
	f := newFormEndpoint(t, func(url.Values) (int, string) { return http.StatusOK, okToken })
	c, err := oauth.NewClient(oauth.ClientConfig{Assertion: source("svid"),
		Identify: func(context.Context, *oauth.ServerMetadata) (*oauth.ClientIdentity, error) {
			return &oauth.ClientIdentity{}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(context.Background(), oauth.TokenRequest{Server: f.metadata(""), Resource: notes}); err == nil {
		t.Fatal("an identity without client_id was used")
	}
	if len(f.got()) != 0 {
		t.Fatal("a request was sent without a client_id")
	}
}
