package workloadapi

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials"
	"github.com/google/go-cmp/cmp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestNewRejectsBadConfig(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no authority", Config{}},
		{"negative tick", Config{Authority: newFakeAuthority(t, "example.org", clock.Now, testTTL), TickInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestAddWorkloadRejects(t *testing.T) {
	env := newTestEnv(t)
	existingID, existingPath := env.add(t, "existing", nil)
	td := env.srv.auth.TrustDomain()
	tests := []struct {
		name    string
		w       Workload
		wantErr error
	}{
		{"zero id", Workload{SocketPath: filepath.Join(env.dir, "z.sock")}, credentials.ErrInvalidIdentity},
		{"foreign trust domain", Workload{
			ID:         spiffeid.RequireFromString("spiffe://other.org/agent/x"),
			SocketPath: filepath.Join(env.dir, "f.sock"),
		}, credentials.ErrUntrustedDomain},
		{"duplicate id", Workload{ID: existingID, SocketPath: filepath.Join(env.dir, "d.sock")}, ErrWorkloadExists},
		{"duplicate socket", Workload{ID: spiffeid.RequireFromPath(td, "/agent/dup"), SocketPath: existingPath}, ErrSocketInUse},
		{"negative uid", Workload{
			ID:          spiffeid.RequireFromPath(td, "/agent/neg"),
			SocketPath:  filepath.Join(env.dir, "n.sock"),
			AllowedUIDs: []int{-1},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := env.srv.AddWorkload(context.Background(), tt.w)
			if err == nil {
				t.Fatal("AddWorkload succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddWorkload error = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// The existing workload is untouched.
	if _, err := os.Lstat(existingPath); err != nil {
		t.Errorf("existing socket: %v", err)
	}
}

func TestAddWorkloadIssueFailureLeavesNothing(t *testing.T) {
	env := newTestEnv(t)
	env.auth.setIssueErr(errors.New("ca offline"))
	path := filepath.Join(env.dir, "a.sock")
	err := env.srv.AddWorkload(context.Background(), Workload{
		ID:         spiffeid.RequireFromPath(env.auth.td, "/agent/a"),
		SocketPath: path,
	})
	if err == nil || !strings.Contains(err.Error(), "ca offline") {
		t.Fatalf("AddWorkload error = %v, want the authority's error", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	env.auth.setIssueErr(nil)
	env.add(t, "a", nil) // the ID is free again
}

func TestX509SVIDStream(t *testing.T) {
	env := newTestEnv(t)
	id, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)

	src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(path))))
	if err != nil {
		t.Fatalf("NewX509Source: %v", err)
	}
	defer src.Close()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id {
		t.Errorf("svid id = %s, want %s", svid.ID, id)
	}
	bundle, err := src.GetX509BundleForTrustDomain(env.auth.td)
	if err != nil {
		t.Fatal(err)
	}
	if !bundle.HasX509Authority(env.auth.root()) {
		t.Error("served bundle lacks the authority's root")
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle, x509svid.WithTime(env.clock.Now())); err != nil {
		t.Errorf("x509svid.Verify: %v", err)
	}
	if got := env.events.count(KindX509SVID); got != 1 {
		t.Errorf("x509 issue events = %d, want 1", got)
	}
	ev, _ := env.events.last(KindX509SVID)
	if want := svid.Certificates[0].SerialNumber.Text(16); ev.Serial != want || ev.Workload != id || ev.Peer != nil {
		t.Errorf("issue event = %+v, want serial %s for %s without peer", ev, want, id)
	}

	// Before half of the lifetime nothing is rotated.
	env.clock.Add(testTTL/2 - time.Second)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := env.events.count(KindX509SVID); got != 1 {
		t.Fatalf("x509 issue events after early tick = %d, want 1", got)
	}

	// At half of the lifetime the same source sees a new SVID.
	env.clock.Add(time.Second)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	oldSerial := svid.Certificates[0].SerialNumber
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		return err == nil && cur.Certificates[0].SerialNumber.Cmp(oldSerial) != 0
	}, "the rotated x509-svid arrives")
	if got := env.events.count(KindX509SVID); got != 2 {
		t.Errorf("x509 issue events after rotation = %d, want 2", got)
	}

	// A new CA key reaches the stream through the authority's notification.
	env.auth.rotate(t)
	newRoot := env.auth.root()
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetX509SVID()
		if err != nil {
			return false
		}
		return cur.Certificates[0].CheckSignatureFrom(newRoot) == nil
	}, "an x509-svid signed by the new root arrives")
	bundle, err = src.GetX509BundleForTrustDomain(env.auth.td)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(bundle.X509Authorities()); got != 2 {
		t.Errorf("bundle has %d authorities, want old and new root", got)
	}
}

func TestTickKeepsSVIDWhenIssuanceFails(t *testing.T) {
	env := newTestEnv(t)
	_, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)
	client := spiffeClient(t, path)
	before, err := client.FetchX509SVID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env.auth.setIssueErr(errors.New("ca offline"))
	env.clock.Add(testTTL)
	if err := env.srv.Tick(ctx); err == nil || !strings.Contains(err.Error(), "ca offline") {
		t.Fatalf("Tick error = %v, want the authority's error", err)
	}
	after, err := client.FetchX509SVID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Certificates[0].Equal(before.Certificates[0]) {
		t.Error("svid changed although issuance failed")
	}
	env.auth.setIssueErr(nil)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatalf("Tick after recovery: %v", err)
	}
	after, err = client.FetchX509SVID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Certificates[0].Equal(before.Certificates[0]) {
		t.Error("svid not rotated after the authority recovered")
	}
}

