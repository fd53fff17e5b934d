package authserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/oauth"
)

// TestMutualTLSClientAuthentication: an agent authenticates with its
// X.509-SVID (RFC 8705 tls_client_auth); the token is bound to the
// certificate (cnf x5t#S256). Certificates from another trust domain, or
// naming another agent, are refused.
func TestMutualTLSClientAuthentication(t *testing.T) {
	e := newTestEnv(t)
	// A second server on TLS, sharing the first one's CA and store.
	ts := httptest.NewUnstartedServer(nil)
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	defer ts.Close()
	srv, err := New(e.ctx, Config{
		Issuer: ts.URL, Store: NewMemoryStore(e.clock.Now), TrustDomain: testTD, SVIDs: e.ca,
		Agents:                       e.srv.cfg.Agents,
		Resources:                    e.srv.cfg.Resources,
		ClientCertificateAuthorities: func() []*x509.Certificate { return e.ca.Bundle().X509Authorities() },
		Now:                          e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()

	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	client := func(a *ca.CA, id spiffeid.ID) *http.Client {
		svid, err := a.NewX509SVID(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var chain [][]byte
		for _, c := range svid.Certificates {
			chain = append(chain, c.Raw)
		}
		cert := tls.Certificate{Certificate: chain, PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	}
	post := func(c *http.Client, clientID string) (int, map[string]any) {
		form := url.Values{"grant_type": {oauth.GrantClientCredentials}, "client_id": {clientID}, "resource": {notesURI}}
		resp, err := c.Post(ts.URL+PathToken, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	status, body := post(client(e.ca, researchID), researchID.String())
	if status != 200 {
		t.Fatalf("mTLS: %d %v", status, body)
	}
	claims, err := srv.VerifyAccessToken(e.ctx, body["access_token"].(string), notesURI)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != researchID.String() || claims.Confirmation == nil || claims.Confirmation.X5TS256 == "" {
		t.Fatalf("claims %+v", claims)
	}

	if status, body = post(client(e.ca, researchID), paymentsID.String()); status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("certificate naming another agent: %d %v", status, body)
	}
	other, err := ca.New(e.ctx, ca.Config{TrustDomain: "spiffe://" + testTD, Journal: &ca.MemoryJournal{}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if status, body = post(client(other, researchID), researchID.String()); status != 401 || body["error"] != "invalid_client" {
		t.Fatalf("certificate from another CA: %d %v", status, body)
	}
	// Metadata advertises certificate authentication only here.
	if !contains(srv.Metadata().TokenEndpointAuthMethodsSupported, oauth.AuthTLSClient) ||
		contains(e.srv.Metadata().TokenEndpointAuthMethodsSupported, oauth.AuthTLSClient) {
		t.Fatal("tls_client_auth advertised wrongly")
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
