package federation_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/ca"
	"github.com/agenthost/agenthost/credentials/federation"
	"github.com/agenthost/agenthost/credentials/oauth/fetch"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// TestFetchProfiles: under both endpoint profiles the foreign domain's
// bundle is fetched, announced, and then validates its SVIDs.
func TestFetchProfiles(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	agent := mustID(t, "spiffe://"+foreignTD+"/agent/a")

	seq, _ := foreign.Bundle().SequenceNumber()
	tests := []struct {
		name string
		peer func(t *testing.T) federation.Peer
		// updates are the expected OnUpdate sequences: none when the
		// configured bundle is the one served.
		updates []uint64
	}{
		{"https_web", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, foreign.BundleHandler()))
		}, []uint64{seq}},
		{"https_spiffe", func(t *testing.T) federation.Peer {
			e := newSPIFFEEndpoint(t, foreign, endpointID, foreign.BundleHandler())
			return spiffePeer(e, endpointID, bundleJSON(t, foreign, int(seq)-1))
		}, []uint64{seq}},
		{"https_spiffe, configured bundle current", func(t *testing.T) federation.Peer {
			e := newSPIFFEEndpoint(t, foreign, endpointID, foreign.BundleHandler())
			return spiffePeer(e, endpointID, foreign.BundleJSON())
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			s := newSet(t, newFakeClock(), rec, nil, nil, tt.peer(t))
			if err := s.Refresh(ctx, foreignTD); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if got := rec.gotUpdates(); !slices.Equal(got, tt.updates) {
				t.Errorf("OnUpdate sequences %v, want %v", got, tt.updates)
			}
			if r := rec.gotRefusals(); len(r) != 0 {
				t.Errorf("refusals: %v", r)
			}
			got, err := s.GetBundleForTrustDomain(spiffeid.RequireTrustDomainFromString(foreignTD))
			if err != nil {
				t.Fatal(err)
			}
			if !got.X509Bundle().Equal(foreign.Bundle().X509Bundle()) || !got.JWTBundle().Equal(foreign.Bundle().JWTBundle()) {
				t.Error("kept bundle differs from the foreign CA's")
			}
			tok, _, err := foreign.NewJWTSVID(ctx, agent, []string{"https://rs.own.test"})
			if err != nil {
				t.Fatal(err)
			}
			if id, _, err := s.ValidateJWTSVID(ctx, tok, "https://rs.own.test"); err != nil || id != agent {
				t.Errorf("ValidateJWTSVID = %v, %v", id, err)
			}
			svid, err := foreign.NewX509SVID(ctx, agent)
			if err != nil {
				t.Fatal(err)
			}
			if id, err := s.VerifyX509SVID(svid.Certificates); err != nil || id != agent {
				t.Errorf("VerifyX509SVID = %v, %v", id, err)
			}
			// The same bundle again is no update.
			if err := s.Refresh(ctx, foreignTD); err != nil {
				t.Fatalf("second Refresh: %v", err)
			}
			if got := rec.gotUpdates(); !slices.Equal(got, tt.updates) {
				t.Errorf("OnUpdate sequences %v after an unchanged bundle, want %v", got, tt.updates)
			}
		})
	}
}

