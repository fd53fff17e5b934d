package host

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agenthost/agenthost/credentials/attest"
)

// TestHostWorkloadAPI: an agent's plugin process drives its own Workload
// API socket with a stock go-spiffe client; what it gets verifies against
// the bundle the host serves over HTTP, and each issuance was recorded with
// the caller's attestation evidence.
func TestHostWorkloadAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, probeConfig(t, dir), dir)
	pluginPID := waitPluginPID(ctx, t, dir, "probe")

	_, body := get(t, "http://"+h.Addr()+PathSPIFFEBundle)
	td := spiffeid.RequireTrustDomainFromString("test.local")
	bundle, err := spiffebundle.Parse(td, body)
	if err != nil {
		t.Fatal(err)
	}

	// The plugin runs in its sandbox, as the child of the process the
	// supervisor started, and sees its own pid in its PID namespace.
	pluginPID, innerPID := sandboxedPID(t, pluginPID)
	got := runProbe(ctx, t, h, "svids https://example.test")
	if got.Error != "" || got.PID != innerPID {
		t.Fatalf("probe = %+v, want SVIDs fetched by the plugin process %d (%d in its sandbox)", got, pluginPID, innerPID)
	}
	var certs []*x509.Certificate
	for rest := []byte(got.X509); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("X.509-SVID chain: %v", err)
		}
		certs = append(certs, c)
	}
	id, _, err := x509svid.Verify(certs, bundle)
	if err != nil {
		t.Fatalf("X.509-SVID does not verify against the served bundle: %v", err)
	}
	if id.String() != "spiffe://test.local/agent/probe" || got.ID != id.String() {
		t.Fatalf("X.509-SVID for %s (client saw %s)", id, got.ID)
	}
	jwt, err := jwtsvid.ParseAndValidate(got.JWT, bundle, []string{"https://example.test"})
	if err != nil {
		t.Fatalf("JWT-SVID does not validate against the served bundle: %v", err)
	}
	if jwt.ID.String() != "spiffe://test.local/agent/probe" {
		t.Fatalf("JWT-SVID for %s", jwt.ID)
	}

	// The JWT-SVID was issued to the plugin process: its record carries
	// that process's attestation evidence.
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
		if rec.Evidence.PID != pluginPID || rec.Evidence.ConfigDigest != h.cfg.Digest() {
			t.Fatalf("evidence = %+v, want pid %d and the config digest", rec.Evidence, pluginPID)
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
