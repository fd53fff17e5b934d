package clientid_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/credentials"
	"github.com/agenthost/agenthost/credentials/jose"
	"github.com/agenthost/agenthost/credentials/oauth"
	"github.com/agenthost/agenthost/credentials/oauth/clientid"
)

func TestAutoOrder(t *testing.T) {
	const svid = "spiffe://host.example/agent/research"
	tests := []struct {
		name string
		// server: CIMD support, registration endpoint, auth methods.
		cimd, registration bool
		methods            []string
		// workload has a MetadataURL; a static client is configured.
		withURL, static bool
		wantMode        clientid.Mode
		wantClientID    string // "doc" for the document URL, "registered" for client-1
		wantType        string
	}{
		{name: "spiffe_jwt first", cimd: true, registration: true, withURL: true, static: true,
			methods: []string{oauth.AuthPrivateKeyJWT, oauth.AuthSPIFFEJWT}, wantMode: clientid.ModeSPIFFE, wantClientID: svid, wantType: oauth.AssertionJWTSPIFFE},
		{name: "cimd before registration", cimd: true, registration: true, withURL: true, static: true,
			methods: []string{oauth.AuthPrivateKeyJWT}, wantMode: clientid.ModeCIMD, wantClientID: "doc", wantType: oauth.AssertionJWTBearer},
		{name: "cimd needs a document URL", cimd: true, registration: true, static: true,
			methods: []string{oauth.AuthPrivateKeyJWT}, wantMode: clientid.ModeRegistration, wantClientID: "registered", wantType: oauth.AssertionJWTBearer},
		{name: "registration before static", registration: true, withURL: true, static: true,
			methods: []string{oauth.AuthPrivateKeyJWT}, wantMode: clientid.ModeRegistration, wantClientID: "registered", wantType: oauth.AssertionJWTBearer},
		{name: "static", withURL: true, static: true,
			methods: []string{oauth.AuthPrivateKeyJWT}, wantMode: clientid.ModeStatic, wantClientID: "static-research", wantType: oauth.AssertionJWTBearer},
		{name: "JWT-SVID as the last resort", withURL: true,
			methods: []string{oauth.AuthPrivateKeyJWT}, wantMode: clientid.ModeSPIFFE, wantClientID: svid, wantType: ""},
		{name: "no metadata about methods", wantMode: clientid.ModeSPIFFE, wantClientID: svid, wantType: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The issuer is only known once the server runs: make the
			// server first, then the host with its settings.
			as := newAS(t, nil)
			cfg := clientid.Config{}
			if tt.static {
				cfg.Servers = map[string]clientid.ServerConfig{as.srv.URL: {
					Static: map[string]clientid.StaticClient{"research": {ClientID: "static-research"}}}}
			}
			cfg.HTTPClient = as.srv.Client()
			h := newHost(t, cfg)
			as.fetch = h.srv.Client()
			if !tt.withURL {
				w := h.workload("research")
				w.MetadataURL = ""
				if err := h.m.Put(w); err != nil {
					t.Fatal(err)
				}
			}
			md := as.metadata(tt.cimd, tt.registration, tt.methods...)
			id, err := h.m.Resolve(context.Background(), md, "research")
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantClientID
			switch want {
			case "doc":
				want = h.docURL("research")
			case "registered":
				want = "client-1"
			}
			if id.Mode != tt.wantMode || id.ClientID != want || id.AssertionType != tt.wantType || id.Issuer != as.srv.URL || id.Workload != "research" {
				t.Fatalf("identity %+v, want mode %s, client_id %s, type %q", id, tt.wantMode, want, tt.wantType)
			}
			if id.UsesSVID() != (id.Assertion() == nil) {
				t.Fatal("UsesSVID disagrees with Assertion")
			}
			if tt.wantMode == clientid.ModeSPIFFE {
				return
			}
			if _, err := tokenWith(t, as, md, id); err != nil && tt.wantMode != clientid.ModeStatic {
				t.Fatalf("token: %v", err)
			}
		})
	}
}