// TestFetchRefusals: every bad endpoint or bad bundle is refused, reported
// once to OnRefuse, and leaves the last good bundle in use.
func TestFetchRefusals(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	other := newCA(t, otherTD, 0)
	impostor := newCA(t, foreignTD, 0) // another CA claiming the same domain
	good := bundleJSON(t, foreign, 10)
	agent := mustID(t, "spiffe://"+foreignTD+"/agent/a")

	tests := []struct {
		name string
		// setup returns the peer; its initial bundle is the good one
		// unless it sets another.
		setup func(t *testing.T) federation.Peer
		// noPrivate leaves private addresses refused.
		noPrivate bool
		timeout   time.Duration
		want      error  // the sentinel, when there is one
		text      string // else a part of the message
	}{
		{"https_spiffe endpoint with another SPIFFE ID", func(t *testing.T) federation.Peer {
			e := newSPIFFEEndpoint(t, foreign, "spiffe://"+foreignTD+"/impostor", serve(200, bundleJSON(t, foreign, 11)))
			return spiffePeer(e, endpointID, good)
		}, false, 0, nil, `unexpected ID "spiffe://foreign.test/impostor"`},
		{"https_spiffe endpoint of an untrusted CA", func(t *testing.T) federation.Peer {
			e := newSPIFFEEndpoint(t, impostor, endpointID, serve(200, bundleJSON(t, impostor, 11)))
			return spiffePeer(e, endpointID, good)
		}, false, 0, nil, "certificate signed by unknown authority"},
		{"https_web untrusted certificate", func(t *testing.T) federation.Peer {
			p := webPeer(newWebEndpoint(t, serve(200, bundleJSON(t, foreign, 11))))
			p.Roots = nil // the system roots do not trust httptest's certificate
			return p
		}, false, 0, nil, "certificate signed by unknown authority"},
		{"cross-origin redirect", func(t *testing.T) federation.Peer {
			target := newWebEndpoint(t, serve(200, bundleJSON(t, foreign, 11)))
			e := newWebEndpoint(t, http.RedirectHandler(target.url(), http.StatusFound))
			return webPeer(e)
		}, false, 0, fetch.ErrRedirect, ""},
		{"oversize body", func(t *testing.T) federation.Peer {
			big := append([]byte(`{"keys":[],"spiffe_sequence":11,"pad":"`), bytes.Repeat([]byte("a"), federation.DefaultMaxBytes)...)
			return webPeer(newWebEndpoint(t, serve(200, append(big, `"}`...))))
		}, false, 0, fetch.ErrTooLarge, ""},
		{"status 500", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(500, bundleJSON(t, foreign, 11))))
		}, false, 0, fetch.ErrStatus, ""},
		{"status 203 with a bundle", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(203, bundleJSON(t, foreign, 11))))
		}, false, 0, fetch.ErrStatus, ""},
		{"bundle of another trust domain", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, bundleJSON(t, other, 11))))
		}, false, 0, federation.ErrWrongTrustDomain, ""},
		{"lower sequence", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, bundleJSON(t, foreign, 9))))
		}, false, 0, federation.ErrRollback, ""},
		{"no sequence", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, bundleJSON(t, foreign, -1))))
		}, false, 0, federation.ErrRollback, ""},
		{"malformed JSON", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, []byte(`{"keys":[`))))
		}, false, 0, federation.ErrInvalidBundle, ""},
		{"no keys member", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, []byte(`{"spiffe_sequence":11}`))))
		}, false, 0, federation.ErrInvalidBundle, ""},
		{"x509-svid key without key material", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, []byte(`{"keys":[{"use":"x509-svid","kty":"EC","x5c":[]}],"spiffe_sequence":11}`))))
		}, false, 0, federation.ErrInvalidBundle, ""},
		{"loopback endpoint not allowed", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, serve(200, bundleJSON(t, foreign, 11))))
		}, true, 0, fetch.ErrPrivateAddress, ""},
		{"endpoint never answers", func(t *testing.T) federation.Peer {
			return webPeer(newWebEndpoint(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			})))
		}, false, 50 * time.Millisecond, fetch.ErrTimeout, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t)
			if p.Bundle == nil {
				p.Bundle = good
			}
			rec := &recorder{}
			cfg := setConfig(newFakeClock(), rec, nil, nil, p)
			cfg.AllowPrivate = !tt.noPrivate
			cfg.Timeout = tt.timeout
			s, err := federation.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Refresh(ctx, foreignTD)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Refresh: err = %v, want %v %q", err, tt.want, tt.text)
			}
			t.Logf("refused: %v", err)
			refusals := rec.gotRefusals()
			if len(refusals) != 1 || refusals[0].td != foreignTD || refusals[0].endpoint != p.EndpointURL || !errors.Is(refusals[0].err, err) {
				t.Fatalf("OnRefuse calls %v, want one for %s at %s", refusals, foreignTD, p.EndpointURL)
			}
			if u := rec.gotUpdates(); len(u) != 0 {
				t.Errorf("OnUpdate called: %v", u)
			}
			st := s.Status()[0]
			if st.Sequence != 10 || st.Failures != 1 || st.LastError == nil {
				t.Errorf("status %+v, want the good bundle (10) kept and one failure", st)
			}
			// The last good bundle still validates.
			svid, err := foreign.NewX509SVID(ctx, agent)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.VerifyX509SVID(svid.Certificates); err != nil {
				t.Errorf("the kept bundle no longer verifies: %v", err)
			}
		})
	}
}