func TestBundleStreams(t *testing.T) {
	env := newTestEnv(t)
	_, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)

	src, err := spiffewl.NewBundleSource(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(path))))
	if err != nil {
		t.Fatalf("NewBundleSource: %v", err)
	}
	defer src.Close()
	jb, err := src.GetJWTBundleForTrustDomain(env.auth.td)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := jb.FindJWTAuthority("jwt-1"); !ok || len(jb.JWTAuthorities()) != 1 {
		t.Errorf("jwt bundle = %v, want only jwt-1", jb.JWTAuthorities())
	}

	client := rawClient(t, path)
	x509Stream, err := client.FetchX509Bundles(withSecurityHeader(ctx), &workloadpb.X509BundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	witStream, err := client.FetchWITBundles(withSecurityHeader(ctx), &workloadpb.WITBundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := x509Stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	xb, err := x509bundle.ParseRaw(env.auth.td, first.GetBundles()[env.auth.td.IDString()])
	if err != nil {
		t.Fatal(err)
	}
	if got := len(xb.X509Authorities()); got != 1 {
		t.Fatalf("first x509 bundle has %d authorities, want 1", got)
	}
	wit, err := witStream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if jwks := wit.GetBundles()[env.auth.td.IDString()]; !strings.Contains(jwks, `"wit-1"`) || !strings.Contains(jwks, `"wit-svid"`) {
		t.Errorf("wit bundle = %s, want key wit-1 with use wit-svid", jwks)
	}

	env.auth.rotate(t)
	next, err := x509Stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	xb, err = x509bundle.ParseRaw(env.auth.td, next.GetBundles()[env.auth.td.IDString()])
	if err != nil {
		t.Fatal(err)
	}
	if got := len(xb.X509Authorities()); got != 2 {
		t.Errorf("pushed x509 bundle has %d authorities, want 2", got)
	}
	if !xb.HasX509Authority(env.auth.root()) {
		t.Error("pushed x509 bundle lacks the new root")
	}
}

func TestJWTSVID(t *testing.T) {
	env := newTestEnv(t)
	id, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)
	client := spiffeClient(t, path)

	svid, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc-a", ExtraAudiences: []string{"svc-b"}})
	if err != nil {
		t.Fatalf("FetchJWTSVID: %v", err)
	}
	if svid.ID != id {
		t.Errorf("jwt-svid subject = %s, want %s", svid.ID, id)
	}
	bundles, err := client.FetchJWTBundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseAndValidate(svid.Marshal(), bundles, []string{"svc-b"}); err != nil {
		t.Errorf("ParseAndValidate: %v", err)
	}
	ev, ok := env.events.last(KindJWTSVID)
	if !ok || ev.Peer == nil {
		t.Fatalf("jwt issue event = %+v, want one with the caller", ev)
	}
	if diff := cmp.Diff(Peer{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}, *ev.Peer); diff != "" {
		t.Errorf("issue event peer (-want +got):\n%s", diff)
	}
	if !ev.ExpiresAt.Equal(svid.Expiry) {
		t.Errorf("issue event expiry = %v, want %v", ev.ExpiresAt, svid.Expiry)
	}

	// The server validates its own token for an audience it names.
	got, err := client.ValidateJWTSVID(ctx, svid.Marshal(), "svc-a")
	if err != nil {
		t.Fatalf("ValidateJWTSVID: %v", err)
	}
	if got.ID != id {
		t.Errorf("validated subject = %s, want %s", got.ID, id)
	}
	raw := rawClient(t, path)
	resp, err := raw.ValidateJWTSVID(withSecurityHeader(ctx), &workloadpb.ValidateJWTSVIDRequest{Audience: "svc-a", Svid: svid.Marshal()})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSpiffeId() != id.String() || resp.GetClaims().GetFields()["sub"].GetStringValue() != id.String() {
		t.Errorf("validate response = %v, want subject %s in id and claims", resp, id)
	}

	tests := []struct {
		name    string
		call    func() error
		code    codes.Code
		message string
	}{
		{"fetch without audience", func() error {
			_, err := client.FetchJWTSVID(ctx, jwtsvid.Params{})
			return err
		}, codes.InvalidArgument, "audience is required"},
		{"fetch with empty audience list", func() error {
			_, err := raw.FetchJWTSVID(withSecurityHeader(ctx), &workloadpb.JWTSVIDRequest{})
			return err
		}, codes.InvalidArgument, "audience is required"},
		{"fetch for another id", func() error {
			_, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "x", Subject: spiffeid.RequireFromPath(env.auth.td, "/agent/b")})
			return err
		}, codes.PermissionDenied, "not spiffe://example.org/agent/b"},
		{"fetch for a malformed id", func() error {
			_, err := raw.FetchJWTSVID(withSecurityHeader(ctx), &workloadpb.JWTSVIDRequest{Audience: []string{"x"}, SpiffeId: "not an id"})
			return err
		}, codes.InvalidArgument, "invalid spiffe_id"},
		{"validate for another audience", func() error {
			_, err := client.ValidateJWTSVID(ctx, svid.Marshal(), "svc-c")
			return err
		}, codes.InvalidArgument, "invalid jwt-svid"},
		{"validate garbage", func() error {
			_, err := client.ValidateJWTSVID(ctx, "garbage", "svc-a")
			return err
		}, codes.InvalidArgument, "invalid jwt-svid"},
		{"validate without audience", func() error {
			_, err := client.ValidateJWTSVID(ctx, svid.Marshal(), "")
			return err
		}, codes.InvalidArgument, "audience is required"},
		{"validate without svid", func() error {
			_, err := client.ValidateJWTSVID(ctx, "", "svc-a")
			return err
		}, codes.InvalidArgument, "svid is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertStatus(t, tt.call(), tt.code, tt.message)
		})
	}

	t.Run("issuance failure", func(t *testing.T) {
		env.auth.setIssueErr(errors.New("ca offline"))
		defer env.auth.setIssueErr(nil)
		_, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc-a"})
		assertStatus(t, err, codes.Unavailable, "could not issue")
		if strings.Contains(err.Error(), "ca offline") {
			t.Errorf("error %v exposes the authority's internal error", err)
		}
	})
}

