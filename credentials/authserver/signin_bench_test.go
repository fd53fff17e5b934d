package authserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/credentials/oauth"
)

// loginFixture is a server with one pending authorization request and the
// login form to post for it.
type loginFixture struct {
	h      http.Handler
	fields url.Values
	cookie string
	// spread makes each attempt come from another network address, so
	// that the per-address limit (loginFailuresPerAddress) is never
	// reached by a benchmark of the counters themselves.
	spread bool
	n      atomic.Uint32
}

func newLoginFixture(b *testing.B, maxFailures int) *loginFixture {
	b.Helper()
	users, err := testUsers()
	if err != nil {
		b.Fatal(err)
	}
	const callback = "http://127.0.0.1:9/cb"
	s, err := New(context.Background(), Config{
		Issuer:           "http://127.0.0.1:8",
		Store:            NewMemoryStore(nil),
		Users:            users,
		Clients:          []StaticClient{{ID: cliClient, AuthMethod: oauth.AuthNone, RedirectURIs: []string{callback}}},
		Resources:        []Resource{{URI: notesURI, Scopes: []string{"notes:read"}}},
		MaxLoginFailures: maxFailures,
	})
	if err != nil {
		b.Fatal(err)
	}
	query := url.Values{
		"response_type": {"code"}, "client_id": {cliClient}, "redirect_uri": {callback}, "state": {"s"},
		"code_challenge": {repeat(43)}, "code_challenge_method": {"S256"}, "scope": {"openid notes:read"},
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8"+PathAuthorize+"?"+query.Encode(), nil))
	page := &response{status: w.Code, body: w.Body.String(), url: &url.URL{Scheme: "http", Host: "127.0.0.1:8", Path: PathAuthorize}}
	_, fields := page.form(b)
	var cookie string
	for _, c := range w.Result().Cookies() {
		cookie = c.Name + "=" + c.Value
	}
	return &loginFixture{h: s.Handler(), fields: fields, cookie: cookie}
}

// post signs in as user with password and returns the status.
func (f *loginFixture) post(user, password string) int {
	form := url.Values{"username": {user}, "password": {password}}
	for k, v := range f.fields {
		form[k] = v
	}
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8"+PathLogin, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", f.cookie)
	if f.spread {
		n := f.n.Add(1)
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", byte(n>>16), byte(n>>8), byte(n))
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w.Code
}

// BenchmarkSignIn posts the login form to the handler in process (memory
// store): CSRF check, the pending request, the sign-in throttle's counter
// writes, the password check under the hashing limit, and the page.
func BenchmarkSignIn(b *testing.B) {
	tests := []struct {
		name           string
		maxFailures    int
		user, password string
		want           int
		lockFirst      bool
		parallel       bool
	}{
		{name: "right password", maxFailures: -1, user: "alice", password: alicePassword, want: http.StatusOK},
		{name: "wrong password, throttle off", maxFailures: -1, user: "alice", password: "wrong", want: http.StatusUnauthorized},
		// A limit never reached: every attempt reserves its counts.
		{name: "wrong password, throttled", maxFailures: 1 << 30, user: "alice", password: "wrong", want: http.StatusUnauthorized},
		{name: "unknown user, throttled", maxFailures: 1 << 30, user: "nobody", password: "wrong", want: http.StatusUnauthorized},
		{name: "locked", user: "alice", password: alicePassword, want: http.StatusTooManyRequests, lockFirst: true},
		{name: "unknown user, 8 per CPU at once", maxFailures: -1, user: "nobody", password: "wrong", want: http.StatusUnauthorized, parallel: true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			f := newLoginFixture(b, tt.maxFailures)
			f.spread = tt.maxFailures > 0
			if tt.lockFirst {
				for range DefaultMaxLoginFailures {
					f.post(tt.user, "wrong")
				}
			}
			if !tt.parallel {
				for b.Loop() {
					if got := f.post(tt.user, tt.password); got != tt.want {
						b.Fatalf("status %d, want %d", got, tt.want)
					}
				}
				return
			}
			// More attempts at once than the hashing pool takes: those
			// it cannot take wait a little, then get 429 (the pool's
			// refusal, never a 500); the share of them is reported.
			b.SetParallelism(8)
			var busy, all atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					got := f.post(tt.user, tt.password)
					all.Add(1)
					switch got {
					case tt.want:
					case http.StatusTooManyRequests:
						busy.Add(1)
					default:
						b.Errorf("status %d, want %d (or 429 when the hashing pool is full)", got, tt.want)
						return
					}
				}
			})
			b.ReportMetric(float64(busy.Load())/float64(max(all.Load(), 1)), "busy-frac")
		})
	}
}
