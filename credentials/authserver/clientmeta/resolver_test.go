package clientmeta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/oauth/fetch"
)

// docServer is a TLS server whose handler the test sets, with a request
// counter.
type docServer struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	h    func(w http.ResponseWriter, r *http.Request)
}

func newDocServer(t testing.TB) *docServer {
	t.Helper()
	d := &docServer{}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		d.mu.Lock()
		h := d.h
		d.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(d.srv.Close)
	d.set(d.document(""))
	return d
}

func (d *docServer) set(h func(w http.ResponseWriter, r *http.Request)) {
	d.mu.Lock()
	d.h = h
	d.mu.Unlock()
}

// document serves a valid document for the requested URL, with optional
// Cache-Control.
func (d *docServer) document(cacheControl string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"App","redirect_uris":["http://127.0.0.1/cb"]}`, d.srv.URL+r.URL.RequestURI())
	}
}

func (d *docServer) fetcher() *fetch.Fetcher {
	return fetch.New(fetch.Config{Client: d.srv.Client(), AllowPrivate: true, Timeout: 2 * time.Second})
}

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func jsonHandler(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestResolve(t *testing.T) {
	other := newDocServer(t)
	tests := []struct {
		name    string
		path    string
		handler func(d *docServer) func(w http.ResponseWriter, r *http.Request)
		want    []error
	}{
		{name: "ok", path: "/client.json"},
		{name: "ok with query", path: "/client?v=2"},
		{name: "client_id mismatch", path: "/client.json", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"https://other.example/client.json","client_name":"A","redirect_uris":["https://a/cb"]}`)
		}, want: []error{ErrInvalidClientMetadata}},
		{name: "trailing slash mismatch", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client/","client_name":"A","redirect_uris":["https://a/cb"]}`)
		}, want: []error{ErrInvalidClientMetadata}},
		{name: "secret present", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client","client_name":"A","redirect_uris":["https://a/cb"],"client_secret":"s"}`)
		}, want: []error{ErrInvalidClientMetadata}},
		{name: "secret auth method", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client","client_name":"A","redirect_uris":["https://a/cb"],"token_endpoint_auth_method":"client_secret_post"}`)
		}, want: []error{ErrInvalidClientMetadata}},
		{name: "bad redirect URI", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client","client_name":"A","redirect_uris":["https://a/cb#x"]}`)
		}, want: []error{ErrInvalidRedirectURI}},
		{name: "duplicate members", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client","client_id":"x","client_name":"A","redirect_uris":["https://a/cb"]}`)
		}, want: []error{ErrInvalidClientMetadata}},
		{name: "same-origin redirect refused", path: "/moved", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					http.Redirect(w, r, "/client", http.StatusMovedPermanently)
					return
				}
				d.document("")(w, r)
			}
		}, want: []error{fetch.ErrRedirect}},
		{name: "cross-origin redirect refused", path: "/moved", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.srv.URL+"/client", http.StatusFound)
			}
		}, want: []error{fetch.ErrRedirect}},
		{name: "404", path: "/client", handler: func(*docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(404, `{"error":"not found"}`)
		}, want: []error{fetch.ErrStatus}},
		{name: "203 is not 200", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(203, `{"client_id":"`+d.srv.URL+`/client","client_name":"A","redirect_uris":["https://a/cb"]}`)
		}, want: []error{fetch.ErrStatus}},
		{name: "larger than 5 KiB", path: "/client", handler: func(d *docServer) func(http.ResponseWriter, *http.Request) {
			return jsonHandler(200, `{"client_id":"`+d.srv.URL+`/client","client_name":"A","redirect_uris":["https://a/cb"],"pad":"`+
				strings.Repeat("p", MaxDocumentSize)+`"}`)
		}, want: []error{fetch.ErrTooLarge}},
		{name: "not JSON", path: "/client", handler: func(*docServer) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html></html>"))
			}
		}, want: []error{fetch.ErrBadJSON}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDocServer(t)
			if tt.handler != nil {
				d.set(tt.handler(d))
			}
			r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
			id := d.srv.URL + tt.path
			md, err := r.Resolve(t.Context(), id)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if md.ClientID != id || md.ClientName != "App" || md.TokenEndpointAuthMethod != "none" {
					t.Fatalf("metadata %+v", md)
				}
				return
			}
			if err == nil {
				t.Fatalf("resolved %+v", md)
			}
			if !errors.Is(err, ErrInvalidClient) {
				t.Errorf("error %v does not wrap ErrInvalidClient", err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not wrap %v", err, w)
				}
			}
			if r.Len() != 0 {
				t.Errorf("a failure was cached")
			}
		})
	}
}

