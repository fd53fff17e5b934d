package authserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/credentials/authserver/userauth"
)

// loginPost is a filled-in login form ready to be posted from its browser.
type loginPost struct {
	b      *browser
	action string
	fields url.Values
}

// prepareLogins opens n authorization requests, each in a browser of its
// own, and fills in their login forms with user and password.
func (e *codeEnv) prepareLogins(n int, user func(i int) string, password string) []loginPost {
	e.t.Helper()
	out := make([]loginPost, n)
	for i := range out {
		b := newBrowser(e.t)
		action, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(e.t))), nil).form(e.t)
		fields.Set("username", user(i))
		fields.Set("password", password)
		out[i] = loginPost{b: b, action: action, fields: fields}
	}
	return out
}

// postAll posts every form at once, the i-th to hosts[i%len(hosts)] (a
// base URL; the form's path is kept), and returns the responses in order.
// Errors are collected rather than fatal: they happen off the test
// goroutine.
func postAll(t *testing.T, posts []loginPost, hosts ...string) []*response {
	t.Helper()
	out := make([]*response, len(posts))
	errs := make([]error, len(posts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range posts {
		target := p.action
		if len(hosts) > 0 {
			u, err := url.Parse(p.action)
			if err != nil {
				t.Fatal(err)
			}
			target = hosts[i%len(hosts)] + u.Path
		}
		wg.Go(func() {
			<-start
			out[i], errs[i] = p.b.post(target, p.fields)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	return out
}

// post is do for use off the test goroutine: it returns errors.
func (b *browser) post(target string, form url.Values) (*response, error) {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: string(raw), url: req.URL}, nil
}

func statusCounts(rs []*response) map[int]int {
	out := map[int]int{}
	for _, r := range rs {
		out[r.status]++
	}
	return out
}

// secondHost starts another server on e's store, as a second host
// sharing the store would, and returns its base URL.
func (e *codeEnv) secondHost() string {
	e.t.Helper()
	srv, err := New(context.Background(), e.srv.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	h := httptest.NewServer(srv.Handler())
	e.t.Cleanup(h.Close)
	return h.URL
}

// TestSignInThrottleParallel: 100 wrong passwords for alice posted at once
// from one address, to one host or spread over two hosts sharing a store,
// check at most MaxLoginFailures passwords; every other attempt is refused
// with 429 and none fails with 500; afterwards alice's right password is
// refused too, while the pair is locked.
func TestSignInThrottleParallel(t *testing.T) {
	const attempts = 100
	tests := []struct {
		name  string
		hosts int
		// latency delays every store operation, as a store shared over
		// the network does.
		latency time.Duration
	}{
		{name: "one host", hosts: 1},
		{name: "two hosts sharing a store", hosts: 2},
		{name: "two hosts sharing a slow store", hosts: 2, latency: 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The probe counts the passwords actually hashed; the long wait
			// keeps a loaded machine from answering 503 here.
			var probe hashProbe
			lim, err := userauth.NewLimiter(userauth.LimiterConfig{Wait: time.Minute, OnHash: probe.onHash})
			if err != nil {
				t.Fatal(err)
			}
			e := newCodeEnv(t, func(c *Config) {
				c.Users = usersWith(t, lim)
				if tt.latency > 0 {
					c.Store = slowStore{Store: c.Store, latency: tt.latency}
				}
			})
			hosts := []string{e.issuer}
			for len(hosts) < tt.hosts {
				hosts = append(hosts, e.secondHost())
			}
			posts := e.prepareLogins(attempts, func(int) string { return "alice" }, "wrong password")
			got := statusCounts(postAll(t, posts, hosts...))
			t.Logf("%d parallel wrong passwords: status counts %v, %d passwords hashed", attempts, got, probe.total.Load())
			if got[http.StatusUnauthorized] != DefaultMaxLoginFailures ||
				got[http.StatusTooManyRequests] != attempts-DefaultMaxLoginFailures {
				t.Errorf("status counts %v; want %d × 401 (password checked) and %d × 429",
					got, DefaultMaxLoginFailures, attempts-DefaultMaxLoginFailures)
			}
			if n := probe.total.Load(); n != int64(got[http.StatusUnauthorized]) || n > DefaultMaxLoginFailures {
				t.Errorf("%d passwords hashed for %d answers 401; the limit is %d", n, got[http.StatusUnauthorized], DefaultMaxLoginFailures)
			}
			hashed := probe.total.Load()
			for _, host := range hosts {
				b := newBrowser(t)
				action, fields := b.do(http.MethodGet, e.authorizeURL(e.authParams(newVerifier(t))), nil).form(t)
				u, _ := url.Parse(action)
				fields.Set("username", "alice")
				fields.Set("password", alicePassword)
				r := b.do(http.MethodPost, host+u.Path, fields)
				if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") {
					t.Errorf("right password at %s while locked: %d %s", host, r.status, r.body)
				}
			}
			if n := probe.total.Load(); n != hashed {
				t.Errorf("%d passwords hashed while locked", n-hashed)
			}
		})
	}
}

// slowStore delays every operation of a Store.
type slowStore struct {
	Store
	latency time.Duration
}

func (s slowStore) Get(ctx context.Context, ns, key string) ([]byte, int64, error) {
	time.Sleep(s.latency)
	return s.Store.Get(ctx, ns, key)
}

func (s slowStore) Put(ctx context.Context, ns, key string, value []byte, w Write) (int64, error) {
	time.Sleep(s.latency)
	return s.Store.Put(ctx, ns, key, value, w)
}

func (s slowStore) Delete(ctx context.Context, ns, key string, version int64) error {
	time.Sleep(s.latency)
	return s.Store.Delete(ctx, ns, key, version)
}
