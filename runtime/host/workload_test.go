package host

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	spiffewl "github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/agenthost/agenthost/credentials/attest"
)

// TestHostWorkloadAPI drives the running host's own Workload API socket with
// a stock go-spiffe client, verifies what it gets against the bundle the
// host serves over HTTP, and checks that each issuance was recorded with the
// caller's attestation evidence.
func TestHostWorkloadAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	runCtx, stop := context.WithCancel(context.Background())
	h, err := New(runCtx, Options{Config: testConfig(t), DataDir: dir, Stderr: io.Discard})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	_, body := get(t, "http://"+h.Addr()+PathSPIFFEBundle)
	td := spiffeid.RequireTrustDomainFromString("test.local")
	bundle, err := spiffebundle.Parse(td, body)
	if err != nil {
		t.Fatal(err)
	}

	addr := spiffewl.WithAddr("unix://" + h.HostSocket())
	src, err := spiffewl.NewX509Source(ctx, spiffewl.WithClientOptions(addr))
	if err != nil {
		t.Fatalf("NewX509Source: %v", err)
	}
	defer src.Close()
	svid, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.ID.String() != "spiffe://test.local/host" {
		t.Fatalf("X.509-SVID for %s", svid.ID)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		t.Fatalf("X.509-SVID does not verify against the served bundle: %v", err)
	}

	client, err := spiffewl.New(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	jwt, err := client.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "https://example.test"})
	if err != nil {
		t.Fatalf("FetchJWTSVID: %v", err)
	}
	if _, err := jwtsvid.ParseAndValidate(jwt.Marshal(), bundle, []string{"https://example.test"}); err != nil {
		t.Fatalf("JWT-SVID does not validate against the served bundle: %v", err)
	}

	// The JWT-SVID was issued to this process: its record carries this
	// process's attestation evidence.
	entries, err := h.Store().Read(ctx, IssuanceLog, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range entries {
		var rec IssuanceRecord
		if err := json.Unmarshal(e.Data, &rec); err != nil {
			t.Fatalf("issuance record %d: %v", e.Index, err)
		}
		if rec.Kind != "jwt-svid" {
			continue
		}
		found = true
		if rec.Evidence == nil {
			t.Fatalf("JWT-SVID issuance has no evidence: %+v", rec)
		}
		if rec.Evidence.PID != os.Getpid() || rec.Evidence.ConfigDigest != h.cfg.Digest() {
			t.Fatalf("evidence = %+v, want pid %d and the config digest", rec.Evidence, os.Getpid())
		}
		exe, _ := os.Executable()
		want, err := attest.HashFile(ctx, exe)
		if err != nil || rec.Evidence.SHA256 != want {
			t.Fatalf("evidence digest = %s, want %s (%v)", rec.Evidence.SHA256, want, err)
		}
	}
	if !found {
		t.Fatalf("no jwt-svid issuance among %d records", len(entries))
	}
}
