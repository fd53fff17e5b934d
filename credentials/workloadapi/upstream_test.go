package workloadapi

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/exp/bundle/witbundle"
	"github.com/spiffe/go-spiffe/v2/exp/svid/witsvid"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The tests in this file stand the package's own Server, backed by a real
// trust-domain CA, in for a SPIRE agent: one socket carries the host's ID
// and two agents' IDs, as the host's registration entries would. An
// Upstream connects to it, and a second Server, backed by the Upstream,
// serves an agent's socket the way the host serves its plugins.

const spireTD = "spire.test"

var _ Authority = (*Upstream)(nil)

// pastClock returns a fake clock set 40 minutes in the past. go-spiffe's
// JWT- and WIT-SVID parsers check iat and exp against the system clock;
// starting in the past lets a test move the clock past half an SVID
// lifetime without making the tokens issued then look issued in the
// future.
func pastClock() *fakeClock {
	c := newFakeClock()
	c.Add(-40 * time.Minute)
	return c
}

func newCAFor(t testing.TB, td string, clock *fakeClock) *ca.CA {
	t.Helper()
	c, err := ca.New(context.Background(), ca.Config{
		TrustDomain: td,
		Journal:     &ca.MemoryJournal{},
		SVIDTTL:     caSVIDTTL,
		CATTL:       caCATTL,
		Now:         clock.Now,
	})
	if err != nil {
		t.Fatalf("ca.New(%s): %v", td, err)
	}
	return c
}

// federatingCA is a CA that also hands out the bundles of federated trust
// domains, as a SPIRE server federating with them does.
type federatingCA struct {
	*ca.CA
	mu        sync.Mutex
	federated map[spiffeid.TrustDomain]*spiffebundle.Bundle
}

func (f *federatingCA) FederatedBundles() map[spiffeid.TrustDomain]*spiffebundle.Bundle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.federated)
}

var _ FederatingAuthority = (*federatingCA)(nil)

// standin is the stand-in for a SPIRE agent.
type standin struct {
	env    *testEnv
	auth   *federatingCA
	socket string
	host   spiffeid.ID
	agentA spiffeid.ID
	agentB spiffeid.ID
	stop   func() error
}

func newStandin(t *testing.T, clock *fakeClock, auth *federatingCA, socket string) *standin {
	t.Helper()
	td := auth.TrustDomain()
	s := &standin{
		env:    newTestEnvWith(t, clock, auth),
		auth:   auth,
		host:   spiffeid.RequireFromPath(td, "/host"),
		agentA: spiffeid.RequireFromPath(td, "/agent/a"),
		agentB: spiffeid.RequireFromPath(td, "/agent/b"),
	}
	s.socket = socket
	if s.socket == "" {
		s.socket = filepath.Join(s.env.dir, "spire-agent.sock")
	}
	err := s.env.srv.AddWorkload(context.Background(), Workload{
		ID:         s.host,
		ExtraIDs:   []spiffeid.ID{s.agentA, s.agentB},
		SocketPath: s.socket,
	})
	if err != nil {
		t.Fatalf("AddWorkload: %v", err)
	}
	s.stop = s.env.run(t)
	return s
}

func startUpstream(t *testing.T, addr string, clock *fakeClock) *Upstream {
	t.Helper()
	up, err := NewUpstream(UpstreamConfig{Addr: addr, Now: clock.Now})
	if err != nil {
		t.Fatalf("NewUpstream: %v", err)
	}
	t.Cleanup(func() {
		if err := up.Close(); err != nil {
			t.Errorf("Upstream.Close: %v", err)
		}
	})
	if err := up.Start(testCtx(t)); err != nil {
		t.Fatalf("Upstream.Start: %v", err)
	}
	return up
}

func serialOf(t *testing.T, up *Upstream, id spiffeid.ID) *big.Int {
	t.Helper()
	svid, err := up.NewX509SVID(context.Background(), id)
	if err != nil {
		t.Fatalf("NewX509SVID(%s): %v", id, err)
	}
	return svid.Certificates[0].SerialNumber
}

