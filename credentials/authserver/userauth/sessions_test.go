package userauth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

var testKey = bytes.Repeat([]byte{7}, 32)

func newTestSessions(t testing.TB, cfg SessionConfig) *Sessions {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	s, err := NewSessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// request returns a GET request carrying cookies.
func request(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://as.example/authorize", nil)
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

// onlyCookie returns the single cookie rec set.
func onlyCookie(t testing.TB, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("response set %d cookies, want 1: %v", len(cs), rec.Header()["Set-Cookie"])
	}
	return cs[0]
}

func TestNewSessionsConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      SessionConfig
		wantErr  string
		wantName string
	}{
		{name: "defaults", cfg: SessionConfig{Key: testKey}, wantName: "agenthost_session"},
		{name: "secure", cfg: SessionConfig{Key: testKey, Secure: true}, wantName: "__Host-agenthost_session"},
		{name: "custom name", cfg: SessionConfig{Key: testKey, CookieName: "as"}, wantName: "as"},
		{name: "no key", cfg: SessionConfig{}, wantErr: "key"},
		{name: "short key", cfg: SessionConfig{Key: make([]byte, 16)}, wantErr: "key"},
		{name: "long key", cfg: SessionConfig{Key: make([]byte, 33)}, wantErr: "key"},
		{name: "name with space", cfg: SessionConfig{Key: testKey, CookieName: "a b"}, wantErr: "cookie name"},
		{name: "name with semicolon", cfg: SessionConfig{Key: testKey, CookieName: "a;b"}, wantErr: "cookie name"},
		{name: "name with prefix", cfg: SessionConfig{Key: testKey, CookieName: "__Host-x"}, wantErr: "__"},
		{name: "name too long", cfg: SessionConfig{Key: testKey, CookieName: strings.Repeat("c", 65)}, wantErr: "limit"},
		{name: "negative TTL", cfg: SessionConfig{Key: testKey, TTL: -time.Hour}, wantErr: "TTL"},
		{name: "sub-second TTL", cfg: SessionConfig{Key: testKey, TTL: time.Millisecond}, wantErr: "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSessions(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.CookieName() != tt.wantName {
				t.Errorf("cookie name %q, want %q", s.CookieName(), tt.wantName)
			}
		})
	}
}

func TestSessionRoundTrip(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 500, time.UTC)}
			s := newTestSessions(t, SessionConfig{Secure: secure, TTL: time.Hour, Now: clock.Now})
			rec := httptest.NewRecorder()
			sess, err := s.Start(rec, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if sess.User != "alice" || len(sess.ID) < 22 || !sess.AuthTime.Equal(clock.t.Truncate(time.Second)) ||
				!sess.Expires.Equal(sess.AuthTime.Add(time.Hour)) {
				t.Errorf("Start returned %+v", sess)
			}
			c := onlyCookie(t, rec)
			wantName := "agenthost_session"
			if secure {
				wantName = "__Host-agenthost_session"
			}
			if c.Name != wantName || c.Path != "/" || !c.HttpOnly || c.Secure != secure ||
				c.SameSite != http.SameSiteLaxMode || c.MaxAge != 3600 || c.Domain != "" {
				t.Errorf("cookie %+v", c)
			}
			if strings.Contains(c.Value, "alice") {
				t.Error("cookie value shows the user name in clear")
			}
			if _, err := base64.RawURLEncoding.Strict().DecodeString(c.Value); err != nil {
				t.Errorf("cookie value is not base64url: %v", err)
			}
			clock.t = clock.t.Add(59 * time.Minute)
			got, err := s.Get(request(c))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != sess.ID || got.User != sess.User || !got.AuthTime.Equal(sess.AuthTime) || !got.Expires.Equal(sess.Expires) {
				t.Errorf("Get = %+v, want %+v", got, sess)
			}
		})
	}
}

