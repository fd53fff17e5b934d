package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testServer serves the paths the table uses.
func testServer(t testing.TB, other string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, ct, body string) {
		if ct == "" {
			w.Header()["Content-Type"] = nil // no sniffing
		} else {
			w.Header().Set("Content-Type", ct)
		}
		_, _ = w.Write([]byte(body))
	}
	mux.HandleFunc("/doc", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "" {
			w.Header().Set("X-No-Accept", "1")
		}
		writeJSON(w, "application/json", `{"name":"doc","n":1}`)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/jwk-set+json; charset=utf-8", ` {"keys":[]} `+"\n")
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "text/html", `{"name":"doc"}`)
	})
	mux.HandleFunc("/plusjson-empty", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/+json", `{"name":"doc"}`)
	})
	mux.HandleFunc("/noctype", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "", `{"name":"doc"}`)
	})
	mux.HandleFunc("/trailing", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `{"name":"doc"} garbage`)
	})
	mux.HandleFunc("/two", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `{"a":1}{"b":2}`)
	})
	mux.HandleFunc("/array", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `[{"a":1}]`)
	})
	mux.HandleFunc("/badutf8", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", "{\"a\":\"\xff\xfe\"}")
	})
	mux.HandleFunc("/wrongtype", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `{"name":"doc","n":"one"}`)
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `{"p":"`+strings.Repeat("x", 1024-8)+`"}`)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, "application/json", `{"p":"`+strings.Repeat("x", 1024-7)+`"}`)
	})
	mux.HandleFunc("/bigchunked", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"p":"`))
		w.(http.Flusher).Flush()
		for range 8 {
			_, _ = w.Write([]byte(strings.Repeat("y", 512)))
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write([]byte(`"}`))
	})
	mux.HandleFunc("/404", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such document", http.StatusNotFound)
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("boom\x1b[31m\x00\u202e" + strings.Repeat("z", 400)))
	})
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/redirect/"))
		if n <= 0 {
			http.Redirect(w, r, "/doc", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/redirect/"+strconv.Itoa(n-1), http.StatusFound)
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other+"/doc", http.StatusFound)
	})
	mux.HandleFunc("/userinfo-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://user:pw@"+r.Host+"/doc", http.StatusFound)
	})
	mux.HandleFunc("/slow-header", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"a":`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type doc struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

func TestFetch(t *testing.T) {
	other := testServer(t, "")
	srv := testServer(t, other.URL)
	base := Config{AllowHTTP: true, AllowPrivate: true, MaxBytes: 1024, Timeout: 100 * time.Millisecond}

	tests := []struct {
		name   string
		url    string // path on srv, or a whole URL
		get    bool   // Get instead of JSON
		cfg    func(*Config)
		limit  func(*Fetcher) *Fetcher
		want   []error
		status int
		check  func(t *testing.T, r *Response, d doc)
	}{
		{name: "json ok", url: "/doc", check: func(t *testing.T, r *Response, d doc) {
			if d.Name != "doc" || d.N != 1 || r.Status != 200 || r.Header.Get("X-No-Accept") != "" {
				t.Errorf("got %+v, status %d, header %v", d, r.Status, r.Header)
			}
		}},
		{name: "get ok", url: "/doc", get: true, check: func(t *testing.T, r *Response, _ doc) {
			if string(r.Body) != `{"name":"doc","n":1}` {
				t.Errorf("body %q", r.Body)
			}
		}},
		{name: "+json with parameters and whitespace", url: "/jwks"},
		{name: "same-origin redirect", url: "/redirect/0", check: func(t *testing.T, r *Response, d doc) {
			if !strings.HasSuffix(r.URL, "/doc") || d.Name != "doc" {
				t.Errorf("URL %q, doc %+v", r.URL, d)
			}
		}},
		{name: "three redirects", url: "/redirect/2"},
		{name: "too many redirects", url: "/redirect/3", want: []error{ErrRedirect}},
		{name: "cross-origin redirect", url: "/away", want: []error{ErrRedirect}},
		{name: "redirect to userinfo", url: "/userinfo-redirect", want: []error{ErrRedirect, ErrInvalidURL}},
		{name: "restricted: no redirects", url: "/redirect/0", limit: func(f *Fetcher) *Fetcher { return f.Restrict(0, 0) },
			want: []error{ErrRedirect}},
		{name: "restricted: smaller cap", url: "/doc", limit: func(f *Fetcher) *Fetcher { return f.Restrict(10, -1) },
			want: []error{ErrTooLarge}},
		{name: "restricted: larger cap keeps smaller", url: "/big", get: true,
			limit: func(f *Fetcher) *Fetcher { return f.Restrict(1<<20, -1) }, want: []error{ErrTooLarge}},
		{name: "exactly max bytes", url: "/exact", get: true, check: func(t *testing.T, r *Response, _ doc) {
			if len(r.Body) != 1024 {
				t.Errorf("body length %d", len(r.Body))
			}
		}},
		{name: "too large", url: "/big", get: true, want: []error{ErrTooLarge}},
		{name: "too large without length", url: "/bigchunked", cfg: func(c *Config) { c.MaxBytes = 2048 },
			want: []error{ErrTooLarge}},
		{name: "slow headers time out", url: "/slow-header", want: []error{ErrTimeout, context.DeadlineExceeded}},
		{name: "slow body times out", url: "/slow-body", want: []error{ErrTimeout, context.DeadlineExceeded}},
		{name: "wrong content type", url: "/html", want: []error{ErrBadJSON}},
		{name: "empty +json subtype", url: "/plusjson-empty", want: []error{ErrBadJSON}},
		{name: "no content type", url: "/noctype", want: []error{ErrBadJSON}},
		{name: "get ignores content type", url: "/html", get: true},
		{name: "trailing garbage", url: "/trailing", want: []error{ErrBadJSON}},
		{name: "two objects", url: "/two", want: []error{ErrBadJSON}},
		{name: "array", url: "/array", want: []error{ErrBadJSON}},
		{name: "invalid utf-8", url: "/badutf8", want: []error{ErrBadJSON}},
		{name: "member of wrong type", url: "/wrongtype", want: []error{ErrBadJSON}},
		{name: "404", url: "/404", want: []error{ErrStatus}, status: 404},
		{name: "500 excerpt", url: "/500", get: true, want: []error{ErrStatus}, status: 500},
		{name: "userinfo in URL", url: "http://user:pw@" + strings.TrimPrefix(srv.URL, "http://") + "/doc",
			want: []error{ErrInvalidURL}},
		{name: "fragment", url: srv.URL + "/doc#x", want: []error{ErrInvalidURL}},
		{name: "empty fragment", url: srv.URL + "/doc#", want: []error{ErrInvalidURL}},
		{name: "relative", url: "doc", want: []error{ErrInvalidURL}},
		{name: "no host", url: "http:///doc", want: []error{ErrInvalidURL}},
		{name: "empty", url: "", want: []error{ErrInvalidURL}},
		{name: "non-https refused", url: "/doc", cfg: func(c *Config) { c.AllowHTTP = false }, want: []error{ErrInvalidURL}},
		{name: "ftp refused", url: "ftp://example.com/doc", want: []error{ErrInvalidURL}},
		{name: "javascript refused", url: "javascript:alert(1)", want: []error{ErrInvalidURL}},
		{name: "overlong URL", url: "/doc?" + strings.Repeat("a", maxURLLength), want: []error{ErrInvalidURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			f := New(cfg)
			if tt.limit != nil {
				f = tt.limit(f)
			}
			u := tt.url
			if strings.HasPrefix(u, "/") {
				u = srv.URL + u
			}
			var (
				resp *Response
				err  error
				d    doc
			)
			if tt.get {
				resp, err = f.Get(t.Context(), u)
			} else {
				resp, err = f.JSON(t.Context(), u, &d)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, resp, d)
				}
				return
			}
			if err == nil {
				t.Fatalf("got response %+v, want error %v", resp, tt.want)
			}
			if resp != nil {
				t.Errorf("response %+v returned with error", resp)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not wrap %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "fetch: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.status != 0 {
				var se *StatusError
				if !errors.As(err, &se) || se.Code != tt.status {
					t.Fatalf("error %v: want StatusError %d", err, tt.status)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
					t.Errorf("error %q does not name the status", err)
				}
				if len(se.Excerpt) > maxExcerpt || strings.ContainsAny(se.Excerpt, "\x00\x1b\u202e\n") {
					t.Errorf("excerpt %q is too long or has control characters", se.Excerpt)
				}
			}
		})
	}
}

func TestTimeoutIsNotCancel(t *testing.T) {
	srv := testServer(t, "")
	f := New(Config{AllowHTTP: true, AllowPrivate: true, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := f.JSON(ctx, srv.URL+"/slow-header", nil)
		done <- err
	}()
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v: want context.Canceled and not ErrTimeout", err)
	}
}

func TestParentDeadline(t *testing.T) {
	srv := testServer(t, "")
	f := New(Config{AllowHTTP: true, AllowPrivate: true, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := f.JSON(ctx, srv.URL+"/slow-header", nil)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want ErrTimeout and DeadlineExceeded", err)
	}
}

// countingServer counts the requests that reach it.
func countingServer(t *testing.T, tls bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestPrivateAddressRefused(t *testing.T) {
	srv, hits := countingServer(t, false)
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	f := New(Config{AllowHTTP: true})
	tests := []struct {
		name string
		url  string
	}{
		{"IPv4 loopback literal", fmt.Sprintf("http://127.0.0.1:%d/", port)},
		{"IPv6 loopback literal", fmt.Sprintf("http://[::1]:%d/", port)},
		{"IPv4-mapped loopback literal", fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port)},
		{"private literal", "http://10.1.2.3/"},
		{"link-local literal (cloud metadata)", "http://169.254.169.254/latest/meta-data/"},
		{"CGNAT literal", "http://100.64.0.1/"},
		{"unspecified literal", fmt.Sprintf("http://0.0.0.0:%d/", port)},
		// localhost is a name: only the dialer, after resolution, sees
		// that it is loopback.
		{"name resolving to loopback", fmt.Sprintf("http://localhost:%d/", port)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.JSON(t.Context(), tt.url, nil)
			if !errors.Is(err, ErrPrivateAddress) {
				t.Fatalf("error %v: want ErrPrivateAddress", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("server saw %d requests", n)
	}
	// The same server is reachable once private targets are allowed.
	if _, err := New(Config{AllowHTTP: true, AllowPrivate: true}).JSON(t.Context(),
		fmt.Sprintf("http://localhost:%d/", port), nil); err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
}

func TestGivenClient(t *testing.T) {
	srv, hits := countingServer(t, true)
	client := srv.Client()
	transport := client.Transport
	port := srv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	local := fmt.Sprintf("https://localhost:%d/", port)

	_, err := New(Config{Client: client}).JSON(t.Context(), local, nil)
	if !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("wrapped transport: error %v, want ErrPrivateAddress", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused fetch reached the server")
	}
	if client.Transport != transport || client.CheckRedirect != nil {
		t.Fatal("the given client was modified")
	}
	// With AllowPrivate the client's own transport (and its test CA) is used.
	if _, err := New(Config{Client: client, AllowPrivate: true}).JSON(t.Context(), srv.URL, nil); err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCustomRoundTripper(t *testing.T) {
	var seen []string
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = append(seen, r.URL.Host)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: http.NoBody, Request: r}, nil
	})
	f := New(Config{Client: &http.Client{Transport: rt}})
	if _, err := f.Get(t.Context(), "https://127.0.0.1/x"); !errors.Is(err, ErrPrivateAddress) {
		t.Fatalf("literal: error %v, want ErrPrivateAddress", err)
	}
	resp, err := f.Get(t.Context(), "https://example.com/x")
	if err != nil || resp.Status != 200 {
		t.Fatalf("name: %v", err)
	}
	if len(seen) != 1 || seen[0] != "example.com" {
		t.Fatalf("round tripper saw %v", seen)
	}
}

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"2001:4860:4860::8888", true},
		{"64:ff9b::808:808", true},    // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},     // 6to4 of 8.8.8.8
		{"::ffff:8.8.8.8", true},      // IPv4-mapped public
		{"127.0.0.1", false},          // loopback
		{"127.255.0.1", false},        // loopback
		{"::1", false},                // loopback
		{"::ffff:127.0.0.1", false},   // IPv4-mapped loopback
		{"10.0.0.1", false},           // RFC 1918
		{"172.16.5.4", false},         // RFC 1918
		{"172.31.255.255", false},     // RFC 1918
		{"172.32.0.1", true},          // just outside 172.16/12
		{"192.168.1.1", false},        // RFC 1918
		{"fc00::1", false},            // RFC 4193
		{"fd12:3456::1", false},       // RFC 4193
		{"169.254.169.254", false},    // link-local
		{"fe80::1", false},            // link-local
		{"fe80::1%eth0", false},       // zoned link-local
		{"0.0.0.0", false},            // unspecified
		{"0.1.2.3", false},            // this network
		{"::", false},                 // unspecified
		{"224.0.0.1", false},          // multicast
		{"ff02::1", false},            // multicast
		{"100.64.0.1", false},         // CGNAT
		{"100.127.255.255", false},    // CGNAT
		{"100.128.0.1", true},         // just outside CGNAT
		{"192.0.0.8", false},          // IETF assignments
		{"192.0.2.1", false},          // documentation
		{"198.18.0.1", false},         // benchmarking
		{"240.0.0.1", false},          // reserved
		{"255.255.255.255", false},    // broadcast
		{"64:ff9b::7f00:1", false},    // NAT64 of loopback
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of link-local
		{"2002:7f00:1::1", false},     // 6to4 of loopback
		{"2002:a00:1::1", false},      // 6to4 of 10.0.0.1
		{"2001:db8::1", false},        // documentation
		{"2001::1", false},            // Teredo
		{"::7f00:1", false},           // IPv4-compatible
		{"fec0::1", false},            // site-local
		{"100::1", false},             // discard-only
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := publicAddr(a); got != tt.want {
				t.Errorf("publicAddr(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	if publicAddr(netip.Addr{}) {
		t.Error("zero Addr is public")
	}
}

func TestCheckDial(t *testing.T) {
	tests := []struct {
		address string
		ok      bool
	}{
		{"8.8.8.8:443", true},
		{"[2606:4700:4700::1111]:443", true},
		{"127.0.0.1:443", false},
		{"[::1]:80", false},
		{"[fe80::1%25eth0]:80", false},
		{"not-an-address", false},
		{"", false},
	}
	for _, tt := range tests {
		err := checkDial(context.Background(), "tcp", tt.address, nil)
		if (err == nil) != tt.ok {
			t.Errorf("checkDial(%q) = %v, want ok=%v", tt.address, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrPrivateAddress) {
			t.Errorf("checkDial(%q) = %v, want ErrPrivateAddress", tt.address, err)
		}
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"https://a.example/x", "https://a.example:443/y", true},
		{"https://A.example/x", "https://a.EXAMPLE/y", true},
		{"http://a.example/", "http://a.example:80/", true},
		{"https://a.example/", "http://a.example/", false},
		{"https://a.example/", "https://a.example:8443/", false},
		{"https://a.example/", "https://b.example/", false},
		{"https://a.example/", "https://sub.a.example/", false},
		{"https://[::1]/", "https://[::1]:443/", true},
	}
	for _, tt := range tests {
		ua, _ := url.Parse(tt.a)
		ub, _ := url.Parse(tt.b)
		if got := origin(ua) == origin(ub); got != tt.same {
			t.Errorf("same origin %q %q = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"not found\n", "not found"},
		{"a\x00b\x1bc\x7fd", "abcd"},
		{"line1\r\nline2", "line1  line2"},
		{"bidi\u202eevil\u200b", "bidievil"},
		{"bad\xff\xfeutf8", "badutf8"},
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},
		{strings.Repeat("x", 500), strings.Repeat("x", 128)},
	}
	for _, tt := range tests {
		if got := excerpt([]byte(tt.in)); got != tt.want {
			t.Errorf("excerpt(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckJSONType(t *testing.T) {
	tests := []struct {
		ct string
		ok bool
	}{
		{"application/json", true},
		{"Application/JSON; charset=utf-8", true},
		{"application/jwk-set+json", true},
		{"application/oauth-authorization-server+json", true},
		{"application/+json", false},
		{"text/json", false},
		{"text/plain+json", false},
		{"application/jsonx", false},
		{"application/json;;", false},
		{"", false},
	}
	for _, tt := range tests {
		err := checkJSONType(tt.ct)
		if (err == nil) != tt.ok {
			t.Errorf("checkJSONType(%q) = %v, want ok=%v", tt.ct, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadJSON) {
			t.Errorf("checkJSONType(%q) = %v, want ErrBadJSON", tt.ct, err)
		}
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/.well-known/openid-configuration",
		"http://127.0.0.1:8080/x",
		"https://user@example.com/",
		"https://example.com/#f",
		"https://[fe80::1%25eth0]/",
		"https://[::ffff:10.0.0.1]/",
		"//example.com/x",
		"https:example.com",
		"HTTPS://EXAMPLE.COM/",
		"https://example.com:99999/",
		"javascript:alert(1)",
	} {
		f.Add(s)
	}
	fe := New(Config{AllowHTTP: true})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := fe.checkURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrPrivateAddress) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if u.User != nil || u.Fragment != "" || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("accepted %q as %#v", raw, u)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && !publicAddr(a) {
			t.Fatalf("accepted private literal %q", raw)
		}
	})
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a":[1,2]} `, `{"a":1} x`, `[]`, `"s"`, `{"a":"\xff"}`, "\ufeff{}", `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m map[string]any
		if err := decodeObject(b, &m); err != nil {
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("error %v does not wrap ErrBadJSON", err)
			}
			return
		}
		if m == nil {
			t.Fatalf("accepted %q without an object", b)
		}
	})
}

func BenchmarkPublicAddr(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("2606:4700:4700::1111"),
		netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("64:ff9b::808:808"),
	}
	for b.Loop() {
		for _, a := range addrs {
			publicAddr(a)
		}
	}
}

func BenchmarkJSON(b *testing.B) {
	srv := testServer(b, "")
	f := New(Config{AllowHTTP: true, AllowPrivate: true})
	ctx := context.Background()
	for b.Loop() {
		var d doc
		if _, err := f.JSON(ctx, srv.URL+"/doc", &d); err != nil {
			b.Fatal(err)
		}
	}
}