// TestRedirectSameOrigin: a redirect within the endpoint's origin is
// followed, and the next refresh asks the configured URL again.
func TestRedirectSameOrigin(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	mux := http.NewServeMux()
	mux.Handle("/bundle", http.RedirectHandler("/moved", http.StatusMovedPermanently))
	mux.Handle("/moved", foreign.BundleHandler())
	e := newWebEndpoint(t, mux)
	rec := &recorder{}
	s := newSet(t, newFakeClock(), rec, nil, nil, webPeer(e))
	for range 2 {
		if err := s.Refresh(ctx, foreignTD); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
	if got, want := e.requests(), []string{"/bundle", "/moved", "/bundle", "/moved"}; !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if len(rec.gotUpdates()) != 1 {
		t.Errorf("updates %v, want one", rec.gotUpdates())
	}
}

// TestStoredBundleAfterRestart: a bundle accepted before a restart is used
// after it, before any fetch and while the endpoint is down.
func TestStoredBundleAfterRestart(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	agent := mustID(t, "spiffe://"+foreignTD+"/agent/a")
	store := &federation.MemoryStore{}
	e := newWebEndpoint(t, foreign.BundleHandler())
	peer := webPeer(e)

	first := newSet(t, newFakeClock(), nil, store, nil, peer)
	if err := first.Refresh(ctx, foreignTD); err != nil {
		t.Fatal(err)
	}
	saved, err := store.Load(ctx, foreignTD)
	if err != nil || !bytes.Equal(saved, foreign.BundleJSON()) {
		t.Fatalf("stored bundle %q, %v", saved, err)
	}
	e.Close()

	rec := &recorder{}
	second := newSet(t, newFakeClock(), rec, store, nil, peer)
	tok, _, err := foreign.NewJWTSVID(ctx, agent, []string{"aud"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.ValidateJWTSVID(ctx, tok, "aud"); err != nil {
		t.Fatalf("after restart, before a fetch: %v", err)
	}
	if err := second.Refresh(ctx, foreignTD); err == nil {
		t.Fatal("Refresh of a closed endpoint succeeded")
	}
	if len(rec.gotRefusals()) != 1 {
		t.Errorf("refusals %v, want one", rec.gotRefusals())
	}
	if _, _, err := second.ValidateJWTSVID(ctx, tok, "aud"); err != nil {
		t.Fatalf("after a failed fetch: %v", err)
	}
}

// TestStartingBundle: of a stored and a configured bundle, the one with
// the higher sequence number is used first; a stored bundle that is not
// valid is reported and left aside.
func TestStartingBundle(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	other := newCA(t, otherTD, 0)
	tests := []struct {
		name       string
		stored     []byte
		configured []byte
		wantSeq    uint64
		wantBundle bool
		wantEmpty  bool // the bundle used is the one without keys
		refusal    error
	}{
		{"stored only", bundleJSON(t, foreign, 5), nil, 5, true, false, nil},
		{"configured only", nil, bundleJSON(t, foreign, 5), 5, true, false, nil},
		{"stored newer", bundleJSON(t, foreign, 6), emptyBundle(t, 5), 6, true, false, nil},
		{"stored equal", bundleJSON(t, foreign, 5), emptyBundle(t, 5), 5, true, false, nil},
		{"stored equal, configured has keys", emptyBundle(t, 5), bundleJSON(t, foreign, 5), 5, true, true, nil},
		{"configured newer", emptyBundle(t, 5), bundleJSON(t, foreign, 7), 7, true, false, nil},
		{"stored without sequence", bundleJSON(t, foreign, -1), emptyBundle(t, 1), 1, true, true, nil},
		{"configured without sequence", emptyBundle(t, 4), bundleJSON(t, foreign, -1), 4, true, true, nil},
		{"stored corrupt", []byte("{"), bundleJSON(t, foreign, 3), 3, true, false, federation.ErrInvalidBundle},
		{"stored for another domain", bundleJSON(t, other, 8), nil, 0, false, false, federation.ErrWrongTrustDomain},
		{"none", nil, nil, 0, false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &federation.MemoryStore{}
			if tt.stored != nil {
				if err := store.Save(ctx, foreignTD, tt.stored); err != nil {
					t.Fatal(err)
				}
			}
			rec := &recorder{}
			p := federation.Peer{TrustDomain: foreignTD, EndpointURL: "https://bundle.foreign.test/", Bundle: tt.configured}
			s := newSet(t, newFakeClock(), rec, store, nil, p)
			st := s.Status()[0]
			if st.HasBundle != tt.wantBundle || st.Sequence != tt.wantSeq {
				t.Errorf("status %+v, want bundle %v sequence %d", st, tt.wantBundle, tt.wantSeq)
			}
			refusals := rec.gotRefusals()
			switch {
			case tt.refusal == nil && len(refusals) != 0:
				t.Errorf("refusals %v", refusals)
			case tt.refusal != nil && (len(refusals) != 1 || !errors.Is(refusals[0].err, tt.refusal)):
				t.Errorf("refusals %v, want one with %v", refusals, tt.refusal)
			}
			x, err := s.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString(foreignTD))
			if tt.wantBundle != (err == nil) || (!tt.wantBundle && !errors.Is(err, federation.ErrNoBundle)) {
				t.Fatalf("GetX509BundleForTrustDomain: %v", err)
			}
			if tt.wantBundle && tt.wantEmpty != x.Empty() {
				t.Errorf("bundle in use has %d X.509 authorities, want empty %v", len(x.X509Authorities()), tt.wantEmpty)
			}
		})
	}
}

// failingStore fails every Load.
type failingStore struct{ federation.MemoryStore }

func (*failingStore) Load(context.Context, string) ([]byte, error) {
	return nil, errors.New("disk on fire")
}

func TestNewFailsOnStoreError(t *testing.T) {
	p := federation.Peer{TrustDomain: foreignTD, EndpointURL: "https://bundle.foreign.test/"}
	_, err := federation.New(context.Background(), setConfig(newFakeClock(), nil, &failingStore{}, nil, p))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("New: err = %v", err)
	}
}