func TestResolveRefusesBeforeFetching(t *testing.T) {
	d := newDocServer(t)
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
	for _, id := range []string{
		strings.Replace(d.srv.URL, "https://", "http://", 1) + "/client",
		d.srv.URL,
		d.srv.URL + "/a/../client",
		d.srv.URL + "/client#x",
		"dyn-123",
	} {
		if _, err := r.Resolve(t.Context(), id); !errors.Is(err, ErrInvalidClient) {
			t.Errorf("Resolve(%q) = %v, want ErrInvalidClient", id, err)
		}
	}
	if n := d.hits.Load(); n != 0 {
		t.Fatalf("server saw %d requests", n)
	}
}

func TestResolvePrivateAddress(t *testing.T) {
	d := newDocServer(t)
	// The default fetcher refuses the loopback test server.
	r := NewResolver(ResolverConfig{Fetcher: fetch.New(fetch.Config{Client: d.srv.Client()})})
	_, err := r.Resolve(t.Context(), d.srv.URL+"/client")
	if !errors.Is(err, ErrInvalidClient) || !errors.Is(err, fetch.ErrPrivateAddress) {
		t.Fatalf("error %v: want ErrInvalidClient and fetch.ErrPrivateAddress", err)
	}
	// A zero config builds its own fetcher, which refuses it too.
	_, err = NewResolver(ResolverConfig{}).Resolve(t.Context(), d.srv.URL+"/client")
	if !errors.Is(err, fetch.ErrPrivateAddress) {
		t.Fatalf("zero config: error %v, want fetch.ErrPrivateAddress", err)
	}
	if n := d.hits.Load(); n != 0 {
		t.Fatalf("server saw %d requests", n)
	}
}

func TestResolveCache(t *testing.T) {
	type step struct {
		advance time.Duration
		path    string
		hits    int32 // server hits after this step
	}
	tests := []struct {
		name         string
		cacheControl string
		age          string
		cfg          ResolverConfig
		steps        []step
	}{
		{name: "default TTL", steps: []step{
			{0, "/a", 1}, {0, "/a", 1}, {4 * time.Minute, "/a", 1}, {61 * time.Second, "/a", 2}, {0, "/a", 2},
		}},
		{name: "configured TTL", cfg: ResolverConfig{CacheTTL: time.Minute}, steps: []step{
			{0, "/a", 1}, {59 * time.Second, "/a", 1}, {time.Second, "/a", 2},
		}},
		{name: "shorter max-age wins", cacheControl: "public, max-age=30", steps: []step{
			{0, "/a", 1}, {29 * time.Second, "/a", 1}, {time.Second, "/a", 2},
		}},
		{name: "longer max-age is capped", cacheControl: "max-age=86400", steps: []step{
			{0, "/a", 1}, {5 * time.Minute, "/a", 2},
		}},
		{name: "age counts", cacheControl: "max-age=60", age: "50", steps: []step{
			{0, "/a", 1}, {9 * time.Second, "/a", 1}, {time.Second, "/a", 2},
		}},
		{name: "no-store", cacheControl: "no-store", steps: []step{{0, "/a", 1}, {0, "/a", 2}}},
		{name: "no-cache", cacheControl: "No-Cache", steps: []step{{0, "/a", 1}, {0, "/a", 2}}},
		{name: "max-age=0", cacheControl: "max-age=0", steps: []step{{0, "/a", 1}, {0, "/a", 2}}},
		{name: "malformed max-age", cacheControl: "max-age=soon", steps: []step{{0, "/a", 1}, {0, "/a", 2}}},
		{name: "cache disabled", cfg: ResolverConfig{CacheTTL: -1}, steps: []step{{0, "/a", 1}, {0, "/a", 2}}},
		{name: "documents are cached separately", steps: []step{
			{0, "/a", 1}, {0, "/b", 2}, {0, "/a", 2}, {0, "/b", 2},
		}},
		{name: "least recently used is evicted", cfg: ResolverConfig{MaxEntries: 2}, steps: []step{
			{0, "/a", 1}, {0, "/b", 2}, {0, "/a", 2}, {0, "/c", 3}, // b is evicted
			{0, "/a", 3}, {0, "/c", 3}, {0, "/b", 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDocServer(t)
			doc := d.document(tt.cacheControl)
			d.set(func(w http.ResponseWriter, r *http.Request) {
				if tt.age != "" {
					w.Header().Set("Age", tt.age)
				}
				doc(w, r)
			})
			clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			cfg := tt.cfg
			cfg.Fetcher, cfg.Now = d.fetcher(), clk.Now
			r := NewResolver(cfg)
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				md, err := r.Resolve(t.Context(), d.srv.URL+s.path)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if md.ClientID != d.srv.URL+s.path {
					t.Fatalf("step %d: got document of %s", i, md.ClientID)
				}
				if got := d.hits.Load(); got != s.hits {
					t.Fatalf("step %d: %d fetches, want %d", i, got, s.hits)
				}
			}
		})
	}
}