func TestUpstreamChain(t *testing.T) {
	clock := pastClock()
	ctx := testCtx(t)
	partner := newCAFor(t, "partner.test", clock)
	auth := &federatingCA{
		CA:        newCAFor(t, spireTD, clock),
		federated: map[spiffeid.TrustDomain]*spiffebundle.Bundle{partner.TrustDomain(): partner.Bundle()},
	}
	spire := newStandin(t, clock, auth, "")
	up := startUpstream(t, socketAddr(spire.socket), clock)
	all := []spiffeid.ID{spire.host, spire.agentA, spire.agentB}

	// The upstream hands out an X.509-SVID for each of the host's
	// registration entries, in one trust domain, verifiable against the
	// CA's bundle.
	if got := up.TrustDomain(); got != auth.TrustDomain() {
		t.Fatalf("TrustDomain = %s, want %s", got, auth.TrustDomain())
	}
	if got := up.IDs(); !slices.Equal(got, all) {
		t.Fatalf("IDs = %v, want %v", got, all)
	}
	for _, id := range all {
		svid, err := up.NewX509SVID(ctx, id)
		if err != nil {
			t.Fatalf("NewX509SVID(%s): %v", id, err)
		}
		got, _, err := x509svid.Verify(svid.Certificates, auth.Bundle(), x509svid.WithTime(clock.Now()))
		if err != nil || got != id {
			t.Errorf("x509-svid of %s verifies as %s, %v", id, got, err)
		}
		svid.Certificates[0] = nil // a copy: the upstream's is untouched
	}
	if _, err := up.NewX509SVID(ctx, spire.agentA); err != nil {
		t.Fatalf("NewX509SVID after modifying a copy: %v", err)
	}

	// An ID without a registration entry is refused, by name.
	unknown := spiffeid.RequireFromPath(auth.TrustDomain(), "/agent/unknown")
	_, err := up.NewX509SVID(ctx, unknown)
	if !errors.Is(err, ErrNoRegistrationEntry) || !strings.Contains(err.Error(), unknown.String()) {
		t.Errorf("NewX509SVID(unknown) error = %v, want ErrNoRegistrationEntry naming %s", err, unknown)
	}
	_, _, err = up.NewJWTSVID(ctx, unknown, []string{"svc"})
	if !errors.Is(err, ErrNoRegistrationEntry) || !strings.Contains(err.Error(), unknown.String()) {
		t.Errorf("NewJWTSVID(unknown) error = %v, want ErrNoRegistrationEntry naming %s", err, unknown)
	}
	_, _, _, err = up.NewWITSVID(ctx, unknown)
	if !errors.Is(err, ErrNoRegistrationEntry) || !strings.Contains(err.Error(), unknown.String()) {
		t.Errorf("NewWITSVID(unknown) error = %v, want ErrNoRegistrationEntry naming %s", err, unknown)
	}

	// A JWT-SVID of an agent, fetched with its spiffe_id, validates
	// locally and with the CA.
	token, exp, err := up.NewJWTSVID(ctx, spire.agentA, []string{"svc"})
	if err != nil {
		t.Fatalf("NewJWTSVID: %v", err)
	}
	if !exp.After(clock.Now()) {
		t.Errorf("jwt-svid expiry %s is not after now %s", exp, clock.Now())
	}
	id, claims, err := up.ValidateJWTSVID(ctx, token, "svc")
	if err != nil || id != spire.agentA || claims["sub"] != spire.agentA.String() {
		t.Fatalf("Upstream.ValidateJWTSVID = %s, %v, %v; want %s", id, claims, err, spire.agentA)
	}
	if id, _, err := auth.ValidateJWTSVID(ctx, token, "svc"); err != nil || id != spire.agentA {
		t.Fatalf("ca.ValidateJWTSVID = %s, %v; want %s", id, err, spire.agentA)
	}
	if _, _, err := up.ValidateJWTSVID(ctx, token, "other"); !errors.Is(err, ErrInvalidJWTSVID) {
		t.Errorf("ValidateJWTSVID for another audience error = %v, want ErrInvalidJWTSVID", err)
	}

	// The bundle is the CA's; the partner's arrives as a federated bundle.
	want := auth.Bundle()
	got := up.Bundle()
	if !got.X509Bundle().Equal(want.X509Bundle()) || !got.JWTBundle().Equal(want.JWTBundle()) || !got.WITBundle().Equal(want.WITBundle()) {
		t.Error("upstream bundle differs from the CA's")
	}
	fed := up.FederatedBundles()
	if len(fed) != 1 || !fed[partner.TrustDomain()].X509Bundle().Equal(partner.Bundle().X509Bundle()) ||
		!fed[partner.TrustDomain()].JWTBundle().Equal(partner.Bundle().JWTBundle()) {
		t.Errorf("federated bundles = %v, want the partner's", fed)
	}

	// WIT-SVIDs of the agents, with their keys.
	witToken, witKey, _, err := up.NewWITSVID(ctx, spire.agentA)
	if err != nil {
		t.Fatalf("NewWITSVID: %v", err)
	}
	wit, err := witsvid.ParseAndValidate(witToken, witbundle.FromWITAuthorities(auth.TrustDomain(), want.WITAuthorities()))
	if err != nil || wit.ID != spire.agentA {
		t.Fatalf("wit-svid validates as %v, %v; want %s", wit, err, spire.agentA)
	}
	if pub, ok := witKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(wit.PublicKey) {
		t.Error("wit-svid key does not match its cnf key")
	}

	// The host's own server, backed by the upstream, serves the agent's
	// socket to a stock go-spiffe client: the SVID is the one the upstream
	// handed out, not a new one.
	host := newTestEnvWith(t, clock, up)
	pluginSock := filepath.Join(host.dir, "agent-a.sock")
	if err := host.srv.AddWorkload(ctx, Workload{ID: spire.agentA, SocketPath: pluginSock}); err != nil {
		t.Fatalf("AddWorkload on the upstream-backed server: %v", err)
	}
	host.run(t)
	src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(pluginSock))))
	if err != nil {
		t.Fatalf("NewX509Source: %v", err)
	}
	defer src.Close()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != spire.agentA || svid.Certificates[0].SerialNumber.Cmp(serialOf(t, up, spire.agentA)) != 0 {
		t.Fatalf("plugin x509-svid = %s serial %s, want the upstream's for %s", svid.ID, svid.Certificates[0].SerialNumber, spire.agentA)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, auth.Bundle(), x509svid.WithTime(clock.Now())); err != nil {
		t.Errorf("plugin x509-svid does not verify against the CA: %v", err)
	}
	partnerBundle, err := src.GetX509BundleForTrustDomain(partner.TrustDomain())
	if err != nil || !partnerBundle.Equal(partner.Bundle().X509Bundle()) {
		t.Errorf("plugin's federated x509 bundle = %v, %v; want the partner's", partnerBundle, err)
	}

	client := spiffeClient(t, pluginSock)
	jwt, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc"})
	if err != nil {
		t.Fatalf("plugin FetchJWTSVID: %v", err)
	}
	if jwt.ID != spire.agentA {
		t.Errorf("plugin jwt-svid subject = %s, want %s", jwt.ID, spire.agentA)
	}
	if id, _, err := auth.ValidateJWTSVID(ctx, jwt.Marshal(), "svc"); err != nil || id != spire.agentA {
		t.Errorf("ca.ValidateJWTSVID of the plugin's jwt-svid = %s, %v", id, err)
	}
	if v, err := client.ValidateJWTSVID(ctx, jwt.Marshal(), "svc"); err != nil || v.ID != spire.agentA {
		t.Errorf("plugin ValidateJWTSVID = %v, %v", v, err)
	}
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc", Subject: spire.agentB})
	assertStatus(t, err, codes.PermissionDenied, "not "+spire.agentB.String())
	jwtBundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := jwtBundles.Get(partner.TrustDomain()); !ok || !b.Equal(partner.Bundle().JWTBundle()) {
		t.Error("plugin's jwt bundles lack the partner's")
	}

	witSrc, err := spiffewl.NewWITSource(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(pluginSock))))
	if err != nil {
		t.Fatalf("NewWITSource: %v", err)
	}
	defer witSrc.Close()
	pluginWIT, err := witSrc.GetWITSVIDForID(spire.agentA)
	if err != nil {
		t.Fatal(err)
	}
	if pluginWIT.Marshal() != witToken {
		t.Error("plugin wit-svid is not the one the upstream handed out")
	}
	if _, err := witsvid.ParseAndValidate(pluginWIT.Marshal(), witSrc); err != nil {
		t.Errorf("plugin wit-svid does not validate against the plugin's wit bundle: %v", err)
	}

	// Past half the SVID lifetime the host's server has nothing new to
	// relay until the upstream rotates; then the rotation reaches the
	// upstream's subscribers and, through the host's server, the plugin.
	notify, unsubscribe := up.Subscribe()
	defer unsubscribe()
	oldSerial := svid.Certificates[0].SerialNumber
	clock.Add(caSVIDTTL/2 + time.Minute)
	if err := host.srv.Tick(ctx); err != nil {
		t.Fatalf("host Tick: %v", err)
	}
	if got := host.events.count(KindX509SVID); got != 1 {
		t.Errorf("host x509 issue events before the upstream rotates = %d, want 1", got)
	}
	if err := spire.env.srv.Tick(ctx); err != nil {
		t.Fatalf("stand-in Tick: %v", err)
	}
	waitUntil(t, notify, func() bool { return serialOf(t, up, spire.agentA).Cmp(oldSerial) != 0 }, "the upstream has a new x509-svid")
	newSerial := serialOf(t, up, spire.agentA)
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		return err == nil && cur.Certificates[0].SerialNumber.Cmp(newSerial) == 0
	}, "the plugin gets the rotated x509-svid")
	waitUntil(t, witSrc.Updated(), func() bool {
		cur, err := witSrc.GetWITSVIDForID(spire.agentA)
		return err == nil && cur.Marshal() != witToken
	}, "the plugin gets the rotated wit-svid")
	if got := host.events.count(KindX509SVID); got != 2 {
		t.Errorf("host x509 issue events after the upstream rotated = %d, want 2", got)
	}

	// The upstream goes away: the last snapshot stays in use. It comes
	// back (new SVIDs on the same socket) and go-spiffe's client
	// reconnects.
	if err := spire.stop(); err != nil {
		t.Fatalf("stop stand-in: %v", err)
	}
	if _, err := up.NewX509SVID(ctx, spire.agentA); err != nil {
		t.Fatalf("NewX509SVID while the upstream is away: %v", err)
	}
	newStandin(t, clock, auth, spire.socket)
	waitUntil(t, notify, func() bool { return serialOf(t, up, spire.agentA).Cmp(newSerial) != 0 }, "the reconnected upstream's x509-svid arrives")
	reconnected := serialOf(t, up, spire.agentA)
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		return err == nil && cur.Certificates[0].SerialNumber.Cmp(reconnected) == 0
	}, "the plugin gets the reconnected upstream's x509-svid")
}