// TestLowerSequenceDoesNotReplace checks a rollback after an update: the
// higher bundle stays, is not overwritten in the store, and its SVIDs keep
// validating.
func TestLowerSequenceDoesNotReplace(t *testing.T) {
	ctx := context.Background()
	foreign := newCA(t, foreignTD, 0)
	e := newWebEndpoint(t, serve(200, bundleJSON(t, foreign, 20)))
	store := &federation.MemoryStore{}
	rec := &recorder{}
	s := newSet(t, newFakeClock(), rec, store, nil, webPeer(e))
	if err := s.Refresh(ctx, foreignTD); err != nil {
		t.Fatal(err)
	}
	e.set(serve(200, emptyBundle(t, 19)))
	if err := s.Refresh(ctx, foreignTD); !errors.Is(err, federation.ErrRollback) {
		t.Fatalf("err = %v, want ErrRollback", err)
	}
	saved, _ := store.Load(ctx, foreignTD)
	if b, err := ca.ParseBundle(foreignTD, saved); err != nil || len(b.X509) == 0 {
		t.Errorf("stored bundle replaced by the rolled back one: %s", saved)
	}
	if st := s.Status()[0]; st.Sequence != 20 {
		t.Errorf("sequence %d, want 20", st.Sequence)
	}
	if got := rec.gotUpdates(); !slices.Equal(got, []uint64{20}) {
		t.Errorf("updates %v", got)
	}
}