func TestResolveFailuresAreNotCached(t *testing.T) {
	d := newDocServer(t)
	d.set(jsonHandler(500, `{}`))
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
	id := d.srv.URL + "/client"
	if _, err := r.Resolve(t.Context(), id); !errors.Is(err, fetch.ErrStatus) {
		t.Fatalf("first: %v", err)
	}
	d.set(d.document(""))
	if _, err := r.Resolve(t.Context(), id); err != nil {
		t.Fatalf("second: %v", err)
	}
	if n := d.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestResolveReturnsCopies(t *testing.T) {
	d := newDocServer(t)
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
	id := d.srv.URL + "/client"
	md, err := r.Resolve(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	md.RedirectURIs[0] = "https://evil.example/cb"
	md.ClientName = "Evil"
	md2, err := r.Resolve(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if md2.RedirectURIs[0] != "http://127.0.0.1/cb" || md2.ClientName != "App" {
		t.Fatalf("cached document was modified through a result: %+v", md2)
	}
	if d.hits.Load() != 1 {
		t.Fatal("second resolve was not served from the cache")
	}
}

func TestResolveCanceled(t *testing.T) {
	d := newDocServer(t)
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.Resolve(ctx, d.srv.URL+"/client")
	if !errors.Is(err, ErrInvalidClient) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v: want ErrInvalidClient and context.Canceled", err)
	}
}

func TestResolveConcurrent(t *testing.T) {
	d := newDocServer(t)
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher(), MaxEntries: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			id := fmt.Sprintf("%s/c%d", d.srv.URL, i%5)
			md, err := r.Resolve(t.Context(), id)
			if err == nil && md.ClientID != id {
				err = fmt.Errorf("got %s for %s", md.ClientID, id)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() > 3 {
		t.Fatalf("cache holds %d entries, bound is 3", r.Len())
	}
}

func TestFreshness(t *testing.T) {
	const limit = 5 * time.Minute
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, limit},
		{"max-age shorter", http.Header{"Cache-Control": {"max-age=10"}}, 10 * time.Second},
		{"max-age longer", http.Header{"Cache-Control": {"max-age=3600"}}, limit},
		{"quoted", http.Header{"Cache-Control": {`max-age="20"`}}, 20 * time.Second},
		{"case and spaces", http.Header{"Cache-Control": {"public , MAX-AGE = 30"}}, 30 * time.Second},
		{"two lines, smallest wins", http.Header{"Cache-Control": {"max-age=40", "max-age=25"}}, 25 * time.Second},
		{"age subtracted", http.Header{"Cache-Control": {"max-age=40"}, "Age": {"15"}}, 25 * time.Second},
		{"age beyond max-age", http.Header{"Cache-Control": {"max-age=40"}, "Age": {"50"}}, 0},
		{"malformed age ignored", http.Header{"Cache-Control": {"max-age=40"}, "Age": {"x"}}, 40 * time.Second},
		{"huge max-age", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, limit},
		{"no-store", http.Header{"Cache-Control": {"max-age=60, no-store"}}, 0},
		{"no-cache", http.Header{"Cache-Control": {"no-cache"}}, 0},
		{"negative max-age", http.Header{"Cache-Control": {"max-age=-1"}}, 0},
		{"empty max-age", http.Header{"Cache-Control": {"max-age="}}, 0},
		{"private is fine", http.Header{"Cache-Control": {"private"}}, limit},
	}
	for _, tt := range tests {
		if got := freshness(tt.h, limit); got != tt.want {
			t.Errorf("%s: freshness = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := freshness(http.Header{}, 0); got != 0 {
		t.Errorf("zero limit: %v", got)
	}
}

func BenchmarkResolveCached(b *testing.B) {
	d := newDocServer(b)
	r := NewResolver(ResolverConfig{Fetcher: d.fetcher()})
	id := d.srv.URL + "/client"
	ctx := context.Background()
	if _, err := r.Resolve(ctx, id); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Resolve(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
