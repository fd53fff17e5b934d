package host

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/workloadapi"
)

// spireStandin is the project's own Workload API server standing in for a
// SPIRE agent: one socket whose workload is registered as the host and
// as each of ids' agents, its SVIDs signed by a CA of its own.
type spireStandin struct {
	ca     *ca.CA
	srv    *workloadapi.Server
	td     spiffeid.TrustDomain
	socket string
}

// register makes the stand-in serve agents' identities too, as a SPIRE
// agent does at its next sync after their entries are created.
func (s *spireStandin) register(t *testing.T, agents ...string) {
	t.Helper()
	host := spiffeid.RequireFromPath(s.td, "/host")
	var extra []spiffeid.ID
	for _, a := range agents {
		extra = append(extra, spiffeid.RequireFromPath(s.td, "/agent/"+a))
	}
	if err := s.srv.RemoveWorkload(context.Background(), host); err != nil {
		t.Error(err)
		return
	}
	if err := s.srv.AddWorkload(context.Background(), workloadapi.Workload{ID: host, ExtraIDs: extra, SocketPath: s.socket}); err != nil {
		t.Error(err)
	}
}

func newSPIREStandin(t *testing.T, trustDomain string, agents ...string) *spireStandin {
	t.Helper()
	authority, err := ca.New(context.Background(), ca.Config{TrustDomain: trustDomain, Journal: &ca.MemoryJournal{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := workloadapi.New(workloadapi.Config{Authority: authority})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "spire")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString(trustDomain)
	var extra []spiffeid.ID
	for _, a := range agents {
		extra = append(extra, spiffeid.RequireFromPath(td, "/agent/"+a))
	}
	s := &spireStandin{ca: authority, srv: srv, td: td, socket: filepath.Join(dir, "agent.sock")}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.AddWorkload(ctx, workloadapi.Workload{ID: spiffeid.RequireFromPath(td, "/host"), ExtraIDs: extra, SocketPath: s.socket}); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("stand-in Workload API: %v", err)
		}
	})
	return s
}

// TestHostOnWorkloadAPI runs the quickstart agents on identities from a
// Workload API (identity.workload_api) instead of the host's own CA: the
// agents' SVIDs, the JWT-SVIDs they authenticate with at the embedded
// authorization server, the signed A2A cards and the WITs of a delegation
// hop all come from the upstream, and the host's bundle endpoint serves
// the upstream's bundle. A host whose agents the upstream does not
// register, or of another trust domain, does not start.
func TestHostOnWorkloadAPI(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfg := quickstartConfig(t)
	var names []string
	for _, a := range cfg.Agents {
		names = append(names, a.Name)
	}
	spire := newSPIREStandin(t, cfg.TrustDomain, names...)
	cfg.Identity.WorkloadAPI = "unix://" + spire.socket
	dir := filepath.Join(t.TempDir(), "data")
	h := runHost(t, cfg, dir)
	if h.CA() != nil {
		t.Fatal("the host made a CA of its own")
	}
	if _, err := os.Stat(filepath.Join(dir, caDirName, caJournalName)); err == nil {
		t.Error("the host wrote a CA journal")
	}
	waitAllRunning(ctx, t, dir, len(cfg.Agents))

	for _, s := range []struct{ agent, input, want string }{
		{"research", "what time is it", "The clock/now tool returned:"},
		{"assistant", "what is the balance of account: bob", "payments says: The payments/balance tool returned: bob:"},
	} {
		final, failure, err := taskAnswer(ctx, h, s.agent, s.input)
		if err != nil || failure != "" || !strings.Contains(final, s.want) {
			t.Errorf("run %s %q = %q %q %v, want %q", s.agent, s.input, final, failure, err, s.want)
		}
	}

	// The bundle the host publishes is the upstream's.
	got := h.bundleJSON()
	want, err := spire.ca.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if gotB, err := ca.ParseBundle(cfg.TrustDomain, got); err != nil || !gotB.X509[0].Equal(spire.ca.Bundle().X509Authorities()[0]) {
		t.Errorf("published bundle %s, want the upstream's %s (%v)", got, want, err)
	}

	// The upstream must register every agent, in the configured trust
	// domain; a start waits a while for entries not synced yet.
	defer func(d time.Duration) { upstreamEntryWait = d }(upstreamEntryWait)
	upstreamEntryWait = time.Second
	for _, tt := range []struct {
		name, td string
		agents   []string
		want     string
	}{
		{"agent not registered", cfg.TrustDomain, names[:1], "has no registration entry for spiffe://" + cfg.TrustDomain + "/agent/"},
		{"other trust domain", "elsewhere.test", names, "serves trust domain elsewhere.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other := newSPIREStandin(t, tt.td, tt.agents...)
			c := quickstartConfig(t)
			c.Identity.WorkloadAPI = "unix://" + other.socket
			h, err := New(ctx, Options{Config: c, DataDir: filepath.Join(t.TempDir(), "data"), Stderr: io.Discard})
			if err == nil {
				h.close()
				t.Fatal("the host started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want it to say %q", err, tt.want)
			}
		})
	}
	t.Run("agents registered after the start began", func(t *testing.T) {
		upstreamEntryWait = 20 * time.Second
		late := newSPIREStandin(t, cfg.TrustDomain)
		c := quickstartConfig(t)
		c.Identity.WorkloadAPI = "unix://" + late.socket
		time.AfterFunc(500*time.Millisecond, func() { late.register(t, names...) })
		// A short path: the agents' sockets are in the data directory.
		data, err := os.MkdirTemp("", "late")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(data) })
		start := time.Now()
		h, err := New(ctx, Options{Config: c, DataDir: data, Stderr: io.Discard})
		if err != nil {
			t.Fatalf("New = %v, want the host to start once the entries arrive", err)
		}
		h.close()
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("the host started after %v, before the agents were registered", d)
		}
	})
}
