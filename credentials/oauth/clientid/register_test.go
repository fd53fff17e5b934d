package clientid_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/clientmeta"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

// registrationEnv is a host and a server that takes registrations only.
func registrationEnv(t *testing.T, sc clientid.ServerConfig, adjust func(*clientid.Config)) (*hostEnv, *fakeAS, *oauth.ServerMetadata) {
	t.Helper()
	as := newAS(t, nil)
	cfg := clientid.Config{HTTPClient: as.srv.Client(), Servers: map[string]clientid.ServerConfig{as.srv.URL: sc}}
	if adjust != nil {
		adjust(&cfg)
	}
	h := newHost(t, cfg)
	as.fetch = h.srv.Client()
	as.now = h.clock.Now
	return h, as, as.metadata(false, true, oauth.AuthPrivateKeyJWT)
}

func TestRegistrationRequest(t *testing.T) {
	tests := []struct {
		name     string
		jwksURI  bool
		iat      string
		wantAuth string
	}{
		{name: "jwks_uri", jwksURI: true},
		{name: "inline jwks", jwksURI: false},
		{name: "initial access token", jwksURI: true, iat: "iat-123", wantAuth: "Bearer iat-123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, as, md := registrationEnv(t, clientid.ServerConfig{InitialAccessToken: tt.iat}, nil)
			w := h.workload("research")
			if !tt.jwksURI {
				w.JWKSURI = ""
			}
			if err := h.m.Put(w); err != nil {
				t.Fatal(err)
			}
			id, err := h.m.Resolve(context.Background(), md, "research")
			if err != nil {
				t.Fatal(err)
			}
			if id.Mode != clientid.ModeRegistration || id.ClientID != "client-1" || id.AssertionType != oauth.AssertionJWTBearer {
				t.Fatalf("identity %+v", id)
			}
			as.mu.Lock()
			body, auth := as.regBody[0], as.regAuth[0]
			as.mu.Unlock()
			if auth != tt.wantAuth {
				t.Fatalf("Authorization %q, want %q", auth, tt.wantAuth)
			}
			want := map[string]any{
				"client_name": "Agent research", "token_endpoint_auth_method": "private_key_jwt", "application_type": "web",
				"grant_types": []any{oauth.GrantClientCredentials, oauth.GrantTokenExchange, oauth.GrantJWTBearer},
			}
			if tt.jwksURI {
				want["jwks_uri"] = w.JWKSURI
			}
			for k, v := range want {
				if fmt.Sprint(body[k]) != fmt.Sprint(v) {
					t.Errorf("%s = %v, want %v", k, body[k], v)
				}
			}
			for _, k := range []string{"redirect_uris", "client_secret", "response_types", "client_id"} {
				if _, ok := body[k]; ok {
					t.Errorf("the request has %s", k)
				}
			}
			if !tt.jwksURI {
				raw, _ := json.Marshal(body["jwks"])
				keys, err := jose.ParseKeySet(raw, 0)
				if err != nil || len(keys) != 1 {
					t.Fatalf("jwks %s: %v", raw, err)
				}
				set, _ := h.m.JWKS(context.Background(), "research")
				if string(raw) != string(set) {
					t.Fatalf("jwks %s, published %s", raw, set)
				}
			}
			// The client authenticates as registered.
			if _, err := tokenWith(t, as, md, id); err != nil {
				t.Fatal(err)
			}
			reg, err := h.regs.Load(context.Background(), as.srv.URL, "research")
			if err != nil {
				t.Fatal(err)
			}
			if reg.ClientID != "client-1" || reg.RegistrationAccessToken != "rat-client-1" ||
				reg.RegistrationClientURI != as.srv.URL+"/register/client-1" || reg.ClientIDIssuedAt != t0.Unix() ||
				!reg.RegisteredAt.Equal(t0) || reg.Renewed || reg.JWKSURI != w.JWKSURI || reg.KeyID == "" {
				t.Fatalf("saved %+v", reg)
			}
		})
	}
}

// The request validates as RFC 7591 client metadata (the fake server
// checks with clientmeta), and a server that refuses it is reported with
// its error code.
func TestRegistrationRefusedMetadata(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
	as.register = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		m, err := clientmeta.Parse(body, 0)
		if err == nil {
			// The embedded server's default policy: no client_credentials.
			err = clientmeta.Policy{}.ValidateRegistration(m)
		}
		var ce *clientmeta.Error
		if errors.As(err, &ce) {
			oauth.WriteError(w, ce.OAuth())
			return true
		}
		t.Errorf("the default policy took the request: %v", err)
		return false
	}
	_, err := h.m.Resolve(context.Background(), md, "research")
	if !errors.Is(err, clientid.ErrRegistration) || !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClientMetadata}) {
		t.Fatalf("Resolve: %v, want a registration error with invalid_client_metadata", err)
	}
	if !strings.Contains(err.Error(), as.srv.URL) {
		t.Fatalf("the error does not name the server: %v", err)
	}
}

