package svidtls_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/svidtls"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Example connects an agent of trust domain a.test to a server of the
// federated trust domain b.test over mutual TLS with X509-SVIDs.
func Example() {
	ctx := context.Background()
	caA, err := ca.New(ctx, ca.Config{TrustDomain: "a.test", Journal: &ca.MemoryJournal{}})
	if err != nil {
		panic(err)
	}
	caB, err := ca.New(ctx, ca.Config{TrustDomain: "b.test", Journal: &ca.MemoryJournal{}})
	if err != nil {
		panic(err)
	}
	// Both sides trust both trust domains.
	trusted := x509bundle.NewSet(caA.Bundle().X509Bundle(), caB.Bundle().X509Bundle())
	issueFor := func(c *ca.CA, id string) svidtls.IssueFunc {
		return func(ctx context.Context) (*x509svid.SVID, error) {
			return c.NewX509SVID(ctx, spiffeid.RequireFromString(id))
		}
	}

	// The server of b.test renews its SVID (run Run in the background)
	// and accepts members of a.test.
	serverSVID, err := svidtls.NewRotating(ctx, svidtls.RotatingConfig{Issue: issueFor(caB, "spiffe://b.test/api")})
	if err != nil {
		panic(err)
	}
	serverTLS, err := svidtls.ServerConfig(serverSVID, trusted, svidtls.ServerOptions{
		Authorizer: svidtls.AuthorizeMemberOf(caA.TrustDomain()),
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{
		TLSConfig: serverTLS,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, _ := svidtls.PeerID(r)
			fmt.Fprintf(w, "server sees %s", id)
		}),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	origin := "https://" + ln.Addr().String()

	// The agent's Transport reaches that origin only if it serves
	// spiffe://b.test/api.
	agentSVID, err := svidtls.NewRotating(ctx, svidtls.RotatingConfig{Issue: issueFor(caA, "spiffe://a.test/agent/alpha")})
	if err != nil {
		panic(err)
	}
	tr, err := svidtls.NewTransport(agentSVID, svidtls.TransportConfig{
		Bundles: trusted,
		Origins: map[string]svidtls.Authorizer{
			origin: svidtls.AuthorizeID(spiffeid.RequireFromString("spiffe://b.test/api")),
		},
	})
	if err != nil {
		panic(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(origin + "/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	server, _ := svidtls.PeerIDFromState(resp.TLS)
	fmt.Println(string(body))
	fmt.Println("client sees", server)
	// Output:
	// server sees spiffe://a.test/agent/alpha
	// client sees spiffe://b.test/api
}