func TestSessionIDsDiffer(t *testing.T) {
	s := newTestSessions(t, SessionConfig{})
	a, err := s.Start(httptest.NewRecorder(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Start(httptest.NewRecorder(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Error("two sessions share an ID")
	}
}

func TestStartRefusesEmptyUser(t *testing.T) {
	s := newTestSessions(t, SessionConfig{})
	rec := httptest.NewRecorder()
	if _, err := s.Start(rec, ""); err == nil {
		t.Error("Start with an empty user succeeded")
	}
	if len(rec.Result().Cookies()) != 0 {
		t.Error("a failed Start set a cookie")
	}
}

func TestSessionGetRejects(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s := newTestSessions(t, SessionConfig{TTL: time.Hour, Now: clock.Now})
	rec := httptest.NewRecorder()
	if _, err := s.Start(rec, "alice"); err != nil {
		t.Fatal(err)
	}
	good := onlyCookie(t, rec)
	raw, err := base64.RawURLEncoding.DecodeString(good.Value)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other := newTestSessions(t, SessionConfig{Key: bytes.Repeat([]byte{8}, 32), TTL: time.Hour, Now: clock.Now})
	recOther := httptest.NewRecorder()
	if _, err := other.Start(recOther, "alice"); err != nil {
		t.Fatal(err)
	}
	renamed := newTestSessions(t, SessionConfig{CookieName: "other", TTL: time.Hour, Now: clock.Now})
	recRenamed := httptest.NewRecorder()
	if _, err := renamed.Start(recRenamed, "alice"); err != nil {
		t.Fatal(err)
	}
	named := func(v string) *http.Cookie { return &http.Cookie{Name: "agenthost_session", Value: v} }
	tests := []struct {
		name    string
		cookies []*http.Cookie
		advance time.Duration
	}{
		{name: "absent"},
		{name: "other cookie only", cookies: []*http.Cookie{{Name: "something", Value: good.Value}}},
		{name: "empty value", cookies: []*http.Cookie{named("")}},
		{name: "not base64", cookies: []*http.Cookie{named("!!!!")}},
		{name: "padded base64", cookies: []*http.Cookie{named(good.Value + "=")}},
		{name: "too short", cookies: []*http.Cookie{named("AAAA")}},
		{name: "oversized", cookies: []*http.Cookie{named(strings.Repeat("A", maxCookieValue+1))}},
		{name: "nonce flipped", cookies: []*http.Cookie{named(flip(0))}},
		{name: "ciphertext flipped", cookies: []*http.Cookie{named(flip(len(raw) / 2))}},
		{name: "tag flipped", cookies: []*http.Cookie{named(flip(len(raw) - 1))}},
		{name: "truncated", cookies: []*http.Cookie{named(base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]))}},
		{name: "other key", cookies: []*http.Cookie{named(onlyCookie(t, recOther).Value)}},
		{name: "sealed for another cookie name", cookies: []*http.Cookie{named(onlyCookie(t, recRenamed).Value)}},
		{name: "expired", cookies: []*http.Cookie{good}, advance: time.Hour},
		{name: "long expired", cookies: []*http.Cookie{good}, advance: 1000 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := clock.t
			clock.t = clock.t.Add(tt.advance)
			defer func() { clock.t = saved }()
			got, err := s.Get(request(tt.cookies...))
			if !errors.Is(err, ErrNoSession) || got != (Session{}) {
				t.Errorf("Get = %+v, %v; want ErrNoSession", got, err)
			}
		})
	}
	// The untouched cookie is still good, so the cases above failed for
	// their own reason.
	if _, err := s.Get(request(good)); err != nil {
		t.Errorf("good cookie: %v", err)
	}
}

func TestSessionTTLShortened(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	long := newTestSessions(t, SessionConfig{TTL: 8 * time.Hour, Now: clock.Now})
	rec := httptest.NewRecorder()
	if _, err := long.Start(rec, "alice"); err != nil {
		t.Fatal(err)
	}
	c := onlyCookie(t, rec)
	short := newTestSessions(t, SessionConfig{TTL: time.Hour, Now: clock.Now})
	clock.t = clock.t.Add(30 * time.Minute)
	if _, err := short.Get(request(c)); err != nil {
		t.Fatalf("within the shorter TTL: %v", err)
	}
	clock.t = clock.t.Add(time.Hour)
	if _, err := short.Get(request(c)); !errors.Is(err, ErrNoSession) {
		t.Errorf("after the shorter TTL: %v, want ErrNoSession", err)
	}
	if _, err := long.Get(request(c)); err != nil {
		t.Errorf("within the original TTL: %v", err)
	}
}

