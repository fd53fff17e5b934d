package svidtls_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/svidtls"
)

func TestAuthorizers(t *testing.T) {
	a, b := mustTD(t, "a.test"), mustTD(t, "b.test")
	alpha := mustID(t, "spiffe://a.test/agent/alpha")
	for _, tt := range []struct {
		name   string
		authz  svidtls.Authorizer
		accept []string
		refuse []string
	}{
		{
			name:   "any",
			authz:  svidtls.AuthorizeAny(),
			accept: []string{"spiffe://a.test/x", "spiffe://c.test"},
		},
		{
			name:   "member of two domains",
			authz:  svidtls.AuthorizeMemberOf(a, b),
			accept: []string{"spiffe://a.test/x", "spiffe://b.test/y/z", "spiffe://b.test"},
			refuse: []string{"spiffe://c.test/x", "spiffe://a.test.evil/x", "spiffe://xa.test/x"},
		},
		{
			name:   "member of nothing",
			authz:  svidtls.AuthorizeMemberOf(),
			refuse: []string{"spiffe://a.test/x"},
		},
		{
			name:   "exact ID",
			authz:  svidtls.AuthorizeID(alpha),
			accept: []string{"spiffe://a.test/agent/alpha"},
			refuse: []string{"spiffe://a.test/agent/alpha2", "spiffe://a.test/agent", "spiffe://a.test/agent/alpha/x", "spiffe://b.test/agent/alpha", "spiffe://a.test/agent/Alpha"},
		},
		{
			name:   "no ID",
			authz:  svidtls.AuthorizeID(),
			refuse: []string{"spiffe://a.test/agent/alpha"},
		},
		{
			name: "identities",
			authz: svidtls.AuthorizeIdentity(
				credentials.MustParseIdentity("spiffe://a.test/agent/alpha"),
				credentials.MustParseIdentity("wimse://b.test/agent/beta"),
			),
			accept: []string{"spiffe://a.test/agent/alpha"},
			refuse: []string{"spiffe://b.test/agent/beta", "spiffe://a.test/agent/beta"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range tt.accept {
				if err := tt.authz(mustID(t, s), nil); err != nil {
					t.Errorf("%s refused: %v", s, err)
				}
			}
			for _, s := range tt.refuse {
				if err := tt.authz(mustID(t, s), nil); err == nil {
					t.Errorf("%s accepted", s)
				}
			}
		})
	}
}

func TestPeerIdentity(t *testing.T) {
	clock := newFakeClock()
	caA, caB := newCA(t, "a.test", clock), newCA(t, "b.test", clock)
	set := bundles(caA, caB)
	cfg, err := svidtls.ServerConfig(issue(t, caB, "spiffe://b.test/api"), set, svidtls.ServerOptions{
		ClientCerts: svidtls.OptionalClientSVID,
		Authorizer:  svidtls.AuthorizeAny(),
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := svidtls.PeerIdentity(r)
		if !ok {
			_, _ = w.Write([]byte("none"))
			return
		}
		if !id.MemberOf("a.test") {
			t.Errorf("identity %s not a member of a.test", id)
		}
		_, _ = w.Write([]byte(id.String()))
	}))
	tr, err := svidtls.NewTransport(issue(t, caA, "spiffe://a.test/agent/alpha"), svidtls.TransportConfig{
		Bundles: set,
		Origins: map[string]svidtls.Authorizer{srv.URL: svidtls.AuthorizeAny()},
		Now:     clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, body, err := get(t, &http.Client{Transport: tr}, srv.URL); err != nil || body != "spiffe://a.test/agent/alpha" {
		t.Errorf("PeerIdentity = %q, %v", body, err)
	}
	if _, ok := svidtls.PeerIdentity(&http.Request{}); ok {
		t.Error("PeerIdentity of a request without TLS reported an identity")
	}
}

func TestParseAuthorizer(t *testing.T) {
	a := spiffeid.RequireFromString("spiffe://a.test/host")
	b := spiffeid.RequireFromString("spiffe://b.test/agent/x")
	c := spiffeid.RequireFromString("spiffe://c.test/host")
	auth, err := svidtls.ParseAuthorizer([]string{"spiffe://a.test/host", "spiffe://b.test"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[spiffeid.ID]bool{a: true, b: true, c: false,
		spiffeid.RequireFromString("spiffe://a.test/other"): false} {
		if got := auth(id, nil) == nil; got != want {
			t.Errorf("%s authorized = %v, want %v", id, got, want)
		}
	}
	for _, bad := range [][]string{nil, {"https://a.test"}, {"spiffe://A.test"}, {"spiffe://"}} {
		if _, err := svidtls.ParseAuthorizer(bad); !errors.Is(err, svidtls.ErrConfig) {
			t.Errorf("svidtls.ParseAuthorizer(%q) = %v, want svidtls.ErrConfig", bad, err)
		}
	}
	tdAuth, err := svidtls.AuthorizeTrustDomains("b.test")
	if err != nil || tdAuth(b, nil) != nil || tdAuth(c, nil) == nil {
		t.Errorf("AuthorizeTrustDomains: %v", err)
	}
	if _, err := svidtls.AuthorizeTrustDomains("B.test"); !errors.Is(err, svidtls.ErrConfig) {
		t.Errorf("svidtls.AuthorizeTrustDomains(B.test) = %v", err)
	}
}