func TestUpstreamStartFailsWithoutUpstream(t *testing.T) {
	addr := socketAddr(filepath.Join(privateDir(t), "absent.sock"))
	const timeout = 200 * time.Millisecond
	up, err := NewUpstream(UpstreamConfig{Addr: addr, StartTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Start(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Start did not return")
	}
	want := "workloadapi: upstream " + addr + ": no X.509-SVID within 200ms: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Start error = %v, want one starting %q", err, want)
	}
	if status.Code(errors.Unwrap(err)) != codes.Unavailable {
		t.Errorf("Start error cause = %v, want the upstream's Unavailable", errors.Unwrap(err))
	}
	if _, err := up.NewX509SVID(context.Background(), spiffeid.RequireFromString("spiffe://"+spireTD+"/host")); !errors.Is(err, ErrUpstreamClosed) {
		t.Errorf("NewX509SVID after a failed start error = %v, want ErrUpstreamClosed", err)
	}
	if err := up.Start(context.Background()); !errors.Is(err, ErrUpstreamClosed) {
		t.Errorf("second Start error = %v, want ErrUpstreamClosed", err)
	}
}

func TestUpstreamCloseEndsStart(t *testing.T) {
	addr := socketAddr(filepath.Join(privateDir(t), "absent.sock"))
	up, err := NewUpstream(UpstreamConfig{Addr: addr, StartTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Start(context.Background()) }()
	if err := up.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrUpstreamClosed) {
			t.Fatalf("Start error = %v, want ErrUpstreamClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Start did not return after Close")
	}
}

func TestNewUpstreamRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  UpstreamConfig
	}{
		{"no address", UpstreamConfig{}},
		{"http scheme", UpstreamConfig{Addr: "http://127.0.0.1:8081"}},
		{"tcp host name", UpstreamConfig{Addr: "tcp://localhost:8081"}},
		{"unix without path", UpstreamConfig{Addr: "unix://"}},
		{"negative timeout", UpstreamConfig{Addr: "unix:///tmp/agent.sock", StartTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewUpstream(tt.cfg); err == nil {
				t.Fatal("NewUpstream succeeded, want an error")
			}
		})
	}
	up, err := NewUpstream(UpstreamConfig{Addr: "tcp://127.0.0.1:8081"})
	if err != nil {
		t.Fatalf("NewUpstream with a tcp address: %v", err)
	}
	if _, err := up.NewX509SVID(context.Background(), spiffeid.RequireFromString("spiffe://"+spireTD+"/host")); !errors.Is(err, ErrUpstreamNotReady) {
		t.Errorf("NewX509SVID before Start error = %v, want ErrUpstreamNotReady", err)
	}
	if b := up.Bundle(); b != nil {
		t.Errorf("Bundle before Start = %v, want nil", b)
	}
}

// staticUpstream is a Workload API that implements the X.509-SVID and
// JWT bundle profiles only and sends one fixed snapshot on each stream;
// the WIT-SVID profile answers Unimplemented.
type staticUpstream struct {
	workloadpb.UnimplementedSpiffeWorkloadAPIServer
	x509 *workloadpb.X509SVIDResponse
	jwt  *workloadpb.JWTBundlesResponse
}