func TestSessionSkipsPlantedCookie(t *testing.T) {
	s := newTestSessions(t, SessionConfig{})
	rec := httptest.NewRecorder()
	if _, err := s.Start(rec, "alice"); err != nil {
		t.Fatal(err)
	}
	planted := &http.Cookie{Name: "agenthost_session", Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	got, err := s.Get(request(planted, onlyCookie(t, rec)))
	if err != nil || got.User != "alice" {
		t.Errorf("Get = %+v, %v", got, err)
	}
}

func TestSessionEnd(t *testing.T) {
	for _, secure := range []bool{false, true} {
		s := newTestSessions(t, SessionConfig{Secure: secure})
		rec := httptest.NewRecorder()
		s.End(rec)
		c := onlyCookie(t, rec)
		if c.Name != s.CookieName() || c.Value != "" || c.MaxAge != -1 || c.Path != "/" || c.Secure != secure || !c.HttpOnly {
			t.Errorf("secure=%v: End set %+v", secure, c)
		}
		if !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("Set-Cookie %q lacks Max-Age=0", rec.Header().Get("Set-Cookie"))
		}
	}
}

func TestCSRF(t *testing.T) {
	s := newTestSessions(t, SessionConfig{Secure: true})
	// First form: no cookie yet, so one is set.
	rec := httptest.NewRecorder()
	token := s.CSRFToken(rec, request())
	c := onlyCookie(t, rec)
	if c.Name != "__Host-agenthost_session_csrf" || !c.Secure || !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("CSRF cookie %+v", c)
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(b) != 32 {
		t.Errorf("token %q is not 32 bytes of base64url", token)
	}
	if token == c.Value {
		t.Error("token equals the cookie value")
	}
	// Second form in the same browser: the cookie is reused.
	rec2 := httptest.NewRecorder()
	if again := s.CSRFToken(rec2, request(c)); again != token {
		t.Errorf("token changed on reuse: %q then %q", token, again)
	}
	if len(rec2.Result().Cookies()) != 0 {
		t.Error("CSRFToken replaced a valid cookie")
	}
	// Another browser.
	rec3 := httptest.NewRecorder()
	otherToken := s.CSRFToken(rec3, request())
	otherCookie := onlyCookie(t, rec3)
	if otherToken == token {
		t.Error("two browsers got one token")
	}
	// A broken cookie is replaced.
	rec4 := httptest.NewRecorder()
	s.CSRFToken(rec4, request(&http.Cookie{Name: c.Name, Value: "junk"}))
	if len(rec4.Result().Cookies()) != 1 {
		t.Error("CSRFToken kept a malformed cookie")
	}
	otherKey := newTestSessions(t, SessionConfig{Key: bytes.Repeat([]byte{9}, 32), Secure: true})
	flipped := []byte(token)
	flipped[0] ^= 1
	tests := []struct {
		name    string
		s       *Sessions
		cookies []*http.Cookie
		token   string
		ok      bool
	}{
		{name: "ok", s: s, cookies: []*http.Cookie{c}, token: token, ok: true},
		{name: "ok among planted cookies", s: s, cookies: []*http.Cookie{{Name: c.Name, Value: "x"}, c}, token: token, ok: true},
		{name: "missing token", s: s, cookies: []*http.Cookie{c}, token: ""},
		{name: "missing cookie", s: s, token: token},
		{name: "wrong token", s: s, cookies: []*http.Cookie{c}, token: otherToken},
		{name: "token from other browser's cookie", s: s, cookies: []*http.Cookie{otherCookie}, token: token},
		{name: "cookie value as token", s: s, cookies: []*http.Cookie{c}, token: c.Value},
		{name: "token flipped", s: s, cookies: []*http.Cookie{c}, token: string(flipped)},
		{name: "token truncated", s: s, cookies: []*http.Cookie{c}, token: token[:len(token)-1]},
		{name: "token padded", s: s, cookies: []*http.Cookie{c}, token: token + "="},
		{name: "token zero", s: s, cookies: []*http.Cookie{c}, token: base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{name: "malformed cookie", s: s, cookies: []*http.Cookie{{Name: c.Name, Value: "junk"}}, token: token},
		{name: "other key", s: otherKey, cookies: []*http.Cookie{c}, token: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.CheckCSRF(request(tt.cookies...), tt.token)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrCSRF) {
				t.Errorf("CheckCSRF = %v, want ErrCSRF", err)
			}
		})
	}
}