func assertStatus(t *testing.T, err error, code codes.Code, message string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.Contains(st.Message(), message) {
		t.Errorf("error = %v, want %s containing %q", err, code, message)
	}
}

func TestWITSVID(t *testing.T) {
	env := newTestEnv(t)
	id, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)

	src, err := spiffewl.NewWITSource(ctx, spiffewl.WithClientOptions(spiffewl.WithAddr(socketAddr(path))))
	if err != nil {
		t.Fatalf("NewWITSource: %v", err)
	}
	defer src.Close()
	svid, err := src.GetWITSVIDForID(id)
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID != id {
		t.Errorf("wit-svid subject = %s, want %s", svid.ID, id)
	}
	priv, ok := svid.PrivateKey.(crypto.Signer)
	if !ok {
		t.Fatalf("wit-svid private key has type %T", svid.PrivateKey)
	}
	if pub, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(svid.PublicKey) {
		t.Error("served private key does not match the wit-svid's cnf key")
	}
	ev, ok := env.events.last(KindWITSVID)
	if !ok || ev.Peer == nil || ev.Peer.PID != os.Getpid() {
		t.Errorf("wit issue event = %+v, want one naming this process", ev)
	}

	env.clock.Add(testTTL / 2)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	old := svid.Marshal()
	waitUntil(t, src.Updated(), func() bool {
		cur, err := src.GetWITSVIDForID(id)
		return err == nil && cur.Marshal() != old
	}, "the rotated wit-svid arrives")
	if got := env.events.count(KindWITSVID); got != 2 {
		t.Errorf("wit issue events = %d, want 2", got)
	}

	raw := rawClient(t, path)
	stream, err := raw.FetchWITSVID(withSecurityHeader(ctx), &workloadpb.WITSVIDRequest{SpiffeId: "spiffe://example.org/agent/b"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	assertStatus(t, err, codes.PermissionDenied, "serves spiffe://example.org/agent/a")
}

func TestSecurityHeaderRequired(t *testing.T) {
	env := newTestEnv(t)
	_, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)
	client := rawClient(t, path)
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"FetchJWTSVID", func(ctx context.Context) error {
			_, err := client.FetchJWTSVID(ctx, &workloadpb.JWTSVIDRequest{Audience: []string{"x"}})
			return err
		}},
		{"ValidateJWTSVID", func(ctx context.Context) error {
			_, err := client.ValidateJWTSVID(ctx, &workloadpb.ValidateJWTSVIDRequest{Audience: "x", Svid: "y"})
			return err
		}},
		{"FetchX509SVID", func(ctx context.Context) error {
			s, err := client.FetchX509SVID(ctx, &workloadpb.X509SVIDRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
		{"FetchJWTBundles", func(ctx context.Context) error {
			s, err := client.FetchJWTBundles(ctx, &workloadpb.JWTBundlesRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertStatus(t, tt.call(ctx), codes.InvalidArgument, "security header missing")
		})
		t.Run(tt.name+" with wrong value", func(t *testing.T) {
			err := tt.call(metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "yes"))
			assertStatus(t, err, codes.InvalidArgument, "security header missing")
		})
	}
}

func TestPeerAuthorization(t *testing.T) {
	env := newTestEnv(t)
	uid := os.Getuid()
	_, openPath := env.add(t, "open", nil)
	_, closedPath := env.add(t, "closed", func(w *Workload) { w.AllowedUIDs = []int{uid + 1} })
	_, checkedPath := env.add(t, "checked", func(w *Workload) {
		w.AllowedUIDs = []int{uid}
		w.PeerCheck = func(p Peer) error {
			if p.PID == os.Getpid() {
				return errors.New("pid is not the plugin")
			}
			return nil
		}
	})
	env.run(t)
	ctx := testCtx(t)

	closed := spiffeClient(t, closedPath)
	_, err := closed.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "x"})
	assertStatus(t, err, codes.PermissionDenied, "uid "+strconv.Itoa(uid)+" ")
	_, err = closed.FetchX509SVID(ctx)
	assertStatus(t, err, codes.PermissionDenied, "uid "+strconv.Itoa(uid)+" ")

	checked := spiffeClient(t, checkedPath)
	_, err = checked.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "x"})
	assertStatus(t, err, codes.PermissionDenied, "pid is not the plugin")

	// The permitted workload keeps serving.
	open := spiffeClient(t, openPath)
	if _, err := open.FetchX509SVID(ctx); err != nil {
		t.Errorf("FetchX509SVID on the permitted socket: %v", err)
	}
	if got := env.events.count(KindJWTSVID); got != 0 {
		t.Errorf("jwt issue events = %d, want none for refused callers", got)
	}
}