func TestRegistrationPersists(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
	ctx := context.Background()
	first, err := h.m.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.m.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	if again.ClientID != first.ClientID || as.registrations.Load() != 1 {
		t.Fatalf("second Resolve: client %q after %d registrations", again.ClientID, as.registrations.Load())
	}
	// A restarted host with the same stores.
	restarted := h.manager(t, clientid.Config{Keys: h.keys, Registrations: h.regs, HTTPClient: as.srv.Client(),
		Workloads: []clientid.Workload{h.workload("research")}, Now: h.clock.Now})
	id, err := restarted.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	if id.ClientID != first.ClientID || as.registrations.Load() != 1 {
		t.Fatalf("after restart: client %q after %d registrations", id.ClientID, as.registrations.Load())
	}
	if _, err := tokenWith(t, as, md, id); err != nil {
		t.Fatal(err)
	}
	// Another server is another registration.
	other := newAS(t, h.srv.Client())
	if _, err := restarted.Resolve(ctx, other.metadata(false, true), "research"); err != nil {
		t.Fatal(err)
	}
	if other.registrations.Load() != 1 || as.registrations.Load() != 1 {
		t.Fatalf("registrations: %d at the other server, %d at the first", other.registrations.Load(), as.registrations.Load())
	}
}

func TestRegistrationConcurrent(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			id, err := h.m.Resolve(context.Background(), md, "research")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id.ClientID
		})
	}
	wg.Wait()
	if as.registrations.Load() != 1 {
		t.Fatalf("%d registrations for one workload", as.registrations.Load())
	}
	for _, id := range ids {
		if id != "client-1" {
			t.Fatalf("client ids %v", ids)
		}
	}
}