// FuzzSessionsGet feeds arbitrary cookie values to Get: it must not panic,
// must fail with ErrNoSession, or return a live session.
func FuzzSessionsGet(f *testing.F) {
	clock := &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	s := newTestSessions(f, SessionConfig{TTL: time.Hour, Now: clock.Now})
	rec := httptest.NewRecorder()
	if _, err := s.Start(rec, "alice"); err != nil {
		f.Fatal(err)
	}
	good := rec.Result().Cookies()[0].Value
	for _, seed := range []string{good, good[:len(good)-2], "", "A", "AAAA", "!!", strings.Repeat("A", 100), good + "A"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Cookie", "agenthost_session="+value)
		sess, err := s.Get(r)
		if err != nil {
			if !errors.Is(err, ErrNoSession) {
				t.Fatalf("error %v does not wrap ErrNoSession", err)
			}
			return
		}
		if sess.User == "" || sess.ID == "" || !clock.t.Before(sess.Expires) {
			t.Fatalf("Get returned an invalid session %+v", sess)
		}
	})
}

// TestSessionCSRF: the token of a form shown in a session is good only
// with that session; a token of another session, of the same user
// signing in again, of the cookie-bound login form, or made under another
// key is refused, and so is any token without a session.
func TestSessionCSRF(t *testing.T) {
	s := newTestSessions(t, SessionConfig{Secure: true})
	start := func() Session {
		sess, err := s.Start(httptest.NewRecorder(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	mine, again := start(), start()
	token := s.SessionCSRFToken(mine)
	if b, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil || len(b) != 32 {
		t.Fatalf("token %q is not 32 bytes of base64url", token)
	}
	if s.SessionCSRFToken(mine) != token {
		t.Error("the token changed within the session")
	}
	if s.SessionCSRFToken(Session{User: "alice"}) != "" {
		t.Error("a session without an ID got a token")
	}
	rec := httptest.NewRecorder()
	cookieToken := s.CSRFToken(rec, request())
	cookie := onlyCookie(t, rec)
	otherKey := newTestSessions(t, SessionConfig{Key: bytes.Repeat([]byte{9}, 32), Secure: true})
	flipped := []byte(token)
	flipped[0] ^= 1
	tests := []struct {
		name  string
		s     *Sessions
		sess  Session
		token string
		ok    bool
	}{
		{name: "ok", s: s, sess: mine, token: token, ok: true},
		{name: "another session of the same user", s: s, sess: again, token: token},
		{name: "this session, another session's token", s: s, sess: mine, token: s.SessionCSRFToken(again)},
		{name: "login form's token", s: s, sess: mine, token: cookieToken},
		{name: "CSRF cookie as token", s: s, sess: mine, token: cookie.Value},
		{name: "no session", s: s, sess: Session{}, token: token},
		{name: "session ID as token", s: s, sess: mine, token: mine.ID},
		{name: "missing token", s: s, sess: mine, token: ""},
		{name: "token flipped", s: s, sess: mine, token: string(flipped)},
		{name: "token truncated", s: s, sess: mine, token: token[:len(token)-1]},
		{name: "token zero", s: s, sess: mine, token: base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{name: "other key", s: otherKey, sess: mine, token: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.CheckSessionCSRF(tt.sess, tt.token)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrCSRF) {
				t.Errorf("CheckSessionCSRF = %v, want ErrCSRF", err)
			}
		})
	}
	// The login form's check does not take a session's token either.
	if err := s.CheckCSRF(request(cookie), token); !errors.Is(err, ErrCSRF) {
		t.Errorf("CheckCSRF took a session token: %v", err)
	}
}