// TestOnRefuse: every connection refused by the uid check or the
// workload's PeerCheck is reported once, with the workload, the socket, the
// caller's credentials and the reason its calls fail with; admitted
// connections are not reported.
func TestOnRefuse(t *testing.T) {
	uid := os.Getuid()
	errNotPlugin := errors.New("pid is not the plugin")
	tests := []struct {
		name    string
		modify  func(*Workload)
		wantMsg string // empty: admitted
		wantErr error  // an error the reason must wrap
	}{
		{name: "admitted"},
		{
			name:   "peer check passes",
			modify: func(w *Workload) { w.PeerCheck = func(Peer) error { return nil } },
		},
		{
			name:    "uid not allowed",
			modify:  func(w *Workload) { w.AllowedUIDs = []int{uid + 1} },
			wantMsg: "uid " + strconv.Itoa(uid) + " may not use the workload api socket",
		},
		{
			name:    "peer check fails",
			modify:  func(w *Workload) { w.PeerCheck = func(Peer) error { return errNotPlugin } },
			wantMsg: "pid is not the plugin",
			wantErr: errNotPlugin,
		},
		{
			name: "uid refused before the peer check",
			modify: func(w *Workload) {
				w.AllowedUIDs = []int{uid + 1}
				w.PeerCheck = func(Peer) error { t.Error("PeerCheck called for a refused uid"); return nil }
			},
			wantMsg: "uid " + strconv.Itoa(uid) + " may not use",
		},
	}
	env := newTestEnv(t)
	env.run(t)
	ctx := testCtx(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, path := env.add(t, "w"+strconv.Itoa(i), tt.modify)
			client := spiffeClient(t, path)
			// Two calls on one connection.
			for range 2 {
				_, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "x"})
				if tt.wantMsg == "" {
					if err != nil {
						t.Fatalf("FetchJWTSVID: %v", err)
					}
					continue
				}
				assertStatus(t, err, codes.PermissionDenied, tt.wantMsg)
			}
			got := env.refusals.of(id)
			if tt.wantMsg == "" {
				if len(got) != 0 {
					t.Fatalf("refusals = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("refusals = %+v, want one for the connection", got)
			}
			ev := got[0]
			if ev.SocketPath != path || ev.Peer.PID != os.Getpid() || ev.Peer.UID != uid || ev.Peer.GID != os.Getgid() {
				t.Errorf("refusal = %+v, want socket %s, pid %d, uid %d, gid %d", ev, path, os.Getpid(), uid, os.Getgid())
			}
			if ev.Reason == nil || !strings.Contains(ev.Reason.Error(), tt.wantMsg) {
				t.Errorf("refusal reason = %v, want it to contain %q", ev.Reason, tt.wantMsg)
			}
			if tt.wantErr != nil && !errors.Is(ev.Reason, tt.wantErr) {
				t.Errorf("refusal reason = %v, want it to wrap the PeerCheck error", ev.Reason)
			}
		})
	}
}

