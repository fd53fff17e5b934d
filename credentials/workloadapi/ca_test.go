package workloadapi

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
)

// The tests in this file run the server against the real trust-domain CA.

const (
	caSVIDTTL = time.Hour
	caCATTL   = 24 * time.Hour
)

var _ Authority = (*ca.CA)(nil)

func newRealCA(t testing.TB, clock *fakeClock) *ca.CA {
	t.Helper()
	c, err := ca.New(context.Background(), ca.Config{
		TrustDomain: "example.org",
		Journal:     &ca.MemoryJournal{},
		SVIDTTL:     caSVIDTTL,
		CATTL:       caCATTL,
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatalf("ca.New: %v", err)
	}
	return c
}

// federationBundle fetches the bundle the CA serves on its federation
// endpoint (SPECS.md §10.7) and parses it.
func federationBundle(t *testing.T, c *ca.CA) *spiffebundle.Bundle {
	t.Helper()
	hs := httptest.NewServer(c.BundleHandler())
	defer hs.Close()
	resp, err := hs.Client().Get(hs.URL)
	if err != nil {
		t.Fatalf("GET bundle: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := spiffebundle.Parse(c.TrustDomain(), body)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v", err)
	}
	return b
}

func TestWithCA(t *testing.T) {
	clock := newFakeClock()
	authority := newRealCA(t, clock)
	env := newTestEnvWith(t, clock, authority)
	id, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)
	td := authority.TrustDomain()

	// A stock X509Source gets an X.509-SVID that verifies against the
	// bundle the CA publishes.
	src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(path))))
	if err != nil {
		t.Fatalf("NewX509Source: %v", err)
	}
	defer src.Close()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	initial := federationBundle(t, authority)
	gotID, _, err := x509svid.Verify(svid.Certificates, initial, x509svid.WithTime(clock.Now()))
	if err != nil {
		t.Fatalf("x509svid.Verify against the federation bundle: %v", err)
	}
	if gotID != id {
		t.Errorf("verified id = %s, want %s", gotID, id)
	}
	if len(initial.X509Authorities()) != 1 {
		t.Fatalf("initial bundle has %d x509 authorities, want 1", len(initial.X509Authorities()))
	}
	root0 := initial.X509Authorities()[0]

	// JWT-SVIDs: issued over the socket, valid against the published
	// bundle, validated by the server for their audience only.
	client := spiffeClient(t, path)
	jwt, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc"})
	if err != nil {
		t.Fatalf("FetchJWTSVID: %v", err)
	}
	parsed, err := jwtsvid.ParseAndValidate(jwt.Marshal(), initial, []string{"svc"})
	if err != nil {
		t.Fatalf("jwtsvid.ParseAndValidate: %v", err)
	}
	if parsed.ID != id {
		t.Errorf("jwt-svid subject = %s, want %s", parsed.ID, id)
	}
	validated, err := client.ValidateJWTSVID(ctx, jwt.Marshal(), "svc")
	if err != nil {
		t.Fatalf("ValidateJWTSVID: %v", err)
	}
	if validated.ID != id {
		t.Errorf("validated subject = %s, want %s", validated.ID, id)
	}
	_, err = client.ValidateJWTSVID(ctx, jwt.Marshal(), "other")
	assertStatus(t, err, codes.InvalidArgument, "invalid jwt-svid")
	jwtBundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(jwt.Marshal(), jwtBundles, []string{"svc"}); err != nil {
		t.Errorf("ParseAndValidate against the served jwt bundle: %v", err)
	}

	// WIT-SVIDs: the key arrives as a private JWK matching the cnf claim,
	// and the token validates against the served WIT bundle.
	wit, err := client.FetchWITSVID(ctx, "")
	if err != nil {
		t.Fatalf("FetchWITSVID: %v", err)
	}
	if wit.ID != id {
		t.Errorf("wit-svid subject = %s, want %s", wit.ID, id)
	}
	signer, ok := wit.PrivateKey.(crypto.Signer)
	if !ok {
		t.Fatalf("wit-svid key has type %T", wit.PrivateKey)
	}
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(wit.PublicKey) {
		t.Error("wit-svid private key does not match its cnf key")
	}
	witBundles, err := client.FetchWITBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := witsvid.ParseAndValidate(wit.Marshal(), witBundles); err != nil {
		t.Errorf("witsvid.ParseAndValidate: %v", err)
	}

	// Half of the SVID lifetime later a tick rotates the SVID and the same
	// source, on the same connection, sees it.
	clock.Add(caSVIDTTL/2 + time.Minute)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	oldSerial := svid.Certificates[0].SerialNumber
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		return err == nil && cur.Certificates[0].SerialNumber.Cmp(oldSerial) != 0
	}, "the rotated x509-svid arrives")
	svid, err = src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, initial, x509svid.WithTime(clock.Now())); err != nil {
		t.Errorf("rotated svid does not verify: %v", err)
	}

	// Past half of the CA lifetime the CA prepares its next authority and
	// publishes it.
	clock.Add(caCATTL / 2)
	if err := authority.Rotate(ctx); err != nil {
		t.Fatalf("Rotate (prepare): %v", err)
	}
	early := federationBundle(t, authority)
	var root1 *x509.Certificate
	for _, c := range early.X509Authorities() {
		if !c.Equal(root0) {
			root1 = c
		}
	}
	if root1 == nil {
		t.Fatalf("bundle after preparation has %d authorities, none new", len(early.X509Authorities()))
	}

	// Past five sixths of the CA lifetime the next authority signs, and the
	// stream delivers SVIDs chaining to it, which the bundle fetched before
	// the switch already verifies.
	clock.Add(caCATTL/3 + time.Hour)
	if err := authority.Rotate(ctx); err != nil {
		t.Fatalf("Rotate (activate): %v", err)
	}
	onlyRoot1 := x509bundle.FromX509Authorities(td, []*x509.Certificate{root1})
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		if err != nil {
			return false
		}
		_, _, err = x509svid.Verify(cur.Certificates, onlyRoot1, x509svid.WithTime(clock.Now()))
		return err == nil
	}, "an x509-svid chaining to the new authority arrives")
	svid, err = src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, early, x509svid.WithTime(clock.Now())); err != nil {
		t.Errorf("svid of the new authority does not verify against the earlier bundle: %v", err)
	}
	served, err := src.GetX509BundleForTrustDomain(td)
	if err != nil {
		t.Fatal(err)
	}
	if !served.HasX509Authority(root1) {
		t.Error("served bundle lacks the new authority")
	}
}