func (s *staticUpstream) FetchX509SVID(_ *workloadpb.X509SVIDRequest, ss grpc.ServerStreamingServer[workloadpb.X509SVIDResponse]) error {
	if err := ss.Send(s.x509); err != nil {
		return err
	}
	<-ss.Context().Done()
	return status.FromContextError(ss.Context().Err()).Err()
}

func (s *staticUpstream) FetchJWTBundles(_ *workloadpb.JWTBundlesRequest, ss grpc.ServerStreamingServer[workloadpb.JWTBundlesResponse]) error {
	if err := ss.Send(s.jwt); err != nil {
		return err
	}
	<-ss.Context().Done()
	return status.FromContextError(ss.Context().Err()).Err()
}

// serveStatic serves s on a fresh unix socket until the test ends and
// returns its address.
func serveStatic(t *testing.T, s *staticUpstream) string {
	t.Helper()
	path := filepath.Join(privateDir(t), "static.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	workloadpb.RegisterSpiffeWorkloadAPIServer(gs, s)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return socketAddr(path)
}

// x509Response builds an X509SVIDResponse with an SVID from c for each
// path.
func x509Response(t *testing.T, c *ca.CA, paths ...string) *workloadpb.X509SVIDResponse {
	t.Helper()
	resp := &workloadpb.X509SVIDResponse{}
	for _, p := range paths {
		svid, err := c.NewX509SVID(context.Background(), spiffeid.RequireFromPath(c.TrustDomain(), p))
		if err != nil {
			t.Fatal(err)
		}
		certDER, keyDER, err := svid.MarshalRaw()
		if err != nil {
			t.Fatal(err)
		}
		resp.Svids = append(resp.Svids, &workloadpb.X509SVID{
			SpiffeId:    svid.ID.String(),
			X509Svid:    certDER,
			X509SvidKey: keyDER,
			Bundle:      concatDER(c.Bundle().X509Authorities()),
		})
	}
	return resp
}

func jwtBundlesResponse(t *testing.T, td spiffeid.TrustDomain, keys map[string]crypto.PublicKey) *workloadpb.JWTBundlesResponse {
	t.Helper()
	jwks, err := jwtbundle.FromJWTAuthorities(td, keys).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &workloadpb.JWTBundlesResponse{Bundles: map[string][]byte{td.IDString(): jwks}}
}

func TestUpstreamWithoutWIT(t *testing.T) {
	clock := newFakeClock()
	c := newCAFor(t, spireTD, clock)
	addr := serveStatic(t, &staticUpstream{
		x509: x509Response(t, c, "/host", "/agent/a"),
		jwt:  jwtBundlesResponse(t, c.TrustDomain(), c.Bundle().JWTAuthorities()),
	})
	up := startUpstream(t, addr, clock)
	agentA := spiffeid.RequireFromPath(c.TrustDomain(), "/agent/a")
	if _, err := up.NewX509SVID(context.Background(), agentA); err != nil {
		t.Fatalf("NewX509SVID: %v", err)
	}
	_, _, _, err := up.NewWITSVID(context.Background(), agentA)
	if !errors.Is(err, ErrUpstreamNoWIT) || !strings.Contains(err.Error(), "Unimplemented") || !strings.Contains(err.Error(), addr) {
		t.Errorf("NewWITSVID error = %v, want ErrUpstreamNoWIT naming the upstream and Unimplemented", err)
	}
	if n := len(up.Bundle().WITAuthorities()); n != 0 {
		t.Errorf("bundle has %d wit authorities, want none", n)
	}

	// A plugin of a host behind such an upstream gets X.509-SVIDs, and
	// Unavailable for WIT-SVIDs.
	host := newTestEnvWith(t, clock, up)
	path := filepath.Join(host.dir, "a.sock")
	if err := host.srv.AddWorkload(context.Background(), Workload{ID: agentA, SocketPath: path}); err != nil {
		t.Fatal(err)
	}
	host.run(t)
	client := spiffeClient(t, path)
	ctx := testCtx(t)
	if svid, err := client.FetchX509SVID(ctx); err != nil || svid.ID != agentA {
		t.Errorf("plugin FetchX509SVID = %v, %v", svid, err)
	}
	_, err = client.FetchWITSVID(ctx, "")
	assertStatus(t, err, codes.Unavailable, "could not issue a wit-svid")
}

func TestUpstreamRefusesSVIDsOfSeveralTrustDomains(t *testing.T) {
	clock := newFakeClock()
	c := newCAFor(t, spireTD, clock)
	other := newCAFor(t, "other.test", clock)
	resp := x509Response(t, c, "/host")
	resp.Svids = append(resp.Svids, x509Response(t, other, "/agent/a").Svids...)
	addr := serveStatic(t, &staticUpstream{x509: resp, jwt: jwtBundlesResponse(t, c.TrustDomain(), c.Bundle().JWTAuthorities())})
	up, err := NewUpstream(UpstreamConfig{Addr: addr, StartTimeout: 200 * time.Millisecond, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	err = up.Start(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "span trust domains spire.test and other.test") {
		t.Fatalf("Start error = %v, want one about the trust domains", err)
	}
}

// signJWT builds a compact JWS with an ES256 signature over a raw header.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, header string, claims map[string]any) string {
	t.Helper()
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestUpstreamValidateJWTSVID checks that the upstream's local validation
// is the CA's: header parameters, trust domain, audience and times against
// the configured clock, with no leeway.
func TestUpstreamValidateJWTSVID(t *testing.T) {
	clock := newFakeClock()
	c := newCAFor(t, spireTD, clock)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveStatic(t, &staticUpstream{
		x509: x509Response(t, c, "/host"),
		jwt:  jwtBundlesResponse(t, c.TrustDomain(), map[string]crypto.PublicKey{"k1": key.Public()}),
	})
	up := startUpstream(t, addr, clock)
	sub := "spiffe://" + spireTD + "/agent/a"
	now := clock.Now()
	claims := func(modify func(map[string]any)) map[string]any {
		m := map[string]any{"sub": sub, "aud": "svc", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		if modify != nil {
			modify(m)
		}
		return m
	}
	const good = `{"alg":"ES256","kid":"k1","typ":"JWT"}`
	tests := []struct {
		name    string
		token   func(*testing.T) string
		wantErr string
	}{
		{"valid", func(t *testing.T) string { return signJWT(t, key, good, claims(nil)) }, ""},
		{"valid without typ", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k1"}`, claims(nil))
		}, ""},
		{"typ JOSE", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k1","typ":"JOSE"}`, claims(nil))
		}, ""},
		{"extra header parameter", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k1","typ":"JWT","x5u":"https://example.com"}`, claims(nil))
		}, `header parameter not allowed: "x5u"`},
		{"duplicate header parameter", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k1","kid":"k1"}`, claims(nil))
		}, `duplicate member "kid"`},
		{"no kid", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","typ":"JWT"}`, claims(nil))
		}, "no kid"},
		{"wit typ", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k1","typ":"wit+jwt"}`, claims(nil))
		}, `typ "wit+jwt"`},
		{"unknown key", func(t *testing.T) string {
			return signJWT(t, key, `{"alg":"ES256","kid":"k2","typ":"JWT"}`, claims(nil))
		}, `no JWT authority "k2"`},
		{"bad signature", func(t *testing.T) string { return signJWT(t, otherKey, good, claims(nil)) }, "invalid signature"},
		{"other audience", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { m["aud"] = "other" }))
		}, "audience"},
		{"federated subject", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { m["sub"] = "spiffe://partner.test/agent/a" }))
		}, "partner.test"},
		{"no exp", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { delete(m, "exp") }))
		}, "exp"},
		// Times are checked at the configured clock, with no leeway.
		{"expired at now", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { m["exp"] = now.Add(-time.Second).Unix() }))
		}, "expired"},
		{"issued in the future", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { m["iat"] = now.Add(30 * time.Second).Unix() }))
		}, "issued in the future"},
		{"not yet valid", func(t *testing.T) string {
			return signJWT(t, key, good, claims(func(m map[string]any) { m["nbf"] = now.Add(30 * time.Second).Unix() }))
		}, "not yet valid"},
		{"garbage", func(*testing.T) string { return "not.a.jwt" }, "header"},
		{"too long", func(*testing.T) string { return strings.Repeat("a", 64<<10+1) }, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, got, err := up.ValidateJWTSVID(context.Background(), tt.token(t), "svc")
			if tt.wantErr == "" {
				if err != nil || id.String() != sub || got["sub"] != sub {
					t.Fatalf("ValidateJWTSVID = %s, %v, %v; want %s", id, got, err, sub)
				}
				return
			}
			if !errors.Is(err, ErrInvalidJWTSVID) || !errors.Is(err, ca.ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateJWTSVID error = %v, want ErrInvalidJWTSVID and ca.ErrInvalidToken containing %q", err, tt.wantErr)
			}
		})
	}
	if _, _, err := up.ValidateJWTSVID(context.Background(), signJWT(t, key, good, claims(nil)), ""); !errors.Is(err, ErrInvalidJWTSVID) {
		t.Errorf("ValidateJWTSVID without audience error = %v", err)
	}
	// Later, by the configured clock, the token has expired.
	token := signJWT(t, key, good, claims(nil))
	clock.Add(time.Hour)
	if _, _, err := up.ValidateJWTSVID(context.Background(), token, "svc"); !errors.Is(err, ErrInvalidJWTSVID) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("ValidateJWTSVID an hour later error = %v, want expired", err)
	}
	// Likewise the X.509-SVID the upstream handed out, which the static
	// upstream never rotates.
	clock.Add(caSVIDTTL)
	_, err = up.NewX509SVID(context.Background(), spiffeid.RequireFromString("spiffe://"+spireTD+"/host"))
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("NewX509SVID of an expired svid error = %v, want expired", err)
	}
}