// A kept registration of an inline key that is no longer the workload's
// is registered again; one by jwks_uri follows the set it names.
func TestRegistrationKeyChange(t *testing.T) {
	ctx := context.Background()
	for _, byURL := range []bool{false, true} {
		t.Run(fmt.Sprintf("jwks_uri=%v", byURL), func(t *testing.T) {
			h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
			w := h.workload("research")
			if !byURL {
				w.JWKSURI = ""
			}
			if err := h.m.Put(w); err != nil {
				t.Fatal(err)
			}
			if _, err := h.m.Resolve(ctx, md, "research"); err != nil {
				t.Fatal(err)
			}
			// The key store was lost; registrations were kept.
			m := h.manager(t, clientid.Config{Keys: clientid.NewMemoryKeyStore(), Registrations: h.regs,
				HTTPClient: as.srv.Client(), Workloads: []clientid.Workload{w}, Now: h.clock.Now})
			id, err := m.Resolve(ctx, md, "research")
			if err != nil {
				t.Fatal(err)
			}
			want, wantN := "client-2", int32(2)
			if byURL {
				want, wantN = "client-1", 1
			}
			if id.ClientID != want || as.registrations.Load() != wantN {
				t.Fatalf("client %q after %d registrations, want %q after %d", id.ClientID, as.registrations.Load(), want, wantN)
			}
			if _, err := tokenWith(t, as, md, id); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A server that forgot the client answers invalid_client: the caller
// has it registered again, once.
func TestRejectedRegistersOnce(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, func(c *clientid.Config) { c.ReregisterAfter = time.Hour })
	ctx := context.Background()
	id, err := h.m.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	as.refuse(id.ClientID)
	_, err = tokenWith(t, as, md, id)
	if !errors.Is(err, &oauth.Error{Code: oauth.CodeInvalidClient}) {
		t.Fatalf("token with a forgotten client: %v", err)
	}
	renewed, err := h.m.Rejected(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.ClientID == id.ClientID || as.registrations.Load() != 2 {
		t.Fatalf("renewed client %q after %d registrations", renewed.ClientID, as.registrations.Load())
	}
	if _, err := tokenWith(t, as, md, renewed); err != nil {
		t.Fatal(err)
	}
	// Resolve gives the new registration, here and after a restart.
	if again, err := h.m.Resolve(ctx, md, "research"); err != nil || again.ClientID != renewed.ClientID {
		t.Fatalf("Resolve after renewal: %v, %v", again, err)
	}
	reg, err := h.regs.Load(ctx, as.srv.URL, "research")
	if err != nil || reg.ClientID != renewed.ClientID || !reg.Renewed {
		t.Fatalf("saved %+v, %v", reg, err)
	}
	// A late caller with the old identity gets the replacement, without
	// another registration.
	late, err := h.m.Rejected(ctx, id)
	if err != nil || late.ClientID != renewed.ClientID || as.registrations.Load() != 2 {
		t.Fatalf("late Rejected: %v, %v after %d registrations", late, err, as.registrations.Load())
	}

	// The server refuses the new one too: no third registration.
	as.refuse(renewed.ClientID)
	_, err = h.m.Rejected(ctx, renewed)
	if !errors.Is(err, clientid.ErrRejected) || !strings.Contains(err.Error(), as.srv.URL) {
		t.Fatalf("second refusal: %v, want ErrRejected naming the server", err)
	}
	if as.registrations.Load() != 2 {
		t.Fatalf("%d registrations", as.registrations.Load())
	}
	// Once ReregisterAfter has passed, a refusal is answered again.
	h.clock.Advance(time.Hour + time.Second)
	third, err := h.m.Rejected(ctx, renewed)
	if err != nil || as.registrations.Load() != 3 {
		t.Fatalf("after an hour: %v after %d registrations", err, as.registrations.Load())
	}
	if _, err := tokenWith(t, as, md, third); err != nil {
		t.Fatal(err)
	}
}

func TestRejectedConcurrent(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
	ctx := context.Background()
	id, err := h.m.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			r, err := h.m.Rejected(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r.ClientID
		})
	}
	wg.Wait()
	if as.registrations.Load() != 2 {
		t.Fatalf("%d registrations", as.registrations.Load())
	}
	for _, c := range got {
		if c != "client-2" {
			t.Fatalf("client ids %v", got)
		}
	}
}

func TestRejectedOtherModes(t *testing.T) {
	h := newHost(t, clientid.Config{})
	ctx := context.Background()
	for _, md := range []*oauth.ServerMetadata{
		{Issuer: "https://as.example", ClientIDMetadataDocumentSupported: true},
		{Issuer: "https://as.example", TokenEndpointAuthMethodsSupported: []string{oauth.AuthSPIFFEJWT}},
	} {
		id, err := h.m.Resolve(ctx, md, "research")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.m.Rejected(ctx, id); !errors.Is(err, clientid.ErrRejected) {
			t.Fatalf("Rejected(%s): %v", id.Mode, err)
		}
	}
	if _, err := h.m.Rejected(ctx, &clientid.Identity{Mode: clientid.ModeRegistration}); !errors.Is(err, clientid.ErrRejected) {
		t.Fatalf("Rejected of a made-up identity: %v", err)
	}
}

// failingRegistrations fails every Load with a store error.
type failingRegistrations struct{ clientid.RegistrationStore }

func (failingRegistrations) Load(context.Context, string, string) (*clientid.Registration, error) {
	return nil, errors.New("disk on fire")
}

// A store that cannot say whether a registration exists does not lead
// to a second registration.
func TestRegistrationStoreFailure(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, func(c *clientid.Config) {
		c.Registrations = failingRegistrations{clientid.NewMemoryRegistrationStore()}
	})
	if _, err := h.m.Resolve(context.Background(), md, "research"); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Resolve: %v", err)
	}
	if as.registrations.Load() != 0 {
		t.Fatal("registered without knowing whether a registration exists")
	}
}