func TestRemoveWorkloadEndsStreams(t *testing.T) {
	env := newTestEnv(t)
	idA, pathA := env.add(t, "a", nil)
	_, pathB := env.add(t, "b", nil)
	env.run(t)
	ctx := testCtx(t)

	stream, err := rawClient(t, pathA).FetchX509SVID(withSecurityHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.RemoveWorkload(ctx, idA); err != nil {
		t.Fatalf("RemoveWorkload: %v", err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Fatal("stream still open after RemoveWorkload")
	}
	if _, err := os.Lstat(pathA); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after RemoveWorkload: %v", err)
	}
	if err := env.srv.RemoveWorkload(ctx, idA); !errors.Is(err, ErrUnknownWorkload) {
		t.Errorf("second RemoveWorkload error = %v, want ErrUnknownWorkload", err)
	}
	if _, err := spiffeClient(t, pathB).FetchX509SVID(ctx); err != nil {
		t.Errorf("other workload after removal: %v", err)
	}
	// The same ID and path can be registered again.
	env.add(t, "a", nil)
	if _, err := spiffeClient(t, pathA).FetchX509SVID(ctx); err != nil {
		t.Errorf("re-added workload: %v", err)
	}
}

func TestRunLifecycle(t *testing.T) {
	env := newTestEnv(t)
	id, path := env.add(t, "a", nil)
	stop := env.run(t)
	ctx := testCtx(t)

	// A workload added while running is served at once.
	_, pathB := env.add(t, "b", nil)
	if _, err := spiffeClient(t, pathB).FetchX509SVID(ctx); err != nil {
		t.Fatalf("workload added while running: %v", err)
	}
	if err := env.srv.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run error = %v, want ErrAlreadyRunning", err)
	}

	stream, err := rawClient(t, path).FetchJWTBundles(withSecurityHeader(ctx), &workloadpb.JWTBundlesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("stream still open after Run returned")
	}
	for _, p := range []string{path, pathB} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket %s after Run: %v", p, err)
		}
	}
	if err := env.srv.Run(ctx); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Run after stop error = %v, want ErrServerClosed", err)
	}
	err = env.srv.AddWorkload(ctx, Workload{ID: spiffeid.RequireFromPath(id.TrustDomain(), "/agent/c"), SocketPath: filepath.Join(env.dir, "c.sock")})
	if !errors.Is(err, ErrServerClosed) {
		t.Errorf("AddWorkload after stop error = %v, want ErrServerClosed", err)
	}
}