func TestForcedModes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		mode    clientid.Mode
		static  bool
		noURL   bool
		md      func(as *fakeAS) *oauth.ServerMetadata
		want    clientid.Mode
		wantErr error
		// the error names the server and this
		missing string
	}{
		{name: "spiffe over everything", mode: clientid.ModeSPIFFE, static: true,
			md: func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, true, oauth.AuthPrivateKeyJWT) }, want: clientid.ModeSPIFFE},
		{name: "cimd over spiffe_jwt", mode: clientid.ModeCIMD,
			md: func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(false, true, oauth.AuthSPIFFEJWT) }, want: clientid.ModeCIMD},
		{name: "cimd without a document URL", mode: clientid.ModeCIMD, noURL: true,
			md:      func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, false) },
			wantErr: clientid.ErrConfig, missing: "no metadata document URL"},
		{name: "registration without an endpoint", mode: clientid.ModeRegistration,
			md:      func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, false, oauth.AuthPrivateKeyJWT) },
			wantErr: clientid.ErrUnsupported, missing: "registration_endpoint"},
		{name: "registration over cimd", mode: clientid.ModeRegistration,
			md: func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, true, oauth.AuthSPIFFEJWT) }, want: clientid.ModeRegistration},
		{name: "static without a client", mode: clientid.ModeStatic,
			md:      func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, true) },
			wantErr: clientid.ErrConfig, missing: "no static client"},
		{name: "static over spiffe_jwt", mode: clientid.ModeStatic, static: true,
			md: func(as *fakeAS) *oauth.ServerMetadata { return as.metadata(true, true, oauth.AuthSPIFFEJWT) }, want: clientid.ModeStatic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAS(t, nil)
			sc := clientid.ServerConfig{Mode: tt.mode}
			if tt.static {
				sc.Static = map[string]clientid.StaticClient{"research": {ClientID: "static-research"}}
			}
			h := newHost(t, clientid.Config{HTTPClient: as.srv.Client(), Servers: map[string]clientid.ServerConfig{as.srv.URL: sc}})
			as.fetch = h.srv.Client()
			if tt.noURL {
				w := h.workload("research")
				w.MetadataURL = ""
				if err := h.m.Put(w); err != nil {
					t.Fatal(err)
				}
			}
			id, err := h.m.Resolve(ctx, tt.md(as), "research")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve: %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), as.srv.URL) || !strings.Contains(err.Error(), tt.missing) {
					t.Fatalf("error %q does not name the server and %q", err, tt.missing)
				}
				if as.registrations.Load() != 0 {
					t.Fatal("registered anyway")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Mode != tt.want {
				t.Fatalf("mode %s, want %s", id.Mode, tt.want)
			}
			if tt.mode == clientid.ModeSPIFFE && id.AssertionType != oauth.AssertionJWTSPIFFE {
				t.Fatalf("forced spiffe: assertion type %q", id.AssertionType)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	h := newHost(t, clientid.Config{})
	ctx := context.Background()
	if _, err := h.m.Resolve(ctx, nil, "research"); !errors.Is(err, clientid.ErrConfig) {
		t.Fatalf("nil metadata: %v", err)
	}
	if _, err := h.m.Resolve(ctx, &oauth.ServerMetadata{Issuer: "https://as.example"}, "nobody"); !errors.Is(err, clientid.ErrUnknownWorkload) {
		t.Fatalf("unknown workload: %v", err)
	}
}

func TestAssertion(t *testing.T) {
	h := newHost(t, clientid.Config{})
	ctx := context.Background()
	md := &oauth.ServerMetadata{Issuer: "https://as.example", ClientIDMetadataDocumentSupported: true}
	id, err := h.m.Resolve(ctx, md, "research")
	if err != nil {
		t.Fatal(err)
	}
	set, err := h.m.JWKS(ctx, "research")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := jose.ParseKeySet(set, 0)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) (*jose.Token, error) {
		return jose.Verify(ctx, tok, jose.VerifyOptions{Types: []jose.Typ{jose.TypJWT}, Keys: jose.StaticKeys(keys),
			RequireKID: true, Issuer: id.ClientID, Audience: md.Issuer, RequireSubject: true, Now: h.clock.Now})
	}
	a1, err := id.Assertion()(ctx, md.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := id.Assertion()(ctx, md.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := verify(a1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := verify(a2)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Subject != id.ClientID || v1.Claims["aud"] != md.Issuer || v1.ID == "" || v1.ID == v2.ID {
		t.Fatalf("claims %v / %v", v1.Claims, v2.Claims)
	}
	if !v1.IssuedAt.Equal(t0) || v1.ExpiresAt.Sub(v1.IssuedAt) > 60e9 || v1.ExpiresAt.Sub(v1.IssuedAt) <= 0 {
		t.Fatalf("iat %v exp %v", v1.IssuedAt, v1.ExpiresAt)
	}
	if _, ok := keys[v1.KID]; !ok {
		t.Fatalf("kid %q is not in the published set", v1.KID)
	}
	// Expired a minute later.
	h.clock.Advance(61e9)
	if _, err := verify(a1); !errors.Is(err, jose.ErrExpired) {
		t.Fatalf("after 61 s: %v, want expired", err)
	}
	// The client_id means nothing at another server: no assertion for it.
	for _, aud := range []string{"https://other.example", md.Issuer + "/", md.Issuer + "/token", ""} {
		if tok, err := id.Assertion()(ctx, aud); err == nil {
			t.Fatalf("assertion for audience %q: %s", aud, tok)
		}
	}
}

func TestClientConfig(t *testing.T) {
	h := newHost(t, clientid.Config{})
	ctx := context.Background()
	svidSource := func(context.Context, string) (string, error) { return "svid", nil }
	base := oauth.ClientConfig{ClientID: "old", Assertion: svidSource, AssertionType: "old"}

	id, err := h.m.Resolve(ctx, &oauth.ServerMetadata{Issuer: "https://as.example", TokenEndpointAuthMethodsSupported: []string{oauth.AuthSPIFFEJWT}}, "research")
	if err != nil {
		t.Fatal(err)
	}
	cfg := id.ClientConfig(base)
	if got, _ := cfg.Assertion(ctx, "x"); got != "svid" || cfg.ClientID != "spiffe://host.example/agent/research" || cfg.AssertionType != oauth.AssertionJWTSPIFFE {
		t.Fatalf("spiffe: %+v", cfg)
	}

	id, err = h.m.Resolve(ctx, &oauth.ServerMetadata{Issuer: "https://as.example", ClientIDMetadataDocumentSupported: true}, "research")
	if err != nil {
		t.Fatal(err)
	}
	cfg = id.ClientConfig(base)
	got, err := cfg.Assertion(ctx, "https://as.example")
	if err != nil || got == "svid" || cfg.ClientID != h.docURL("research") || cfg.AssertionType != oauth.AssertionJWTBearer {
		t.Fatalf("cimd: %+v, %q, %v", cfg, got, err)
	}
}

func TestStatic(t *testing.T) {
	ctx := context.Background()
	own, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ownKID, err := jose.Thumbprint(own.Public())
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://as.example"
	h := newHost(t, clientid.Config{Servers: map[string]clientid.ServerConfig{issuer: {Mode: clientid.ModeStatic,
		Static: map[string]clientid.StaticClient{
			"research": {ClientID: "org-research", Key: own},
			"writer":   {ClientID: "org-writer"},
		}}}})
	if err := h.m.Put(h.workload("writer")); err != nil {
		t.Fatal(err)
	}
	md := &oauth.ServerMetadata{Issuer: issuer, ClientIDMetadataDocumentSupported: true,
		TokenEndpointAuthMethodsSupported: []string{oauth.AuthSPIFFEJWT}}
	writerSet, err := h.m.JWKS(ctx, "writer")
	if err != nil {
		t.Fatal(err)
	}
	writerKeys, err := jose.ParseKeySet(writerSet, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		workload, clientID string
		keys               map[string]crypto.PublicKey
	}{
		// A configured key signs, named by its thumbprint.
		{"research", "org-research", map[string]crypto.PublicKey{ownKID: own.Public()}},
		// Without one, the workload's own (published) key does.
		{"writer", "org-writer", writerKeys},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			id, err := h.m.Resolve(ctx, md, tt.workload)
			if err != nil {
				t.Fatal(err)
			}
			if id.Mode != clientid.ModeStatic || id.ClientID != tt.clientID || id.AssertionType != oauth.AssertionJWTBearer {
				t.Fatalf("identity %+v", id)
			}
			a, err := id.Assertion()(ctx, issuer)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jose.Verify(ctx, a, jose.VerifyOptions{Types: []jose.Typ{jose.TypJWT}, Keys: jose.StaticKeys(tt.keys),
				RequireKID: true, Issuer: tt.clientID, Audience: issuer, RequireSubject: true, Now: h.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if v.Subject != tt.clientID {
				t.Fatalf("sub %q", v.Subject)
			}
		})
	}
	// The research key is not the workload's: its JWK Set does not
	// publish the static client's key.
	researchSet, err := h.m.JWKS(ctx, "research")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(researchSet), ownKID) {
		t.Fatal("the static client's key is published as the workload's")
	}
}

func TestConfigErrors(t *testing.T) {
	good := func() clientid.Workload {
		return clientid.Workload{Name: "research", SPIFFEID: credentials.MustParseIdentity("spiffe://host.example/agent/research"),
			MetadataURL: "https://host.example/clients/research.json", JWKSURI: "https://host.example/clients/research/jwks.json"}
	}
	tests := []struct {
		name   string
		adjust func(w *clientid.Workload)
	}{
		{"http document URL", func(w *clientid.Workload) { w.MetadataURL = "http://host.example/clients/research.json" }},
		{"document URL with a query", func(w *clientid.Workload) { w.MetadataURL += "?v=1" }},
		{"document URL with a fragment", func(w *clientid.Workload) { w.MetadataURL += "#x" }},
		{"document URL with an empty fragment", func(w *clientid.Workload) { w.MetadataURL += "#" }},
		{"document URL with userinfo", func(w *clientid.Workload) { w.MetadataURL = "https://u:p@host.example/c.json" }},
		{"document URL without a path", func(w *clientid.Workload) { w.MetadataURL = "https://host.example" }},
		{"document URL with a dot segment", func(w *clientid.Workload) { w.MetadataURL = "https://host.example/a/../c.json" }},
		{"document URL with an encoded dot segment", func(w *clientid.Workload) { w.MetadataURL = "https://host.example/a/%2E%2e/c.json" }},
		{"document URL with port 0", func(w *clientid.Workload) { w.MetadataURL = "https://host.example:0/c.json" }},
		{"document URL not ASCII", func(w *clientid.Workload) { w.MetadataURL = "https://höst.example/c.json" }},
		{"document URL with a space", func(w *clientid.Workload) { w.MetadataURL = "https://host.example/a b.json" }},
		{"document URL too long", func(w *clientid.Workload) { w.MetadataURL = "https://host.example/" + strings.Repeat("a", 1100) }},
		{"relative document URL", func(w *clientid.Workload) { w.MetadataURL = "/clients/research.json" }},
		{"http JWK Set URL", func(w *clientid.Workload) { w.JWKSURI = "http://host.example/jwks.json" }},
		{"JWK Set URL with a query", func(w *clientid.Workload) { w.JWKSURI += "?a=b" }},
		{"JWK Set URL is the document URL", func(w *clientid.Workload) { w.JWKSURI = w.MetadataURL }},
		{"http redirect URI", func(w *clientid.Workload) { w.RedirectURIs = []string{"http://host.example/cb"} }},
		{"duplicate redirect URI", func(w *clientid.Workload) {
			w.RedirectURIs = []string{"https://host.example/cb", "https://host.example/cb"}
		}},
		{"empty name", func(w *clientid.Workload) { w.Name = "" }},
		{"name with a slash", func(w *clientid.Workload) { w.Name = "a/b" }},
		{"name ..", func(w *clientid.Workload) { w.Name = ".." }},
		{"no SPIFFE ID", func(w *clientid.Workload) { w.SPIFFEID = credentials.Identity{} }},
		{"WIMSE ID", func(w *clientid.Workload) {
			w.SPIFFEID = credentials.MustParseIdentity("wimse://host.example/agent/research")
		}},
		{"client name with a control character", func(w *clientid.Workload) { w.ClientName = "Agent\u202eevil" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := good()
			tt.adjust(&w)
			_, err := clientid.New(clientid.Config{Workloads: []clientid.Workload{w}})
			if !errors.Is(err, clientid.ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
	if _, err := clientid.New(clientid.Config{Workloads: []clientid.Workload{good()}}); err != nil {
		t.Fatalf("the good workload: %v", err)
	}
}

func TestCheckMetadataURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://host.example/clients/research.json":     true,
		"https://host.example:8443/c":                    true,
		"https://host.example/":                          true,
		"https://host.example/c?x=1":                     false,
		"https://host.example/c#":                        false,
		"http://host.example/c":                          false,
		"https://host.example/./c":                       false,
		"HTTPS://host.example/c":                         false,
		"https:///c":                                     false,
		"https://host.example/%2e/c":                     false,
		"https://host.example/c\\..\\d":                  false,
		"https://[::1]/c":                                true,
		"https://host.example:65536/c":                   false,
		"https://host.example:/c":                        false,
		"https://host.example:0443/c":                    false,
		"spiffe://host.example/agent/research":           false,
		"https://host.example/clients/research.json\x00": false,
	} {
		if err := clientid.CheckMetadataURL(u); (err == nil) != ok {
			t.Errorf("CheckMetadataURL(%q) = %v, want ok %v", u, err, ok)
		} else if err != nil && !errors.Is(err, clientid.ErrConfig) {
			t.Errorf("CheckMetadataURL(%q) = %v, not ErrConfig", u, err)
		}
	}
}

func TestPathConflicts(t *testing.T) {
	h := newHost(t, clientid.Config{})
	w := h.workload("writer")
	w.MetadataURL = h.docURL("research")
	if err := h.m.Put(w); !errors.Is(err, clientid.ErrConfig) {
		t.Fatalf("a second workload at research's document path: %v", err)
	}
	w = h.workload("writer")
	w.JWKSURI = h.docURL("research")
	if err := h.m.Put(w); !errors.Is(err, clientid.ErrConfig) {
		t.Fatalf("a JWK Set at research's document path: %v", err)
	}
	// research itself may move.
	r := h.workload("research")
	r.MetadataURL = h.srv.URL + "/moved/research.json"
	if err := h.m.Put(r); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Put(h.workload("writer")); err != nil {
		t.Fatal(err)
	}
	// The old path is free again and no longer served.
	resp, err := h.srv.Client().Get(h.docURL("research"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("old path: %d", resp.StatusCode)
	}
}

func TestServerConfigErrors(t *testing.T) {
	tests := map[string]map[string]clientid.ServerConfig{
		"unknown mode":         {"https://as.example": {Mode: "secret"}},
		"no issuer":            {"": {}},
		"static without id":    {"https://as.example": {Static: map[string]clientid.StaticClient{"research": {}}}},
		"static bad name":      {"https://as.example": {Static: map[string]clientid.StaticClient{"a/b": {ClientID: "x"}}}},
		"static id with a NUL": {"https://as.example": {Static: map[string]clientid.StaticClient{"research": {ClientID: "a\x00b"}}}},
	}
	for name, servers := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := clientid.New(clientid.Config{Servers: servers}); !errors.Is(err, clientid.ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
		})
	}
	for _, s := range []string{"", "auto", "spiffe", "cimd", "registration", "static"} {
		if _, err := clientid.ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q): %v", s, err)
		}
	}
	if _, err := clientid.ParseMode("Auto"); !errors.Is(err, clientid.ErrConfig) {
		t.Errorf("ParseMode(Auto): %v", err)
	}
}