// TestUpstreamRevocation checks that an ID whose registration entry the
// upstream drops stops being served on the host's socket for it, and is
// served again when the entry comes back.
func TestUpstreamRevocation(t *testing.T) {
	clock := pastClock()
	ctx := testCtx(t)
	auth := &federatingCA{CA: newCAFor(t, spireTD, clock)}
	spire := newStandin(t, clock, auth, "")
	up := startUpstream(t, socketAddr(spire.socket), clock)
	host := newTestEnvWith(t, clock, up)
	path := filepath.Join(host.dir, "agent-b.sock")
	if err := host.srv.AddWorkload(ctx, Workload{ID: spire.agentB, SocketPath: path}); err != nil {
		t.Fatal(err)
	}
	host.run(t)
	stream, err := rawClient(t, path).FetchX509SVID(withSecurityHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first x509-svid: %v", err)
	}
	notify, unsubscribe := up.Subscribe()
	defer unsubscribe()

	// The stand-in drops agent b's entry.
	reregister := func(extra ...spiffeid.ID) {
		t.Helper()
		if err := spire.env.srv.RemoveWorkload(ctx, spire.host); err != nil {
			t.Fatal(err)
		}
		if err := spire.env.srv.AddWorkload(ctx, Workload{ID: spire.host, ExtraIDs: extra, SocketPath: spire.socket}); err != nil {
			t.Fatal(err)
		}
	}
	reregister(spire.agentA)
	waitUntil(t, notify, func() bool {
		_, err := up.NewX509SVID(ctx, spire.agentB)
		return errors.Is(err, ErrNoRegistrationEntry)
	}, "the upstream drops agent b")

	// The plugin's stream ends with PermissionDenied, as SPIRE answers a
	// workload without an identity, and so do its new calls.
	for {
		_, err := stream.Recv()
		if err != nil {
			assertStatus(t, err, codes.PermissionDenied, "no identity issued")
			break
		}
	}
	client := spiffeClient(t, path)
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc"})
	assertStatus(t, err, codes.PermissionDenied, "no identity issued")
	if _, ok := host.srv.X509SVIDExpiry(spire.agentB); ok {
		t.Error("the host still has an x509-svid for agent b")
	}

	// The entry comes back, and so does the plugin's SVID.
	reregister(spire.agentA, spire.agentB)
	src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(path))))
	if err != nil {
		t.Fatalf("NewX509Source after the entry came back: %v", err)
	}
	defer src.Close()
	if svid, err := src.GetX509SVID(); err != nil || svid.ID != spire.agentB {
		t.Errorf("x509-svid after the entry came back = %v, %v", svid, err)
	}
}