func TestX509SVIDResponseWireForm(t *testing.T) {
	env := newTestEnv(t)
	id, path := env.add(t, "a", nil)
	env.run(t)
	ctx := testCtx(t)
	stream, err := rawClient(t, path).FetchX509SVID(withSecurityHeader(ctx), &workloadpb.X509SVIDRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetSvids()) != 1 || len(resp.GetFederatedBundles()) != 0 || len(resp.GetCrl()) != 0 {
		t.Fatalf("response = %v, want one svid, no federated bundles, no crl", resp)
	}
	got := resp.GetSvids()[0]
	if got.GetSpiffeId() != id.String() {
		t.Errorf("spiffe_id = %q, want %q", got.GetSpiffeId(), id)
	}
	certs, err := x509.ParseCertificates(got.GetX509Svid())
	if err != nil || len(certs) != 1 {
		t.Fatalf("x509_svid: %d certs, %v", len(certs), err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(got.GetX509SvidKey()); err != nil {
		t.Errorf("x509_svid_key is not PKCS #8: %v", err)
	}
	roots, err := x509.ParseCertificates(got.GetBundle())
	if err != nil || len(roots) != 1 || !roots[0].Equal(env.auth.root()) {
		t.Errorf("bundle = %d certs (%v), want the root", len(roots), err)
	}
}

func BenchmarkFetchJWTSVIDFake(b *testing.B) {
	clock := newFakeClock()
	auth := newFakeAuthority(b, "example.org", clock.Now, testTTL)
	benchmarkFetchJWTSVID(b, auth)
}

func benchmarkFetchJWTSVID(b *testing.B, auth Authority) {
	srv, err := New(Config{Authority: auth})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(privateDir(b), "a.sock")
	if err := srv.AddWorkload(context.Background(), Workload{ID: spiffeid.RequireFromPath(auth.TrustDomain(), "/agent/a"), SocketPath: path}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	client := spiffeClient(b, path)
	params := jwtsvid.Params{Audience: "bench"}
	if _, err := client.FetchJWTSVID(ctx, params); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.FetchJWTSVID(ctx, params); err != nil {
			b.Fatal(fmt.Errorf("FetchJWTSVID: %w", err))
		}
	}
}

func TestAddWorkloadSocketPath(t *testing.T) {
	env := newTestEnv(t)
	env.run(t)
	ctx := testCtx(t)
	td := env.auth.td

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
	err := env.srv.AddWorkload(ctx, Workload{ID: spiffeid.RequireFromPath(td, "/agent/regular"), SocketPath: regular})
	if !errors.Is(err, ErrNotSocket) {
		t.Fatalf("AddWorkload over a regular file error = %v, want ErrNotSocket", err)
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "data" {
		t.Errorf("regular file after refusal: %q, %v", b, err)
	}

	open := filepath.Join(env.dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	err = env.srv.AddWorkload(ctx, Workload{ID: spiffeid.RequireFromPath(td, "/agent/open"), SocketPath: filepath.Join(open, "a.sock")})
	if !errors.Is(err, ErrInsecureSocketDir) {
		t.Fatalf("AddWorkload in a 0755 directory error = %v, want ErrInsecureSocketDir", err)
	}
}
