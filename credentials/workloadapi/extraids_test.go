package workloadapi

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/agenthost/agenthost/credentials"
	workloadpb "github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/codes"
)

// TestExtraIDs checks a socket that serves several SPIFFE IDs, as a SPIRE
// agent serves a workload that several registration entries match.
func TestExtraIDs(t *testing.T) {
	env := newTestEnv(t)
	td := env.auth.td
	host := spiffeid.RequireFromPath(td, "/host")
	agentA := spiffeid.RequireFromPath(td, "/agent/a")
	agentB := spiffeid.RequireFromPath(td, "/agent/b")
	path := filepath.Join(env.dir, "multi.sock")
	ctx := testCtx(t)
	if err := env.srv.AddWorkload(ctx, Workload{ID: host, ExtraIDs: []spiffeid.ID{agentA, agentB}, SocketPath: path}); err != nil {
		t.Fatalf("AddWorkload: %v", err)
	}
	env.run(t)
	all := []spiffeid.ID{host, agentA, agentB}
	client := spiffeClient(t, path)

	// X.509: one SVID per ID, the workload's ID first (the default).
	svids, err := client.FetchX509SVIDs(ctx)
	if err != nil {
		t.Fatalf("FetchX509SVIDs: %v", err)
	}
	if got := svidIDs(svids); !slices.Equal(got, all) {
		t.Fatalf("x509-svid IDs = %v, want %v", got, all)
	}
	def, err := client.FetchX509SVID(ctx)
	if err != nil || def.ID != host {
		t.Fatalf("default x509-svid = %v, %v; want %s", def, err, host)
	}
	for _, id := range all {
		if _, ok := env.srv.X509SVIDExpiry(id); !ok {
			t.Errorf("X509SVIDExpiry(%s) reports none", id)
		}
	}
	if got := env.events.count(KindX509SVID); got != 3 {
		t.Errorf("x509 issue events = %d, want 3", got)
	}

	// JWT: the requested ID among the socket's; all of them when none is
	// requested, default first.
	jwt, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc", Subject: agentB})
	if err != nil {
		t.Fatalf("FetchJWTSVID(%s): %v", agentB, err)
	}
	if jwt.ID != agentB {
		t.Errorf("jwt-svid subject = %s, want %s", jwt.ID, agentB)
	}
	jwts, err := client.FetchJWTSVIDs(ctx, jwtsvid.Params{Audience: "svc"})
	if err != nil {
		t.Fatalf("FetchJWTSVIDs: %v", err)
	}
	var jwtIDs []spiffeid.ID
	for _, s := range jwts {
		jwtIDs = append(jwtIDs, s.ID)
	}
	if !slices.Equal(jwtIDs, all) {
		t.Errorf("jwt-svid IDs = %v, want %v", jwtIDs, all)
	}
	if def, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc"}); err != nil || def.ID != host {
		t.Errorf("default jwt-svid = %v, %v; want %s", def, err, host)
	}
	other := spiffeid.RequireFromPath(td, "/agent/c")
	_, err = client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "svc", Subject: other})
	assertStatus(t, err, codes.PermissionDenied, "not "+other.String())

	// WIT: likewise.
	wit, err := client.FetchWITSVID(ctx, agentA.String())
	if err != nil {
		t.Fatalf("FetchWITSVID(%s): %v", agentA, err)
	}
	if wit.ID != agentA {
		t.Errorf("wit-svid subject = %s, want %s", wit.ID, agentA)
	}
	wits, err := client.FetchWITSVIDs(ctx, "")
	if err != nil {
		t.Fatalf("FetchWITSVIDs: %v", err)
	}
	var witIDs []spiffeid.ID
	for _, s := range wits {
		witIDs = append(witIDs, s.ID)
	}
	if !slices.Equal(witIDs, all) {
		t.Errorf("wit-svid IDs = %v, want %v", witIDs, all)
	}
	raw := rawClient(t, path)
	stream, err := raw.FetchWITSVID(withSecurityHeader(ctx), &workloadpb.WITSVIDRequest{SpiffeId: other.String()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	assertStatus(t, err, codes.PermissionDenied, "not "+other.String())

	// Half of the lifetime later every ID's SVIDs are rotated.
	env.clock.Add(testTTL/2 + 1)
	if err := env.srv.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if got := env.events.count(KindX509SVID); got != 6 {
		t.Errorf("x509 issue events after rotation = %d, want 6", got)
	}
	if got := env.events.count(KindWITSVID); got != 6 {
		t.Errorf("wit issue events after rotation = %d, want 6", got)
	}
}

func TestExtraIDsRejected(t *testing.T) {
	env := newTestEnv(t)
	td := env.auth.td
	existing := spiffeid.RequireFromPath(td, "/agent/existing")
	existingExtra := spiffeid.RequireFromPath(td, "/agent/existing-extra")
	if err := env.srv.AddWorkload(context.Background(), Workload{
		ID: existing, ExtraIDs: []spiffeid.ID{existingExtra}, SocketPath: filepath.Join(env.dir, "existing.sock"),
	}); err != nil {
		t.Fatal(err)
	}
	fresh := spiffeid.RequireFromPath(td, "/agent/fresh")
	tests := []struct {
		name    string
		w       Workload
		wantErr error
	}{
		{"zero extra", Workload{ID: fresh, ExtraIDs: []spiffeid.ID{{}}}, credentials.ErrInvalidIdentity},
		{"extra repeats the id", Workload{ID: fresh, ExtraIDs: []spiffeid.ID{fresh}}, credentials.ErrInvalidIdentity},
		{"extra twice", Workload{ID: fresh, ExtraIDs: []spiffeid.ID{
			spiffeid.RequireFromPath(td, "/x"), spiffeid.RequireFromPath(td, "/x"),
		}}, credentials.ErrInvalidIdentity},
		{"extra in a foreign trust domain", Workload{ID: fresh, ExtraIDs: []spiffeid.ID{
			spiffeid.RequireFromString("spiffe://other.org/x"),
		}}, credentials.ErrUntrustedDomain},
		{"extra served by another socket", Workload{ID: fresh, ExtraIDs: []spiffeid.ID{existing}}, ErrWorkloadExists},
		{"id served by another socket as an extra", Workload{ID: existingExtra}, ErrWorkloadExists},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.SocketPath = filepath.Join(env.dir, "r"+string(rune('a'+i))+".sock")
			err := env.srv.AddWorkload(context.Background(), tt.w)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddWorkload error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func svidIDs(svids []*x509svid.SVID) []spiffeid.ID {
	ids := make([]spiffeid.ID, len(svids))
	for i, s := range svids {
		ids[i] = s.ID
	}
	return ids
}