func TestRegistrationBadResponses(t *testing.T) {
	type answer func(w http.ResponseWriter, r *http.Request)
	created := func(members map[string]any) answer {
		return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusCreated, members) }
	}
	// elsewhere is where a redirect points: it must never be reached.
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhereHits.Add(1)
		writeJSON(w, http.StatusCreated, map[string]any{"client_id": "stolen"})
	}))
	t.Cleanup(elsewhere.Close)

	tests := []struct {
		name     string
		answer   answer
		endpoint func(as *fakeAS) string
		want     string
	}{
		{name: "400 with an OAuth error", answer: func(w http.ResponseWriter, r *http.Request) {
			oauth.WriteError(w, oauth.Errorf(oauth.CodeInvalidClientMetadata, "no"))
		}, want: "invalid_client_metadata"},
		{name: "500 without an error", answer: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, want: "answered 500"},
		{name: "202", answer: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusAccepted, map[string]any{"client_id": "c"})
		}, want: "answered 202"},
		{name: "redirect", answer: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/register", http.StatusTemporaryRedirect)
		}, want: "redirects are not followed"},
		{name: "no client_id", answer: created(map[string]any{"client_name": "x"}), want: "client_id empty"},
		{name: "empty client_id", answer: created(map[string]any{"client_id": ""}), want: "client_id empty"},
		{name: "client_id of the wrong type", answer: created(map[string]any{"client_id": 42}), want: "not a JSON object of client information"},
		{name: "https client_id", answer: created(map[string]any{"client_id": "https://evil.example/cimd.json"}), want: "https URL"},
		{name: "HTTPS client_id", answer: created(map[string]any{"client_id": "HTTPS://evil.example/cimd.json"}), want: "https URL"},
		{name: "client_id with a control character", answer: created(map[string]any{"client_id": "a\nb"}), want: "outside"},
		{name: "client_id too long", answer: created(map[string]any{"client_id": strings.Repeat("a", 1025)}), want: "longer than"},
		{name: "secret method", answer: created(map[string]any{"client_id": "c", "token_endpoint_auth_method": "client_secret_basic"}),
			want: "not private_key_jwt"},
		{name: "http management URI", answer: created(map[string]any{"client_id": "c", "registration_client_uri": "http://as.example/c"}),
			want: "registration_client_uri"},
		{name: "huge registration access token", answer: created(map[string]any{"client_id": "c", "registration_access_token": strings.Repeat("t", 5000)}),
			want: "registration_access_token"},
		{name: "oversized body", answer: created(map[string]any{"client_id": "c", "padding": strings.Repeat("p", 70<<10)}),
			want: "exceeds"},
		{name: "oversized body without length", answer: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"client_id":"c","padding":"`))
			for range 80 {
				_, _ = w.Write([]byte(strings.Repeat("p", 1<<10)))
				w.(http.Flusher).Flush()
			}
			_, _ = w.Write([]byte(`"}`))
		}, want: "exceeds"},
		{name: "not JSON", answer: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"client_id":"c"}`))
		}, want: "not JSON"},
		{name: "JSON array", answer: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`[{"client_id":"c"}]`))
		}, want: "not a JSON object"},
		{name: "trailing data", answer: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"client_id":"c"}{"client_id":"d"}`))
		}, want: "not a JSON object"},
		{name: "http endpoint", endpoint: func(as *fakeAS) string { return "http://" + strings.TrimPrefix(as.srv.URL, "https://") + "/register" },
			want: "not an https URL"},
		{name: "endpoint with a fragment", endpoint: func(as *fakeAS) string { return as.srv.URL + "/register#x" },
			want: "not an acceptable URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
			as.register = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				tt.answer(w, r)
				return true
			}
			if tt.endpoint != nil {
				md.RegistrationEndpoint = tt.endpoint(as)
			}
			id, err := h.m.Resolve(context.Background(), md, "research")
			if !errors.Is(err, clientid.ErrRegistration) {
				t.Fatalf("Resolve: %+v, %v; want ErrRegistration", id, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), as.srv.URL) {
				t.Fatalf("error %q: want it to name the server and say %q", err, tt.want)
			}
			if _, err := h.regs.Load(context.Background(), as.srv.URL, "research"); err == nil {
				t.Fatal("a refused registration was saved")
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Fatalf("the redirect target was reached %d times", n)
	}
}

// 200 is taken like 201 (some servers answer so).
func TestRegistration200(t *testing.T) {
	h, as, md := registrationEnv(t, clientid.ServerConfig{}, nil)
	as.register = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		// client_id_issued_at is informational: a malformed one is
		// dropped.
		writeJSON(w, http.StatusOK, map[string]any{"client_id": "plain-id", "client_id_issued_at": 1.5})
		return true
	}
	id, err := h.m.Resolve(context.Background(), md, "research")
	if err != nil || id.ClientID != "plain-id" {
		t.Fatalf("Resolve: %+v, %v", id, err)
	}
	reg, err := h.regs.Load(context.Background(), as.srv.URL, "research")
	if err != nil || reg.ClientIDIssuedAt != 0 {
		t.Fatalf("saved %+v, %v", reg, err)
	}
}

func TestRegistrationAllowHTTP(t *testing.T) {
	as := newAS(t, nil)
	plain := httptest.NewServer(as.srv.Config.Handler)
	t.Cleanup(plain.Close)
	h := newHost(t, clientid.Config{AllowHTTP: true})
	md := as.metadata(false, true)
	md.RegistrationEndpoint = plain.URL + "/register"
	id, err := h.m.Resolve(context.Background(), md, "research")
	if err != nil || id.Mode != clientid.ModeRegistration {
		t.Fatalf("Resolve: %+v, %v", id, err)
	}
}