func TestWithCARefusals(t *testing.T) {
	clock := newFakeClock()
	authority := newRealCA(t, clock)
	env := newTestEnvWith(t, clock, authority)
	uid := os.Getuid()
	idA, pathA := env.add(t, "a", nil)
	_, pathDenied := env.add(t, "denied", func(w *Workload) { w.AllowedUIDs = []int{uid + 1} })
	env.run(t)
	ctx := testCtx(t)
	client := spiffeClient(t, pathA)
	raw := rawClient(t, pathA)

	tests := []struct {
		name    string
		call    func() error
		code    codes.Code
		message string
	}{
		{"no security header", func() error {
			_, err := raw.FetchJWTSVID(ctx, &workloadpb.JWTSVIDRequest{Audience: []string{"svc"}})
			return err
		}, codes.InvalidArgument, "security header missing"},
		{"uid not allowed", func() error {
			_, err := spiffeClient(t, pathDenied).FetchX509SVID(ctx)
			return err
		}, codes.PermissionDenied, "uid " + strconv.Itoa(uid) + " "},
		{"jwt-svid without audience", func() error {
			_, err := client.FetchJWTSVID(ctx, jwtsvid.Params{})
			return err
		}, codes.InvalidArgument, "audience is required"},
		{"validate garbage", func() error {
			_, err := client.ValidateJWTSVID(ctx, "not.a.jwt", "svc")
			return err
		}, codes.InvalidArgument, "invalid jwt-svid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertStatus(t, tt.call(), tt.code, tt.message)
		})
	}

	// The refused workload does not disturb the other one.
	if _, err := client.FetchX509SVID(ctx); err != nil {
		t.Fatalf("FetchX509SVID on the allowed socket: %v", err)
	}

	// Removing a workload ends its streams.
	stream, err := raw.FetchX509SVID(withSecurityHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.RemoveWorkload(ctx, idA); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("stream open after RemoveWorkload")
	}

	// A stale socket is replaced; a regular file is refused and kept.
	td := authority.TrustDomain()
	stale := filepath.Join(env.dir, "stale.sock")
	staleSocket(t, stale)
	if err := env.srv.AddWorkload(ctx, Workload{ID: spiffeid.RequireFromPath(td, "/agent/stale"), SocketPath: stale}); err != nil {
		t.Fatalf("AddWorkload over a stale socket: %v", err)
	}
	if _, err := spiffeClient(t, stale).FetchX509SVID(ctx); err != nil {
		t.Errorf("FetchX509SVID on the replaced socket: %v", err)
	}
	regular := filepath.Join(env.dir, "regular.sock")
	if err := os.WriteFile(regular, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = env.srv.AddWorkload(ctx, Workload{ID: spiffeid.RequireFromPath(td, "/agent/regular"), SocketPath: regular})
	if !errors.Is(err, ErrNotSocket) {
		t.Errorf("AddWorkload over a regular file error = %v, want ErrNotSocket", err)
	}
	if fi, err := os.Lstat(regular); err != nil || fi.Mode().Type()&fs.ModeType != 0 {
		t.Errorf("regular file after refusal: %v, %v", fi, err)
	}
}

func BenchmarkFetchJWTSVID(b *testing.B) {
	benchmarkFetchJWTSVID(b, newRealCA(b, newFakeClock()))
}
